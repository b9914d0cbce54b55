"""Bad input and faults, provoked for real: the fault catalogue of the runner and the
notebooks, one test (or one parametrized family) per fault, named for it.

- Bad input gets one line on stderr and exit code 2 before anything starts, and nothing on
  disk changes.
- A notebook run by hand checks its parameters before it trains, and never writes a record a
  folder must not take.
- Faults during a batch (signals, killed or suspended processes, unwritable folders, a closed
  stderr, a second runner) lose no finished record, leave no process behind, never count a
  record that is not the run's, never hang without saying why, and end with an exit code that
  says whether every run is done.

tests/test_records.py has the damaged records, tests/test_dask.py the faults of a Dask cluster.
"""

import fcntl
import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest
from runner_tools import (
    FIXTURE,
    FIXTURE_PARAMS,
    REPO,
    TINY,
    copy_notebooks,
    descendants,
    environment,
    gated_notebooks,
    helpers,
    kernel_of,
    read_json,
    record_files,
    snapshot,
    start,
    started,
    temporaries,
    wait_for,
)

from helpers import UsageError
from helpers.cli import main
from helpers.files import RESULTS, lock_folder
from helpers.notebook import parameters, save
from helpers.runs import execution
from helpers.kernel import NotebookFailed
from helpers.runs.records import (SCHEMA_VERSION, identity, publish, read_record, record_path,
                                  write_record)
from helpers.runs.runner import BatchResult, _sort_out, plan, staging
from helpers.science import mnist
from helpers.science.mnist import MNIST_MD5


# --------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit code 2, no traceback, nothing on disk changed
# --------------------------------------------------------------------------------------------
@pytest.fixture
def folders(tmp_path):
    """A results folder holding one file that must survive every bad command."""
    (tmp_path / "results" / "ws").mkdir(parents=True)
    (tmp_path / "results" / "ws" / "seed-0.json").write_text('{"kept": true}\n')
    return tmp_path


def _refused(argv, folders, capsys, fragment):
    before = snapshot(folders)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0]
    assert snapshot(folders) == before
    return lines[0]


