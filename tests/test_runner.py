"""The notebook runner, `python -m helpers run`, for real: tiny runs (1 epoch, 100 pairs)
through papermill into temporary folders, then what a rerun, --force and a failure do, which
runs and folders a batch takes by default, and that its records are those of a training in
this process."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from runner_tools import (
    FIXTURE,
    FIXTURE_PARAMS,
    REPO,
    TINY,
    copy_notebooks,
    helpers,
    read_json,
    record_files,
    snapshot,
    start,
    temporaries,
)

from helpers import UsageError
from helpers.catalogue.experiments import EXPERIMENTS
from helpers.catalogue.experiments import expand as expand_experiments
from helpers.catalogue.seeds import parse_seeds, seed_list
from helpers.cli import main
from helpers.files import NOTEBOOKS, RESULTS, RUNS, VALIDATION, notebook_path
from helpers.kernel import THREAD_VARIABLES
from helpers.runs.records import read_record
from helpers.runs.runner import plan, staging


# --------------------------------------------------------------------------------------------
# Pure parts
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, seeds", [
    ("0-9", list(range(10))), ("0,3,5", [0, 3, 5]), ("0-2,7", [0, 1, 2, 7]), ("4", [4]),
    ("3,1,1-2", [1, 2, 3]),
])
def test_seed_lists(text, seeds):
    assert parse_seeds(text) == seeds
    assert parse_seeds(seed_list(seeds)) == seeds


@pytest.mark.parametrize("text", ["0-", "a-b", "5-2", "", "-1", "1,,2", "0-9x"])
def test_malformed_seed_lists(text):
    with pytest.raises(UsageError, match="seed list"):
        parse_seeds(text)


def test_experiment_names_expand(monkeypatch):
    assert expand_experiments(["all"])[:3] == ["baseline", "ws-plain", "ws"]
    # the rows measured on validation pairs are never part of `all`, only run by name
    assert "best" in expand_experiments(["all"])
    assert not set(expand_experiments(["all"])) & set(expand_experiments(["ablation"]))
    for name in ("ws-aux-c0.5", "ws-aux-c0.75"):  # a catalogue `group` names several rows
        monkeypatch.setitem(EXPERIMENTS[name], "group", ["constant-alpha"])
    assert expand_experiments(["constant-alpha", "ws"]) == ["ws-aux-c0.5", "ws-aux-c0.75", "ws"]
    assert expand_experiments(["ws", "baseline", "ws"]) == ["ws", "baseline"]
    with pytest.raises(UsageError, match="unknown experiment 'nope'"):
        expand_experiments(["nope"])


def test_paths_given_to_notebooks_are_relative_inside_the_project(tmp_path):
    notebooks = REPO / "notebooks"
    assert notebook_path(REPO / "results", notebooks) == "../results"
    assert notebook_path(tmp_path / "r", notebooks) == str(tmp_path / "r")


def test_each_row_runs_its_own_seeds_into_its_own_folder_by_default():
    """Without --seeds and --results, `run report` and `run readings` do what the publication
    counts: each row's published seeds, test-pair rows into results/, validation rows into
    validation/; each run's parameters resolved once, by the catalogue."""
    jobs = plan(["ws", "val-ws-first", "best-val"])
    by_row = {}
    for job in jobs:
        by_row.setdefault(job.experiment, []).append(job)
    assert [j.seed for j in by_row["ws"]] == list(range(10))
    assert [j.seed for j in by_row["val-ws-first"]] == list(range(100, 110))
    assert [j.seed for j in by_row["best-val"]] == list(range(100, 105))
    assert {j.results for j in by_row["ws"]} == {RESULTS.resolve()}
    assert {j.results for j in by_row["val-ws-first"] + by_row["best-val"]} == {VALIDATION.resolve()}
    assert by_row["ws"][3].params == __import__("helpers").resolve("ws", seed=3)
    # each records folder's runs stage in a folder of their own under runs/
    assert by_row["ws"][3].parameters == {"experiment": "ws", "seed": 3, "results_dir":
                                          notebook_path(staging(RUNS, RESULTS), NOTEBOOKS)}
    assert by_row["ws"][3].output == staging(RUNS, RESULTS) / "ws" / "seed-3.ipynb"
    assert staging(RUNS, RESULTS).parent == RUNS.resolve() and \
        staging(RUNS, RESULTS) != staging(RUNS, VALIDATION)


