"""`python -m helpers bench` runs end to end and prints every row it promises (no timing is
asserted: speed is what the benchmark prints, not what a test checks)."""

import os
import re
import subprocess
import sys

import pytest

from runner_tools import REPO, environment, helpers

from helpers.cli import main


@pytest.mark.slow
def test_bench_quick_prints_every_row(mnist_root):
    done = helpers("bench", "--quick", "--experiments", "ws-plain,ws-aux", "--seeds", "0",
                   mnist_root=mnist_root)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"^matmul float32, 1 thread: [\d.]+ GFLOP/s", out, re.M)
    for name in ("ws-plain", "ws-aux"):  # seconds, train GFLOP, eval GFLOP, GFLOP/s, efficiency
        assert re.search(rf"^{name} +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+$", out, re.M), out
    assert "baseline " not in out  # only the configurations asked for
    # --quick times the runner at the report's layout only (all cores, 1 thread per worker)
    cores = os.cpu_count()
    all_cores = f"{cores} worker{'s' * (cores > 1)} x 1 thread"
    assert re.search(rf"^  {all_cores} +[\d.]+ runs/min .* runs/min .* [\d.]+$", out, re.M), out
    assert re.search(r"^  1 worker x 2 threads +[\d.]+ runs/min \([\d.]+ s\)$", out, re.M)
    if cores > 1:
        assert re.search(r"^  1 worker x 1 thread +[\d.]+ runs/min \([\d.]+ s\)$", out, re.M)
    assert re.search(r"^thread layout chosen: \d workers? x \d threads?", out, re.M)
    assert "make report" not in out  # only with --report


@pytest.mark.slow
def test_bench_report_runs_the_report_then_the_summary_from_scratch(tmp_path, monkeypatch,
                                                                    mnist_root):
    """--report: `python -m helpers run report`, then `python -m helpers summary` over its
    records, on a copy of the notebooks (the summary executes them in place), into temporary
    folders, after the same trainings alone in a pool. The commands and the pool are recorded
    here instead of run: the runner and the summary have tests of their own, and together
    they take minutes."""
    from helpers import bench
    from helpers.catalogue import experiments

    calls, lines, pooled = [], [], []
    monkeypatch.setenv("MNIST_ROOT", mnist_root)

    def pool_wall(runs, workers, overrides, results_dir=None):
        pooled.append((runs, workers))
        return 30.0, 50.0

    monkeypatch.setattr(bench, "pool_wall", pool_wall)
    monkeypatch.setattr(bench.tempfile, "TemporaryDirectory", lambda: _Kept(tmp_path))

    def helpers_wall(*arguments):
        calls.append([str(a) for a in arguments])
        if arguments[0] == "summary":  # the notebooks it would execute are there
            assert sorted(p.name for p in (tmp_path / "notebooks").glob("*.ipynb")) == \
                sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
        return 100.0 if arguments[0] == "run" else 10.0

    monkeypatch.setattr(bench, "helpers_wall", helpers_wall)
    bench.bench(("ws-plain",), repeats=1, overrides={"epochs": 1, "n_pairs": 100},
                runner_seeds=[0, 1], runner=False, report=True, out=lines.append)
    cores = os.cpu_count()
    assert calls == [
        ["run", "report", "--seeds", "0,1", "--workers", str(cores), "--results",
         str(tmp_path / "results"), "--runs", str(tmp_path / "runs"), "-p", "epochs", "1",
         "-p", "n_pairs", "100"],
        ["summary", "--results", str(tmp_path / "results"), "--output", str(tmp_path / "report"),
         "--notebooks", str(tmp_path / "notebooks"), "-p", "epochs", "1", "-p", "n_pairs", "100"]]
    assert pooled[-1] == ([(name, seed) for name in experiments.expand(["report"])
                           for seed in (0, 1)], cores)
    assert len(pooled[-1][0]) == 16
    assert lines[-2:] == [
        f"make report from scratch (2 seeds x 8 configurations, {cores} workers, then the "
        f"summary): 110.0 s (runs 100.0 s, summary 10.0 s)",
        f"  its 16 trainings alone, as helpers.train calls in a pool of {cores} fresh processes:"
        f" 30.0 s, of which the trainings' own seconds 50.0 s ({50 / cores:.1f} s a process)"]


class _Kept:
    """A TemporaryDirectory that is `folder`, kept for the test to look into."""

    def __init__(self, folder):
        self.folder = folder

    def __enter__(self):
        return str(self.folder)

    def __exit__(self, *exc):
        return False


def test_bench_rejects_an_unknown_configuration(capsys):
    assert main(["bench", "--experiments", "ws,nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown experiment 'nope'") and "\n" not in err


@pytest.mark.parametrize("p, fragment", [
    (["-p", "seed", "3"], "-p seed is not allowed here"),
    (["-p", "experiment", "ws"], "-p experiment is not allowed here"),
    (["-p", "lr", "1", "-p", "lr", "2"], "-p lr is given twice"),
    (["-p", "threads", "2"], "-p threads is the benchmark's to set")])
def test_bench_refuses_what_it_sets_itself_in_one_line(p, fragment, capsys):
    assert main(["bench", "--experiments", "ws", *p]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {fragment}") and "\n" not in err, err


def test_bench_times_no_training_that_diverged():
    """A rate from a training cut short (its seconds, the whole budget's FLOPs) would be no rate:
    the benchmark refuses it in one line."""
    from helpers import UsageError, bench

    record = {"experiment": "ws-aux", "seed": 0, "seconds": 0.1,
              "diverged": {"epoch": 1, "step": 5, "loss": "nan"}}
    with pytest.raises(UsageError, match=r"^ws-aux seed 0 diverged with these parameters \(the "
                                         r"loss became nan at epoch 1 \(step 5\)\): the benchmark"):
        bench.whole(record)
    assert bench.whole({**{k: v for k, v in record.items() if k != "diverged"}}) == 0.1


def _layer_times(*args, mnist_root):
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "layer_times.py"), *args],
                          cwd=REPO, env=environment(mnist_root), capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_layer_times_accounts_for_every_flop_of_a_step(mnist_root):
    from helpers import bench
    from helpers.catalogue import experiments

    done = _layer_times("ws-aux", "3", mnist_root=mnist_root)
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"^(\w+)\(.*?\) +\d+x[\dx]+ +([\d.]+) +([\d.]+) +([\d.]+)", done.stdout,
                      re.M)
    # every layer of the shared digit network, in order
    assert [name for name, *_ in rows] == [type(layer).__name__ for layer in
                                           _digit_net_layers("ws-aux")]
    step = re.search(r"^whole training step: [\d.]+ ms, ([\d.]+) MFLOP", done.stdout, re.M)
    params = experiments.resolve("ws-aux", seed=0)
    train, _ = bench.training_flops(params)
    steps = params["epochs"] * params["n_pairs"] // params["batch_size"]
    # the same step as the benchmark counts, and the layers hold all of it but the comparison
    # head (20 -> 512 -> 2 on each pair: under 2% of a step)
    assert float(step.group(1)) == round(train / steps / 1e6, 1)
    layers = sum(float(mflop) for *_, mflop in rows)
    assert 0.98 * float(step.group(1)) <= layers <= float(step.group(1))


def _digit_net_layers(name):
    from helpers.catalogue import experiments
    from helpers.science.models import build_model

    return list(build_model(experiments.resolve(name, seed=0)).digit_net.layers)


def test_layer_times_rejects_an_unknown_experiment_in_one_line(mnist_root):
    done = _layer_times("nope", mnist_root=mnist_root)
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown experiment 'nope'")
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
