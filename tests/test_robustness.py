"""Issue 6 and its second round, provoked for real: every bad input gets one line and exit code
2 before anything starts; signals, a killed worker or runner and two runners at once lose no
finished record, leave no process behind and never mix parameters. docs/robustness.md lists
each case with the test that covers it (tests/test_records.py has those without a runner)."""

import fcntl
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import psutil
import pytest
from runner_tools import (
    REPO,
    TINY,
    copy_notebooks,
    descendants,
    environment,
    helpers,
    record_files,
    snapshot,
    start,
    temporaries,
    wait_for,
)

from helpers.cli import main
from helpers.runs import pools
from helpers.runs.records import read_record
from helpers.runs.runner import run_batch
from helpers.science import mnist
from helpers.science.mnist import MNIST_MD5

FIXTURE = REPO / "tests" / "fixtures" / "results"


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
    (["ws", "-p", "epochs", "0"], "epochs must be >= 1"),
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
             "ws-aux is a file, where the results of ws-aux go")


def _unprivileged(command):
    """`command` as a user without root's right to write into a read-only folder."""
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]


@pytest.mark.parametrize("option", ["--results", "--runs"])
def test_a_folder_that_cannot_be_written_is_refused(option, mnist_root):
    # Outside pytest's private tmp folder, so that the unprivileged user can reach it.
    folder = Path(tempfile.mkdtemp(prefix="readonly-"))
    try:
        (folder / "locked").mkdir()
        (folder / "open").mkdir()
        folder.chmod(0o755)
        (folder / "open").chmod(0o777)
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
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# What the unprivileged user (root's rights dropped, or the user running the tests) cannot use:
# modes that keep out the owner too, so that the case holds whoever runs the tests.
def _owned_by_another(case, folder):
    """Set up `case` under `folder` -> (--results, MNIST root or None, the expected line)."""
    results = folder / "results"
    if case == "an experiment folder":
        (results / "ws").mkdir()
        (results / "ws").chmod(0o555)
        return results, None, (f"error: results folder {results / 'ws'} is not writable "
                               f"(Permission denied): choose another with --results, or fix its "
                               f"permissions")
    if case == "a lock file":
        (results / "ws").mkdir()
        (results / "ws").chmod(0o777)
        lock = results / "ws" / ".seed-0.lock"
        lock.touch()
        lock.chmod(0)
        return results, None, (f"error: lock file {os.path.relpath(lock, REPO)} cannot be opened "
                               f"(Permission denied): its owner can remove it (it holds no data), "
                               f"or choose another folder with --results")
    if case == "a parent folder":
        (folder / "private").mkdir()
        (folder / "private").chmod(0)
        return folder / "private" / "results", None, (
            f"error: results folder {folder / 'private' / 'results'} cannot be reached: "
            f"{folder / 'private'} cannot be entered (Permission denied); choose another with "
            f"--results, or fix its permissions")
    raw = folder / "mnist" / "MNIST" / "raw"  # an MNIST file
    raw.mkdir(parents=True)
    for path in (raw, raw.parent, raw.parent.parent):
        path.chmod(0o755)
    (raw / "train-images-idx3-ubyte").write_bytes(b"not readable")
    (raw / "train-images-idx3-ubyte").chmod(0)
    return results, raw.parent.parent, (
        f"error: MNIST file or folder {raw / 'train-images-idx3-ubyte'} cannot be read "
        f"(Permission denied): fix its permissions, or set MNIST_ROOT (or data_root) to the "
        f"folder holding MNIST/raw, or put the four MNIST files in {raw}")


@pytest.mark.parametrize("case", ["an experiment folder", "a lock file", "a parent folder",
                                  "an MNIST file"])
def test_what_this_user_cannot_use_is_refused_in_one_line(case, mnist_root):
    folder = Path(tempfile.mkdtemp(prefix="owned-"))  # reachable by the unprivileged user
    try:
        folder.chmod(0o755)
        for name in ("results", "runs"):
            (folder / name).mkdir()
            (folder / name).chmod(0o777)
        results, root, expected = _owned_by_another(case, folder)
        done = subprocess.run(_unprivileged(
            [sys.executable, "-m", "helpers", "run", "ws", "--seeds", "0", "--results",
             str(results), "--runs", str(folder / "runs")]), cwd=REPO, capture_output=True,
            text=True, env=environment(root or mnist_root), timeout=300)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [expected]
        assert os.listdir(folder / "runs") == []
    finally:
        for path in [folder, *folder.rglob("*")] if folder.exists() else []:
            if not path.is_symlink():
                path.chmod(0o700)
        shutil.rmtree(folder, ignore_errors=True)


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


