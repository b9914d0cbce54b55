"""`python -m helpers run --scheduler ADDRESS` against a real dask.distributed cluster on
loopback (a scheduler and two single-threaded worker processes): the same records as a local
run, the same skipping of finished runs, the same failure report."""

import os

import distributed
import pytest
from runner_tools import TINY, copy_notebooks, helpers, record_files, snapshot

from helpers.cli import main
from helpers.runs.records import read_record


@pytest.fixture(scope="module")
def scheduler():
    # A LocalCluster sets OMP_NUM_THREADS & co. in this process for good (dask's
    # pre-spawn-environ); every later kernel of the session would inherit them.
    environment = dict(os.environ)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster.scheduler_address
    os.environ.clear()
    os.environ.update(environment)


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
        for key in ("train_errors", "test_errors", "history", "test_predictions",
                    "test_digit_predictions"):
            assert on_cluster[key] == here[key], key
    assert (tmp_path / "dask" / "runs" / "ws-aux" / "seed-1.ipynb").is_file()

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