@pytest.mark.parametrize("args, fragment", [
    (["ws-aux-c0.5", "--seeds", "42"], "(seed 42 outside its seeds 0-9)"),
    (["ws-aux", "--seeds", "3", "-p", "weighting", "eq2", "-p", "alpha", "0.6"],
     "(weighting 'eq2', not 'eq1'; alpha 0.6, not 1.0)"),
    (["ws", "--seeds", "0", "--results", str(VALIDATION)], "(its records go in results/)"),
    (["val-ws-first", "--seeds", "100", "--results", str(RESULTS)],
     "(its records go in validation/)"),
])
def test_the_project_records_folders_take_only_the_catalogues_own_runs(args, fragment, capsys):
    """A run of other parameters, another seed, or into the other folder never lands in the
    project's results/ or validation/ (which the publication reads): refused in one line, with
    the fix, before anything starts."""
    before = snapshot(RESULTS), snapshot(VALIDATION)
    assert main(["run", *args]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert " is not catalogue row " in line and fragment in line, line
    assert line.endswith("holds only the catalogue's rows at their seeds; write these runs "
                         "elsewhere with --results DIR"), line
    assert (snapshot(RESULTS), snapshot(VALIDATION)) == before


# --------------------------------------------------------------------------------------------
# One real batch, shared by the tests below (each copies it before changing anything)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def batch(tmp_path_factory, mnist_root):
    folder = tmp_path_factory.mktemp("batch")
    done = helpers("run", "ws-aux", "--seeds", "0-1", "--workers", "2", "--results",
                   folder / "results", "--runs", folder / "runs", *TINY, mnist_root=mnist_root)
    return folder, done


def _copy(batch, destination):
    folder, _ = batch
    shutil.copytree(folder, destination, symlinks=True)
    return destination


@pytest.mark.slow
def test_run_writes_valid_records_and_executed_notebooks(batch):
    folder, done = batch
    assert done.returncode == 0, done.stderr
    assert "2 runs: 2 done" in done.stderr
    assert "%|" not in done.stderr  # no progress bar's frames where no terminal watches
    paths = record_files(folder / "results")
    assert [p.relative_to(folder / "results").as_posix() for p in paths] == \
        ["ws-aux/seed-0.json", "ws-aux/seed-1.json"]
    for seed, path in enumerate(paths):
        record = read_record(path)
        assert (record["seed"], record["params"]["epochs"], record["n_train"]) == (seed, 1, 100)
        executed = read_json(staging(folder / "runs", folder / "results") / "ws-aux" /
                             f"seed-{seed}.ipynb")
        assert executed["metadata"]["papermill"]["parameters"]["seed"] == seed
        # the notebook saved it beside its executed notebook; the runner published that one
        assert read_record(staging(folder / "runs", folder / "results") / "ws-aux" /
                           f"seed-{seed}.json") == record
    assert not temporaries(folder)


@pytest.mark.slow
def test_rerun_skips_finished_runs(batch, tmp_path, mnist_root):
    folder = _copy(batch, tmp_path / "batch")
    before = snapshot(folder)
    again = helpers("run", "ws-aux", "--seeds", "0-1", "--results", folder / "results",
                    "--runs", folder / "runs", *TINY, mnist_root=mnist_root)
    assert again.returncode == 0, again.stderr
    assert "skipping 2 of 2 runs" in again.stderr
    assert snapshot(folder) == before  # nothing executed, nothing rewritten


@pytest.mark.slow  # starts a process
def test_a_record_made_with_other_parameters_is_neither_skipped_nor_replaced(tmp_path,
                                                                           mnist_root):
    shutil.copytree(FIXTURE, tmp_path / "results")  # ws-aux, 2 epochs
    before = snapshot(tmp_path)
    other = helpers("run", "ws-aux", "--seeds", "0-1", "--results", tmp_path / "results",
                    "--runs", tmp_path / "runs", *TINY, mnist_root=mnist_root)
    assert other.returncode == 2
    assert other.stderr.count("\n") == 1 and "Traceback" not in other.stderr
    assert "was made with other parameters (epochs 2 there, 1 asked)" in other.stderr
    assert "--results DIR" in other.stderr and "--force" in other.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_damaged_record_is_redone_and_force_redoes_a_finished_one(batch, tmp_path, mnist_root):
    # Two copies of the batch, one rerun in each, side by side (one run each: two cores).
    damaged, forced = _copy(batch, tmp_path / "damaged"), _copy(batch, tmp_path / "forced")
    for folder in (damaged, forced):  # what their notebooks left: not to be published again
        for staged in (folder / "runs").rglob("seed-*.json"):
            staged.unlink()
    seed0 = damaged / "results" / "ws-aux" / "seed-0.json"
    seed0.write_text(seed0.read_text()[:200])  # truncated by hand
    stale = seed0.parent / ".seed-0.json.x1y2z3.tmp"  # what a write killed by SIGKILL leaves
    stale.write_text("{")
    kept = snapshot(damaged / "results")["ws-aux/seed-1.json"]
    forced_before = snapshot(forced / "results")
    reruns = [start("run", "ws-aux", "--seeds", seeds, *force, "--results", folder / "results",
                    "--runs", folder / "runs", *params, mnist_root=mnist_root, log_dir=folder)
              # --force replaces a record, even one made with other parameters (2 epochs now)
              for folder, seeds, force, params in [
                  (damaged, "0-1", [], TINY),
                  (forced, "1", ["--force"], ["-p", "epochs", "2", "-p", "n_pairs", "100"])]]
    (rerun, rerun_err), (force, force_err) = reruns
    assert rerun.wait(timeout=600) == 0, rerun_err.read_text()
    assert force.wait(timeout=600) == 0, force_err.read_text()

    assert "2 runs: 1 done, 1 skipped" in rerun_err.read_text()
    assert read_record(seed0)["seed"] == 0 and not stale.exists()
    assert snapshot(damaged / "results")["ws-aux/seed-1.json"] == kept

    assert "1 run: 1 done" in force_err.read_text()
    forced_after = snapshot(forced / "results")
    assert forced_after["ws-aux/seed-0.json"] == forced_before["ws-aux/seed-0.json"]
    assert forced_after["ws-aux/seed-1.json"][1] > forced_before["ws-aux/seed-1.json"][1]
    assert read_record(forced / "results" / "ws-aux" / "seed-1.json")["params"]["epochs"] == 2


@pytest.mark.slow
def test_a_failing_run_leaves_the_others_done_and_is_listed(tmp_path, mnist_root):
    notebooks = copy_notebooks(tmp_path / "notebooks", fail_at_seed=1)
    results, runs = tmp_path / "results", tmp_path / "runs"
    failed = helpers("run", "ws-aux", "--seeds", "0-1", "--workers", "2", "--results", results,
                     "--runs", runs, "--notebooks", notebooks, *TINY, mnist_root=mnist_root)
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    assert "2 runs: 1 done, 1 failed" in failed.stderr
    assert "failed: ws-aux seed 1: RuntimeError: injected failure" in failed.stderr
    assert "seed-1.ipynb" in failed.stderr and \
        (staging(runs, results) / "ws-aux" / "seed-1.ipynb").is_file()
    assert [p.name for p in record_files(results)] == ["seed-0.json"]
    read_record(results / "ws-aux" / "seed-0.json")


@pytest.mark.slow
def test_a_usage_error_inside_a_run_stops_the_batch(tmp_path, mnist_root):
    # Every run would fail the same way (e.g. MNIST unreadable in the kernel): start no more.
    notebooks = copy_notebooks(tmp_path / "notebooks", fail_at_seed=0,
                               error="helpers.errors.DataError('injected data problem')")
    stopped = helpers("run", "ws-aux", "--seeds", "0-1", "--workers", "1", "--results",
                      tmp_path / "results", "--runs", tmp_path / "runs", "--notebooks",
                      notebooks, *TINY, mnist_root=mnist_root)
    assert stopped.returncode == 2, stopped.stderr
    assert "2 runs: 0 done, 1 failed, 1 not done" in stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1] == "stopped: DataError: injected data problem"
    assert not (staging(tmp_path / "runs", tmp_path / "results") / "ws-aux" /
                "seed-1.ipynb").exists()