def test_the_test_suite_without_mnist_stops_at_once_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_results.py"], cwd=REPO, capture_output=True, text=True,
                          env=environment(tmp_path / "no-mnist"), timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"Exit: error: MNIST data root {tmp_path / 'no-mnist'} does not exist: set MNIST_ROOT "
        f"(or data_root) to the folder holding MNIST/raw, or put the four MNIST files in "
        f"{tmp_path / 'no-mnist' / 'MNIST' / 'raw'}"]
    assert "passed" not in done.stdout


def test_a_fifo_where_a_record_goes_is_refused_not_waited_on(folders, mnist_root):
    fifo = folders / "results" / "ws" / "seed-1.json"
    os.mkfifo(fifo)
    before = snapshot(folders)
    done = helpers("run", "ws", "--seeds", "0-1", "--results", folders / "results", "--runs",
                   folders / "runs", mnist_root=mnist_root, timeout=120)  # it used to hang
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {os.path.relpath(fifo, REPO)} is not a regular file (a FIFO): move it away"]
    assert snapshot(folders) == before and not (folders / "runs").exists()


# --------------------------------------------------------------------------------------------
# Faults during a batch
# --------------------------------------------------------------------------------------------
def _slow_notebooks(tmp_path):
    """Notebooks where `ws` seeds > 0 sleep while the file `slow` exists: the signal then lands
    while they run (a tiny run in a warm kernel could otherwise finish before it does)."""
    notebooks = copy_notebooks(tmp_path / "notebooks")
    slow = tmp_path / "slow"
    slow.touch()
    nb = nbformat.read(notebooks / "weight_sharing.ipynb", as_version=4)
    at = next(i for i, cell in enumerate(nb.cells)
              if "parameters" in cell.metadata.get("tags", [])) + 1
    nb.cells.insert(at, nbformat.v4.new_code_cell(
        f"import os, time\nif seed > 0 and os.path.exists({str(slow)!r}):\n    time.sleep(300)"))
    nbformat.write(nb, notebooks / "weight_sharing.ipynb")
    return notebooks, slow


def _interrupt_mid_batch(tmp_path, mnist_root, send, notebooks):
    """Start 3 runs on 2 workers, let the first record land, then `send(process)`."""
    results = tmp_path / "results"
    process, stderr = start("run", "ws", "--seeds", "0-2", "--workers", "2", "--results",
                            results, "--runs", tmp_path / "runs", "--notebooks", notebooks,
                            *TINY, mnist_root=mnist_root, log_dir=tmp_path)
    family = {}

    def first_record():
        family.update({p.pid: p for p in descendants(process.pid)})  # workers and kernels
        return record_files(results)

    wait_for(first_record, what="the first record")
    send(process)
    code = process.wait(timeout=120)
    assert len(family) >= 2
    gone, alive = psutil.wait_procs(list(family.values()), timeout=10)
    assert not alive, f"left running: {alive}"
    return code, stderr.read_text(), results


