"""Routes to faster trainings, each against the code as it runs: a profile, not a test.

    python benchmarks/routes.py [EXPERIMENT] [REPEATS] [--compile]   (default ws-aux 7)

For EXPERIMENT's network, built as a run builds it (channels-last on the CPU, 1 thread), prints
per route the CPU milliseconds of one training step (batch of the run) and of one evaluation of
1000 test pairs (as `training.predict` does it), medians of REPEATS interleaved rounds, their
ratio to the code as it runs, and whether the route changes any number: the parameters after
ten identical training steps and the evaluation logits are compared bit for bit. CPU time of
the calling thread (the one that computes, at 1 thread), not wall time: on a shared machine it
is what another process's load disturbs least. (Two threads per training: see the thread
layouts of `python -m helpers bench`.)

Routes: SGD with `foreach` or `fused`; batch norm folded into the convolutions and dense
layers for evaluation; the network in NCHW layout instead of channels-last; `nn.functional.unfold` and a matrix product instead of each
convolution; PyTorch's own convolutions instead of oneDNN's; `torch.compile`
(inductor) with `--compile` (its compile time, cold or from inductor's cache, is printed).
"""

import contextlib
import copy
import functools
import statistics
import sys
import time

import torch
from torch import nn

from helpers.bench import model_as_a_run_builds_it, training_step
from helpers.catalogue import experiments
from helpers.errors import UsageError
from helpers.science.training import make_optimizer


class UnfoldConv(nn.Module):
    """A convolution as unfold + matrix product: the same function, other float sums."""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        n, _, h, w = x.shape
        k = self.conv.kernel_size[0]
        columns = nn.functional.unfold(x, k)  # N x (C k k) x L
        out = self.conv.weight.flatten(1) @ columns + self.conv.bias[:, None]
        return out.view(n, -1, h - k + 1, w - k + 1).contiguous(memory_format=torch.channels_last)


def fold_batch_norm(model):
    """A copy of `model` for evaluation with each batch norm folded into the layer before it."""
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if isinstance(module, nn.Sequential):
            layers = list(module)
            for i, (layer, norm) in enumerate(zip(layers, layers[1:])):
                if isinstance(norm, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    fuse = (torch.nn.utils.fuse_conv_bn_eval if isinstance(layer, nn.Conv2d)
                            else torch.nn.utils.fuse_linear_bn_eval)
                    module[i], module[i + 1] = fuse(layer, norm), nn.Identity()
    return folded


def unfolded(model):
    copied = copy.deepcopy(model)
    for module in list(copied.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.Conv2d):
                setattr(module, name, UnfoldConv(child))
    return copied


@contextlib.contextmanager
def without_onednn():
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


def cpu_ms(function, repeats=1):
    """CPU milliseconds of this thread per call of `function`."""
    started = time.thread_time()
    for _ in range(repeats):
        function()
    return 1e3 * (time.thread_time() - started) / repeats


def main(experiment="ws-aux", repeats=7, compile_too=False):
    try:
        params = experiments.resolve(experiment, seed=0)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    reference = model_as_a_run_builds_it(params)
    test_pairs = torch.randn(1000, 2, 14, 14)

    def route(model=None, optimizer=None, evaluate=None, network=None,
              context=contextlib.nullcontext):
        """model: the parameters trained; network: what the step calls (model, or a compiled
        model); evaluate: model -> what evaluates; context: around every call."""
        model = copy.deepcopy(reference) if model is None else model
        return {"model": model, "network": model if network is None else network,
                "context": context, "evaluate": evaluate or (lambda m: m),
                "optimizer": optimizer or make_optimizer(params, model)}

    routes = {"as it runs": route()}
    for option in ("foreach", "fused"):
        model = copy.deepcopy(reference)
        routes[f"SGD {option}"] = route(model, torch.optim.SGD(model.parameters(), lr=params["lr"],
                                                                **{option: True}))
    if any(isinstance(m, nn.BatchNorm2d) for m in reference.modules()):
        routes["batch norm folded (evaluation)"] = route(evaluate=fold_batch_norm)
    routes["NCHW layout (not channels-last)"] = route(
        copy.deepcopy(reference).to(memory_format=torch.contiguous_format))
    routes["convolutions as unfold + matmul"] = route(unfolded(reference))
    routes["oneDNN off (ATen convolutions)"] = route(context=without_onednn)
    if compile_too:
        model = copy.deepcopy(reference)
        routes["torch.compile (inductor)"] = route(model, network=torch.compile(model),
                                                   evaluate=torch.compile)

    # exactness: the same ten steps on the same batch, then the logits of the test pairs
    batch = params["batch_size"]
    for r in routes.values():
        torch.manual_seed(1)  # the same batch and the same dropout masks for every route
        r["step"] = training_step(r["network"], r["optimizer"], batch)
        started = time.perf_counter()
        with r["context"]():
            r["model"].train()
            for _ in range(10):
                r["step"]()
            r["evaluator"] = r["evaluate"](r["model"])
            r["evaluation"] = functools.partial(predict_logits, r["evaluator"], r["model"],
                                                test_pairs)
            logits = r["evaluation"]()
        r["first"] = time.perf_counter() - started
        r["numbers"] = [logits, *(p.detach().clone() for p in r["model"].parameters())]
        r["step ms"], r["eval ms"] = [], []
    base = routes["as it runs"]
    for r in routes.values():
        r["exact"] = all(torch.equal(a, b) for a, b in zip(r["numbers"], base["numbers"]))
    for _ in range(repeats):  # interleaved, so a burst of load hits every route alike
        for r in routes.values():
            with r["context"]():
                r["model"].train()
                r["step ms"].append(cpu_ms(r["step"], 10))
                r["eval ms"].append(cpu_ms(r["evaluation"]))

    print(f"{experiment}: one training step (batch {batch}) and one evaluation of 1000 pairs, "
          f"CPU ms of the thread, median of {repeats} interleaved rounds")
    print(f"{'route':<33} {'step ms':>8} {'ratio':>6} {'eval ms':>8} {'ratio':>6}  numbers")
    step0, eval0 = (statistics.median(base[k]) for k in ("step ms", "eval ms"))
    for name, r in routes.items():
        step, evaluation = (statistics.median(r[k]) for k in ("step ms", "eval ms"))
        print(f"{name:<33} {step:8.2f} {step0 / step:6.2f} {evaluation:8.1f} "
              f"{eval0 / evaluation:6.2f}  {'unchanged' if r['exact'] else 'CHANGED'}")
    print("  (ratio: as it runs / the route; numbers: the weights after ten training steps and "
          "the evaluation logits, bit for bit)")
    if compile_too:
        print(f"  (torch.compile: its first ten steps and evaluation took "
              f"{routes['torch.compile (inductor)']['first']:.1f} s of wall time, compilation "
              f"included, against {base['first']:.1f} s as it runs)")


@torch.inference_mode()
def predict_logits(evaluator, model, pairs):
    """The logits of `pairs` in eval mode, 250 pairs at a time as `training.predict`."""
    model.eval()
    evaluator.eval()
    return torch.cat([evaluator(pairs[start:start + 250])["comparison"]
                      for start in range(0, pairs.size(0), 250)])


if __name__ == "__main__":
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    if set(flags) - {"--compile"} or len(arguments) > 2 or \
            (len(arguments) == 2 and not arguments[1].isdigit()):
        print("usage: python benchmarks/routes.py [EXPERIMENT] [REPEATS] [--compile]",
              file=sys.stderr)
        sys.exit(2)
    main(*arguments[:1], *[int(a) for a in arguments[1:2]], compile_too="--compile" in flags)
