"""Run records, `<results>/<experiment>/seed-<k>.json`: what one holds, declared once (any
reader may read any of it, so `validate` requires all of it); written atomically; loaded. A
training that diverged is recorded too: an outcome of its parameters, not a run to redo."""

import contextlib
import json
import math
import os
import stat
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import chain
from pathlib import Path

from ..catalogue.experiments import get, resolve
from ..catalogue.parameters import PARAMETERS, check, differing, has_digit_outputs
from ..catalogue.seeds import parse_seeds
from ..errors import UsageError
from ..files import RESULTS, VALIDATION, atomic_write, relative, still_locked
from ..science.losses import WEIGHTINGS

SCHEMA_VERSION = 3  # 2: `numerics` (science/numerics.py) replaces `versions`; 3: `budget`
NUMBER = (int, float)
RECORD = {  # key -> type(s)
    "schema": int, "experiment": str, "seed": int, "params": dict, "n_train": int, "n_test": int,
    "train_errors": int, "test_errors": int, "train_error_rate": NUMBER, "test_error_rate": NUMBER,
    "history": list, "n_parameters": int, "seconds": NUMBER, "device": str, "numerics": dict,
    "budget": dict, "test_predictions": list, "test_digit_predictions": (list, type(None)),
}
# A diverged training's record has, in place of its FINAL keys, `diverged`: the epoch, the step
# (counted from 1 over the whole training) and that step's loss (its text: nan, inf, -inf, or a
# finite one at an epoch's last step, after which the network's outputs were not finite); its
# history holds the epochs before.
FINAL = ("train_errors", "test_errors", "train_error_rate", "test_error_rate",
         "test_predictions", "test_digit_predictions")
DIVERGED = {**{key: kind for key, kind in RECORD.items() if key not in FINAL}, "diverged": dict}
# The keys of science.numerics.describe (tested), of training.training_budget, of an epoch of
# the history, and the digit losses of the networks with digit outputs (all but the baseline).
NUMERICS = ("python", "torch", "torchvision", "device", "gpu", "cudnn", "machine", "cpu",
            "cpu_flags", "caches", "capability", "threads", "pinned")
BUDGET = ("steps", "training_flops", "evaluation_flops")
HISTORY = ("epoch", "weight_comparison", "weight_digits", "loss", "loss_comparison",
           "train_errors_running", "test_errors")
DIGIT_LOSSES = ("loss_digit_first", "loss_digit_second")


class DamagedRecord(Exception):
    """A record file that cannot be used (unreadable, incomplete, impossible numbers)."""


class KeptRecord(DamagedRecord):
    """A file no run replaces unasked: a newer version's record, one this user cannot read, a
    file that is no regular file."""


def record_path(results_dir, experiment, seed):
    return Path(results_dir) / experiment / f"seed-{seed}.json"


def parameter_differences(recorded, asked):
    """'name X there, Y asked' for each of `differing`."""
    return [f"{key} {recorded.get(key)!r} there, {asked[key]!r} asked"
            for key in differing(recorded, asked)]


def check_own_run(params, folder, fix):
    """UsageError unless a record of `params` may go into `folder`: the project's records
    folders, which the publication reads, take only a row's own runs (its parameters, one of
    its seeds), each in its row's folder. `fix` ends the message."""
    if Path(folder).resolve() not in (RESULTS.resolve(), VALIDATION.resolve()):
        return
    name, seed = params["experiment"], params["seed"]
    own = resolve(name, seed=seed)
    problems = [f"{key} {params.get(key)!r}, not {own[key]!r}" for key in differing(params, own)]
    if seed not in parse_seeds(get(name)["seeds"]):
        problems.append(f"seed {seed} outside its seeds {get(name)['seeds']}")
    home = VALIDATION if own["evaluate_on"] == "validation" else RESULTS
    if Path(folder).resolve() != home.resolve():
        problems.append(f"its records go in {home.name}/")
    if problems:
        raise UsageError(f"{name} seed {seed} is not catalogue row {name}'s own run "
                         f"({'; '.join(problems[:3])}): {relative(folder)}/ holds only the "
                         f"catalogue's rows at their seeds; {fix}")


