"""Training with the report's protocol and its auxiliary-loss weightings.

The protocol (REFERENCE.md, Table I): SGD, learning rate 0.1, mini-batch 100, 25 epochs,
cross-entropy, the training pairs reshuffled each epoch. The auxiliary losses are the
cross-entropies of the two digit outputs against the digit classes.
"""

import ctypes
import platform
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

from .data import generate_pair_sets, standardise
from .models import build_model, count_parameters


def loss_weights(weighting, alpha, epoch, epochs):
    """(weight of L_cmp, weight of L_A + L_B) at 0-based `epoch` of `epochs`.

    none: L_cmp alone.  eq1: L_cmp + L_A + L_B.  eq2: L_cmp + alpha (L_A + L_B).
    eq3: (1 - a) L_cmp + a (L_A + L_B), with a decaying linearly from 1 at the first epoch
    to `alpha` at the last (this project's reading of the report's eq. 3).
    """
    if weighting == "none":
        return 1.0, 0.0
    if weighting == "eq1":
        return 1.0, 1.0
    if weighting == "eq2":
        return 1.0, alpha
    if weighting == "eq3":
        progress = epoch / (epochs - 1) if epochs > 1 else 1.0
        a = 1.0 + (alpha - 1.0) * progress
        return 1.0 - a, a
    raise ValueError(f"unknown weighting {weighting!r}")


def keep_freed_memory():
    """Ask glibc to keep freed memory for reuse instead of handing it back to the kernel.

    A training allocates and frees the same few-MB activation tensors thousands of times.
    By default glibc maps big blocks fresh from the kernel and returns them on free, so
    every step pays ~4000 page faults (a fifth of a training's time went to the kernel).
    Numbers are unaffected. A no-op off glibc (macOS, Windows, musl).
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


def make_optimizer(params, model):
    if params["optimizer"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=params["lr"])
    return torch.optim.SGD(model.parameters(), lr=params["lr"])


@torch.inference_mode()
def predict(model, pairs, batch_size=1000):
    """Predicted comparison (N) and, where the network has them, digits (N x 2), in eval mode."""
    model.eval()
    comparison, digits = [], []
    for start in range(0, pairs.size(0), batch_size):
        out = model(pairs[start:start + batch_size])
        comparison.append(out["comparison"].argmax(1))
        if "digits" in out:
            digits.append(out["digits"].argmax(2))
    return torch.cat(comparison), (torch.cat(digits) if digits else None)


def count_errors(model, pairs, target):
    predicted, _ = predict(model, pairs)
    return int((predicted != target).sum())


def train(model, params, train_set, test_set, generator):
    """Train `model` in place; return the per-epoch history (loss terms, train and test errors).

    `train_set`/`test_set` are (input, target, classes) on the model's device. The test pairs
    are only measured, never used for any decision.
    """
    train_input, train_target, train_classes = train_set
    optimizer = make_optimizer(params, model)
    n, batch_size = train_input.size(0), params["batch_size"]
    history = []
    for epoch in range(params["epochs"]):
        w_cmp, w_aux = loss_weights(params["weighting"], params["alpha"], epoch, params["epochs"])
        sums = {"loss": 0.0, "loss_comparison": 0.0, "loss_digit_first": 0.0,
                "loss_digit_second": 0.0}
        running_errors = 0
        model.train()
        order = torch.randperm(n, generator=generator).to(train_input.device)
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            out = model(train_input[batch])
            loss_cmp = F.cross_entropy(out["comparison"], train_target[batch])
            terms = {"loss_comparison": loss_cmp}
            loss = w_cmp * loss_cmp
            if "digits" in out:
                classes = train_classes[batch]
                terms["loss_digit_first"] = F.cross_entropy(out["digits"][:, 0], classes[:, 0])
                terms["loss_digit_second"] = F.cross_entropy(out["digits"][:, 1], classes[:, 1])
                if w_aux:
                    loss = loss + w_aux * (terms["loss_digit_first"] + terms["loss_digit_second"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            size = batch.numel()
            running_errors += int((out["comparison"].detach().argmax(1) != train_target[batch]).sum())
            sums["loss"] += loss.item() * size
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
        row["test_errors"] = count_errors(model, *test_set[:2])
        history.append(row)
    return history


def library_versions():
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__}


def run_experiment(params):
    """Data, network, training and evaluation for one checked parameter dict -> run record.

    Same seed, same machine: the same pairs, initialisation, batch order and numbers. The
    caller's global random state is left as it was.
    """
    device = resolve_device(params["device"])
    keep_freed_memory()
    seed = params["seed"]
    train_input, train_target, train_classes, test_input, test_target, test_classes = \
        generate_pair_sets(params["n_pairs"], seed, params["data_root"])
    train_input, test_input = standardise(train_input, test_input)
    train_set = tuple(t.to(device) for t in (train_input, train_target, train_classes))
    test_set = tuple(t.to(device) for t in (test_input, test_target, test_classes))

    # CPU results depend on the thread count (oneDNN splits reductions by thread), so it is a
    # run parameter: the same record comes out whatever process or worker layout runs it.
    threads_before = torch.get_num_threads()
    torch.set_num_threads(params["threads"])
    try:
        started = time.perf_counter()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)  # initialisation and dropout masks
            model = build_model(params).to(device)
            batch_order = torch.Generator().manual_seed(seed)
            history = train(model, params, train_set, test_set, batch_order)
        seconds = time.perf_counter() - started
        train_errors = count_errors(model, *train_set[:2])
        predicted, predicted_digits = predict(model, test_set[0])
    finally:
        torch.set_num_threads(threads_before)

    record = {
        "experiment": params["experiment"],
        "seed": seed,
        "params": dict(params),
        "n_train": int(train_target.numel()),
        "n_test": int(test_target.numel()),
        "train_errors": train_errors,
        "test_errors": history[-1]["test_errors"],
        "n_parameters": count_parameters(model),
        "seconds": round(seconds, 3),
        "device": str(device),
        "versions": library_versions(),
        "history": history,
        # predictions on the test pairs, for error analysis without retraining
        "test_predictions": predicted.cpu().tolist(),
        "test_digit_predictions": (predicted_digits.cpu().tolist()
                                   if predicted_digits is not None else None),
    }
    record["train_error_rate"] = 100.0 * record["train_errors"] / record["n_train"]
    record["test_error_rate"] = 100.0 * record["test_errors"] / record["n_test"]
    return record
