"""`python -m helpers run --scheduler ADDRESS` against a real dask.distributed cluster on
loopback: the same records as a local run, the same skipping and failure report, and the
faults of a cluster (no worker, Ctrl-C while tasks run, the scheduler killed): never a silent
wait, never exit 0 while runs are not done, never a record published after the runner ended."""

import os
import signal
import subprocess
import sys
import time

import distributed
import pytest
from runner_tools import (
    REPO,
    TINY,
    copy_notebooks,
    environment,
    gated_notebooks,
    helpers,
    record_files,
    snapshot,
    start,
    started,
    wait_for,
)

from helpers.cli import main
from helpers.runs.records import read_record
from helpers.runs.runner import staging

pytestmark = pytest.mark.slow  # every test here starts kernels on a cluster


def _cluster(workers):
    # A LocalCluster sets OMP_NUM_THREADS & co. in this process for good (dask's
    # pre-spawn-environ); every later kernel of the session would inherit them.
    environment = dict(os.environ)
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    os.environ.clear()
    os.environ.update(environment)
    return cluster


@pytest.fixture(scope="module")
def scheduler():
    with _cluster(2) as cluster:
        yield cluster.scheduler_address


def _ran_on_the_cluster(scheduler):
    """Seeds of the ws-aux runs the scheduler has seen as tasks."""
    with distributed.Client(scheduler) as client:
        keys = client.run_on_scheduler(
            lambda dask_scheduler: {str(entry[0]) for entry in dask_scheduler.transition_log})
    prefix = "helpers-run-ws-aux-seed-"
    return {int(key[len(prefix):].split("-")[0]) for key in keys if key.startswith(prefix)}


def _run(*args, mnist_root, folder):
    return helpers("run", "ws-aux", "--seeds", "0-1", "--results", folder / "results",
                   "--runs", folder / "runs", *TINY, *args, mnist_root=mnist_root)


@pytest.mark.slow
def test_dask_run_writes_the_records_of_a_local_run_and_skips_them_after(
        scheduler, tmp_path, mnist_root):
    on_dask = _run("--scheduler", scheduler, mnist_root=mnist_root, folder=tmp_path / "dask")
    assert on_dask.returncode == 0, on_dask.stderr
    assert "2 runs: 2 done" in on_dask.stderr
    assert _ran_on_the_cluster(scheduler) == {0, 1}  # not silently run locally
    local = _run("--workers", "2", mnist_root=mnist_root, folder=tmp_path / "local")
    assert local.returncode == 0, local.stderr
    dask_records = [read_record(p) for p in record_files(tmp_path / "dask" / "results")]
    local_records = [read_record(p) for p in record_files(tmp_path / "local" / "results")]
    assert [r["seed"] for r in dask_records] == [r["seed"] for r in local_records] == [0, 1]
    for on_cluster, here in zip(dask_records, local_records):
        for key in set(on_cluster) | set(here):
            if key != "seconds":
                assert on_cluster[key] == here[key], key
    assert (staging(tmp_path / "dask" / "runs", tmp_path / "dask" / "results") / "ws-aux" /
            "seed-1.ipynb").is_file()

    before = snapshot(tmp_path / "dask")
    again = _run("--scheduler", scheduler, mnist_root=mnist_root, folder=tmp_path / "dask")
    assert again.returncode == 0, again.stderr
    assert "skipping 2 of 2 runs" in again.stderr
    assert snapshot(tmp_path / "dask") == before


@pytest.mark.slow
def test_dask_run_reports_a_failed_run_like_a_local_one(scheduler, tmp_path, mnist_root):
    notebooks = copy_notebooks(tmp_path / "notebooks", fail_at_seed=1)
    failed = _run("--scheduler", scheduler, "--notebooks", notebooks, mnist_root=mnist_root,
                  folder=tmp_path)
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    assert "2 runs: 1 done, 1 failed" in failed.stderr
    assert "failed: ws-aux seed 1: RuntimeError: injected failure" in failed.stderr
    assert [p.name for p in record_files(tmp_path / "results")] == ["seed-0.json"]


def test_unreachable_scheduler_is_a_one_line_usage_error(tmp_path, capsys):
    code = main(["run", "ws-aux", "--seeds", "0", "--scheduler", "no-port-here",
                 "--results", str(tmp_path / "r"), "--runs", str(tmp_path / "n")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith("error: cannot reach the Dask scheduler at no-port-here")
    assert not (tmp_path / "r").exists()


def _cluster_processes(tmp_path, workers):
    """A scheduler and `workers` workers in processes of their own (a test may kill the
    scheduler) -> (the scheduler's Popen, its address, every Popen)."""
    import json

    address_file = tmp_path / "scheduler.json"
    env = environment(os.environ.get("MNIST_ROOT", ""))
    processes = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(address_file)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    wait_for(address_file.exists, what="the scheduler")
    processes += [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
         str(address_file), "--nthreads", "1", "--no-dashboard", "--death-timeout", "5"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)]
    return processes[0], json.loads(address_file.read_text())["address"], processes


@pytest.fixture
def own_cluster(tmp_path):
    made = []
    yield lambda workers: made.append(_cluster_processes(tmp_path, workers)) or made[-1]
    for process in (p for _, _, processes in made for p in reversed(processes)):
        process.kill()
        process.wait()


def test_a_scheduler_without_workers_is_refused_not_waited_on(own_cluster, tmp_path,
                                                              mnist_root):
    """A scheduler with no worker used to be a silent, endless wait: refused in one line."""
    _, address, _ = own_cluster(0)
    done = helpers("run", "ws-aux", "--seeds", "0", "--scheduler", address, "--results",
                   tmp_path / "r", "--runs", tmp_path / "n", mnist_root=mnist_root)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: the Dask scheduler at {address} has no worker (waited 10 s): start some with "
        f"`dask worker {address}`, or run here without --scheduler"]
    assert not (tmp_path / "r").exists()


