import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
# A committed record whose numerics stand for all of results/ and validation/ (a test checks
# that they all share them).
REFERENCE_RECORD = REPO / "results" / "ws-aux" / "seed-0.json"


def numerics_here_and_committed():
    """(this machine's numerics for a one-thread CPU run, those of the committed records)."""
    import json

    import torch

    from helpers.science.numerics import describe

    committed = json.loads(REFERENCE_RECORD.read_text()).get("numerics")
    return describe(torch.device("cpu"), threads=1), committed


def numerics_mode():
    """'exact' when this machine computes as the one that made the committed records (their
    numbers then reproduce bit for bit), else 'cross-host' (they reproduce within a tolerance
    measured across hosts: docs/numerics.md)."""
    here, committed = numerics_here_and_committed()
    return "exact" if here == committed else "cross-host"


def _mode_line(config):
    from helpers.science.numerics import label

    here, committed = numerics_here_and_committed()
    line = f"numerics: this machine: {label(here)}"
    if config.numerics_mode == "exact":
        return line + "; the same as the committed records: records and notebooks compared EXACTLY"
    differ = sorted(key for key in here if committed is None or here[key] != committed.get(key))
    return (line + f"; the committed records: {label(committed) if committed else 'unknown'} "
            f"(differs in {', '.join(differ)}): CROSS-HOST mode, the notebooks' error counts "
            f"are masked and checked within the measured cross-host tolerance instead "
            f"(tests/test_portability.py)")


def pytest_sessionstart(session):
    """The tests send Ctrl-C (SIGINT) to the commands they start: a shell that runs the suite in
    the background (`make test &`) starts it with SIGINT ignored, which every child would
    inherit. Its default handling is restored first, as in a terminal."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config):
    """Choose how nbval compares the committed notebooks' outputs with a fresh run: exactly on
    a machine with the committed records' numerics, with the training notebooks' error counts
    masked elsewhere (tests/nbval_sanitize_cross_host.cfg), so that the rest of every output
    keeps its teeth. The mode is printed at the top and at the end of the run."""
    from helpers.errors import DataError
    from helpers.science import PROGRESS_VARIABLE
    from helpers.science.mnist import ensure_data_root

    # Without MNIST every test that trains fails alike, minutes in: stop at once, in one line,
    # before torch loads (files missing under the default data/ are downloaded first, as the
    # runner does).
    try:
        ensure_data_root()
    except DataError as error:
        pytest.exit(f"error: {error}", returncode=2)
    os.environ[PROGRESS_VARIABLE] = "0"  # no progress bar in a notebook nbval compares
    config.numerics_mode = numerics_mode()
    chosen = getattr(config.option, "nbval_sanitize_with", None)
    if config.numerics_mode == "cross-host" and chosen:
        combined = tempfile.NamedTemporaryFile("w", suffix=".cfg", prefix="nbval-cross-host-",
                                               delete=False)
        with combined:
            combined.write(Path(chosen).read_text() + "\n")
            combined.write((TESTS / "nbval_sanitize_cross_host.cfg").read_text())
        config.option.nbval_sanitize_with = combined.name
        config.add_cleanup(lambda: os.unlink(combined.name))


def pytest_report_header(config):
    return _mode_line(config)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    terminalreporter.write_line(_mode_line(config))


@pytest.fixture(scope="session")
def mnist_root():
    """The MNIST root the suite reads: $MNIST_ROOT, else the repo's data/ (must hold MNIST/raw)."""
    root = Path(os.environ.get("MNIST_ROOT") or REPO / "data").resolve()
    assert (root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file() or \
        (root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file(), \
        f"the tests need MNIST: set MNIST_ROOT to a folder holding MNIST/raw (got {root})"
    return str(root)


@pytest.fixture(scope="session")
def exact_numerics(pytestconfig):
    """True when this machine reproduces the committed records bit for bit."""
    return pytestconfig.numerics_mode == "exact"