@pytest.mark.parametrize("how, code", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_signal_stops_the_batch_keeps_finished_records_and_the_rerun_resumes(
        how, code, tmp_path, mnist_root):
    if how == "SIGINT":  # Ctrl-C: the terminal signals the whole foreground process group
        def send(process):
            os.killpg(process.pid, signal.SIGINT)
    else:  # kill PID, or kill -HUP PID: the runner alone
        def send(process):
            process.send_signal(getattr(signal, how))
    notebooks, slow = _slow_notebooks(tmp_path)
    returned, err, results = _interrupt_mid_batch(tmp_path, mnist_root, send, notebooks)
    assert returned == code, err
    assert "Traceback" not in err
    assert f"interrupted by {how}: finished records are kept; run the same command again" in err
    kept = record_files(results)
    assert 1 <= len(kept) <= 2, err
    # Runs stopped by the signal are "not done", not failures; a record is a finished run.
    assert f"3 runs: {len(kept)} done, {3 - len(kept)} not done" in err, err
    assert "failed:" not in err, err
    for path in kept:
        read_record(path)
    assert not temporaries(results)
    if how != "SIGINT":
        return
    before = snapshot(results)
    slow.unlink()
    rerun = helpers("run", "ws", "--seeds", "0-2", "--workers", "2", "--results", results,
                    "--runs", tmp_path / "runs", "--notebooks", notebooks, *TINY,
                    mnist_root=mnist_root)
    assert rerun.returncode == 0, rerun.stderr
    assert f"skipping {len(kept)} of 3 runs" in rerun.stderr
    assert f"3 runs: {3 - len(kept)} done, {len(kept)} skipped" in rerun.stderr
    after = snapshot(results)
    assert {k: after[k] for k in before if k.endswith(".json")} == \
        {k: v for k, v in before.items() if k.endswith(".json")}
    assert len(record_files(results)) == 3


def test_a_killed_worker_fails_its_run_and_the_others_finish(tmp_path, mnist_root):
    results = tmp_path / "results"
    process, stderr = start("run", "ws", "--seeds", "0-1", "--workers", "2", "--results",
                            results, "--runs", tmp_path / "runs", *TINY, mnist_root=mnist_root,
                            log_dir=tmp_path)

    def worker_with_kernel():  # a worker (child of the runner) that has started its kernel
        workers = [w for w in psutil.Process(process.pid).children() if w.children()]
        return workers[0] if workers else None

    worker = wait_for(worker_with_kernel, what="a worker with a kernel")
    kernel = worker.children()[0]
    worker.kill()
    assert process.wait(timeout=300) == 1
    err = stderr.read_text()
    assert "2 runs: 1 done, 1 failed" in err, err
    assert "its worker process died (killed by SIGKILL) before reporting" in err
    assert len(record_files(results)) == 1
    read_record(record_files(results)[0])
    assert not temporaries(results)
    assert not psutil.wait_procs([kernel], timeout=10)[1], "the killed worker's kernel survived"


def test_two_runners_on_one_folder_do_each_run_once(tmp_path, mnist_root):
    results = tmp_path / "results"
    runners = [start("run", "ws", "--seeds", "0-1", "--workers", "1", "--results", results,
                     "--runs", tmp_path / f"runs-{i}", *TINY, mnist_root=mnist_root,
                     log_dir=tmp_path) for i in (0, 1)]
    for process, stderr in runners:
        assert process.wait(timeout=300) == 0, stderr.read_text()
    executed = [sorted(p.name for p in (tmp_path / f"runs-{i}" / "ws").glob("seed-*.ipynb"))
                if (tmp_path / f"runs-{i}").exists() else [] for i in (0, 1)]
    assert sorted(executed[0] + executed[1]) == ["seed-0.ipynb", "seed-1.ipynb"], executed
    assert [read_record(p)["seed"] for p in record_files(results)] == [0, 1]
    assert not temporaries(results)


def test_sigkill_of_the_runner_alone_takes_its_workers_and_kernels_along(tmp_path, mnist_root):
    notebooks, _ = _slow_notebooks(tmp_path)
    code, err, results = _interrupt_mid_batch(tmp_path, mnist_root, lambda p: p.kill(), notebooks)
    assert code == -signal.SIGKILL, err
    # (_interrupt_mid_batch asserted that no worker or kernel is left running)
    for path in record_files(results):
        read_record(path)


def _gated_notebooks(tmp_path):
    """Notebooks where each `ws` run leaves a file `<seed>-<kernel pid>` in `markers` when it
    starts, then waits while the file `gate` exists -> (notebooks, markers, gate)."""
    markers, gate = tmp_path / "markers", tmp_path / "gate"
    markers.mkdir()
    gate.touch()
    notebooks = copy_notebooks(tmp_path / "notebooks", notebook="weight_sharing.ipynb", cell=(
        f"import os, time\n"
        f"open(os.path.join({str(markers)!r}, f'{{seed}}-{{os.getpid()}}'), 'w').close()\n"
        f"while os.path.exists({str(gate)!r}):\n    time.sleep(0.1)"))
    return notebooks, markers, gate


def _started(markers, count=1):
    return wait_for(lambda: len(list(markers.iterdir())) >= count, what=f"{count} run(s) to start")


def _waiting_line(stderr, pid):
    """The line of a runner's stderr that says it waits for a lock held by `pid`."""
    lines = [line for line in Path(stderr).read_text().splitlines()
             if line.startswith("waiting for") and f"locked by pid {pid} (" in line]
    return lines[-1] if lines else None


def test_an_orphaned_worker_dies_with_its_kernel_and_no_rerun_overlaps_it(tmp_path, mnist_root):
    notebooks, markers, gate = _gated_notebooks(tmp_path)

    def runner(runs):
        return start("run", "ws", "--seeds", "1", "--workers", "1", "--results",
                     tmp_path / "results", "--runs", tmp_path / runs, "--notebooks", notebooks,
                     *TINY, mnist_root=mnist_root, log_dir=tmp_path)

    first, _ = runner("runs-1")
    _started(markers)
    family = descendants(first.pid)  # the worker and its kernel
    (worker,) = [p for p in family if p.ppid() == first.pid]
    assert len(family) >= 2
    # Stopped, the orphan cannot act on its runner's death yet: a second runner must wait.
    worker.suspend()
    first.kill()
    first.wait(timeout=60)
    second, err = runner("runs-2")
    line = wait_for(lambda: _waiting_line(err, worker.pid), what="the second runner to wait")
    assert line.startswith("waiting for ws seed 1: locked by") and line.endswith(
        f", suspended (kill -CONT {worker.pid} resumes it)"), line
    assert len(list(markers.iterdir())) == 1, "the run was started while an orphan held it"
    assert all(p.is_running() for p in family)
    worker.resume()  # it finds its runner gone: kills its kernel, exits, and so frees the run
    _, alive = psutil.wait_procs(family, timeout=10)
    assert not alive, f"left running: {alive}"
    _started(markers, 2)  # the second runner does the run now
    gate.unlink()
    assert second.wait(timeout=300) == 0, err.read_text()
    assert "1 run: 1 done" in err.read_text()
    read_record(tmp_path / "results" / "ws" / "seed-1.json")


def test_a_runner_waiting_for_a_suspended_one_says_which_and_why(tmp_path, mnist_root):
    notebooks, markers, gate = _gated_notebooks(tmp_path)
    runners = []
    for runs in ("runs-1", "runs-2"):
        runners.append(start("run", "ws", "--seeds", "0", "--workers", "1", "--results",
                             tmp_path / "results", "--runs", tmp_path / runs, "--notebooks",
                             notebooks, *TINY, mnist_root=mnist_root, log_dir=tmp_path))
        if runs == "runs-1":
            _started(markers)
            os.killpg(runners[0][0].pid, signal.SIGSTOP)  # Ctrl-Z: the runner and its worker
    (first, first_err), (second, err) = runners
    try:
        line = wait_for(lambda: _waiting_line(err, first.pid), what="the second runner to say why")
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    assert line.startswith("waiting for ws seed 0: locked by") and "-m helpers run ws" in line
    assert line.endswith(f", suspended (kill -CONT {first.pid} resumes it)"), line
    gate.unlink()
    assert first.wait(timeout=300) == 0, first_err.read_text()
    assert second.wait(timeout=300) == 0, err.read_text()
    assert "1 run: 0 done, 1 done by another runner" in err.read_text()
    assert len(list(markers.iterdir())) == 1  # one execution


def test_two_runners_with_other_parameters_never_share_a_folder(tmp_path, mnist_root):
    notebooks, markers, gate = _gated_notebooks(tmp_path)
    results = tmp_path / "results"
    first, first_err = start("run", "ws", "--seeds", "0-1", "--workers", "1", "--results",
                             results, "--runs", tmp_path / "runs-1", "--notebooks", notebooks,
                             *TINY, mnist_root=mnist_root, log_dir=tmp_path)
    _started(markers)
    second = helpers("run", "ws", "--seeds", "0-1", "--workers", "1", "--results", results,
                     "--runs", tmp_path / "runs-2", "--notebooks", notebooks, "-p", "epochs", "2",
                     "-p", "n_pairs", "100", mnist_root=mnist_root, timeout=300)
    gate.unlink()
    assert second.returncode == 2, second.stderr
    (line,) = second.stderr.strip().splitlines()
    assert line.startswith(f"error: another runner is writing {os.path.relpath(results / 'ws', REPO)}"
                           f" with other parameters (epochs 1 there, 2 asked): pid {first.pid} ("),\
        line
    assert "let it finish, or write these runs elsewhere with --results DIR" in line
    assert not (tmp_path / "runs-2").exists()
    assert first.wait(timeout=300) == 0, first_err.read_text()
    assert [read_record(p)["params"]["epochs"] for p in record_files(results)] == [1, 1]
    assert not list((results / "ws").glob(".claim-*"))  # claims go with their runner


def test_a_record_another_process_wrote_meanwhile_is_checked_for_its_parameters(
        tmp_path, mnist_root):
    # This test holds seed 0's lock, as another runner would; the runner waits and says so.
    # Meanwhile seed 0 gets a record made with 2 epochs (by a notebook run by hand, say).
    results = tmp_path / "results"
    (results / "ws").mkdir(parents=True)
    lock = os.open(results / "ws" / ".seed-0.lock", os.O_RDONLY | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    runner, err = start("run", "ws", "--seeds", "0", "--results", results, "--runs",
                        tmp_path / "runs", *TINY, mnist_root=mnist_root, log_dir=tmp_path)
    try:
        line = wait_for(lambda: _waiting_line(err, os.getpid()), what="the runner to wait")
        shutil.copy(FIXTURE / "ws" / "seed-0.json", results / "ws" / "seed-0.json")
        before = (results / "ws" / "seed-0.json").read_bytes()
    finally:
        os.close(lock)
    assert line.startswith("waiting for ws seed 0: locked by") and "pytest" in line, line
    assert runner.wait(timeout=300) == 2, err.read_text()
    text = err.read_text()
    assert "Traceback" not in text
    assert text.strip().splitlines()[-1] == (
        f"stopped: {os.path.relpath(results / 'ws' / 'seed-0.json', REPO)} was made with other "
        f"parameters (epochs 2 there, 1 asked): write these runs elsewhere with --results DIR, "
        f"or replace the records with --force")
    assert (results / "ws" / "seed-0.json").read_bytes() == before
    assert not (tmp_path / "runs").exists()


class _InProcess:
    """A pool that executes each job at once, here (pools.execute in a fresh kernel)."""

    def __init__(self):
        self._ended = []

    def __len__(self):
        return len(self._ended)

    def capacity(self):
        return 1

    def submit(self, job, lock=None):
        self._ended.append((job, pools.execute(job)))

    def wait(self, timeout):
        ended, self._ended = self._ended, []
        return ended

    def interrupt(self):
        pass

    def kill(self):
        return []

    def close(self):
        pass


def test_a_run_whose_record_was_written_is_done_even_if_its_notebook_could_not_be_saved(
        tmp_path, mnist_root, monkeypatch, capsys):
    import io

    import papermill.execute

    def full_disk(nb, path):  # what a full disk does to the executed notebook: 0 bytes
        Path(path).write_text("")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(papermill.execute, "write_ipynb", full_disk)
    monkeypatch.setenv("MNIST_ROOT", mnist_root)
    results, runs = tmp_path / "results", tmp_path / "runs"
    stream = io.StringIO()
    batch = run_batch(["ws"], seeds="0", results_dir=results, runs_dir=runs,
                      overrides={"epochs": "1", "n_pairs": "100"}, pool=_InProcess(),
                      stream=stream)
    err = stream.getvalue()
    assert batch.exit_code == 0 and len(batch.done) == 1, err
    assert "1 run: 1 done" in err
    assert ("warning: ws seed 0: its record was written, then the run failed (OSError: [Errno 28] "
            "No space left on device): the record is kept, the executed notebook may be "
            "missing") in err
    read_record(results / "ws" / "seed-0.json")
    assert not (runs / "ws" / "seed-0.ipynb").exists()  # no 0-byte notebook left behind
    # the rerun agrees: the run is done
    assert main(["run", "ws", "--seeds", "0", "--results", str(results), "--runs", str(runs),
                 *TINY]) == 0
    assert "skipping 1 of 1 runs" in capsys.readouterr().err


def test_a_diverging_run_fails_in_one_line_and_writes_no_record(tmp_path, mnist_root):
    results = tmp_path / "results"
    done = helpers("run", "ws", "--seeds", "0", "--results", results, "--runs", tmp_path / "runs",
                   "-p", "epochs", "1", "-p", "n_pairs", "100", "-p", "batch_size", "10",
                   "-p", "lr", "100", mnist_root=mnist_root)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "1 run: 0 done, 1 failed" in done.stderr
    assert ("  failed: ws seed 0: TrainingDiverged: the loss became nan at epoch 1 of ws seed 0 "
            "(lr 100): lower lr") in done.stderr
    assert not record_files(results) and not temporaries(results)