@pytest.mark.slow
def test_one_worker_reuses_its_kernel_with_a_clean_namespace_and_restarts_it_after_a_failure(
        tmp_path, mnist_root):
    # Seed 0 leaves a name behind; seed 1 must not see it (same kernel), then fails; seed 2
    # must get a fresh kernel. Each run prints its kernel's pid.
    notebooks = copy_notebooks(tmp_path / "notebooks", cell=(
        "import os\nprint('kernel', os.getpid())\n"
        "assert 'left_behind' not in globals(), 'a name of the previous run leaked'\n"
        "import json as left_behind  # a module: the parameters check lets it pass\n"
        "if seed == 1:\n    raise RuntimeError('injected failure')"))
    results, runs = tmp_path / "results", tmp_path / "runs"
    done = helpers("run", "ws-aux", "--seeds", "0-2", "--workers", "1", "--results", results,
                   "--runs", runs, "--notebooks", notebooks, *TINY, mnist_root=mnist_root)
    assert done.returncode == 1, done.stderr
    assert "3 runs: 2 done, 1 failed" in done.stderr
    assert "failed: ws-aux seed 1: RuntimeError: injected failure" in done.stderr

    def kernel_pid(seed):
        cells = read_json(staging(runs, results) / "ws-aux" / f"seed-{seed}.ipynb")["cells"]
        text = "".join("".join(output.get("text", "")) for cell in cells
                       for output in cell.get("outputs", []))
        return text.split("kernel ", 1)[1].split()[0]

    assert kernel_pid(0) == kernel_pid(1) != kernel_pid(2)
    assert [read_record(p)["seed"] for p in record_files(results)] == [0, 2]


