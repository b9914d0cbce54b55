"""Where one whole training's time goes, by kind of operation: a profile, not a test.

    python benchmarks/profile_training.py [EXPERIMENT]   (default ws-aux)

Trains EXPERIMENT for seed 0 as a run does (`helpers.train`: 1 thread, channels-last), once
under `torch.profiler` and once without it, and prints the self CPU time of every operator,
grouped by what it does, as a share of the profiled training; the part of the wall time that
no operator accounts for (Python, dispatch, autograd's bookkeeping, the profiler's own
overhead); and, from the run without the profiler, the share of the per-epoch evaluations of
the test pairs (`training.predict`, timed around each call).
"""

import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

import helpers
from helpers.errors import UsageError
from helpers.science import training

# kind of work -> the operators (self time) that do it
KINDS = {
    "convolutions, forward": ["aten::mkldnn_convolution"],
    "convolutions, backward": ["aten::convolution_backward"],
    "batch norm, forward": ["aten::native_batch_norm"],
    "batch norm, backward": ["aten::native_batch_norm_backward"],
    "max-pool, forward": ["aten::max_pool2d_with_indices"],
    "max-pool, backward (and zero fills)": ["aten::max_pool2d_with_indices_backward",
                                            "aten::fill_", "aten::zero_"],
    "dropout masks (bernoulli_) and products": ["aten::bernoulli_", "aten::mul", "aten::div_"],
    "dense layers (addmm, mm)": ["aten::addmm", "aten::mm"],
    "ReLU, forward and backward": ["aten::clamp_min", "aten::threshold_backward"],
    "SGD step and zero_grad": ["Optimizer.step#SGD.step", "Optimizer.zero_grad#SGD.zero_grad",
                               "aten::add_"],
}


def main(experiment="ws-aux"):
    try:
        helpers.resolve(experiment)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    helpers.train(experiment, 0, epochs=1)  # warm-up: MNIST read, kernels chosen
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        started = time.perf_counter()
        helpers.train(experiment, 0)
        wall = time.perf_counter() - started
    totals = {event.key: event.self_cpu_time_total / 1e6 for event in profiled.key_averages()}
    print(f"{experiment}, seed 0, 1 thread: one training under torch.profiler, {wall:.2f} s "
          f"of wall time; self CPU time by kind of operation")
    print(f"{'kind':<42} {'s':>6} {'share':>6}")
    counted = 0.0
    for kind, names in KINDS.items():
        seconds = sum(totals.pop(name, 0.0) for name in names)
        counted += seconds
        print(f"{kind:<42} {seconds:6.3f} {seconds / wall:6.1%}")
    rest = sum(totals.values())
    largest = sorted(totals, key=totals.get, reverse=True)[:4]
    print(f"{'other operators':<42} {rest:6.3f} {rest / wall:6.1%}  (largest: "
          f"{', '.join(f'{name} {totals[name]:.3f}' for name in largest)})")
    outside = wall - counted - rest
    print(f"{'outside operators (Python, dispatch)':<42} {outside:6.3f} {outside / wall:6.1%}")

    evaluations = []
    predict = training.predict

    def timed_predict(*args, **kwargs):
        started = time.perf_counter()
        try:
            return predict(*args, **kwargs)
        finally:
            evaluations.append(time.perf_counter() - started)

    training.predict = timed_predict
    try:
        record = helpers.train(experiment, 0)
    finally:
        training.predict = predict
    epochs = record["params"]["epochs"]
    print(f"without the profiler: {record['seconds']:.2f} s, of which the {epochs} evaluations "
          f"of the test pairs {sum(evaluations[:epochs]):.2f} s "
          f"({sum(evaluations[:epochs]) / record['seconds']:.0%})")


if __name__ == "__main__":
    if len(sys.argv) > 2:
        print("usage: python benchmarks/profile_training.py [EXPERIMENT]", file=sys.stderr)
        sys.exit(2)
    main(*sys.argv[1:])
