"""Run records: one JSON file per (experiment, seed), written atomically, checked when read,
loaded as a table.

A record is `<results>/<experiment>/seed-<k>.json`. `load(folder)` is the one loader: every
valid record, and every damaged one named with its reason (never averaged in).
"""

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..errors import UsageError
from ..files import atomic_write

SCHEMA_VERSION = 2  # 2: `numerics` (science/numerics.py) replaces `versions`
# key -> type(s) a valid record must have there
REQUIRED = {
    "schema": int, "experiment": str, "seed": int, "params": dict, "n_train": int, "n_test": int,
    "train_errors": int, "test_errors": int, "train_error_rate": (int, float),
    "test_error_rate": (int, float), "history": list, "n_parameters": int,
    "seconds": (int, float), "device": str, "numerics": dict,
}


class DamagedRecord(Exception):
    """A record file that cannot be used (truncated, not JSON, wrong schema)."""


def record_path(results_dir, experiment, seed):
    return Path(results_dir) / experiment / f"seed-{seed}.json"


def write_record(record, results_dir):
    """Write `record` atomically to its place under `results_dir`; return the path."""
    record = {"schema": SCHEMA_VERSION, **record}
    validate(record)
    path = record_path(results_dir, record["experiment"], record["seed"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(record, indent=1) + "\n")
    except OSError as error:
        raise UsageError(f"cannot write run records under {results_dir} ({error.strerror}): "
                         f"choose a writable results folder") from None
    return path


def validate(record):
    for key, kind in REQUIRED.items():
        if key not in record:
            raise DamagedRecord(f"missing {key!r}")
        if not isinstance(record[key], kind) or isinstance(record[key], bool):
            raise DamagedRecord(f"{key!r} has the wrong type")
    if record["schema"] != SCHEMA_VERSION:
        raise DamagedRecord(f"schema {record['schema']}, this version reads {SCHEMA_VERSION}")
    if not 0 <= record["test_errors"] <= record["n_test"]:
        raise DamagedRecord("test_errors out of range")


def read_record(path):
    """The record at `path`; raises DamagedRecord if it cannot be used."""
    try:
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