BAD_RUNS = [
    (["nope"], "unknown experiment 'nope'"),
    ([], "name the experiments"),
    (["ws", "-p", "epoch", "3"], "unknown parameter 'epoch'"),
    (["ws", "-p", "epochs", "three"], "epochs must be an integer"),
    (["ws", "-p", "lr", "fast"], "lr must be a finite number"),
    (["ws", "-p", "batch_norm", "maybe"], "batch_norm must be true or false"),
    (["ws", "-p", "epochs", "0"], "epochs must be from 1 to 10000"),
    (["ws", "-p", "epochs", "99999999999"], "epochs must be from 1 to 10000, got 99999999999"),
    (["ws", "-p", "lr", "0"], "lr must be in (0, 100]"),
    (["ws", "-p", "lr", "-0.1"], "lr must be in (0, 100]"),
    (["ws", "-p", "batch_size", "0"], "batch_size must be from 1"),
    (["ws", "-p", "batch_size", "1001"], "batch_size must be from 1 to n_pairs (1000)"),
    (["ws", "-p", "n_pairs", "0"], "n_pairs must be from 1 to 5000"),
    (["ws", "-p", "n_pairs", "5001"], "n_pairs must be from 1 to 5000"),
    (["ws", "-p", "alpha", "-1"], "alpha must be >= 0"),
    (["ws", "-p", "alpha", "0.5"], "alpha = 0.5 would change nothing: alpha is read only by "
                                   "weighting eq2"),
    (["ws", "-p", "dropout", "1"], "dropout must be in [0, 1)"),
    (["ws", "-p", "dropout_2d", "-0.1"], "dropout_2d must be in [0, 1)"),
    (["ws", "-p", "weighting", "eq9"], "weighting must be one of"),
    (["ws", "-p", "device", "tpu"], "device must be one of"),
    (["ws", "-p", "threads", "0"], "threads must be >= 1"),
    (["ws", "-p", "seed", "3"], "-p seed is not allowed"),
    (["ws", "-p", "epochs", "2", "-p", "epochs", "3"], "-p epochs is given twice"),
    (["ws", "-p", "epochs"], "expected 2 arguments"),
    (["ws", "--seeds", "0-"], "malformed seed list '0-'"),
    (["ws", "--seeds", "a-b"], "malformed seed list 'a-b'"),
    (["ws", "--seeds", "5-2"], "runs backwards"),
    (["ws", "--seeds", "0-100000000"], ("asks for 100,000,001 runs of each experiment: at most "
                                        "10,000 in one batch")),
    (["ws", "--seeds", "18446744073709551616"], "seed 18446744073709551616 is too large"),
    (["ws", "-p", "lr", "1e300"], "lr must be in (0, 100], got 1e+300"),
    (["ws", "--scheduler", ""], "--scheduler is empty: give the Dask scheduler's address"),
    (["ws", "--scheduler", "tls://127.0.0.1:1"], ("cannot reach the Dask scheduler at "
                                                  "tls://127.0.0.1:1 (TypeError")),
    (["ws", "--workers", "0"], "--workers: must be an integer >= 1"),
    (["ws", "--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("args, fragment", BAD_RUNS, ids=[" ".join(a) for a, _ in BAD_RUNS])
def test_bad_run_input_is_refused_in_one_line(args, fragment, folders, capsys):
    """An unknown experiment, parameter, option or command; a value of the wrong type, out of
    range (epochs 0 or 99999999999, a learning rate of 1e300) or that the run would not read;
    a malformed, reversed, too large or too long seed list; -p seed; a parameter given twice;
    an empty or unusable scheduler address; no worker: refused before anything starts."""
    _refused(["run", *args, "--results", str(folders / "results"), "--runs",
              str(folders / "runs")], folders, capsys, fragment)


@pytest.mark.parametrize("option", ["--results", "--runs"])
def test_an_empty_folder_name_is_refused(option, folders, capsys, monkeypatch):
    monkeypatch.chdir(folders)  # where an empty name would write
    _refused(["run", "ws", option, ""], folders, capsys, f"{option} is empty: name a folder")


def test_bench_without_a_configuration_is_refused(folders, capsys):
    _refused(["bench", "--experiments", ","], folders, capsys,
             "--experiments ',' names no configuration")


def test_cuda_without_a_gpu_is_refused(folders, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on this CPU machine
    _refused(["run", "ws", "-p", "device", "cuda", "--results", str(folders / "results")],
             folders, capsys, "no CUDA GPU is available: use device auto or cpu")


def test_a_results_or_runs_path_through_a_file_is_refused(folders, capsys):
    (folders / "afile").write_text("not a folder\n")
    _refused(["run", "ws", "--results", str(folders / "afile" / "results")], folders, capsys,
             "is a file, not a folder; choose another with --results")
    _refused(["run", "ws", "--results", str(folders / "results"), "--runs",
              str(folders / "afile")], folders, capsys, "choose another with --runs")
    (folders / "results" / "ws-aux").write_text("a file where a folder goes\n")
    _refused(["run", "ws-aux", "--results", str(folders / "results")], folders, capsys,
             "ws-aux is a file, not a folder; choose another with --results")


# Root ignores file modes through two capabilities (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH). The
# refusals below are provoked by a process without them: still uid 0, so it reaches the
# checkout, its interpreter and MNIST wherever they lie (a clone in a mode-700 folder), and the
# modes keep it out as they keep out any user (they exclude the owner too).
_WITHOUT_ROOTS_RIGHTS = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                         "--inh-caps=-dac_override,-dac_read_search", "--"]


def _unprivileged(command):
    """`command` as a process that file modes keep out (as it is, for a user other than root)."""
    if os.geteuid() != 0:
        return command
    probe = subprocess.run([*_WITHOUT_ROOTS_RIGHTS, "true"], capture_output=True, text=True)
    if probe.returncode != 0:  # no setpriv, or a container that may not drop capabilities
        pytest.skip(f"root cannot drop its right to ignore file modes here "
                    f"({probe.stderr.strip() or 'setpriv failed'}): run as another user")
    return [*_WITHOUT_ROOTS_RIGHTS, *command]


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize("option", ["--results", "--runs"])
def test_a_folder_that_cannot_be_written_is_refused(option, tmp_path, mnist_root):
    folder = tmp_path
    (folder / "locked").mkdir()
    (folder / "open").mkdir()
    (folder / "locked").chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP
                              | stat.S_IROTH | stat.S_IXOTH)
    other = "--runs" if option == "--results" else "--results"
    done = subprocess.run(_unprivileged(
        [sys.executable, "-m", "helpers", "run", "ws", option, str(folder / "locked"),
         other, str(folder / "open")]), cwd=REPO, capture_output=True, text=True,
        env=environment(mnist_root), timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {option[2:]} folder {folder / 'locked'} is not writable (Permission denied): "
        f"choose another with {option}, or fix its permissions"]
    assert os.listdir(folder / "locked") == [] and os.listdir(folder / "open") == []


# What the unprivileged process cannot use: modes that keep out the owner too, so that the case
# holds whoever runs the tests.
def _owned_by_another(case, folder):
    """Set up `case` under `folder` -> (--results, MNIST root or None, the expected line)."""
    results = folder / "results"
    if case == "an experiment folder":
        (results / "ws").mkdir()
        (results / "ws").chmod(0o555)
        return results, None, (f"error: results folder {results / 'ws'} is not writable "
                               f"(Permission denied): choose another with --results, or fix its "
                               f"permissions")
    if case == "a record":  # never retrained and replaced without a word
        (results / "ws").mkdir()
        record = results / "ws" / "seed-0.json"
        record.write_text("{}")
        record.chmod(0)
        return results, None, (f"error: {os.path.relpath(record, REPO)} cannot be read by this "
                               f"user (Permission denied): fix its permissions, write these runs "
                               f"elsewhere with --results DIR, or replace it with --force")
    if case == "a parent folder":
        (folder / "private").mkdir()
        (folder / "private").chmod(0)
        return folder / "private" / "results", None, (
            f"error: results folder {folder / 'private' / 'results'} cannot be reached: "
            f"{folder / 'private'} cannot be entered (Permission denied); choose another with "
            f"--results, or fix its permissions")
    raw = folder / "mnist" / "MNIST" / "raw"  # an MNIST file
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(b"not readable")
    (raw / "train-images-idx3-ubyte").chmod(0)
    return results, raw.parent.parent, (
        f"error: MNIST file or folder {raw / 'train-images-idx3-ubyte'} cannot be read "
        f"(Permission denied): fix its permissions, or set MNIST_ROOT (or data_root) to the "
        f"folder holding MNIST/raw, or put the four MNIST files in {raw}")


def _refused_unprivileged(case, folder, mnist_root, cwd=REPO):
    for name in ("results", "runs"):
        (folder / name).mkdir()
    results, root, expected = _owned_by_another(case, folder)
    done = subprocess.run(_unprivileged(
        [sys.executable, "-m", "helpers", "run", "ws", "--seeds", "0", "--results",
         str(results), "--runs", str(folder / "runs")]), cwd=cwd, capture_output=True,
        text=True, env=environment(root or mnist_root), timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [expected]
    assert os.listdir(folder / "runs") == []


@pytest.mark.parametrize("case", ["an experiment folder", "a record", "a parent folder",
                                  "an MNIST file"])
@pytest.mark.slow  # starts a process
def test_what_this_user_cannot_use_is_refused_in_one_line(case, tmp_path, mnist_root):
    """Another user's experiment folder or record, a folder on the way that cannot be entered,
    an unreadable MNIST file: one line naming it and the fix."""
    _refused_unprivileged(case, tmp_path, mnist_root)


@pytest.mark.slow  # a test session of its own
def test_the_refusals_hold_in_a_checkout_other_users_cannot_enter(tmp_path, mnist_root):
    """A clone inside a folder only its owner can enter (root's home, `mktemp -d`): the tests
    of the unprivileged refusals pass there too, run from a copy of the checkout."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    clone = private / "clone"
    clone.mkdir()
    for name in ("helpers", "notebooks", "tests", "results"):
        shutil.copytree(REPO / name, clone / name,
                        ignore=shutil.ignore_patterns("__pycache__", "fixtures", ".*"))
    shutil.copy(REPO / "pyproject.toml", clone)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_robustness.py",
         "-k", "cannot_be_written or cannot_use"], cwd=clone, capture_output=True, text=True,
        env=environment(mnist_root), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "6 passed" in done.stdout, done.stdout[-3000:]
    assert "skipped" not in done.stdout, done.stdout[-3000:]


@pytest.fixture(scope="module")
def damaged_mnist(tmp_path_factory, mnist_root):
    """An MNIST root where one file is truncated (the others are links to the real ones)."""
    root = tmp_path_factory.mktemp("damaged") / "MNIST" / "raw"
    root.mkdir(parents=True)
    for name in MNIST_MD5:
        source = Path(mnist_root) / "MNIST" / "raw" / name
        if name == "t10k-labels-idx1-ubyte":
            (root / name).write_bytes(source.read_bytes()[:1000])
        else:
            (root / name).symlink_to(source)
    return root.parent.parent


def test_missing_or_damaged_data_root_is_refused(folders, capsys, monkeypatch, damaged_mnist):
    missing = folders / "no-mnist-here"
    _refused(["run", "ws", "-p", "data_root", str(missing), "--results",
              str(folders / "results")], folders, capsys, f"MNIST data root {missing} does not exist")
    monkeypatch.setenv("MNIST_ROOT", str(missing))
    _refused(["run", "ws", "--results", str(folders / "results")], folders, capsys,
             "does not exist: set MNIST_ROOT")
    monkeypatch.setenv("MNIST_ROOT", str(damaged_mnist))
    _refused(["run", "ws", "--results", str(folders / "results")], folders, capsys,
             "t10k-labels-idx1-ubyte is damaged or truncated (md5 mismatch)")


@pytest.mark.slow  # starts a process
def test_bad_input_through_a_real_process_has_no_traceback(folders, damaged_mnist):
    before = snapshot(folders)
    for args, root, fragment in [
            (["run", "nope"], REPO, "unknown experiment"),
            (["run", "ws"], damaged_mnist, "damaged or truncated"),
            (["summary", "--results", folders / "missing"], REPO, "does not exist")]:
        done = helpers(*args, "--results" if args[0] == "run" else "--output",
                       folders / ("results" if args[0] == "run" else "report"), mnist_root=root)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert fragment in done.stderr
    assert snapshot(folders) == before


def test_a_missing_mnist_file_or_a_folder_in_its_place_is_refused_before_anything(
        folders, capsys, monkeypatch, tmp_path_factory, mnist_root):
    raw = tmp_path_factory.mktemp("partial") / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_MD5:
        if name != "t10k-images-idx3-ubyte":
            (raw / name).symlink_to(Path(mnist_root) / "MNIST" / "raw" / name)
    monkeypatch.setenv("MNIST_ROOT", str(raw.parent.parent))
    argv = ["run", "ws", "--results", str(folders / "results"), "--runs", str(folders / "runs")]
    _refused(argv, folders, capsys, f"MNIST file {raw / 't10k-images-idx3-ubyte'} is missing: "
                                    f"set MNIST_ROOT")
    (raw / "t10k-images-idx3-ubyte").mkdir()
    _refused(argv, folders, capsys, "t10k-images-idx3-ubyte is a folder: move it away")


def test_no_mnist_and_no_network_is_refused_before_anything(folders, capsys, monkeypatch,
                                                            tmp_path_factory):
    from torchvision.datasets import MNIST

    # Only the default data/ is downloaded into; here, with no network (a refusing mirror).
    default = tmp_path_factory.mktemp("default") / "data"
    monkeypatch.setattr(mnist, "DEFAULT_DATA", default)
    monkeypatch.delenv("MNIST_ROOT", raising=False)
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    _refused(["run", "ws", "--results", str(folders / "results"), "--runs",
              str(folders / "runs")], folders, capsys,
             f"MNIST files are missing under {default / 'MNIST' / 'raw'} and could not be "
             f"downloaded (no network?): set MNIST_ROOT")


@pytest.mark.slow  # starts a process
def test_the_test_suite_without_mnist_stops_at_once_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_records.py"], cwd=REPO, capture_output=True, text=True,
                          env=environment(tmp_path / "no-mnist"), timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"Exit: error: MNIST data root {tmp_path / 'no-mnist'} does not exist: set MNIST_ROOT "
        f"(or data_root) to the folder holding MNIST/raw, or put the four MNIST files in "
        f"{tmp_path / 'no-mnist' / 'MNIST' / 'raw'}"]
    assert "passed" not in done.stdout


@pytest.mark.slow  # starts a process
def test_a_fifo_where_a_record_goes_is_refused_not_waited_on(folders, mnist_root):
    fifo = folders / "results" / "ws" / "seed-1.json"
    os.mkfifo(fifo)
    before = snapshot(folders)
    done = helpers("run", "ws", "--seeds", "0-1", "--results", folders / "results", "--runs",
                   folders / "runs", mnist_root=mnist_root, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {os.path.relpath(fifo, REPO)} is not a regular file (a FIFO): move it away, "
        f"write these runs elsewhere with --results DIR, or replace it with --force"]
    assert snapshot(folders) == before and not (folders / "runs").exists()


def _fixture_copy(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "results")
    return tmp_path / "results"


def test_a_record_of_a_newer_version_is_never_replaced_without_force(tmp_path, capsys):
    """A record of a newer schema is not taken for a damaged one to redo: refused in one line
    (update, write elsewhere, or --force)."""
    results = _fixture_copy(tmp_path)
    path = record_path(results, "ws", 1)
    path.write_text(json.dumps({**read_json(path), "schema": SCHEMA_VERSION + 1}))
    before = snapshot(tmp_path)
    assert main(["run", "ws", "--seeds", "0-1", "--results", str(results), "--runs",
                 str(tmp_path / "runs"), *FIXTURE_PARAMS]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (f"error: {os.path.relpath(path)} was made by a newer version (schema "
                    f"{SCHEMA_VERSION + 1}, this version reads {SCHEMA_VERSION}): update helpers, "
                    f"write these runs elsewhere with --results DIR, or replace it with --force")
    assert snapshot(tmp_path) == before


@pytest.mark.slow  # starts a process
def test_a_closed_stdout_ends_a_listing_quietly():
    """`python -m helpers list | head -1`: the reader leaves; no traceback, the exit code of a
    process ended by SIGPIPE."""
    process = subprocess.Popen([sys.executable, "-m", "helpers", "list", "all"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    assert process.wait(timeout=120) == 141
    assert process.stderr.read() == b""


# --------------------------------------------------------------------------------------------
# A notebook run by hand (papermill, Jupyter): its parameters checked before it trains; its
# save refused where the record must not go
# --------------------------------------------------------------------------------------------
def _kernel_globals(injected="", **values):
    """What a kernel's globals hold: its history `In` (papermill's cell of parameters,
    `injected`, among them) and the notebook's names."""
    history = ["", "from helpers import notebook"] + ([f"# Parameters\n{injected}"] if injected
                                                      else [])
    return {"In": history, "Out": {}, "get_ipython": print, "experiment": "ws", "seed": 0,
            "epochs": None, "results_dir": None, "replace": False, **values}


@pytest.mark.parametrize("values, message", [
    ({"replace": "no"}, "replace must be True or False, got 'no'"),
    ({"replace": "false"}, "replace must be True or False, got 'false'"),
    ({"replace": 1}, "replace must be True or False, got 1"),
    ({"results_dir": 5}, "results_dir must be None (write nothing) or a folder's name, got 5"),
    ({"results_dir": ""}, "results_dir must be None (write nothing) or a folder's name, got ''"),
    ({"results_dir": str(RESULTS), "epochs": 3}, "ws seed 0 is not catalogue row ws's own run "
                                                 "(epochs 3, not 25)"),
])
def test_a_notebooks_own_parameters_are_checked_before_it_trains(values, message):
    """`-p replace no` arrives as text and would count as true (and replace a record of other
    parameters): only a real boolean is taken. `-p results_dir 5` failed after training,
    `-p results_dir ''` trained and wrote nothing; a record the project's results/ must not
    take is refused before training too."""
    injected = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    with pytest.raises(UsageError) as refused:
        parameters(_kernel_globals(injected, **values), notebook="weight_sharing.ipynb")
    assert str(refused.value).startswith(message), refused.value


def test_a_scratch_variable_of_an_interactive_session_is_no_parameter():
    """`x = 5` typed in a kernel is not a parameter papermill injected: no refusal; a name
    papermill injected that no notebook knows is refused."""
    assert parameters(_kernel_globals(x=5), notebook="weight_sharing.ipynb")["epochs"] == 25
    with pytest.raises(UsageError, match="unknown parameter 'epoch'"):
        parameters(_kernel_globals("epoch = 3", epoch=3), notebook="weight_sharing.ipynb")


def test_a_notebook_never_writes_into_a_folder_a_runner_writes(tmp_path, capsys):
    """A record saved by a notebook (papermill ... -p results_dir R) while a runner writes R
    would be counted as the runner's run: refused in one line, the folder untouched."""
    results = _fixture_copy(tmp_path)
    record = read_record(record_path(results, "ws", 0))
    other = {**record, "params": {**record["params"], "lr": 0.05}}
    before = snapshot(results)
    held = lock_folder(results, "")  # as a runner holds it
    try:
        with pytest.raises(UsageError) as refused:
            save(other, str(results))
    finally:
        os.close(held)
    assert str(refused.value).startswith(f"{os.path.relpath(results)} is being written by pid "
                                         f"{os.getpid()} (")
    assert str(refused.value).endswith("wait until it ends, or set results_dir to another folder")
    assert snapshot(results) == before and capsys.readouterr().out == ""


def test_a_save_waits_for_another_save_in_the_same_folder(tmp_path, capsys):
    """A runner's notebooks all save into runs/: one that finds another's lock (held for
    milliseconds) waits for it, where it used to stop the batch with a usage error."""
    record = read_record(record_path(FIXTURE, "ws", 0))
    runs = tmp_path / "runs"
    held = lock_folder(runs, "")  # as another kernel's save holds it
    threading.Timer(0.3, os.close, [held]).start()
    save(record, str(runs))
    assert read_record(record_path(runs, "ws", 0)) == record
    assert capsys.readouterr().out.startswith("record written to")


def test_save_refuses_a_record_made_with_other_parameters_unless_replace(tmp_path, capsys):
    results = _fixture_copy(tmp_path)
    path = record_path(results, "ws", 0)
    record = read_record(path)
    other = {**record, "params": {**record["params"], "lr": 0.05}}
    before = path.read_bytes()
    for replace in (False, "yes"):  # anything but True keeps the record
        with pytest.raises(UsageError, match=r"ws/seed-0.json was made with other parameters "
                                             r"\(lr 0.1 there, 0.05 asked\): set results_dir to "
                                             r"another folder, or set replace = True"):
            save(other, results, replace)
    assert path.read_bytes() == before and capsys.readouterr().out == ""
    save(other, results, replace=True)
    assert capsys.readouterr().out == f"record written to {path}\n"
    assert read_record(path)["params"]["lr"] == 0.05
    save(record, None)  # no results_dir: nothing written, nothing printed
    assert capsys.readouterr().out == "" and read_record(path)["params"]["lr"] == 0.05


def test_save_into_the_projects_records_takes_only_the_catalogues_own_runs(tmp_path):
    """A notebook run by hand with results_dir = "../results" and other parameters (or another
    seed) would change the published tables unannounced: refused in one line."""
    record = read_record(record_path(FIXTURE, "ws", 0))  # 100 pairs, 2 epochs: not ws's own
    before = snapshot(RESULTS)
    with pytest.raises(UsageError, match=r"^ws seed 0 is not catalogue row ws's own run "
                                         r"\(n_pairs 100, not 1000; epochs 2, not 25\): "):
        save(record, str(RESULTS))
    assert snapshot(RESULTS) == before


@pytest.mark.slow  # executes a notebook
def test_a_notebook_run_by_papermill_does_not_replace_a_record_of_other_parameters(
        tmp_path, mnist_root):
    import papermill

    results = _fixture_copy(tmp_path)
    path = record_path(results, "ws", 0)  # the fixture's: 2 epochs
    before = path.read_bytes()
    with pytest.raises(papermill.PapermillExecutionError) as refused:
        papermill.execute_notebook(
            str(REPO / "notebooks" / "weight_sharing.ipynb"), str(tmp_path / "out.ipynb"),
            parameters={"experiment": "ws", "seed": 0, "epochs": 1, "n_pairs": 100,
                        "results_dir": str(results), "data_root": mnist_root},
            kernel_name="python3", cwd=str(tmp_path), progress_bar=False)
    assert refused.value.ename == "UsageError"
    assert "was made with other parameters (epochs 2 there, 1 asked)" in refused.value.evalue
    assert path.read_bytes() == before


# --------------------------------------------------------------------------------------------
# What the runner does with what comes back: in this process, without a kernel
# --------------------------------------------------------------------------------------------
def _run(results, tmp_path, capsys, seeds="0-1"):
    """`run ws` with the fixture's parameters, in this process -> (exit code, stderr)."""
    code = main(["run", "ws", "--seeds", seeds, "--results", str(results), "--runs",
                 str(tmp_path / "runs"), "--workers", "1", *FIXTURE_PARAMS])
    return code, capsys.readouterr().err


def _executed_as(monkeypatch, outcome):
    """Runs that end at once with `outcome(job)`, without a kernel -> the jobs executed."""
    executed = []
    monkeypatch.setattr(execution, "execute", lambda job, kernel: executed.append(job) or outcome(job))
    return executed


def test_a_record_of_another_run_is_never_published_as_this_ones(tmp_path, mnist_root,
                                                                monkeypatch, capsys):
    """A record that another process wrote where this run's notebook saves (a run of other
    parameters finishing meanwhile) is refused: the run fails, nothing is published."""
    results = tmp_path / "results"
    other = read_record(record_path(FIXTURE, "ws", 0))
    other = {**other, "params": {**other["params"], "data_root": None, "lr": 0.05}}
    _executed_as(monkeypatch, lambda job: (other, None))
    code, err = _run(results, tmp_path, capsys, seeds="0")
    assert code == 1 and "1 run: 0 done, 1 failed" in err, err
    assert "failed: ws seed 0: its record is another run's (lr 0.05 there, 0.1 asked): " \
           "something else wrote " in err
    assert not record_files(results)


@pytest.mark.parametrize("edit", ["numerics without pinned", "errors edited with the history",
                                  "a copy of another seed"])
def test_an_incomplete_edited_or_copied_record_is_redone_not_skipped(edit, tmp_path, mnist_root,
                                                                      monkeypatch, capsys):
    """A record a reader would stop on (numerics without its pin), edited consistently on
    paper (test errors and last epoch changed, its predictions on its pairs say otherwise), or
    seed 0's saved as seed 1: never skipped as done."""
    results = _fixture_copy(tmp_path)
    path, record = record_path(results, "ws", 1), read_json(record_path(results, "ws", 1))
    if edit == "numerics without pinned":
        del record["numerics"]["pinned"]
    elif edit == "errors edited with the history":
        record["test_errors"] = record["history"][-1]["test_errors"] = record["test_errors"] + 1
        record["test_error_rate"] = float(record["test_errors"])
    else:
        record = {**read_json(record_path(results, "ws", 0)), "seed": 1}
        record["params"] = {**record["params"], "seed": 1}
    path.write_text(json.dumps(record))
    executed = _executed_as(monkeypatch, lambda job: (None, NotebookFailed("not run here")))
    code, err = _run(results, tmp_path, capsys)
    assert [job.seed for job in executed] == [1], err
    assert "2 runs: 0 done, 1 skipped (record already there), 1 failed" in err


@pytest.mark.slow  # starts a process
def test_a_runner_waits_for_the_folder_it_writes_and_then_decides(tmp_path, mnist_root):
    """A second runner on a folder another holds waits, saying who holds it, and decides only
    then: here a record of other parameters
    written meanwhile is refused, not skipped and not replaced."""
    results = _fixture_copy(tmp_path)
    held = lock_folder(results, "")  # as another runner holds it
    runner, err = start("run", "ws", "--seeds", "0-1", "--results", results, "--runs",
                        tmp_path / "runs", *FIXTURE_PARAMS, mnist_root=mnist_root,
                        log_dir=tmp_path)
    try:
        line = wait_for(lambda: [x for x in err.read_text().splitlines() if "waiting" in x],
                        timeout=120, what="the runner to wait")[0]
        record = read_json(record_path(results, "ws", 0))
        record["params"]["lr"] = 0.05  # the other runner's record
        record_path(results, "ws", 0).write_text(json.dumps(record))
    finally:
        os.close(held)
    assert line.startswith(f"waiting for {os.path.relpath(results, REPO)}/: locked by pid "
                           f"{os.getpid()} ("), line
    assert runner.wait(timeout=300) == 2, err.read_text()
    assert err.read_text().strip().splitlines()[-1].endswith(
        "seed-0.json was made with other parameters (lr 0.05 there, 0.1 asked): write these "
        "runs elsewhere with --results DIR, or replace the records with --force")


@pytest.mark.slow  # starts a process
def test_ctrl_c_while_a_runner_waits_for_a_folder_ends_it_in_one_line(tmp_path, mnist_root):
    results = _fixture_copy(tmp_path)
    held = lock_folder(results, "")  # as another runner holds it
    try:
        runner, err = start("run", "ws", "--seeds", "0-1", "--results", results, "--runs",
                            tmp_path / "runs", *FIXTURE_PARAMS, mnist_root=mnist_root,
                            log_dir=tmp_path)
        wait_for(lambda: "waiting" in err.read_text(), timeout=120, what="the runner to wait")
        os.killpg(runner.pid, signal.SIGINT)
        assert runner.wait(timeout=60) == 130
    finally:
        os.close(held)
    assert err.read_text().strip().splitlines()[-1] == \
        "interrupted: nothing was lost; run the same command again"


@pytest.mark.slow  # trains
def test_a_run_whose_record_was_written_is_done_even_if_its_notebook_could_not_be_saved(
        tmp_path, mnist_root, monkeypatch, capsys):
    """The executed notebook cannot be saved (a full disk under --runs) after the record was:
    the run is done, with a warning, and the rerun agrees."""
    import papermill.execute

    def full_disk(nb, path):  # what a full disk does to the executed notebook: 0 bytes
        Path(path).write_text("")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(papermill.execute, "write_ipynb", full_disk)
    code, err = _run(tmp_path / "results", tmp_path, capsys, seeds="0")
    assert code == 0 and "1 run: 1 done" in err, err
    assert ("warning: ws seed 0: its record was written, then the run failed (OSError: [Errno 28] "
            "No space left on device): the record is kept, the executed notebook may be "
            "missing") in err
    read_record(tmp_path / "results" / "ws" / "seed-0.json")
    assert main(["run", "ws", "--seeds", "0", "--results", str(tmp_path / "results"), "--runs",
                 str(tmp_path / "runs"), *FIXTURE_PARAMS]) == 0
    assert "skipping 1 of 1 runs" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Faults during a batch, in real processes
# --------------------------------------------------------------------------------------------
def _slow_notebooks(tmp_path):
    """Notebooks where `ws` seeds > 0 sleep while the file `slow` exists: the signal then lands
    while they run (a tiny run in a warm kernel could otherwise finish before it does)."""
    notebooks = copy_notebooks(tmp_path / "notebooks", notebook="weight_sharing.ipynb", cell=(
        f"import os, time\nif seed > 0 and os.path.exists({str(tmp_path / 'slow')!r}):\n"
        f"    time.sleep(300)"))
    (tmp_path / "slow").touch()
    return notebooks, tmp_path / "slow"


def _family(process):
    return {p.pid: p for p in descendants(process.pid)}


def _all_gone(family):
    gone, alive = psutil.wait_procs(list(family.values()), timeout=10)
    assert not alive, f"left running: {alive}"


@pytest.mark.slow
@pytest.mark.parametrize("how, code", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_signal_stops_the_batch_keeps_finished_records_and_the_rerun_resumes(
        how, code, tmp_path, mnist_root):
    """Ctrl-C (SIGINT to the process group), SIGTERM or SIGHUP (the terminal closed) to the
    runner alone: the runs going are stopped and "not done", finished records stay, no
    process or temporary file is left, the last line says how to resume, and (Ctrl-C) the
    same command does only the missing runs."""
    notebooks, slow = _slow_notebooks(tmp_path)
    results = tmp_path / "results"
    args = ("run", "ws", "--seeds", "0-2", "--workers", "2", "--results", results, "--runs",
            tmp_path / "runs", "--notebooks", notebooks, *TINY)
    process, stderr = start(*args, mnist_root=mnist_root, log_dir=tmp_path)
    family = {}
    wait_for(lambda: family.update(_family(process)) or record_files(results),
             what="the first record")
    if how == "SIGINT":  # the terminal signals the whole foreground process group
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(getattr(signal, how))
    assert process.wait(timeout=120) == code, stderr.read_text()
    _all_gone(family)
    err = stderr.read_text()
    kept = record_files(results)
    assert "Traceback" not in err and "failed:" not in err, err
    assert f"3 runs: {len(kept)} done, {3 - len(kept)} not done" in err, err
    assert err.strip().splitlines()[-1].startswith(
        f"interrupted by {how}: finished records are kept; run the same command again to do "
        f"the {3 - len(kept)} missing runs: python -m helpers run ws")
    for path in kept:
        read_record(path)
    assert not temporaries(results)
    if how != "SIGINT":
        return
    before = snapshot(results)
    slow.unlink()
    rerun = helpers(*args, mnist_root=mnist_root)
    assert rerun.returncode == 0, rerun.stderr
    assert f"3 runs: {3 - len(kept)} done, {len(kept)} skipped" in rerun.stderr
    assert {k: v for k, v in snapshot(results).items() if k in before} == before


@pytest.mark.slow
def test_an_interrupt_while_the_kernels_start_is_one_line(tmp_path, mnist_root):
    """Ctrl-C while a kernel imports torch (it used to end in "AttributeError: module 'sympy'
    has no attribute 'logic'"): the kernels never see it; the runner stops them."""
    process, stderr = start("run", "ws", "--seeds", "0", "--results", tmp_path / "results",
                            "--runs", tmp_path / "runs", *TINY, mnist_root=mnist_root,
                            log_dir=tmp_path)
    family = wait_for(lambda: [p for p in descendants(process.pid)
                               if "ipykernel" in " ".join(p.cmdline())] and _family(process),
                      what="a kernel")
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=120) == 130
    _all_gone(family)
    assert stderr.read_text().splitlines()[-2:] == [
        "1 run: 0 done, 1 not done", "interrupted by SIGINT: finished records are kept; run the "
        "same command again to do the 1 missing runs: python -m helpers " + shlex.join(map(str, (
            "run", "ws", "--seeds", "0", "--results", tmp_path / "results", "--runs",
            tmp_path / "runs", *TINY)))], stderr.read_text()


@pytest.mark.slow
def test_interrupting_a_forced_batch_names_the_command_for_the_missing_runs(tmp_path,
                                                                            mnist_root):
    """The same command would redo every run with --force: the line names the one that
    redoes the missing runs only."""
    notebooks, slow = _slow_notebooks(tmp_path)
    results = _fixture_copy(tmp_path)
    args = ["--workers", "1", "--results", results, "--runs", tmp_path / "runs",
            *FIXTURE_PARAMS, "--notebooks", notebooks]
    process, stderr = start("run", "ws", "--seeds", "0-1", "--force", *args,
                            mnist_root=mnist_root, log_dir=tmp_path)
    seed0 = snapshot(results)["ws/seed-0.json"]
    wait_for(lambda: snapshot(results)["ws/seed-0.json"] != seed0, what="seed 0 redone")
    seed0 = snapshot(results)["ws/seed-0.json"]
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=120) == 130
    command = stderr.read_text().strip().splitlines()[-1].split("missing runs: ")[1]
    assert command == shlex.join(map(str, ["python", "-m", "helpers", "run", "ws", "--seeds", "1",
                                           *args, "--force"]))
    slow.unlink()
    rerun = helpers(*shlex.split(command)[3:], mnist_root=mnist_root)
    assert rerun.returncode == 0 and "1 run: 1 done" in rerun.stderr, rerun.stderr
    assert snapshot(results)["ws/seed-0.json"] == seed0


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["running", "suspended"])
def test_sigkill_of_the_runner_takes_its_kernels_along_and_the_rerun_does_the_run(
        kernel, tmp_path, mnist_root):
    """The runner killed (SIGKILL): its kernels end with it (ipykernel exits when its parent
    is gone; a suspended one when it is resumed), the rerun does the run (even while an
    orphan is suspended: an orphan writes into its runs folder only, whose records this
    runner never publishes)."""
    notebooks, markers, gate = gated_notebooks(tmp_path)
    args = ("run", "ws", "--seeds", "1", "--results", tmp_path / "results", "--notebooks",
            notebooks, *TINY)
    first, _ = start(*args, "--runs", tmp_path / "runs-1", mnist_root=mnist_root,
                     log_dir=tmp_path)
    orphan = kernel_of(started(markers)[0])
    if kernel == "suspended":
        orphan.suspend()
    first.kill()
    first.wait(timeout=60)
    if kernel == "running":
        _all_gone({orphan.pid: orphan})
    second, err = start(*args, "--runs", tmp_path / "runs-2", mnist_root=mnist_root,
                        log_dir=tmp_path)
    started(markers, 2)
    gate.unlink()
    assert second.wait(timeout=300) == 0, err.read_text()
    assert "1 run: 1 done" in err.read_text()
    if kernel == "suspended":
        orphan.resume()
    _all_gone({orphan.pid: orphan})
    read_record(tmp_path / "results" / "ws" / "seed-1.json")