def identity(path):
    """What is at `path` now (None: nothing), to tell whether it changed since."""
    with contextlib.suppress(OSError):
        return (found := os.stat(path, follow_symlinks=False)).st_ino, found.st_mtime_ns


def publish(record, results_dir, lock, before, fix):
    """Write `record` into the records folder `results_dir` (the one way a run's record gets
    there) -> its path; UsageError (ending with `fix`) unless this process still holds its `lock`
    (lock_folder's) and the record's place is as it was (`before`: its `identity` then)."""
    still_locked(lock, results_dir, fix)
    path = record_path(results_dir, record["experiment"], record["seed"])
    if identity(path) != before:
        raise UsageError(f"{relative(path)} was written by another process meanwhile: {fix}")
    return write_record(record, results_dir)


def write_record(record, results_dir):
    """Write `record` atomically under `results_dir` -> its path. DamagedRecord if it is not
    valid (a NaN, say); UsageError if it cannot be written."""
    record = {"schema": SCHEMA_VERSION, **record}
    validate(record)
    path = record_path(results_dir, record["experiment"], record["seed"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(record, indent=1, allow_nan=False) + "\n")
    except OSError as error:
        raise UsageError(f"cannot write run records under {relative(results_dir)} "
                         f"({error.strerror}): choose a writable results folder") from None
    return path


def _not_finite(value, where=""):
    """The place (e.g. history[1].loss) of the first float in `value` that is not finite."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    return next((found for key, item in items if (found := _not_finite(
        item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else key))),
        None)


def _counts(values, n):  # each an int (not a bool) from 0 to n: a few passes in C
    return not values or (set(map(type, values)) == {int} and 0 <= min(values)
                          and max(values) <= n)


def _float_text(text):  # str() of a float, as a diverged training's record holds its loss
    with contextlib.suppress(ValueError, TypeError):
        return str(float(text)) == text


def _require(condition, why):
    if not condition:
        raise DamagedRecord(why)


def _has(mapping, keys, where):
    _require(set(keys) <= set(mapping), f"{where} lacks "
             f"{', '.join(key for key in keys if key not in mapping)}")


def validate(record):
    """DamagedRecord unless `record` holds all of the declaration (a diverged one's), in this
    schema, each parameter as `parameters.check` makes it, with numbers consistent with each
    other and with its params (its history's loss weights and losses, its budget's steps)."""
    diverged = "diverged" in record
    declared = DIVERGED if diverged else RECORD
    _has(record, declared, "the record")
    for key, kind in declared.items():
        _require(isinstance(record[key], kind) and not isinstance(record[key], bool),
                 f"{key!r} has the wrong type")
    schema = f"schema {record['schema']}, this version reads {SCHEMA_VERSION}"
    if record["schema"] > SCHEMA_VERSION:
        raise KeptRecord(f"was made by a newer version ({schema}): update helpers")
    _require(record["schema"] == SCHEMA_VERSION, schema)
    try:  # the C encoder finds a non-finite float at once; the walk only says where
        json.dumps(record, allow_nan=False)
    except ValueError:
        raise DamagedRecord(f"{_not_finite(record)} is not a finite number") from None
    params, history = record["params"], record["history"]
    _has(params, PARAMETERS, "params")
    try:  # (a CUDA run's parameters are valid where there is no CUDA too)
        checked = check({**params, "device": "cpu" if params["device"] == "cuda" else
                         params["device"]})
    except UsageError as error:
        raise DamagedRecord(f"params: {error}") from None
    for name, value in checked.items():
        _require(name == "device" or (value == params[name] and type(value) is type(params[name])),
                 f"params.{name} is {params[name]!r}, not a valid value ({value!r})")
    for key in ("experiment", "seed"):
        _require(params[key] == record[key],
                 f"its params say {key} {params[key]!r}, the record {record[key]!r}")
    _has(record["numerics"], NUMERICS, "numerics")
    _has(record["budget"], BUDGET, "budget")
    budget, steps = record["budget"], -(-params["n_pairs"] // params["batch_size"]) * params["epochs"]
    _require(_counts([budget[key] for key in BUDGET], math.inf) and budget["steps"] == steps and
             budget["training_flops"] % steps == 0 < budget["training_flops"] and
             budget["evaluation_flops"] % params["epochs"] == 0 < budget["evaluation_flops"],
             f"budget is not {steps} steps of its params with their FLOPs")
    if diverged:
        at = record["diverged"]
        _has(at, ("epoch", "step", "loss"), "diverged")
        epoch, step, per_epoch = at["epoch"], at["step"], steps // params["epochs"]
        _require(len(at) == 3 and _counts([epoch, step], steps) and 0 < epoch <= params["epochs"]
                 and (epoch - 1) * per_epoch < step <= epoch * per_epoch and _float_text(
                     at["loss"]) and (not math.isfinite(float(at["loss"])) or step == epoch *
                                      per_epoch and float(at["loss"]) >= 0), "diverged is not "
                 "an epoch, a step of it and a loss not finite (or the epoch's last)")
        _require(not set(FINAL) & set(record), "it diverged, yet has final errors or predictions")
    for split in ("train", "test"):
        n = record[f"n_{split}"]
        _require(n == params["n_pairs"], f"n_{split} {n} is not its params' n_pairs "
                                         f"({params['n_pairs']})")
        if diverged:
            continue
        errors, rate = record[f"{split}_errors"], record[f"{split}_error_rate"]
        _require(_counts([errors], n), f"{split}_errors {errors} is not a count from 0 to n_{split} "
                                    f"({n})")
        _require(abs(rate - 100 * errors / n) < 1e-9, f"{split}_error_rate {rate:g} is not 100 "
                                                      f"* {split}_errors / n_{split}")
    _require(record["seconds"] >= 0 and record["n_parameters"] >= 1,
             "negative seconds or no parameters")
    epochs = record["diverged"]["epoch"] - 1 if diverged else params["epochs"]
    _require(len(history) == epochs, f"{len(history)} epochs in its history, not "
             f"{epochs} ({'the epochs before it diverged' if diverged else 'its params'})")
    weights = WEIGHTINGS[params["weighting"]].weights
    for epoch, row in enumerate(history):
        _require(isinstance(row, dict), f"history[{epoch}] is not an epoch's row")
        losses = HISTORY[3:5] + DIGIT_LOSSES * has_digit_outputs(params)
        _has(row, HISTORY + losses[2:], f"history[{epoch}]")
        _require(row["epoch"] == epoch + 1 and _counts([row["test_errors"]], record["n_test"])
                 and _counts([row["train_errors_running"]], record["n_train"]),
                 f"history[{epoch}] is not epoch {epoch + 1}'s counts")
        w = weights(epoch, params["epochs"], params["alpha"])
        _require((row["weight_comparison"], row["weight_digits"]) == w, f"history[{epoch}]'s loss "
                 f"weights are not weighting {params['weighting']}'s {w} (alpha {params['alpha']})")
        loss, *terms = [row[key] for key in losses]
        _require(all(type(t) in NUMBER and t >= 0 for t in [loss, *terms]) and math.isclose(
            loss, w[0] * terms[0] + w[1] * sum(terms[1:]), rel_tol=1e-6, abs_tol=1e-12),
            f"history[{epoch}].loss is not its weighted loss terms")
    if diverged:
        return
    _require(record["test_errors"] == history[-1]["test_errors"], f"test_errors "
             f"{record['test_errors']} is not its last epoch's ({history[-1]['test_errors']})")
    predictions, digits = record["test_predictions"], record["test_digit_predictions"]
    _require(len(predictions) == record["n_test"] and _counts(predictions, 1),
             f"test_predictions is not n_test ({record['n_test']}) 0s and 1s")
    _require(digits is not None and len(digits) == record["n_test"] and all(
        type(d) is list and len(d) == 2 for d in digits) and _counts(list(chain.from_iterable(digits)), 9)
        if has_digit_outputs(params) else digits is None, "test_digit_predictions is not "
        f"{'n_test pairs of digits' if has_digit_outputs(params) else 'null'}")


@lru_cache(maxsize=32)
def _test_targets(n_pairs, seed, validation, data_root):
    from ..science.data import generate_pair_sets, generate_validation_sets

    sets = (generate_validation_sets if validation else generate_pair_sets)(n_pairs, seed, data_root)
    return tuple(sets[4].tolist())


@lru_cache(maxsize=256)
def _n_parameters(shapes):
    import torch

    from ..science.models import build_model, count_parameters

    with torch.random.fork_rng(devices=[]):  # (the caller's random state stays as it was)
        return count_parameters(build_model(json.loads(shapes)))


def check_against_pairs(record, data_root=None):
    """DamagedRecord unless (valid) `record` is what its params make: its test errors its
    predictions' on its pairs (made again; a diverged one has none), its parameter count its
    network's."""
    p = record["params"]
    shapes = {key: value for key, value in p.items() if key not in ("experiment", "seed")}
    count = _n_parameters(json.dumps(shapes, sort_keys=True))
    _require(record["n_parameters"] == count, f"n_parameters {record['n_parameters']} is not its "
                                              f"network's ({count})")
    if "diverged" in record:
        return
    targets = _test_targets(p["n_pairs"], p["seed"], p["evaluate_on"] == "validation", data_root)
    wrong = sum(a != b for a, b in zip(record["test_predictions"], targets))
    _require(wrong == record["test_errors"], f"test_errors {record['test_errors']} is not the "
                                             f"count of its wrong test_predictions ({wrong})")


def read_record(path):
    """The record at `path`, or DamagedRecord (KeptRecord: a file not to replace unasked); a
    FIFO there is refused, never waited on."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            kind = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO"}.get(stat.S_IFMT(mode))
            if not stat.S_ISREG(mode):
                raise KeptRecord(f"is not a regular file ({kind or 'a device'}): move it away")
            text = handle.read().decode("utf-8")
        record = json.loads(text)
    except PermissionError as error:
        raise KeptRecord(f"cannot be read by this user ({error.strerror}): fix its "
                         f"permissions") from None
    except (OSError, ValueError, RecursionError) as error:  # (a 5000-digit number, deep nesting)
        raise DamagedRecord(f"unreadable ({type(error).__name__})") from None
    _require(isinstance(record, dict), "not a JSON object")
    validate(record)
    _require(Path(path) == record_path(Path(path).parent.parent, record["experiment"],
                                       record["seed"]),
             f"holds {record['experiment']} seed {record['seed']}, not what its file name says")
    return record


@dataclass
class Results:
    folder: str
    records: list = field(default_factory=list)  # the valid ones of trainings that ended
    damaged: list = field(default_factory=list)  # (path, why) of each other file
    diverged: list = field(default_factory=list)  # the valid ones of trainings that diverged

    @cached_property
    def frame(self):
        return records_table(self.records)


def load(results_dir, experiments=None, data_root=None):
    """Every record under `results_dir` (a missing folder reads as an empty one), or those of
    `experiments` only, each checked (`read_record`, `check_against_pairs`): what the runner
    skips and what the publication counts. One whose history, or whose (varied) predictions,
    are another seed's of its experiment is a copy: damaged (trainings that diverged in their
    first epoch have the same empty history)."""
    found, first = Results(str(results_dir)), {}
    for path in sorted((path for name in experiments or ["*"]
                        for path in Path(results_dir).glob(f"{name}/seed-*.json")),
                       key=lambda p: (p.parent.name, p.stem[5:].zfill(20))):
        try:
            record = read_record(path)
            predictions = record.get("test_predictions"), record.get("test_digit_predictions")
            for what, key in (("history", record["history"]), ("predictions", predictions)):
                if not (key if what == "history" else key[0]):  # (a diverged training's)
                    continue
                seed = first.setdefault((record["experiment"], json.dumps(key)), record["seed"])
                _require(seed == record["seed"] or len(set(predictions[0])) < 2 * (
                    what == "predictions"), f"a copy of seed {seed}'s record (its {what})")
            check_against_pairs(record, data_root)
            (found.diverged if "diverged" in record else found.records).append(record)
        except DamagedRecord as why:
            found.damaged.append((path, str(why)))
    return found


def records_table(records):
    """One row per record: its counts, rates, sizes, seconds, device, and `param.<name>`s."""
    import pandas as pd  # here, not at the top: the runner reads records without it

    columns = ["experiment", "seed", "train_errors", "test_errors", "train_error_rate",
               "test_error_rate", "n_train", "n_test", "n_parameters", "seconds", "device"]
    rows = [{**{key: r[key] for key in columns}, **{f"param.{k}": v for k, v in r["params"].items()}}
            for r in records]
    return pd.DataFrame(rows, columns=columns if not rows else None)
