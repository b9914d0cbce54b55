"""Where a training step's time goes, layer by layer: a profile, not a test.

    python benchmarks/layer_times.py [EXPERIMENT] [REPEATS]   (default ws-aux 200)

Builds EXPERIMENT's network as a run builds it (channels-last on the CPU, 1 thread), feeds
each layer of its digit network (or of the baseline's two stacks) the activations of one
training batch, and prints per layer the median forward and backward milliseconds, its
FLOPs (`torch.utils.flop_counter`: convolutions and matrix products only) and their rate,
then the whole training step (forward, losses, backward, SGD step) timed as one. Layers that
the FLOP count does not credit (batch norm, max-pool, dropout) show where a step's time
goes without FLOPs, which is what keeps the efficiency of `python -m helpers bench` down.
Unlike `torch.profiler`, nothing here adds per-call overhead to the smallest operations.
"""

import os
import statistics
import sys
import time

from helpers.catalogue import experiments
from helpers.errors import UsageError
from helpers.science.numerics import cpu_model


ATTRIBUTES = ("in_channels", "out_channels", "num_features", "in_features", "out_features", "p")


def median_ms(function, repeats):
    for _ in range(3):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times)


def layers_and_input(model, pairs):
    """The layers a batch goes through in order, and the input of the first."""
    if hasattr(model, "digit_net"):  # the shared network sees both images of each pair
        return list(model.digit_net.layers), pairs.reshape(-1, 1, 14, 14)
    if hasattr(model, "features"):
        return list(model.features) + list(model.classifier), pairs
    print(f"error: {type(model).__name__} has neither a digit_net nor features: "
          f"layer_times.py knows the report's networks and best", file=sys.stderr)
    sys.exit(2)


def main(experiment="ws-aux", repeats=200):
    try:
        params = experiments.resolve(experiment, seed=0)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    # torch only now: a mistyped name is told at once (the catalogue needs no torch)
    import torch

    from helpers.bench import model_as_a_run_builds_it, training_step
    from helpers.science.training import count_flops, make_optimizer

    model = model_as_a_run_builds_it(params).train()
    batch = params["batch_size"]
    pairs = torch.randn(batch, 2, 14, 14)
    print(f"{cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}; "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"{experiment}: one training step, batch {batch}, {params['threads']} thread, "
          f"median of {repeats}")
    print(f"{'layer':<34} {'input':<18} {'fwd ms':>7} {'bwd ms':>7} {'MFLOP':>7} {'GFLOP/s':>8}")
    layers, activation = layers_and_input(model, pairs)
    total_fwd = total_bwd = 0.0
    for layer in layers:
        inputs = activation.detach().requires_grad_(layer is not layers[0])  # as in training
        output = layer(inputs)
        gradient = torch.randn_like(output)
        wrt = [t for t in [inputs, *layer.parameters()] if t.requires_grad]
        forward = median_ms(lambda: layer(inputs), repeats)
        both = median_ms(lambda: torch.autograd.grad(layer(inputs), wrt, gradient), repeats) \
            if wrt else forward
        count = count_flops(lambda: layer(inputs).backward(gradient)) if wrt else 0
        backward = max(0.0, both - forward)
        total_fwd, total_bwd = total_fwd + forward, total_bwd + backward
        rate = f"{count / both / 1e6:8.1f}" if count else f"{'':8}"
        sizes = [str(getattr(layer, a)) for a in ATTRIBUTES if hasattr(layer, a)]
        name = f"{type(layer).__name__}({', '.join(sizes)})"
        print(f"{name:<34} {'x'.join(map(str, inputs.shape)):<18} {forward:7.3f} {backward:7.3f} "
              f"{count / 1e6:7.1f} {rate}")
        activation = output.detach()
    print(f"{'sum of the layers':<53} {total_fwd:7.3f} {total_bwd:7.3f}")

    step = training_step(model, make_optimizer(params, model), batch)
    whole, count = median_ms(step, repeats), count_flops(step)
    print(f"whole training step: {whole:.3f} ms, {count / 1e6:.1f} MFLOP, "
          f"{count / whole / 1e6:.1f} GFLOP/s")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if len(arguments) > 2 or (len(arguments) == 2 and not arguments[1].isdigit()):
        print("usage: python benchmarks/layer_times.py [EXPERIMENT] [REPEATS]", file=sys.stderr)
        sys.exit(2)
    main(*arguments[:1], *[int(a) for a in arguments[1:2]])