@pytest.mark.slow
@pytest.mark.parametrize("how, queued", [("SIGKILL", False), ("SIGTERM", False),
                                         ("SIGTERM", True)])
def test_a_killed_kernel_fails_its_run_and_the_others_finish(how, queued, tmp_path, mnist_root):
    """A run's kernel killed (SIGKILL, SIGTERM, the OOM killer) costs exactly its run, reported
    failed with its kernel's log (exit 1, not 0); runs still queued go on in a new kernel."""
    notebooks, markers, gate = gated_notebooks(tmp_path)
    results = tmp_path / "results"
    process, stderr = start("run", "ws", "--seeds", "0-2" if queued else "0-1", "--workers",
                            "1" if queued else "2", "--results", results, "--runs",
                            tmp_path / "runs", "--notebooks", notebooks, *TINY,
                            mnist_root=mnist_root, log_dir=tmp_path)
    marker = started(markers)[0]
    if not queued:
        started(markers, 2)  # nothing left to hand out
    kernel_of(marker).send_signal(getattr(signal, how))
    gate.unlink()
    assert process.wait(timeout=300) == 1, stderr.read_text()
    err = stderr.read_text()
    seed = marker.name.split("-")[0]
    assert f"{3 if queued else 2} runs: {2 if queued else 1} done, 1 failed" in err, err
    assert f"failed: ws seed {seed}: DeadKernelError: Kernel died (kernel log: " in err, err
    assert len(record_files(results)) == (2 if queued else 1)
    assert not temporaries(results)


