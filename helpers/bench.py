"""`python -m helpers bench`: how fast trainings and the notebook runner are on this machine.

Prints, in one run, medians over `--repeats`:
- the dense matrix-multiply GFLOP/s of one CPU thread (float32, the best of three sizes),
  the yardstick of the efficiency below;
- per configuration: seconds per training (the record's `seconds`: 25 epochs of training
  and the per-epoch evaluation of the test pairs), its FLOPs counted with
  `torch.utils.flop_counter.FlopCounterMode` (one training step times the number of steps,
  plus one evaluation forward pass times the number of epochs; convolutions and matrix
  products only, as that counter does), the achieved GFLOP/s and efficiency = achieved /
  matmul GFLOP/s;
- runs per minute of in-process trainings (no notebooks) with 1 worker x 1 thread,
  1 worker x 2 threads and 2 workers x 1 thread: the thread layout to choose;
- the overhead of the notebook runner: wall time of `python -m helpers run EXPERIMENT
  --seeds S --force` (temporary folders) against the same trainings called as
  `helpers.train` in a pool with the same number of worker processes; their ratio (at all
  cores: the median of `--repeats` pairs measured back to back);
- with `--report`: the wall time of `make report` from scratch (the runner on the report's
  eight configurations, then the summary), into temporary folders, after that of its
  trainings alone in a pool of fresh processes (the floor of its runs).

A benchmark, not a test: the numbers depend on the machine and on what else runs on it.
"""

import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from .errors import UsageError, diverged_at
from .science.numerics import cpu_model

CONFIGURATIONS = ("baseline", "ws-plain", "ws", "ws-aux")


def matmul_gflops(threads, repeats, sizes=(256, 512, 1024)):
    """Best over `sizes` of the median float32 n x n matmul rate -> (GFLOP/s, {n: GFLOP/s})."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rates = {}
        for n in sizes:
            a, b = torch.randn(n, n), torch.randn(n, n)
            calls = max(1, int(2e9 / (2 * n ** 3)))  # about 2 GFLOP per timing
            a @ b  # warm-up: MKL picks its kernel
            times = []
            for _ in range(max(3, repeats)):
                started = time.perf_counter()
                for _ in range(calls):
                    a @ b
                times.append((time.perf_counter() - started) / calls)
            rates[n] = 2 * n ** 3 / statistics.median(times) / 1e9
    finally:
        torch.set_num_threads(before)
    return max(rates.values()), rates


def model_as_a_run_builds_it(params):
    """The network of `params` for seed 0 on the CPU, with the run's thread count and its
    allocator setting (no page faults from memory handed back and forth): what the benchmark
    scripts time."""
    import torch

    from .science.models import build_model
    from .science.training import keep_freed_memory, to_device

    torch.set_num_threads(params["threads"])
    keep_freed_memory()
    torch.manual_seed(0)
    return to_device(build_model(params), torch.device("cpu"))


def training_step(model, optimizer, batch):
    """A function doing one training step of `model` on a random batch of `batch` pairs, with
    the loss of a run (`losses.loss_terms`, the comparison and both digits weighted 1): what the
    benchmark counts and `benchmarks/layer_times.py` times."""
    import torch

    from .science import training

    return training.training_step(model, optimizer, torch.randn(batch, 2, 14, 14),
                                  torch.randint(0, 2, (batch,)), torch.randint(0, 10, (batch, 2)))


def training_flops(params):
    """(training FLOPs, evaluation FLOPs) of one run with `params` (as its record holds them)."""
    from .science.training import training_budget

    budget = training_budget(params)
    return budget["training_flops"], budget["evaluation_flops"]


def _train(name, seed, overrides, results_dir):
    """One training in a pool worker, written like the notebooks write it."""
    from . import train
    from .runs.records import write_record

    record = train(name, seed, **overrides)
    if results_dir:
        write_record(record, results_dir)
    return whole(record)


def whole(record):
    """The seconds of a training that ran to its end; UsageError for one that diverged, whose
    seconds and FLOPs would make no rate."""
    if "diverged" in record:
        raise UsageError(f"{record['experiment']} seed {record['seed']} diverged with these "
                         f"parameters ({diverged_at(record['diverged'])}): the benchmark times "
                         f"whole trainings, so give parameters that train")
    return record["seconds"]


def pool_wall(runs, workers, overrides, results_dir=None):
    """(wall seconds, the sum of the trainings' own seconds) of `helpers.train(name, seed)` for
    every (name, seed) of `runs` in `workers` fresh processes."""
    started = time.perf_counter()
    # spawn, not fork: a fork of a process that has run OpenMP threads can hang.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        seconds = list(pool.map(_train, *zip(*runs), [overrides] * len(runs),
                                [results_dir] * len(runs)))
    return time.perf_counter() - started, sum(seconds)


def helpers_wall(*arguments):
    """Wall seconds of `python -m helpers ARGUMENTS`; RuntimeError if it fails."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "helpers", *map(str, arguments)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"python -m helpers {arguments[0]} failed (exit {done.returncode}): "
                           f"{done.stderr.strip().splitlines()[-1:]}")
    return wall