def test_ctrl_c_cancels_the_tasks_and_what_they_finish_is_never_published(
        scheduler, tmp_path, mnist_root):
    """Ctrl-C while tasks run on the cluster: "not done", exit 130. Dask cannot stop a running
    task: those finish later and write into their runs folder, but their records never reach
    the records folder, and a runner of other parameters started after does its own runs
    (it used to report them done over the first runner's records)."""
    notebooks, markers, gate = gated_notebooks(tmp_path)
    results, runs = tmp_path / "results", tmp_path / "runs"
    args = ("run", "ws", "--seeds", "0-1", "--scheduler", scheduler, "--results", results,
            "--runs", runs)
    process, stderr = start(*args, "--notebooks", notebooks, *TINY, mnist_root=mnist_root,
                            log_dir=tmp_path)
    started(markers, 2)
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=120) == 130, stderr.read_text()
    assert "2 runs: 0 done, 2 not done" in stderr.read_text()
    gate.unlink()
    wait_for(lambda: all((staging(runs, results) / "ws" / f"seed-{seed}.json").exists()
                         for seed in (0, 1)),
             what="the cancelled tasks to finish")
    time.sleep(2)
    assert not record_files(results)
    after = helpers(*args, "-p", "epochs", "2", "-p", "n_pairs", "100", mnist_root=mnist_root)
    assert after.returncode == 0 and "2 runs: 2 done" in after.stderr, after.stderr
    assert [read_record(p)["params"]["epochs"] for p in record_files(results)] == [2, 2]


@pytest.mark.parametrize("then", ["then the batch ends", "then Ctrl-C"])
def test_a_scheduler_killed_mid_batch_ends_it_with_runs_not_done(then, own_cluster, tmp_path,
                                                                mnist_root):
    """The scheduler SIGKILLed while a run is going: the run is lost with it, in one line, and
    the exit code says so (it used to be 0); a Ctrl-C then is one line too (it used to be a
    ClosedClientError); no record of that run is published afterwards."""
    scheduler, address, _ = own_cluster(1)
    notebooks, markers, gate = gated_notebooks(tmp_path)
    results = tmp_path / "results"
    process, stderr = start("run", "ws", "--seeds", "0", "--scheduler", address, "--results",
                            results, "--runs", tmp_path / "runs", "--notebooks", notebooks,
                            *TINY, mnist_root=mnist_root, log_dir=tmp_path)
    started(markers)
    scheduler.kill()
    if then == "then Ctrl-C":  # (whichever the runner sees first: the signal or the loss)
        os.killpg(process.pid, signal.SIGINT)
    code = process.wait(timeout=180)
    err = stderr.read_text()
    assert code in ((130, 1) if then == "then Ctrl-C" else (1,)), err
    assert "Traceback" not in err, err
    assert "1 run: 0 done" in err, err
    gate.unlink()
    time.sleep(5)
    assert not record_files(results)


def test_a_suspended_scheduler_is_named_not_waited_on_silently(own_cluster, tmp_path,
                                                               mnist_root):
    """The scheduler suspended (SIGSTOP) while a run goes: the runner says what it waits for
    (it used to print nothing for minutes); resumed, the batch ends as usual."""
    scheduler, address, _ = own_cluster(1)
    notebooks, markers, gate = gated_notebooks(tmp_path)
    process, stderr = start("run", "ws", "--seeds", "0", "--scheduler", address, "--results",
                            tmp_path / "results", "--runs", tmp_path / "runs", "--notebooks",
                            notebooks, *TINY, mnist_root=mnist_root, log_dir=tmp_path)
    started(markers)
    scheduler.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: "does not answer" in stderr.read_text(), timeout=120,
                 what="the runner to name the scheduler")
    finally:
        scheduler.send_signal(signal.SIGCONT)
    gate.unlink()
    assert process.wait(timeout=180) == 0, stderr.read_text()
    assert (f"waiting for the Dask scheduler at {address}, which does not answer (suspended? "
            f"kill -CONT resumes it)") in stderr.read_text()
    assert [p.name for p in record_files(tmp_path / "results")] == ["seed-0.json"]
