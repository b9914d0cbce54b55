"""Run records: one JSON file per (experiment, seed), written atomically, read back as a table.

A record is `results/<experiment>/seed-<k>.json`. It is written to a temporary file in the
same folder, flushed to disk, then renamed over the target: whatever stops the process
(Ctrl-C, SIGKILL, a full disk), the target is either the old complete record or the new one.
"""

import json
import os
import tempfile
from pathlib import Path

from .errors import UsageError

SCHEMA_VERSION = 1
# key -> type(s) a valid record must have there
REQUIRED = {
    "schema": int, "experiment": str, "seed": int, "params": dict, "n_train": int, "n_test": int,
    "train_errors": int, "test_errors": int, "train_error_rate": (int, float),
    "test_error_rate": (int, float), "history": list, "n_parameters": int,
    "seconds": (int, float), "device": str, "versions": dict,
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
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise UsageError(f"cannot write run records under {results_dir} ({error.strerror}): "
                         f"choose a writable results folder") from None
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it private; a record is for every reader
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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


def is_complete(results_dir, experiment, seed):
    """True when a valid record of this run exists (the runner skips it)."""
    try:
        read_record(record_path(results_dir, experiment, seed))
        return True
    except DamagedRecord:
        return False


def scan(results_dir):
    """(records, damaged): every valid record under `results_dir`, and (path, reason) for the rest."""
    records, damaged = [], []
    for path in sorted(Path(results_dir).glob("*/seed-*.json")):
        try:
            records.append(read_record(path))
        except DamagedRecord as why:
            damaged.append((path, str(why)))
    return records, damaged


def load_results(results_dir):
    """One row per valid record (experiment, seed, error counts and rates, parameters, seconds)."""
    records, _ = scan(results_dir)
    return records_table(records)


def records_table(records):
    import pandas as pd  # here, not at the top: the runner reads records without it (0.25 s)

    columns = ["experiment", "seed", "train_errors", "test_errors", "train_error_rate",
               "test_error_rate", "n_train", "n_test", "n_parameters", "seconds", "device"]
    rows = [{**{key: r[key] for key in columns}, **{f"param.{k}": v for k, v in r["params"].items()}}
            for r in records]
    return pd.DataFrame(rows, columns=columns if not rows else None)