def _run_options(seeds, workers, overrides, folder):
    return ["--seeds", ",".join(map(str, seeds)), "--workers", workers,
            "--results", Path(folder) / "results", "--runs", Path(folder) / "runs",
            *[item for key, value in overrides.items() for item in ("-p", key, value)]]


def runner_wall(name, seeds, workers, overrides, folder):
    """Wall seconds of `python -m helpers run` for these runs (temporary folders, --force)."""
    return helpers_wall("run", name, "--force", *_run_options(seeds, workers, overrides, folder))


def report_walls(seeds, workers, overrides, folder):
    """Wall seconds of what `make report` does, from scratch, into `folder`: the runner on the
    report's eight configurations, then the summary (on a copy of the notebooks, which it
    executes in place). -> (run seconds, summary seconds)."""
    from .files import NOTEBOOKS

    folder = Path(folder)
    shutil.copytree(NOTEBOOKS, folder / "notebooks")
    return (helpers_wall("run", "report", *_run_options(seeds, workers, overrides, folder)),
            helpers_wall("summary", "--results", folder / "results", "--output",
                         folder / "report", "--notebooks", folder / "notebooks",
                         *[item for key, value in overrides.items() for item in ("-p", key, value)]))


def bench(configurations=CONFIGURATIONS, repeats=3, overrides=None, runner_experiment="ws-aux",
          runner_seeds=tuple(range(10)), runner="all", report=False, out=print):
    """Print the figures (see the module's docstring). `runner`: "all" times the notebook
    runner at 1 worker and at all cores, True only at all cores, False not at all. `report`:
    also time `make report` from scratch (the runner on the eight configurations, seeds
    `runner_seeds`, then the summary)."""
    import torch

    from . import train
    from .catalogue import experiments

    from .science import PROGRESS_VARIABLE

    os.environ[PROGRESS_VARIABLE] = "0"  # the benchmark's output is its figures
    overrides = dict(overrides or {})
    threads = 1
    out(f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; python {platform.python_version()}, torch {torch.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}")
    out(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        f"(a shared machine: every figure below is noisy)")
    peak, by_size = matmul_gflops(threads, repeats)
    out(f"matmul float32, {threads} thread: {peak:.1f} GFLOP/s (median of {max(3, repeats)}; "
        + ", ".join(f"n={n}: {rate:.1f}" for n, rate in by_size.items()) + ")")

    params = {name: experiments.resolve(name, seed=0, threads=threads, **overrides)
              for name in configurations}
    first = params[configurations[0]]
    out(f"trainings: {first['epochs']} epochs, {first['n_pairs']} pairs, batch "
        f"{first['batch_size']}, {threads} thread, in this process; median of {repeats}")
    seconds = {name: [] for name in configurations}
    for name in configurations:  # warm-up: MNIST into the cache, kernels chosen
        train(name, 0, **{**overrides, "epochs": 1, "threads": threads})
    for _ in range(repeats):  # round robin, so a burst of load hits every configuration alike
        for name in configurations:
            seconds[name].append(whole(train(name, 0, **overrides)))
    out(f"{'configuration':<14} {'s/training':>10} {'train GFLOP':>11} {'eval GFLOP':>10} "
        f"{'GFLOP/s':>8} {'efficiency':>10}")
    for name in configurations:
        train, evaluation = training_flops(params[name])
        median = statistics.median(seconds[name])
        rate = (train + evaluation) / median / 1e9
        out(f"{name:<14} {median:>10.2f} {train / 1e9:>11.1f} {evaluation / 1e9:>10.1f} "
            f"{rate:>8.1f} {rate / peak:>10.2f}")
    out("  (FLOPs: convolutions and matrix products, forward + backward of every step, plus "
        "one evaluation of the test pairs per epoch; GFLOP/s = both / s/training)")

    seeds = list(runner_seeds)
    cores = os.cpu_count() or 1
    out(f"throughput and runner overhead, {runner_experiment} x {len(seeds)} seeds "
        f"(records into temporary folders):")
    out(f"  {'layout':<22} {'helpers.train pool':>22} {'python -m helpers run':>26} {'overhead':>9}")
    pool_walls = {}
    for workers, per_worker in dict.fromkeys([(1, 1), (1, 2), (cores, 1)]):
        layout = (f"{workers} worker{'s' * (workers > 1)} x {per_worker} thread"
                  f"{'s' * (per_worker > 1)}")
        run_overrides = {**overrides, "threads": per_worker}
        # the runner at the report's thread count (records depend on it); --quick: only at
        # the report's layout, all cores
        timed = per_worker == threads and (runner == "all" or (runner and workers == cores))
        # at all cores (the report's layout), `repeats` interleaved pairs: pool, runner, ...
        pairs = repeats if timed and workers == cores else 1
        pools, notebooks = [], []
        for _ in range(pairs):
            with tempfile.TemporaryDirectory() as folder:
                pools.append(pool_wall([(runner_experiment, seed) for seed in seeds], workers,
                                       run_overrides, Path(folder) / "pool")[0])
                if timed:
                    notebooks.append(runner_wall(runner_experiment, seeds, workers, overrides,
                                                 folder))
        pool = statistics.median(pools)
        pool_walls[layout] = pool
        line = f"  {layout:<22} {_rate(len(seeds), pool):>22}"
        if notebooks:
            ratios = [n / p for n, p in zip(notebooks, pools)]
            line += (f" {_rate(len(seeds), statistics.median(notebooks)):>26} "
                     f"{statistics.median(ratios):>9.2f}")
            if pairs > 1:
                line += f"  (median of {pairs}: {', '.join(f'{r:.2f}' for r in ratios)})"
        out(line)
    out(f"thread layout chosen: {min(pool_walls, key=pool_walls.get)} (the fastest above; "
        f"records depend on threads, so it stays a run parameter, default 1)")
    out("  (overhead = wall of python -m helpers run / wall of the same trainings as "
        "helpers.train calls in a pool of as many fresh worker processes, measured back to back)")

    if report:
        runs = [(name, seed) for name in experiments.expand(["report"]) for seed in seeds]
        with tempfile.TemporaryDirectory() as folder:
            # its trainings alone first: what the runs would take with no kernel or notebook
            pool, trained = pool_wall(runs, cores, overrides, Path(folder) / "pool")
            run_wall, summary_wall = report_walls(seeds, cores, overrides, folder)
        out(f"make report from scratch ({len(seeds)} seed{'s' * (len(seeds) != 1)} x "
            f"{len(runs) // len(seeds)} configurations, {cores} workers, then the summary): "
            f"{run_wall + summary_wall:.1f} s (runs {run_wall:.1f} s, summary "
            f"{summary_wall:.1f} s)")
        out(f"  its {len(runs)} trainings alone, as helpers.train calls in a pool of {cores} "
            f"fresh processes: {pool:.1f} s, of which the trainings' own seconds {trained:.1f} s"
            f" ({trained / cores:.1f} s a process)")


def _rate(runs, seconds):
    return f"{runs / seconds * 60:.1f} runs/min ({seconds:.1f} s)"
