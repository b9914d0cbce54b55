"""Run records: one JSON file per (experiment, seed), written atomically, checked when read,
loaded as a table.

A record is `<results>/<experiment>/seed-<k>.json`. `load(folder)` is the one loader: every
valid record, and every damaged one named with its reason (never averaged in).
"""

import json
import math
import os
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..catalogue.parameters import RUN_ONLY
from ..errors import UsageError
from ..files import atomic_write, relative
from ..science.mnist import MAX_PAIRS

SCHEMA_VERSION = 3  # 2: `numerics` (science/numerics.py) replaces `versions`; 3: `budget`
# key -> type(s) a valid record must have there
REQUIRED = {
    "schema": int, "experiment": str, "seed": int, "params": dict, "n_train": int, "n_test": int,
    "train_errors": int, "test_errors": int, "train_error_rate": (int, float),
    "test_error_rate": (int, float), "history": list, "n_parameters": int,
    "seconds": (int, float), "device": str, "numerics": dict, "budget": dict,
}


class DamagedRecord(Exception):
    """A record file that cannot be used (truncated, not JSON, wrong schema, impossible numbers)."""


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
        raise UsageError(f"cannot write run records under {results_dir} ({error.strerror}): "
                         f"choose a writable results folder") from None
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


def validate(record):
    """DamagedRecord unless `record` is one that a run could have written: the keys and types
    of REQUIRED, this schema, and numbers consistent with each other (what can be checked
    from the record alone; whether a prediction was right needs the data)."""
    for key, kind in REQUIRED.items():
        if key not in record:
            raise DamagedRecord(f"missing {key!r}")
        if not isinstance(record[key], kind) or isinstance(record[key], bool):
            raise DamagedRecord(f"{key!r} has the wrong type")
    if record["schema"] != SCHEMA_VERSION:
        raise DamagedRecord(f"schema {record['schema']}, this version reads {SCHEMA_VERSION}")
    where = _not_finite(record, "")
    if where:
        raise DamagedRecord(f"{where} is not a finite number")
    params = record["params"]
    for key in ("experiment", "seed"):
        if key in params and params[key] != record[key]:
            raise DamagedRecord(f"its params say {key} {params[key]!r}, the record {record[key]!r}")
    for split in ("train", "test"):
        n, errors, rate = (record[f"n_{split}"], record[f"{split}_errors"],
                           record[f"{split}_error_rate"])
        if not 1 <= n <= MAX_PAIRS:
            raise DamagedRecord(f"n_{split} {n} is not a number of pairs (1 to {MAX_PAIRS})")
        if n != params.get("n_pairs", n):
            raise DamagedRecord(f"n_{split} {n} is not its params' n_pairs ({params['n_pairs']})")
        if not _is_count(errors, n):
            raise DamagedRecord(f"{split}_errors {errors} is not a count from 0 to n_{split} ({n})")
        if abs(rate - 100 * errors / n) > 1e-9:  # round-off only
            raise DamagedRecord(f"{split}_error_rate {rate:g} is not 100 * {split}_errors / "
                                f"n_{split} ({100 * errors / n:g})")
    if record["seconds"] < 0 or record["n_parameters"] < 1:
        raise DamagedRecord("negative seconds or no parameters")
    history = record["history"]
    if "epochs" in params and len(history) != params["epochs"]:
        raise DamagedRecord(f"{len(history)} epochs in its history, {params['epochs']} in its params")
    for row in history:
        if not isinstance(row, dict) or not all(
                _is_count(row.get(key, 0), record[f"n_{split}"])
                for key, split in (("test_errors", "test"), ("train_errors_running", "train"))):
            raise DamagedRecord("a history row is not an epoch's counts")
    predictions, digits = record.get("test_predictions"), record.get("test_digit_predictions")
    if predictions is not None and (
            not isinstance(predictions, list) or len(predictions) != record["n_test"]
            or not all(_is_count(p, 1) for p in predictions)):
        raise DamagedRecord(f"test_predictions is not n_test ({record['n_test']}) 0s and 1s")
    if digits is not None and (
            not isinstance(digits, list) or len(digits) != record["n_test"]
            or not all(isinstance(d, list) and len(d) == 2 and all(_is_count(x, 9) for x in d)
                       for d in digits)):
        raise DamagedRecord(f"test_digit_predictions is not n_test ({record['n_test']}) pairs "
                            f"of digits")


def read_record(path):
    """The record at `path`; raises DamagedRecord if it cannot be used. A FIFO, folder or device
    there is never opened (reading a FIFO would wait for a writer forever)."""
    try:
        kind = os.stat(path).st_mode
        if not stat.S_ISREG(kind):
            raise DamagedRecord(f"not a regular file ({file_kind(kind)})")
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DamagedRecord(f"unreadable ({type(error).__name__})") from None
    if not isinstance(record, dict):
        raise DamagedRecord("not a JSON object")
    validate(record)
    expected = record_path(Path(path).parent.parent, record["experiment"], record["seed"])
    if Path(path).name != expected.name or Path(path).parent.name != record["experiment"]:
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
    (all but RUN_ONLY) and that `recorded` (a record's or a claim's params) has otherwise."""
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


def is_complete(path):
    """True when `path` holds a valid record (a run to skip, not to redo)."""
    try:
        read_record(path)
        return True
    except DamagedRecord:
        return False


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
    """Every record under `results_dir` (a missing folder reads as an empty one)."""
    found = Results(str(results_dir))
    for path in sorted(Path(results_dir).glob("*/seed-*.json")):
        try:
            found.records.append(read_record(path))
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
