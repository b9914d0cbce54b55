"""Training with the report's protocol, and one run from its parameters to its record.

The protocol (docs/protocol.md): SGD, learning rate 0.1, mini-batches of 100, 25 epochs,
cross-entropy, the training pairs reshuffled each epoch; the loss and its weightings are in
`losses`. `run_experiment(params)` does a whole run: pairs, network, training, evaluation.
"""

import ctypes
import functools
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

from ..errors import TrainingDiverged, UsageError, diverged_at
from . import PROGRESS_VARIABLE, numerics
from .data import generate_pair_sets, generate_validation_sets, standardise
from .losses import loss_terms, loss_weights
from .models import build_model, count_parameters


def keep_freed_memory():
    """Ask glibc to keep freed memory for reuse instead of handing it back to the kernel.

    A training allocates and frees the same few-MB activation tensors thousands of times; by
    default glibc maps big blocks fresh from the kernel and returns them on free, so every step
    pays page faults (docs/speed.md). Numbers are unaffected. A no-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        libc.mallopt(m_mmap_threshold, 1 << 30)
        libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):
        pass


def resolve_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def to_device(model, device):
    """`model` on `device`; on the CPU in channels-last layout (N x H x W x C in memory).

    oneDNN then convolves without reordering to and from its blocked layout, and batch norm,
    ReLU and max-pool run vectorised over the channels (docs/speed.md). The layout changes the
    order of float additions, hence a seed's numbers (every committed record was made this
    way). Inputs need no conversion: the first convolution's output follows its weight's
    layout. On a GPU cuDNN's defaults are kept.
    """
    layout = torch.channels_last if device.type == "cpu" else torch.preserve_format
    return model.to(device, memory_format=layout)


def make_optimizer(params, model):
    """Adam, or SGD (with Nesterov momentum when `momentum` > 0); L2 `weight_decay` for both."""
    if params["optimizer"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=params["lr"],
                                weight_decay=params["weight_decay"])
    return torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=params["momentum"],
                           nesterov=params["momentum"] > 0, weight_decay=params["weight_decay"])


def make_scheduler(params, optimizer, steps_per_epoch):
    """None for a constant learning rate; for `onecycle`, torch's one-cycle policy stepped after
    every mini-batch: warm up from lr/25 to `lr` over the first quarter of the steps, then anneal
    (cosine) to almost 0, so the last epochs average the weights at a small step size. With
    `momentum` > 0 the momentum cycles between 0.95 and 0.85 against it (torch's default, which
    then replaces the `momentum` value); plain SGD (momentum 0) stays plain.
    Tiny test runs: the warm-up takes at least 2 steps, and fewer than 3 steps in all keep the
    learning rate constant (torch's policy needs both phases)."""
    total = params["epochs"] * steps_per_epoch
    if params["schedule"] == "constant" or total < 3:
        return None
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=params["lr"], total_steps=total,
                                               pct_start=max(0.25, 2 / total),
                                               cycle_momentum=params["momentum"] > 0)


def augmentation_of(params):
    """The random-affine ranges of the run, or None when it trains on the pairs as they are."""
    ranges = {name: params[f"augment_{name}"] for name in ("shift", "rotation", "scale")}
    return ranges if any(ranges.values()) else None


def random_affine(pairs, generator, background, shift=0.0, rotation=0.0, scale=0.0):
    """Each image of each pair moved by its own random affine map, drawn uniformly: a translation
    of up to `shift` pixels in x and y, a rotation of up to `rotation` degrees, a zoom of up to
    1 +- `scale`. Uncovered pixels take the `background` value (a blank pixel, standardised).

    Hand-written with affine_grid/grid_sample because torchvision's RandomAffine draws one
    map per call, i.e. per batch, not per image.
    """
    n = pairs.size(0)
    images = pairs.reshape(2 * n, 1, *pairs.shape[2:])

    def uniform():  # one draw in [-1, 1) per image
        return torch.rand(2 * n, generator=generator).to(pairs.device) * 2 - 1

    angle = uniform() * math.radians(rotation)
    zoom = 1 + uniform() * scale
    dx, dy = (uniform() * 2 * shift / pairs.size(3), uniform() * 2 * shift / pairs.size(2))
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, dx], 1), torch.stack([sin, cos, dy], 1)], 1)
    grid = F.affine_grid(theta, images.shape, align_corners=False)
    moved = F.grid_sample(images - background, grid, align_corners=False) + background
    return moved.view_as(pairs)


