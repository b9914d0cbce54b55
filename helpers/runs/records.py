"""Run records: one JSON file per (experiment, seed), written atomically, checked when read,
loaded as a table.

A record is `<results>/<experiment>/seed-<k>.json`. What it holds is declared once, below
(`RECORD` and the keys of its parts): every reader (the summary, the analysis, the runner) may
read any of it, so `validate` requires all of it, with numbers consistent with each other.
`load(folder)` is the one loader: every valid record, and every damaged one named with its
reason (never averaged in). The project's records folders take only the catalogue's own runs
(`check_admitted`).
"""

import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from .. import catalogue
from ..catalogue.parameters import PARAMETERS, RUN_ONLY, check
from ..errors import UsageError
from ..files import RESULTS, VALIDATION, atomic_write, relative

SCHEMA_VERSION = 3  # 2: `numerics` (science/numerics.py) replaces `versions`; 3: `budget`
NUMBER = (int, float)
# key -> type(s) of a valid record
RECORD = {
    "schema": int, "experiment": str, "seed": int, "params": dict, "n_train": int, "n_test": int,
    "train_errors": int, "test_errors": int, "train_error_rate": NUMBER, "test_error_rate": NUMBER,
    "history": list, "n_parameters": int, "seconds": NUMBER, "device": str, "numerics": dict,
    "budget": dict, "test_predictions": list, "test_digit_predictions": (list, type(None)),
}
# science.numerics.describe's keys (a test keeps them equal), training.training_budget's, and
# those of one history row (an epoch), with the digit losses of networks that have digit outputs
NUMERICS = ("python", "torch", "torchvision", "device", "gpu", "cudnn", "machine", "cpu",
            "cpu_flags", "caches", "capability", "threads", "pinned")
BUDGET = ("steps", "training_flops", "evaluation_flops")
HISTORY = ("epoch", "weight_comparison", "weight_digits", "loss", "loss_comparison",
           "train_errors_running", "test_errors")
DIGIT_LOSSES = ("loss_digit_first", "loss_digit_second")


def has_digit_outputs(params):
    """Whether the network of `params` recognises digits (all but the baseline; tested)."""
    return params["model"] != "baseline"


class DamagedRecord(Exception):
    """A record file that cannot be used (truncated, not JSON, wrong schema, impossible numbers)."""


class NewerRecord(DamagedRecord):
    """A record of a newer schema than this version reads: made by a newer version, so never
    replaced by this one without --force."""


def record_path(results_dir, experiment, seed):
    return Path(results_dir) / experiment / f"seed-{seed}.json"


