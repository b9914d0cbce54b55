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
                   "--report", mnist_root=mnist_root)
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
    # --report: the runner on the eight configurations, then the summary, from scratch
    assert re.search(r"^make report from scratch \(1 seed x 8 configurations, \d+ workers, "
                     r"then the summary\): [\d.]+ s \(runs [\d.]+ s, summary [\d.]+ s\)$",
                     out, re.M), out


def test_bench_rejects_an_unknown_configuration(capsys):
    assert main(["bench", "--experiments", "ws,nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown experiment 'nope'") and "\n" not in err


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
    # the same step as the benchmark counts, and the layers hold all of it but the tiny head
    assert float(step.group(1)) == round(train / steps / 1e6, 1)
    layers = sum(float(mflop) for *_, mflop in rows)
    assert 0.99 * float(step.group(1)) <= layers <= float(step.group(1))


def _digit_net_layers(name):
    from helpers.catalogue import experiments
    from helpers.science.models import build_model

    return list(build_model(experiments.resolve(name, seed=0)).digit_net.layers)


def test_layer_times_rejects_an_unknown_experiment_in_one_line(mnist_root):
    done = _layer_times("nope", mnist_root=mnist_root)
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown experiment 'nope'")
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
