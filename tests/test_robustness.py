"""Issue 6, provoked for real: every bad input gets one line and exit code 2 before anything
starts; signals, a killed worker and two runners at once lose no finished record.
docs/robustness.md lists each case with the test that covers it."""

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
    read_json,
    record_files,
    snapshot,
    start,
    temporaries,
    wait_for,
)

from helpers.cli import main
from helpers.runs.records import read_record
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
    (["ws", "-p", "epochs", "0"], "epochs must be >= 1"),
    (["ws", "-p", "lr", "0"], "lr must be in (0, 100]"),
    (["ws", "-p", "lr", "-0.1"], "lr must be in (0, 100]"),
    (["ws", "-p", "batch_size", "0"], "batch_size must be from 1"),
    (["ws", "-p", "batch_size", "1001"], "batch_size must be from 1 to n_pairs (1000)"),
    (["ws", "-p", "n_pairs", "0"], "n_pairs must be from 1 to 5000"),
    (["ws", "-p", "n_pairs", "5001"], "n_pairs must be from 1 to 5000"),
    (["ws", "-p", "alpha", "-1"], "alpha must be >= 0"),
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
    (["ws", "--workers", "0"], "--workers: must be an integer >= 1"),
    (["ws", "--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("args, fragment", BAD_RUNS, ids=[" ".join(a) for a, _ in BAD_RUNS])
def test_bad_run_input_is_refused_in_one_line(args, fragment, folders, capsys):
    _refused(["run", *args, "--results", str(folders / "results"), "--runs",
              str(folders / "runs")], folders, capsys, fragment)


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
        done = helpers(*args, "--results" if args[0] == "run" else "--report",
                       folders / ("results" if args[0] == "run" else "r.html"), mnist_root=root)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert fragment in done.stderr
    assert snapshot(folders) == before


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


@pytest.mark.parametrize("how, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_stops_the_batch_keeps_finished_records_and_the_rerun_resumes(
        how, code, tmp_path, mnist_root):
    if how == "SIGINT":  # Ctrl-C: the terminal signals the whole foreground process group
        def send(process):
            os.killpg(process.pid, signal.SIGINT)
    else:  # kill PID
        def send(process):
            process.send_signal(signal.SIGTERM)
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
    if how == "SIGTERM":
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


# --------------------------------------------------------------------------------------------
# The summary over a damaged record
# --------------------------------------------------------------------------------------------
def test_summary_names_a_damaged_record_and_leaves_it_out(tmp_path, mnist_root):
    fixture = REPO / "tests" / "fixtures" / "results"
    results = tmp_path / "results"
    shutil.copytree(fixture, results)
    damaged = sorted(results.glob("*/seed-*.json"))[0]
    damaged.write_text(damaged.read_text()[:100])
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(REPO / "notebooks" / "summary.ipynb", notebooks)
    done = helpers("summary", "--results", results, "--figures", tmp_path / "figures",
                   "--report", tmp_path / "report.html", "--notebooks", notebooks,
                   mnist_root=mnist_root)
    assert done.returncode == 0, done.stderr
    name = f"{damaged.parent.name}/{damaged.name}"
    assert "damaged record" in done.stderr and name in done.stderr
    papermill = read_json(notebooks / "summary.ipynb")["metadata"]["papermill"]
    assert papermill["input_path"] == papermill["output_path"] == "summary.ipynb"
    assert papermill["parameters"]["figures_dir"] == "../figures"  # relative to the notebook
    assert list((tmp_path / "figures").glob("*.png"))
    html = (tmp_path / "report.html").read_text()
    assert name in html  # the notebook names it too
    assert "import helpers" in (notebooks / "summary.ipynb").read_text()
    assert "import helpers" not in html  # exported without the code cells