def write_record(record, results_dir):
    """Write `record` atomically to its place under `results_dir`; return the path.
    DamagedRecord if it is not a valid record (a NaN, say: never written)."""
    record = {"schema": SCHEMA_VERSION, **record}
    validate(record)
    text = json.dumps(record, indent=1, allow_nan=False) + "\n"  # NaN is not JSON
    path = record_path(results_dir, record["experiment"], record["seed"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
    except OSError as error:
        raise UsageError(f"cannot write run records under {relative(results_dir)} "
                         f"({error.strerror}): choose a writable results folder") from None
    return path


def _not_finite(value, where):
    """The place (e.g. history[1].loss) of the first float in `value` that is not finite."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _not_finite(item, f"{where}[{key}]" if isinstance(key, int) else
                            f"{where}.{key}" if where else key)
        if found:
            return found
    return None


def _is_count(value, n):
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= n


def _lacks(mapping, keys, where):
    missing = [key for key in keys if key not in mapping]
    if missing:
        raise DamagedRecord(f"{where} lacks {', '.join(missing)}")


def _check_params(params):
    """Every run parameter, each exactly what `parameters.check` makes of it."""
    _lacks(params, PARAMETERS, "params")
    try:  # (a CUDA run's parameters are valid on a machine without CUDA too)
        checked = check({**params, "device": "cpu" if params["device"] == "cuda" else
                         params["device"]})
    except UsageError as error:
        raise DamagedRecord(f"params: {error}") from None
    for name, value in checked.items():
        if name != "device" and (value != params[name] or type(value) is not type(params[name])):
            raise DamagedRecord(f"params.{name} is {params[name]!r}, not a valid value "
                                f"({value!r})")


def validate(record):
    """DamagedRecord unless `record` is one that a run could have written: everything declared
    above, this schema, and numbers consistent with each other (whether its predictions were
    right needs the pairs: `check_against_pairs`)."""
    _lacks(record, RECORD, "the record")
    for key, kind in RECORD.items():
        if not isinstance(record[key], kind) or isinstance(record[key], bool):
            raise DamagedRecord(f"{key!r} has the wrong type")
    if record["schema"] != SCHEMA_VERSION:
        kind = NewerRecord if record["schema"] > SCHEMA_VERSION else DamagedRecord
        raise kind(f"schema {record['schema']}, this version reads {SCHEMA_VERSION}")
    where = _not_finite(record, "")
    if where:
        raise DamagedRecord(f"{where} is not a finite number")
    params = record["params"]
    _check_params(params)
    for key in ("experiment", "seed"):
        if params[key] != record[key]:
            raise DamagedRecord(f"its params say {key} {params[key]!r}, the record {record[key]!r}")
    _lacks(record["numerics"], NUMERICS, "numerics")
    _lacks(record["budget"], BUDGET, "budget")
    if not all(_is_count(record["budget"][key], math.inf) for key in BUDGET):
        raise DamagedRecord("budget holds a negative or non-integer count")
    for split in ("train", "test"):
        n, errors, rate = (record[f"n_{split}"], record[f"{split}_errors"],
                           record[f"{split}_error_rate"])
        if n != params["n_pairs"]:
            raise DamagedRecord(f"n_{split} {n} is not its params' n_pairs ({params['n_pairs']})")
        if not _is_count(errors, n):
            raise DamagedRecord(f"{split}_errors {errors} is not a count from 0 to n_{split} ({n})")
        if abs(rate - 100 * errors / n) > 1e-9:  # round-off only
            raise DamagedRecord(f"{split}_error_rate {rate:g} is not 100 * {split}_errors / "
                                f"n_{split} ({100 * errors / n:g})")
    if record["seconds"] < 0 or record["n_parameters"] < 1:
        raise DamagedRecord("negative seconds or no parameters")
    history, digits = record["history"], has_digit_outputs(params)
    if len(history) != params["epochs"]:
        raise DamagedRecord(f"{len(history)} epochs in its history, {params['epochs']} in its params")
    for epoch, row in enumerate(history, 1):
        if not isinstance(row, dict):
            raise DamagedRecord(f"history[{epoch - 1}] is not an epoch's row")
        _lacks(row, HISTORY + DIGIT_LOSSES * digits, f"history[{epoch - 1}]")
        if row["epoch"] != epoch or not (_is_count(row["test_errors"], record["n_test"]) and
                                         _is_count(row["train_errors_running"], record["n_train"])):
            raise DamagedRecord(f"history[{epoch - 1}] is not epoch {epoch}'s counts")
    if record["test_errors"] != history[-1]["test_errors"]:
        raise DamagedRecord(f"test_errors {record['test_errors']} is not its last epoch's "
                            f"({history[-1]['test_errors']})")
    predictions, pairs = record["test_predictions"], record["test_digit_predictions"]
    if len(predictions) != record["n_test"] or not all(_is_count(p, 1) for p in predictions):
        raise DamagedRecord(f"test_predictions is not n_test ({record['n_test']}) 0s and 1s")
    if digits != (pairs is not None) or digits and (len(pairs) != record["n_test"] or not all(
            isinstance(d, list) and len(d) == 2 and all(_is_count(x, 9) for x in d) for d in pairs)):
        raise DamagedRecord(f"test_digit_predictions is not {'n_test pairs of digits' if digits else 'null'}")


@lru_cache(maxsize=32)
def _test_targets(n_pairs, seed, validation, data_root):
    from ..science.data import generate_pair_sets, generate_validation_sets

    sets = (generate_validation_sets if validation else generate_pair_sets)(n_pairs, seed, data_root)
    return tuple(sets[4].tolist())


def check_against_pairs(record, data_root=None):
    """DamagedRecord unless `record`'s test errors are those of its predictions on its pairs
    (made again from MNIST: about a second for the first, milliseconds for the others)."""
    p = record["params"]
    targets = _test_targets(p["n_pairs"], p["seed"], p["evaluate_on"] == "validation", data_root)
    wrong = sum(a != b for a, b in zip(record["test_predictions"], targets))
    if wrong != record["test_errors"]:
        raise DamagedRecord(f"test_errors {record['test_errors']} is not the count of its wrong "
                            f"test_predictions ({wrong})")


def read_record(path):
    """The record at `path`; raises DamagedRecord if it cannot be used. A FIFO, folder or device
    there is never read (opened without waiting for a writer, then refused)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            kind = os.fstat(fd).st_mode
            if not stat.S_ISREG(kind):
                raise DamagedRecord(f"not a regular file ({file_kind(kind)})")
            record = json.loads(handle.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DamagedRecord(f"unreadable ({type(error).__name__})") from None
    if not isinstance(record, dict):
        raise DamagedRecord("not a JSON object")
    validate(record)
    if Path(path).name != f"seed-{record['seed']}.json" or Path(path).parent.name != record["experiment"]:
        raise DamagedRecord(f"holds {record['experiment']} seed {record['seed']}, "
                            f"not what its file name says")
    return record


def file_kind(mode):
    """What a `st_mode` that is not a regular file's is, in words."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def parameter_differences(recorded, asked):
    """'name X there, Y asked' for each parameter of `asked` that changes what a run computes
    (all but RUN_ONLY) and that `recorded` (a record's params) has otherwise."""
    return [f"{key} {recorded.get(key)!r} there, {value!r} asked" for key, value in asked.items()
            if key not in RUN_ONLY and recorded.get(key) != value]


def check_same_parameters(path, asked, fix):
    """UsageError when the valid record at `path` was made with other parameters than `asked`:
    skipping it would silently not run what was asked, replacing it would lose a result.
    `fix` ends the message. A missing or damaged record holds nothing to keep."""
    try:
        recorded = read_record(path)["params"]
    except DamagedRecord:
        return
    differ = parameter_differences(recorded, asked)
    if differ:
        raise UsageError(f"{relative(path)} was made with other parameters "
                         f"({'; '.join(differ[:3])}): {fix}")


def parse_seeds(text, most=10_000):
    """'0-9' | '0,3,5' | '0-2,7' -> sorted list of distinct seeds; UsageError if malformed,
    above torch's largest seed (2**64 - 1), or more than `most` (counted before any list)."""
    ranges = []
    for part in str(text).replace(" ", "").split(","):
        if not re.fullmatch(r"\d+(-\d+)?", part):
            raise UsageError(f"malformed seed list {text!r}: write seeds like 0-9, 0,3,5 or 0-2,7")
        first, _, last = part.partition("-")
        first, last = int(first), int(last or first)
        if last < first:
            raise UsageError(f"malformed seed list {text!r}: the range {part} runs backwards, "
                             f"write {last}-{first}")
        if last > 2 ** 64 - 1:
            raise UsageError(f"seed {last} is too large: seeds go from 0 to {2 ** 64 - 1} "
                             f"(2**64 - 1)")
        ranges.append((first, last))
    count, reached = 0, -1  # distinct seeds of the sorted, possibly overlapping ranges
    for first, last in sorted(ranges):
        count += max(0, last - max(first, reached + 1) + 1)
        reached = max(reached, last)
    if count > most:
        raise UsageError(f"--seeds {text} asks for {count:,} runs of each experiment: at most "
                         f"{most:,} in one batch; run the seeds in parts")
    return sorted({seed for first, last in ranges for seed in range(first, last + 1)})


def check_admitted(params, folder, fix):
    """UsageError unless a record of `params` may go into `folder`. The project's records
    folders (results/, validation/) hold what the publication counts: only a catalogue row's
    own runs (its parameters, one of its seeds), each in its row's folder. `fix` ends the
    message."""
    folder = Path(folder).resolve()
    if folder not in (RESULTS.resolve(), VALIDATION.resolve()):
        return
    name, seed = params["experiment"], params["seed"]
    own = catalogue.resolve(name, seed=seed)
    problems = [f"{key} {params.get(key)!r}, not {value!r}" for key, value in own.items()
                if key not in RUN_ONLY and params.get(key) != value]
    if seed not in parse_seeds(catalogue.get(name)["seeds"]):
        problems.append(f"seed {seed} outside its seeds {catalogue.get(name)['seeds']}")
    home = VALIDATION if own["evaluate_on"] == "validation" else RESULTS
    if folder != home.resolve():
        problems.append(f"its records go in {home.name}/")
    if problems:
        raise UsageError(f"{name} seed {seed} is not catalogue row {name}'s own run "
                         f"({'; '.join(problems[:3])}): {relative(folder)}/ holds only the "
                         f"catalogue's rows at their seeds; {fix}")


@dataclass
class Results:
    """Everything read from a results folder: the valid records, and (path, reason) for each
    damaged one."""
    folder: str
    records: list = field(default_factory=list)
    damaged: list = field(default_factory=list)

    @cached_property
    def frame(self):
        """One row per valid record (see `records_table`)."""
        return records_table(self.records)


def load(results_dir):
    """Every record under `results_dir` (a missing folder reads as an empty one). A record
    whose history and predictions are another seed's of its experiment (a copy) is damaged."""
    found, first = Results(str(results_dir)), {}
    for path in sorted(Path(results_dir).glob("*/seed-*.json"),
                       key=lambda p: (p.parent.name, p.stem.partition("-")[2].zfill(20))):
        try:
            record = read_record(path)
            copied = first.setdefault((record["experiment"], json.dumps(record["history"]),
                                       str(record["test_predictions"])), record["seed"])
            if copied != record["seed"]:
                raise DamagedRecord(f"a copy of seed {copied}'s record (its history and "
                                    f"predictions)")
            found.records.append(record)
        except DamagedRecord as why:
            found.damaged.append((path, str(why)))
    return found


def records_table(records):
    """One row per record: experiment, seed, error counts and rates, sizes, seconds, device,
    and every run parameter as `param.<name>`."""
    import pandas as pd  # here, not at the top: the runner reads records without it

    columns = ["experiment", "seed", "train_errors", "test_errors", "train_error_rate",
               "test_error_rate", "n_train", "n_test", "n_parameters", "seconds", "device"]
    rows = [{**{key: r[key] for key in columns}, **{f"param.{k}": v for k, v in r["params"].items()}}
            for r in records]
    return pd.DataFrame(rows, columns=columns if not rows else None)