@pytest.mark.slow
def test_a_suspended_kernel_is_named_not_waited_on_silently(tmp_path, mnist_root):
    """A kernel stopped (SIGSTOP) mid-run: the runner says which process and how to resume
    it, then finishes once it is resumed."""
    notebooks, markers, gate = gated_notebooks(tmp_path)
    process, stderr = start("run", "ws", "--seeds", "0", "--results", tmp_path / "results",
                            "--runs", tmp_path / "runs", "--notebooks", notebooks, *TINY,
                            mnist_root=mnist_root, log_dir=tmp_path)
    kernel = kernel_of(started(markers)[0])
    kernel.suspend()
    try:
        line = wait_for(lambda: [x for x in stderr.read_text().splitlines() if "suspended" in x],
                        timeout=60, what="the notice")[0]
    finally:
        kernel.resume()
    assert line.endswith(f"waiting for pid {kernel.pid} (a notebook's kernel), which is suspended: "
                         f"kill -CONT {kernel.pid} resumes it"), line
    gate.unlink()
    assert process.wait(timeout=300) == 0, stderr.read_text()


@pytest.mark.slow
def test_fifos_where_a_run_writes_its_log_notebook_and_record_are_replaced_not_waited_on(
        tmp_path, mnist_root):
    """A FIFO where a run's log goes (a worker used to block on it, silently), or its executed
    notebook or record in the runs folder: each run replaces what is there."""
    runs = staging(tmp_path / "runs", tmp_path / "results") / "ws"
    runs.mkdir(parents=True)
    for name in ("seed-0.log", "seed-0.ipynb", "seed-0.json", "seed-1.log"):
        os.mkfifo(runs / name)
    done = helpers("run", "ws", "--seeds", "0-1", "--workers", "1", "--results",
                   tmp_path / "results", "--runs", tmp_path / "runs", *TINY,
                   mnist_root=mnist_root, timeout=300)
    assert done.returncode == 0 and "2 runs: 2 done" in done.stderr, done.stderr
    assert all((runs / name).is_file() for name in ("seed-0.log", "seed-0.ipynb", "seed-0.json"))


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a file system with no space left (a small tmpfs, filled)."""
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"no small file system can be mounted here ({mounted.stderr.strip()}): "
                    f"run as root where mount is allowed")
    try:
        (folder / "results").mkdir()
        with open(folder / "filler", "wb", buffering=0) as filler:
            try:
                while filler.write(b"x" * 4096):
                    pass
            except OSError:  # full
                pass
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["read-only", "replaced by a file", "full"])
def test_a_records_folder_that_fails_mid_batch_loses_nothing(how, tmp_path, mnist_root,
                                                             request):
    """The results folder made read-only or replaced by a file while a run trains, or on a
    full disk from the start: the run fails in one line saying where its record stays (the
    summary line used to be lost to a traceback), exit 1; once fixed, the same command does
    it."""
    notebooks, markers, gate = gated_notebooks(tmp_path)
    results = (request.getfixturevalue("full_disk") / "results") if how == "full" else \
        tmp_path / "results"
    args = ("run", "ws", "--seeds", "0", "--results", results, "--runs", tmp_path / "runs",
            "--notebooks", notebooks, *TINY)
    process, stderr = start(*args, mnist_root=mnist_root, log_dir=tmp_path,
                            prefix=_unprivileged([]) if how == "read-only" else ())
    started(markers)
    if how == "read-only":
        results.chmod(0o555)
    elif how == "replaced by a file":
        results.rename(tmp_path / "moved")
        results.write_text("not a folder\n")
    gate.unlink()
    assert process.wait(timeout=300) == 1, stderr.read_text()
    err = stderr.read_text()
    assert "Traceback" not in err and "1 run: 0 done, 1 failed" in err, err
    staged = os.path.relpath(staging(tmp_path / "runs", results) / "ws" / "seed-0.json", REPO)
    assert f"(its record stays in {staged})" in err, err
    if how == "read-only":
        results.chmod(0o755)
    elif how == "replaced by a file":
        results.unlink()
        (tmp_path / "moved").rename(results)
    else:
        (results.parent / "filler").unlink()
    again = helpers(*args, mnist_root=mnist_root)
    assert again.returncode == 0, again.stderr
    assert "1 run: 1 done" in again.stderr
    read_record(results / "ws" / "seed-0.json")


@pytest.mark.slow
def test_a_closed_stderr_fails_nothing(tmp_path, mnist_root):
    """`python -m helpers run ... 2>&1 | head -c 150`: the reader leaves; the runs are done,
    exit 0 (a closed pipe used to end the batch with exit 1 and a file left behind)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "helpers", "run", "ws", "--seeds", "0-1", "--workers", "1",
         "--results", tmp_path / "results", "--runs", tmp_path / "runs", *TINY], cwd=REPO,
        env=environment(mnist_root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    process.stderr.read(150)
    process.stderr.close()
    assert process.wait(timeout=300) == 0
    assert [read_record(p)["seed"] for p in record_files(tmp_path / "results")] == [0, 1]


@pytest.mark.slow
def test_a_runner_waiting_for_a_suspended_one_says_which_then_skips_what_it_did(
        tmp_path, mnist_root):
    """Two runners on one folder: the second waits for the first (suspended here, Ctrl-Z),
    saying which process holds the folder and how to resume it; each run is done once."""
    notebooks, markers, gate = gated_notebooks(tmp_path)
    args = ("run", "ws", "--seeds", "0", "--workers", "1", "--results", tmp_path / "results",
            "--notebooks", notebooks, *TINY)
    first, first_err = start(*args, "--runs", tmp_path / "runs-1", mnist_root=mnist_root,
                             log_dir=tmp_path)
    started(markers)
    os.killpg(first.pid, signal.SIGSTOP)  # Ctrl-Z: the runner and its worker
    second, err = start(*args, "--runs", tmp_path / "runs-2", mnist_root=mnist_root,
                        log_dir=tmp_path)
    try:
        line = wait_for(lambda: [x for x in err.read_text().splitlines() if "waiting" in x],
                        what="the second runner to say why")[0]
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    assert line.startswith(f"waiting for {os.path.relpath(tmp_path / 'results', REPO)}/: locked "
                           f"by pid {first.pid} (") and "-m helpers run ws" in line, line
    assert line.endswith(f", suspended (kill -CONT {first.pid} resumes it)"), line
    gate.unlink()
    assert first.wait(timeout=300) == 0, first_err.read_text()
    assert second.wait(timeout=300) == 0, err.read_text()
    assert "1 run: 0 done, 1 skipped" in err.read_text()
    assert len(list(markers.iterdir())) == 1  # one execution


@pytest.mark.slow
def test_a_diverging_run_is_recorded_as_its_outcome_not_redone(tmp_path, mnist_root):
    """A training that diverges is an outcome of its parameters: its record says where, the
    batch says so in a line and succeeds, and the same command again skips it."""
    results = tmp_path / "results"
    args = ("run", "ws", "--seeds", "0", "--results", results, "--runs", tmp_path / "runs",
            "-p", "epochs", "1", "-p", "n_pairs", "100", "-p", "batch_size", "10", "-p", "lr", "100")
    done = helpers(*args, mnist_root=mnist_root)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "diverged: ws seed 0: the loss became nan at epoch 1 (step 5): recorded as its outcome; "
        "a lower lr may train", "1 run: 1 done (1 diverged)"]
    assert json.loads((results / "ws" / "seed-0.json").read_text())["diverged"] == {
        "epoch": 1, "step": 5, "loss": "nan"}
    again = helpers(*args, mnist_root=mnist_root)
    assert again.returncode == 0 and again.stderr.endswith(
        "1 run: 0 done, 1 skipped (record already there)\n"), again.stderr


