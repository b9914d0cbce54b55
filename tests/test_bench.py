"""`python -m helpers bench` runs end to end and prints every row it promises (no timing is
asserted: speed is what the benchmark prints, not what a test checks)."""

import os
import re

from helpers.cli import main
from runner_tools import helpers


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
