"""What the runner tests share: calling `python -m helpers` for real, and looking at folders."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "results"  # ws, ws-aux, ...: seeds 0-1, FIXTURE_PARAMS
FIXTURE_PARAMS = ["-p", "epochs", "2", "-p", "n_pairs", "100"]
# The smallest runs that still go through data, training and the record: a few seconds each,
# almost all of it kernel start and imports.
TINY = ["-p", "epochs", "1", "-p", "n_pairs", "100"]


def environment(mnist_root, **extra):
    return {**os.environ, "MNIST_ROOT": str(mnist_root), **extra}


def helpers(*args, mnist_root, timeout=600, **kwargs):
    """Run `python -m helpers ARGS` to the end -> CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", "helpers", *map(str, args)], cwd=REPO,
                          env=environment(mnist_root), capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def start(*args, mnist_root, log_dir, prefix=()):
    """Start `python -m helpers ARGS` (after `prefix`, a command that runs it) in its own
    process group (as a shell would for a foreground job) -> (Popen, path of its stderr)."""
    stderr = Path(log_dir) / f"stderr-{time.monotonic_ns()}.txt"
    process = subprocess.Popen([*prefix, sys.executable, "-m", "helpers", *map(str, args)], cwd=REPO,
                               env=environment(mnist_root), stdout=subprocess.DEVNULL,
                               stderr=stderr.open("w"), start_new_session=True)
    return process, stderr


def record_files(results):
    return sorted(Path(results).glob("*/seed-*.json"))


def wait_for(condition, timeout=300, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def descendants(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def snapshot(folder):
    """Every file under `folder` with its size and modification time (but the folders' lock
    files, which a runner creates and writes its pid into: they hold no data)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(Path(folder).rglob("*")) if p.is_file() and p.name != ".lock"}


def temporaries(folder):
    return [p for p in Path(folder).rglob("*") if p.name.endswith(".tmp")]


def copy_notebooks(destination, fail_at_seed=None, notebook="auxiliary_loss.ipynb",
                   error="RuntimeError('injected failure')", cell=None):
    """A copy of the repo's notebooks; `notebook` gets the code `cell` right after its
    parameters cell, or with `fail_at_seed`, one that raises `error` for that seed (a failure
    that passes the runner's checks and happens inside the run)."""
    destination = Path(destination)
    destination.mkdir(parents=True)
    for path in (REPO / "notebooks").glob("*.ipynb"):
        shutil.copy(path, destination / path.name)
    if fail_at_seed is not None:
        cell = f"import helpers.errors\nif seed == {fail_at_seed}:\n    raise {error}"
    if cell is not None:
        nb = nbformat.read(destination / notebook, as_version=4)
        at = next(i for i, existing in enumerate(nb.cells)
                  if "parameters" in existing.metadata.get("tags", [])) + 1
        nb.cells.insert(at, nbformat.v4.new_code_cell(cell))
        nbformat.write(nb, destination / notebook)
    return destination


def read_json(path):
    return json.loads(Path(path).read_text())


def gated_notebooks(tmp_path, notebook="weight_sharing.ipynb"):
    """Notebooks where each run of `notebook` leaves a file `<seed>-<kernel pid>` in `markers`
    when it starts, then waits while the file `gate` exists -> (notebooks, markers, gate)."""
    markers, gate = Path(tmp_path) / "markers", Path(tmp_path) / "gate"
    markers.mkdir()
    gate.touch()
    notebooks = copy_notebooks(Path(tmp_path) / "notebooks", notebook=notebook, cell=(
        f"import os, time\n"
        f"open(os.path.join({str(markers)!r}, f'{{seed}}-{{os.getpid()}}'), 'w').close()\n"
        f"while os.path.exists({str(gate)!r}):\n    time.sleep(0.1)"))
    return notebooks, markers, gate


def started(markers, count=1):
    """The marker files once `count` runs have started."""
    return wait_for(lambda: len(list(markers.iterdir())) >= count and sorted(markers.iterdir()),
                    what=f"{count} run(s) to start")


def kernel_of(marker):
    return psutil.Process(int(Path(marker).name.split("-")[1]))