# --------------------------------------------------------------------------------------------
# A records folder is written only by publish(): under its lock, never through a link, never
# over what another process wrote, never as another folder's staging
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("runs, results", [
    ("{project}/results", "{tmp}/results"), ("{tmp}/same", "{tmp}/same"),
    ("{tmp}/results/runs", "{tmp}/results"), ("{tmp}/runs", "{tmp}/runs/results")],
    ids=["--runs results/", "--runs = --results", "--runs inside --results",
         "--results inside --runs"])
def test_a_runs_folder_that_overlaps_a_records_folder_is_refused(runs, results, tmp_path,
                                                                 capsys):
    """--runs R stages the runs' records in R: where R is (or holds, or lies in) a records
    folder, a staged record could replace a published one (the project's results/ lost a
    committed record so)."""
    runs, results = (Path(x.format(project=REPO, tmp=tmp_path)) for x in (runs, results))
    committed = snapshot(RESULTS)
    assert main(["run", "ws", "--seeds", "0", "--results", str(results), "--runs", str(runs),
                 *TINY]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: --runs {os.path.relpath(runs)} and the records folder ")
    assert line.endswith(" overlap: give them folders apart")
    assert snapshot(RESULTS) == committed and not runs.exists() or runs == RESULTS


def test_each_records_folder_stages_its_runs_apart():
    """Two batches writing other records folders (make report beside --results scratch/long,
    or --runs over a folder of records) never share a staged file."""
    report = plan(["ws-aux"], "0")
    long = plan(["ws-aux"], "0", {"epochs": 40}, results_dir=REPO / "scratch" / "long")
    assert report[0].output != long[0].output and report[0].staged != long[0].staged
    kept = plan(["ws"], "0", results_dir=REPO / "scratch" / "x", runs_dir=REPO / "scratch" / "keep")
    assert kept[0].staged.parent.parent.parent == REPO / "scratch" / "keep"  # keep/<its own>/ws


def test_a_lock_is_no_file_a_link_could_fake(tmp_path, capsys):
    """`.lock` a link to a file (or any file by that name): saves and the summary's lock
    neither write through it nor depend on it."""
    results = _fixture_copy(tmp_path)
    target = tmp_path / "target.txt"
    target.write_text("precious\n")
    (results / ".lock").symlink_to(target)
    record = read_record(record_path(results, "ws", 0))
    save({**record, "seconds": 1.0}, str(tmp_path / "saved"))
    (tmp_path / "saved" / ".lock").symlink_to(target)
    save({**record, "seconds": 2.0}, str(tmp_path / "saved"))
    os.close(lock_folder(results, ""))
    assert target.read_text() == "precious\n"
    assert read_record(record_path(tmp_path / "saved", "ws", 0))["seconds"] == 2.0


def test_a_folder_cleaned_away_while_locked_is_locked_again_before_a_publish(tmp_path):
    """`git clean -fdX` removes an ignored records folder (scratch/x) mid-batch, and a second
    runner makes it anew: the first one's publish is refused while the second holds it, and
    takes the new folder's lock once free (the lock goes with the folder, not a file in it)."""
    results = _fixture_copy(tmp_path)
    record = read_record(record_path(results, "ws", 0))
    held = lock_folder(results, "")
    shutil.rmtree(results)
    second = lock_folder(results, "")  # the second runner
    with pytest.raises(UsageError, match=f"is being written by pid {os.getpid()} .*: wait until "
                                         f"it ends, or fix"):
        publish(record, results, held, None, "fix")
    assert not (results / "ws").exists()
    os.close(second)
    assert publish(record, results, held, None, "fix") == record_path(results, "ws", 0)
    with pytest.raises(UsageError, match=f"is being written by pid {os.getpid()}"):
        lock_folder(results, "")  # held (again) by the first
    os.close(held)


def test_a_record_written_meanwhile_is_never_replaced_by_a_publish(tmp_path):
    """A runner decided to run ws seed 0 (nothing there); another process wrote that record
    meanwhile (a lock lost some other way, a hand-made file): refused, nothing replaced."""
    results = tmp_path / "results"
    record = read_record(record_path(FIXTURE, "ws", 0))
    held = lock_folder(results, "")
    before = identity(record_path(results, "ws", 0))
    write_record({**record, "seconds": 7.0}, results)
    with pytest.raises(UsageError, match="ws/seed-0.json was written by another process "
                                         "meanwhile: fix"):
        publish(record, results, held, before, "fix")
    os.close(held)
    assert read_record(record_path(results, "ws", 0))["seconds"] == 7.0


def test_the_runner_redoes_a_copy_it_used_to_skip(tmp_path, capsys):
    """seed 1's record copied as seed 7 with its own history (identical predictions): what the
    runner decides to run includes seed 7 (it is not done)."""
    results = _fixture_copy(tmp_path)
    copy = read_json(record_path(results, "ws", 1))
    copy["seed"] = copy["params"]["seed"] = 7
    copy["history"][0]["train_errors_running"] += 1
    record_path(results, "ws", 7).write_text(json.dumps(copy))
    jobs = plan(["ws"], "0,1,7", {"epochs": 2, "n_pairs": 100}, results_dir=results,
                runs_dir=tmp_path / "runs")
    todo = _sort_out(jobs, False, BatchResult(), sys.stderr)
    assert [job.seed for job in todo] == [7]



def test_the_readings_study_as_committed_leaves_no_run_to_redo(tmp_path, capsys):
    """`run readings` used to redo (and fail) its 19 diverged trainings every time: each is a
    committed record of its outcome, so the runner finds every round of the study done."""
    jobs = plan(["readings"], runs_dir=tmp_path / "runs")
    assert len(jobs) > 300 and not _sort_out(jobs, False, batch := BatchResult(), sys.stderr)
    assert len(batch.skipped) == len(jobs)

# --------------------------------------------------------------------------------------------
# No server beyond loopback; no key or log left open to others
# --------------------------------------------------------------------------------------------
def test_the_local_cluster_listens_on_loopback_only():
    """The runner's own Dask cluster (threads of this process): its HTTP servers (those of the
    scheduler and the worker, which `dashboard_address=None` did not stop) are on loopback."""
    def listening():
        return {c.laddr for c in psutil.Process().net_connections("inet")
                if c.status == psutil.CONN_LISTEN}

    before = listening()
    client = execution.connect(workers=1)
    try:
        opened = listening() - before
    finally:
        client.close()
    assert opened and all(address.ip in ("127.0.0.1", "::1") for address in opened), opened


@pytest.mark.slow  # starts a kernel
def test_a_kernels_connection_file_is_gone_once_it_runs_and_its_log_is_not_executable(tmp_path):
    """The HMAC key of a kernel's connection file is kept in memory only once the kernel
    answers: a runner killed by SIGKILL leaves no key behind. Its log: rw-r--r--."""
    kernel = execution.WarmKernel()
    try:
        kernel.prepare(tmp_path, {}, tmp_path / "kernel.log")
        assert not Path(kernel.km.connection_file).exists()
        assert (tmp_path / "kernel.log").stat().st_mode & 0o777 == 0o644
        kernel.prepare(tmp_path, {}, tmp_path / "kernel.log")  # a reset needs no file
    finally:
        kernel.kill()


@pytest.mark.slow  # starts a kernel
def test_a_kernel_killed_between_runs_is_started_anew_for_the_next(tmp_path):
    """A warm kernel killed while no run uses it (the OOM killer, kill -9): the next run gets
    a new kernel and its own log at once; it used to wait 20 s for a reset and fail with a
    TimeoutError naming the earlier run's log."""
    kernel = execution.WarmKernel()
    try:
        kernel.prepare(tmp_path, {}, tmp_path / "first.log")
        first = psutil.Process(kernel.pid)
        first.kill()
        first.wait(timeout=30)
        kernel.prepare(tmp_path, {}, tmp_path / "second.log")
        assert kernel.pid != first.pid and kernel.log == tmp_path / "second.log"
        from jupyter_core.utils import run_sync
        reply = run_sync(kernel.kc.execute_interactive)("1 + 1", timeout=60)
        assert reply["content"]["status"] == "ok"
    finally:
        kernel.kill()


# --------------------------------------------------------------------------------------------
# Never a silent wait
# --------------------------------------------------------------------------------------------
@pytest.mark.slow  # trains
def test_a_fifo_made_where_the_executed_notebook_goes_while_it_runs_is_replaced(tmp_path,
                                                                                mnist_root):
    """A FIFO made at the executed notebook's place while the run goes: papermill's write used
    to block on it, and the finished run to count as not done."""
    notebooks, markers, gate = gated_notebooks(tmp_path)
    results = tmp_path / "results"
    process, stderr = start("run", "ws", "--seeds", "0", "--results", results, "--runs",
                            tmp_path / "runs", "--notebooks", notebooks, *TINY,
                            mnist_root=mnist_root, log_dir=tmp_path)
    started(markers)
    executed = staging(tmp_path / "runs", results) / "ws" / "seed-0.ipynb"
    os.mkfifo(executed)
    gate.unlink()
    assert process.wait(timeout=300) == 0, stderr.read_text()
    assert "1 run: 1 done" in stderr.read_text() and executed.is_file()
    assert read_json(executed)["cells"]


@pytest.mark.slow  # a stand-in for a summary's kernel: a suspended process
def test_a_summary_waiting_on_a_suspended_kernel_says_so(tmp_path, monkeypatch, capsys):
    """The summary's kernels suspended (SIGSTOP): it used to print nothing for minutes."""
    from test_summary import FakeKernel, fake_papermill

    from helpers.publish import summary

    stopped = subprocess.Popen(["sleep", "60"])
    os.kill(stopped.pid, signal.SIGSTOP)
    monkeypatch.setattr(FakeKernel, "pid", stopped.pid)
    monkeypatch.setattr(summary, "WarmKernel", FakeKernel)
    monkeypatch.setattr(summary, "_html", lambda nb, page, where: "")
    seen = []
    monkeypatch.setattr(summary, "execute_notebook", fake_papermill([], meanwhile=lambda: (
        wait_for(lambda: "suspended" in capsys.readouterr().err and seen.append(1) or seen,
                 timeout=30, what="the summary to say a kernel is suspended"))))
    try:
        assert main(["summary", "--results", str(_fixture_copy(tmp_path)), "-p", "epochs",
                     "2", "-p", "n_pairs", "100"]) == 0
    finally:
        stopped.kill()
    assert seen


# --------------------------------------------------------------------------------------------
# One line, the right exit code, never a traceback
# --------------------------------------------------------------------------------------------
LONG = "x" * 300


@pytest.mark.parametrize("argv", [
    ["run", "ws", "--results", f"scratch/{LONG}"], ["run", "ws", "--runs", f"scratch/{LONG}"],
    ["run", "ws", "-p", "data_root", f"scratch/{LONG}"], ["summary", "--results", f"scratch/{LONG}"],
    ["summary", "--output", f"scratch/{LONG}"]], ids=lambda argv: " ".join(argv[:3])[:30])
def test_a_name_too_long_is_one_line(argv, capsys):
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "too long" in line, line


@pytest.mark.parametrize("argv, fragment", [
    (["summary", "-p", "seed", "3"], "-p seed is not allowed here"),
    (["summary", "-p", "experiment", "ws"], "-p experiment is not allowed here"),
    (["summary", "-p", "epochs", "2", "-p", "epochs", "3"], "-p epochs is given twice")])
def test_summary_refuses_what_it_would_ignore(argv, fragment, capsys):
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert fragment in line


def test_more_threads_than_cores_is_refused_before_training():
    """-p threads 100000: torch's thread pool killed the kernel (an empty log, SIGSEGV)."""
    with pytest.raises(UsageError, match=f"threads 100000 is more than the {os.cpu_count()} "
                                         f"cores here: give at most -p threads"):
        __import__("helpers").train("ws", threads=100000, epochs=1, n_pairs=100)


@pytest.mark.slow  # starts processes (and trains)
@pytest.mark.parametrize("command, closed", [("list all", ">&-"), ("list all", ">&- 2>&-"),
                                             ("run", "2>&-")])
def test_closed_standard_streams_fail_nothing(command, closed, tmp_path, mnist_root):
    """`python -m helpers list >&-`, `run ... 2>&-`: the command does its work, exit 0 (a
    closed stderr used to stop a batch before any run, a closed stdout to end in a
    traceback), and no file it opens takes a closed stream's number."""
    if command == "run":
        command = shlex.join(["run", "ws", "--seeds", "0", "--results", str(tmp_path / "results"),
                              "--runs", str(tmp_path / "runs"), *TINY])
    done = subprocess.run(["bash", "-c", f"{shlex.quote(sys.executable)} -m helpers {command} "
                           f"{closed}"], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=environment(mnist_root))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    if "run" in command:
        assert [p.name for p in record_files(tmp_path / "results")] == ["seed-0.json"]


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("module", ["argparse", "dataclasses"])
def test_ctrl_c_while_the_command_starts_is_one_line(module, tmp_path):
    """Ctrl-C while `python -m helpers` imports its code (here when it imports `module`): one
    line and exit 130, as later; it used to be a KeyboardInterrupt traceback."""
    (tmp_path / f"{module}.py").write_text("import os, signal, time\n"
                                           "os.kill(os.getpid(), signal.SIGINT)\ntime.sleep(30)\n")
    done = subprocess.run([sys.executable, "-m", "helpers", "list"], cwd=REPO, text=True,
                          capture_output=True, timeout=60, env={
                              **os.environ, "PYTHONPATH": f"{tmp_path}:{REPO}"})
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == [
        "interrupted: nothing was lost; run the same command again"]


@pytest.mark.parametrize("text", ['{"seed": ' + "9" * 5000 + "}", "[" * 200_000],
                         ids=["a 5000-digit number", "200000 brackets"])
def test_a_record_too_large_to_parse_is_redone_by_the_runner(text, tmp_path):
    """Such a record used to stop `run` with a traceback naming no file."""
    results = _fixture_copy(tmp_path)
    record_path(results, "ws", 1).write_text(text)
    jobs = plan(["ws"], "0-1", {"epochs": 2, "n_pairs": 100}, results_dir=results,
                runs_dir=tmp_path / "runs")
    assert [job.seed for job in _sort_out(jobs, False, BatchResult(), sys.stderr)] == [1]


@pytest.mark.slow  # trains
def test_two_batches_at_once_never_share_a_staged_file(tmp_path, mnist_root):
    """The same run into two records folders at once, both staging in a --runs folder that
    holds records: each batch's record is its own (one used to fail with "its record is another
    run's", its training lost) and the records under --runs stay as they were."""
    runs = _fixture_copy(tmp_path)  # --runs over a folder of records
    kept = snapshot(runs)
    batches = [start("run", "ws", "--seeds", "0", "--results", tmp_path / name, "--runs", runs,
                     "-p", "epochs", str(epochs), "-p", "n_pairs", "100", mnist_root=mnist_root,
                     log_dir=tmp_path) for name, epochs in (("a", 2), ("b", 1))]
    for process, stderr in batches:
        assert process.wait(timeout=300) == 0, stderr.read_text()
        assert "1 run: 1 done" in stderr.read_text()
    assert [read_record(record_path(tmp_path / name, "ws", 0))["params"]["epochs"]
            for name in ("a", "b")] == [2, 1]
    assert {name: stamp for name, stamp in snapshot(runs).items() if name in kept} == kept