@torch.inference_mode()
def predict(model, pairs, batch_size=250):
    """Predicted comparison (N) and, where the network has them, digits (N x 2), in eval mode.

    250 pairs at a time: where freed memory goes back to the OS (off glibc, without
    `keep_freed_memory`), a batch of 1000 pairs maps its 18 MB of activations afresh on every
    call, twice as slow; with it, the chunk size makes no difference (docs/speed.md).
    In eval mode chunks of 100 or more pairs give exactly the outputs of one batch (tested;
    much smaller chunks take other matrix-product kernels on some CPUs).
    FloatingPointError if an output is not finite: the argmax of a NaN is no prediction.
    """
    model.eval()
    comparison, digits = [], []
    for start in range(0, pairs.size(0), batch_size):
        out = model(pairs[start:start + batch_size])
        if not all(bool(value.isfinite().all()) for value in out.values()):
            raise FloatingPointError("the network's outputs are not finite")
        comparison.append(out["comparison"].argmax(1))
        if "digits" in out:
            digits.append(out["digits"].argmax(2))
    return torch.cat(comparison), (torch.cat(digits) if digits else None)


def count_errors(model, pairs, target):
    predicted, _ = predict(model, pairs)
    return int((predicted != target).sum())


def train(model, params, train_set, test_set, generator):
    """Train `model` in place -> (the per-epoch history: loss terms, train and test errors;
    the predictions of the last epoch's evaluation of the test pairs, as `predict` returns them).
    TrainingDiverged as soon as the loss, or at an epoch's end an output of the network on the
    test pairs, is not finite (no NaN ends in a history, no network gone NaN is measured).

    `train_set`/`test_set` are (input, target, classes) on the model's device. The test pairs
    are only measured, never used for any decision.
    """
    train_input, train_target, train_classes = train_set
    optimizer = make_optimizer(params, model)
    n, batch_size = train_input.size(0), params["batch_size"]
    steps_per_epoch = math.ceil(n / batch_size)
    scheduler = make_scheduler(params, optimizer, steps_per_epoch)
    augmentation = augmentation_of(params)
    background = train_input.min()  # standardised blank pixel (MNIST's 0)
    history = []
    progress = _progress_bar(params)

    def diverged(epoch, start, loss_value):  # where, from the step that starts at pair `start`
        at = {"epoch": epoch + 1, "step": epoch * steps_per_epoch + start // batch_size + 1,
              "loss": str(loss_value)}  # (steps counted from 1)
        return TrainingDiverged(f"{diverged_at(at)} of {params['experiment']} seed "
                                f"{params['seed']} (lr {params['lr']:g}): lower lr", at, history)

    for epoch in progress:
        w_cmp, w_aux = loss_weights(params["weighting"], params["alpha"], epoch, params["epochs"])
        sums = {"loss": 0.0, "loss_comparison": 0.0, "loss_digit_first": 0.0,
                "loss_digit_second": 0.0}
        running_errors = 0
        model.train()
        order = torch.randperm(n, generator=generator).to(train_input.device)
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            inputs = train_input[batch]
            if augmentation:
                inputs = random_affine(inputs, generator, background, **augmentation)
            out = model(inputs)
            loss, terms = loss_terms(out, train_target[batch], train_classes[batch],
                                     (w_cmp, w_aux), params["label_smoothing"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            size = batch.numel()
            running_errors += int((out["comparison"].detach().argmax(1) != train_target[batch]).sum())
            loss_value = loss.item()  # (the checks read numbers only: none of a run changes)
            if not math.isfinite(loss_value):
                raise diverged(epoch, start, loss_value)
            sums["loss"] += loss_value * size
            for name, value in terms.items():
                sums[name] += value.item() * size
        row = {"epoch": epoch + 1, "weight_comparison": w_cmp, "weight_digits": w_aux}
        row.update({name: total / n for name, total in sums.items()})
        if "digits" not in out:
            del row["loss_digit_first"], row["loss_digit_second"]
        # The train error of the epoch is counted on the fly (train mode, as the batches go by):
        # a second pass in eval mode would cost as much as the training itself. The final
        # train error of the record is measured in eval mode.
        row["train_errors_running"] = running_errors
        try:
            predictions = predict(model, test_set[0])
        except FloatingPointError:  # the last step left the network's numbers not finite
            raise diverged(epoch, n - 1, loss_value) from None
        row["test_errors"] = int((predictions[0] != test_set[1]).sum())
        history.append(row)
        progress.set_postfix(loss=f"{row['loss']:.3f}", test_errors=row["test_errors"])
    progress.close()
    return history, predictions


def count_flops(function):
    """FLOPs that `function()` does, as `torch.utils.flop_counter` counts them: convolutions and
    matrix products, forward and backward (batch norm, pooling and the like count nothing)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


# Parameters that cannot change a run's shapes, hence its FLOPs.
_NOT_SHAPES = ("experiment", "seed", "evaluate_on", "device", "threads", "data_root")


def training_budget(params):
    """{"steps", "training_flops", "evaluation_flops"} of one run with `params`: its optimiser
    steps, their FLOPs (one step counted on a batch of zeros, times the steps) and those of the
    per-epoch evaluation of the test pairs. FLOPs depend on shapes only, so a copy of the network
    is counted, once per process for the parameters that shape it; the caller's random state
    and the run's network are left untouched."""
    shapes = {name: value for name, value in params.items() if name not in _NOT_SHAPES}
    return dict(_budget(json.dumps(shapes, sort_keys=True)))


@functools.lru_cache(maxsize=64)
def _budget(shapes_json):
    params = json.loads(shapes_json)
    n, batch = params["n_pairs"], params["batch_size"]
    steps = math.ceil(n / batch) * params["epochs"]
    with torch.random.fork_rng(devices=[]):
        model = build_model(params)
        optimizer = make_optimizer(params, model)
        zeros = torch.zeros(batch, 2, 14, 14), *(torch.zeros(batch, *k, dtype=torch.long)
                                                for k in ((), (2,)))
        step_flops = count_flops(training_step(model, optimizer, *zeros))
        model.eval()
        with torch.inference_mode():
            evaluation = count_flops(lambda: model(torch.zeros(n, 2, 14, 14)))
    return tuple({"steps": steps, "training_flops": step_flops * steps,
                  "evaluation_flops": evaluation * params["epochs"]}.items())


def training_step(model, optimizer, pairs, target, classes):
    """One training step on these pairs, as a function: the loss of a run with the comparison
    and both digits weighted 1 (what `training_budget` counts and the benchmarks time)."""
    def step():
        loss, _ = loss_terms(model(pairs), target, classes, weights=(1.0, 1.0))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _progress_bar(params):
    """The epochs of a training under a progress bar: a widget in Jupyter, a line on a terminal;
    none where no terminal watches (a script's log), nor when $HELPERS_PROGRESS is 0."""
    from tqdm.auto import tqdm

    # disable=None: tqdm turns itself off when its stream is not a terminal (in Jupyter the
    # widget is always shown)
    off = True if os.environ.get(PROGRESS_VARIABLE) == "0" else None
    return tqdm(range(params["epochs"]), desc=f"{params['experiment']} seed {params['seed']}",
                unit="epoch", leave=False, disable=off)


def run_experiment(params):
    """Data, network, training and evaluation for one checked parameter dict -> run record
    (a diverged training's says where it diverged, in place of final errors and predictions).

    Same seed, same machine: the same pairs, initialisation, batch order and numbers. The
    caller's global random state is left as it was.
    """
    if params["threads"] > (os.cpu_count() or 1):  # (torch's thread pool would kill the process)
        raise UsageError(f"threads {params['threads']} is more than the {os.cpu_count()} cores "
                         f"here: give at most -p threads {os.cpu_count()}")
    device = resolve_device(params["device"])
    keep_freed_memory()
    seed = params["seed"]
    # evaluate_on="validation" swaps the test pairs for pairs of unused MNIST training images
    pair_sets = generate_validation_sets if params["evaluate_on"] == "validation" \
        else generate_pair_sets
    train_input, train_target, train_classes, test_input, test_target, test_classes = \
        pair_sets(params["n_pairs"], seed, params["data_root"])
    train_input, test_input = standardise(train_input, test_input)
    train_set = tuple(t.to(device) for t in (train_input, train_target, train_classes))
    test_set = tuple(t.to(device) for t in (test_input, test_target, test_classes))

    # CPU results depend on the thread count (oneDNN splits reductions by thread), so it is a
    # run parameter: the same record comes out whatever process or worker layout runs it.
    threads_before = torch.get_num_threads()
    torch.set_num_threads(params["threads"])
    try:
        started = time.perf_counter()
        # On a GPU, cuDNN would choose convolution algorithms by timing them, some of which
        # add in a varying order: fixed, deterministic ones keep a seed's numbers repeatable.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
                torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
            torch.manual_seed(seed)  # initialisation and dropout masks
            model = to_device(build_model(params), device)
            batch_order = torch.Generator().manual_seed(seed)
            try:
                history, (predicted, predicted_digits) = train(model, params, train_set,
                                                               test_set, batch_order)
                diverged = None
            except TrainingDiverged as error:  # an outcome of these parameters: recorded
                history, diverged = error.history, error.diverged
        seconds = time.perf_counter() - started
        train_errors = None if diverged else count_errors(model, *train_set[:2])
    finally:
        torch.set_num_threads(threads_before)

    record = {
        "experiment": params["experiment"],
        "seed": seed,
        "params": dict(params),
        "n_train": int(train_target.numel()),
        "n_test": int(test_target.numel()),
        **({} if diverged else {"train_errors": train_errors,
                                "test_errors": history[-1]["test_errors"]}),
        "n_parameters": count_parameters(model),
        "budget": training_budget(params),
        "seconds": round(seconds, 3),
        "device": str(device),
        "numerics": numerics.describe(device, params["threads"]),
        "history": history,
    }
    if diverged:  # no final errors nor predictions: where it diverged instead
        return {**record, "diverged": diverged}
    # predictions on the test pairs, for error analysis without retraining
    record["test_predictions"] = predicted.cpu().tolist()
    record["test_digit_predictions"] = (predicted_digits.cpu().tolist()
                                        if predicted_digits is not None else None)
    record["train_error_rate"] = 100.0 * record["train_errors"] / record["n_train"]
    record["test_error_rate"] = 100.0 * record["test_errors"] / record["n_test"]
    return record