@pytest.mark.slow
def test_records_of_the_runner_are_those_of_a_training_in_process(tmp_path, mnist_root):
    """Every field of a record but its seconds is the same, whether the runner's warm kernels
    made it (two in a row in one kernel, with OMP_NUM_THREADS=1 set as dask's workers set it)
    or helpers.train in a plain process without it."""
    env = {key: value for key, value in os.environ.items() if key not in THREAD_VARIABLES}
    reference = subprocess.run(
        [sys.executable, "-c", "import json, sys, helpers; json.dump([helpers.train(e, 1, "
                               "epochs=2, n_pairs=200) for e in ('ws', 'ws-aux')], sys.stdout)"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**env, "MNIST_ROOT": str(mnist_root)})
    assert reference.returncode == 0, reference.stderr
    done = subprocess.run(
        [sys.executable, "-m", "helpers", "run", "ws", "ws-aux", "--seeds", "1", "--workers", "1",
         "-p", "epochs", "2", "-p", "n_pairs", "200", "--results", tmp_path / "results", "--runs",
         tmp_path / "runs"], cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**env, "MNIST_ROOT": str(mnist_root), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    for expected in json.loads(reference.stdout):
        record = read_record(tmp_path / "results" / expected["experiment"] / "seed-1.json")
        for key in set(record) | set(expected):
            if key not in ("schema", "seconds"):
                assert record[key] == expected[key], key


@pytest.mark.slow
def test_a_kernel_that_dies_fails_its_run_and_points_to_its_log(tmp_path, mnist_root):
    # Seed 1's kernel (seed 0's, kept warm) exits mid-run (as after a segfault or the OOM
    # killer): no executed notebook can be written for it, so an old one from an earlier batch
    # must not stay behind to pass for it; the failure points to the log of that kernel
    # (which it began with seed 0); seed 2 gets a new kernel.
    notebooks = copy_notebooks(tmp_path / "notebooks",
                               cell="import os\nif seed == 1:\n    os._exit(3)")
    results, runs = tmp_path / "results", tmp_path / "runs"
    runs_of = staging(runs, results) / "ws-aux"
    runs_of.mkdir(parents=True)
    (runs_of / "seed-1.ipynb").write_text("{}")  # an earlier batch's notebook
    done = helpers("run", "ws-aux", "--seeds", "0-2", "--workers", "1", "--results", results,
                   "--runs", runs, "--notebooks", notebooks, *TINY, mnist_root=mnist_root)
    assert done.returncode == 1, done.stderr
    assert "3 runs: 2 done, 1 failed" in done.stderr
    # the summary's line (the progress bar's, above it, has no pointer)
    failed = [line for line in done.stderr.splitlines() if "failed: ws-aux seed 1" in line][-1]
    assert "Traceback" not in done.stderr and "DeadKernelError" in failed, failed
    assert failed.endswith(f"(kernel log: {os.path.relpath(runs_of / 'seed-0.log', REPO)})")
    assert not (runs_of / "seed-1.ipynb").exists()
    assert [read_record(p)["seed"] for p in record_files(results)] == [0, 2]


@pytest.mark.slow  # starts a process
def test_the_fixture_skips_without_a_kernel(tmp_path, mnist_root):
    """(The fast tests of waiting and locks rely on it.) A batch whose records are all there
    starts no worker: skipping them takes no kernel."""
    shutil.copytree(FIXTURE, tmp_path / "results")
    done = helpers("run", "ws", "ws-aux", "--seeds", "0-1", "--results", tmp_path / "results",
                   "--runs", tmp_path / "runs", *FIXTURE_PARAMS, mnist_root=mnist_root)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["skipping 4 of 4 runs: their records are already there "
                                        "(--force redoes them)", "4 runs: 0 done, 4 skipped "
                                        "(record already there)"]
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # starts a process
def test_the_docs_examples_and_the_runners_own_files_leave_git_status_clean():
    """What the documented commands and the runner's defaults write (records folders of the
    examples and their summaries, the runs folder, the records folders' locks) is ignored by
    git: a newcomer's `git status` stays clean."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing for git status to show")
    import re

    docs = (REPO / "docs" / "running.md").read_text() + (REPO / "README.md").read_text()
    written = [f"{folder}/ws/seed-0.json" for folder in re.findall(r"--results (\S+)", docs)]
    written += [f"{folder}-report/report.html" for folder in re.findall(r"--results (\S+)", docs)]
    written += [os.path.normpath(f"notebooks/{folder}/ws/seed-0.json")
                for folder in re.findall(r"results_dir (\S+)", docs)]
    written += ["runs/ws/seed-0.ipynb", "runs/ws/seed-0.json", "runs/ws/seed-0.log", "runs/.lock",
                "results/.lock", "validation/.lock", "data/MNIST/raw/train-images-idx3-ubyte"]
    assert len(written) > 10
    shown = [path for path in written if subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", path], cwd=REPO).returncode != 0]
    assert not shown, f"git status would show {shown}"


@pytest.mark.slow
@pytest.mark.parametrize("deaths, starts", [(1, True), (2, False)])
def test_a_kernel_that_dies_starting_is_started_once_more(tmp_path, deaths, starts):
    """A kernel may find a port its manager chose already taken by another process
    (jupyter_client#154) and die starting: it is started once more, the first start's output
    kept in its log; one that dies again fails, not retried forever."""
    from jupyter_core.utils import run_sync

    from helpers.runs.execution import WarmKernel

    site, count = tmp_path / "site", tmp_path / "starts"
    site.mkdir()
    (site / "sitecustomize.py").write_text(  # runs in the kernel's Python before the kernel
        f"import os, pathlib\ncount = pathlib.Path({str(count)!r})\n"
        f"count.write_text(str(int(count.read_text() or 0) + 1) if count.exists() else '1')\n"
        f"if int(count.read_text()) <= {deaths}:\n"
        f"    print('died starting', flush=True)\n    os._exit(1)\n")
    kernel, log = WarmKernel(), tmp_path / "kernel.log"
    try:
        if starts:
            kernel.prepare(tmp_path, {"PYTHONPATH": str(site)}, log)
            assert run_sync(kernel.km.is_alive)()
        else:
            with pytest.raises(RuntimeError, match="died"):
                kernel.prepare(tmp_path, {"PYTHONPATH": str(site)}, log)
    finally:
        kernel.stop()
    assert count.read_text() == "2"
    assert log.read_text().count("died starting") == min(deaths, 2)


@pytest.mark.slow
def test_a_killed_kernel_is_refused_at_once_not_reset(tmp_path):
    """A stopping batch kills its kernels; a thread that then takes its next run fails it at
    once instead of resetting the dead kernel, which never answers (that wait was 20 s, and
    the batch's exit waited for it)."""
    from helpers.runs.execution import WarmKernel

    kernel = WarmKernel()
    try:
        kernel.prepare(tmp_path, {})
        kernel.prepare(tmp_path, {})  # alive: reset
        kernel.kill()
        with pytest.raises(RuntimeError, match="the kernel was killed"):
            kernel.prepare(tmp_path, {})
    finally:
        kernel.stop()
