import json
import os

import pytest

from helpers import UsageError
from helpers.runs.records import (SCHEMA_VERSION, DamagedRecord, load, read_record, record_path,
                                  write_record)


def fake_record(experiment="ws", seed=0, test_errors=120):
    return {"experiment": experiment, "seed": seed, "params": {"experiment": experiment, "seed": seed},
            "n_train": 1000, "n_test": 1000, "train_errors": 40, "test_errors": test_errors,
            "train_error_rate": 4.0, "test_error_rate": test_errors / 10, "history": [],
            "n_parameters": 10, "seconds": 1.5, "device": "cpu", "numerics": {},
            "budget": {"steps": 250, "training_flops": 10 ** 11, "evaluation_flops": 10 ** 9}}


def test_round_trip(tmp_path):
    path = write_record(fake_record(seed=3), tmp_path)
    assert path == record_path(tmp_path, "ws", 3) == tmp_path / "ws" / "seed-3.json"
    record = read_record(path)
    assert record["test_errors"] == 120 and record["schema"] == SCHEMA_VERSION
    assert record["budget"]["steps"] == 250
    assert path.stat().st_mode & 0o777 == 0o644
    table = load(tmp_path).frame
    assert list(table["experiment"]) == ["ws"] and list(table["test_errors"]) == [120]


def test_write_leaves_no_temporary_file_and_replaces_atomically(tmp_path):
    write_record(fake_record(test_errors=100), tmp_path)
    write_record(fake_record(test_errors=90), tmp_path)
    assert [p.name for p in (tmp_path / "ws").iterdir()] == ["seed-0.json"]
    assert read_record(tmp_path / "ws" / "seed-0.json")["test_errors"] == 90


def test_a_failed_write_keeps_the_old_record(tmp_path, monkeypatch):
    write_record(fake_record(test_errors=100), tmp_path)

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(UsageError, match="No space left on device"):  # one line, not a traceback
        write_record(fake_record(test_errors=90), tmp_path)
    assert read_record(tmp_path / "ws" / "seed-0.json")["test_errors"] == 100
    assert [p.name for p in (tmp_path / "ws").iterdir()] == ["seed-0.json"]


def test_unwritable_results_folder_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UsageError, match="choose a writable results folder"):
        write_record(fake_record(), blocker)


def test_damaged_records_are_named_and_left_out(tmp_path):
    write_record(fake_record(seed=0), tmp_path)
    path = write_record(fake_record(seed=1), tmp_path)
    path.write_text(path.read_text()[:50])  # truncated
    other = record_path(tmp_path, "ws", 2)
    other.write_text(json.dumps({**fake_record(seed=2), "schema": 0}))  # older schema
    found = load(tmp_path)
    records, damaged = found.records, found.damaged
    assert [r["seed"] for r in records] == [0]
    assert sorted(p.name for p, _ in damaged) == ["seed-1.json", "seed-2.json"]
    with pytest.raises(DamagedRecord):
        read_record(path)


def test_record_in_the_wrong_file_is_damaged(tmp_path):
    path = write_record(fake_record(seed=1), tmp_path)
    path.rename(record_path(tmp_path, "ws", 5))
    with pytest.raises(DamagedRecord, match="not what its file name says"):
        read_record(record_path(tmp_path, "ws", 5))
