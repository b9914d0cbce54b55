"""Robustness, second round, the parts that need no runner process: impossible records are named
and left out, NaN is never written, a diverged training fails in one line, a notebook never
silently replaces a record made with other parameters, and the MNIST files are checked (or
downloaded) before anything starts. docs/robustness.md lists each case with its test."""

import json
import math
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

import helpers
from helpers import DataError, UsageError
from helpers.errors import TrainingDiverged
from helpers.notebook import save
from helpers.runs.records import (
    DamagedRecord,
    load,
    read_record,
    record_path,
    write_record,
)
from helpers.science import mnist

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "results"


@pytest.fixture
def results(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "results")
    return tmp_path / "results"


def _rewrite(path, change):
    """Rewrite the record file at `path` with `change(record)` applied, by hand (as a user or a
    bug could), bypassing write_record's checks; NaN is written as Python's json writes it."""
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


# (what is wrong, the change, a fragment of the reason given)
IMPOSSIBLE = [
    ("negative count", lambda r: r.update(train_errors=-50, train_error_rate=-50.0),
     "train_errors -50 is not a count"),
    ("count above n", lambda r: r.update(train_errors=10 ** 6, train_error_rate=10 ** 6.0),
     "train_errors 1000000 is not a count"),
    ("rate not the counts'", lambda r: r.update(test_error_rate=99.9), "test_error_rate 99.9 is not"),
    ("NaN rate", lambda r: r.update(test_error_rate=math.nan), "test_error_rate is not a finite"),
    ("NaN in the history", lambda r: r["history"][0].update(loss=math.inf),
     "history[0].loss is not a finite"),
    ("n_test 10^9", lambda r: r.update(n_test=10 ** 9), "n_test 1000000000 is not a number of pairs"),
    ("n not the params' n_pairs", lambda r: r.update(n_test=200, test_error_rate=r["test_errors"] / 2),
     "n_test 200 is not its params' n_pairs (100)"),
    ("predictions of another length", lambda r: r["test_predictions"].pop(),
     "test_predictions is not n_test (100) 0s and 1s"),
    ("a prediction not 0 or 1", lambda r: r["test_predictions"].__setitem__(0, 7),
     "test_predictions is not n_test"),
    ("a digit prediction out of 0-9", lambda r: r["test_digit_predictions"].__setitem__(0, [3, 12]),
     "test_digit_predictions is not"),
    ("history of other length than epochs", lambda r: r["history"].pop(), "1 epochs in its history"),
    ("params of another seed", lambda r: r["params"].update(seed=5), "its params say seed 5"),
]


@pytest.mark.parametrize("change, reason", [case[1:] for case in IMPOSSIBLE],
                         ids=[case[0] for case in IMPOSSIBLE])
def test_an_impossible_record_is_named_and_left_out(results, change, reason):
    path = record_path(results, "ws", 1)
    kept = read_record(record_path(results, "ws", 0))
    _rewrite(path, change)
    with pytest.raises(DamagedRecord, match="^" + re.escape(reason)):
        read_record(path)
    found = load(results)  # what the summary and the report read
    assert [(p.name, why.startswith(reason)) for p, why in found.damaged] == [("seed-1.json", True)]
    assert [r["seed"] for r in found.records if r["experiment"] == "ws"] == [0]
    assert found.frame.query("experiment == 'ws'")["test_errors"].tolist() == [kept["test_errors"]]


def test_every_fixture_record_is_consistent():
    found = load(FIXTURE)
    assert len(found.records) == 15 and not found.damaged


def test_nan_is_never_written(results):
    record = read_record(record_path(results, "ws", 0))
    record["history"][1]["loss"] = math.nan
    before = record_path(results, "ws", 0).read_bytes()
    with pytest.raises(DamagedRecord, match="history.1..loss is not a finite number"):
        write_record(record, results)
    assert record_path(results, "ws", 0).read_bytes() == before
    assert not list((results / "ws").glob(".*.tmp"))


def test_a_fifo_where_a_record_is_is_named_not_read(results):
    fifo = record_path(results, "ws", 1)
    fifo.unlink()
    os.mkfifo(fifo)
    found = {}
    reader = threading.Thread(target=lambda: found.update(results=load(results)), daemon=True)
    reader.start()
    reader.join(60)  # reading a FIFO waits for a writer forever: this fails, not hangs
    assert not reader.is_alive(), "load() hangs on a FIFO"
    assert [(p.name, why) for p, why in found["results"].damaged] == \
        [("seed-1.json", "not a regular file (a FIFO)")]


@pytest.mark.slow
def test_a_diverging_training_fails_in_one_line(mnist_root):
    # lr 100 with mini-batches of 10: the loss is NaN within the first epoch
    with pytest.raises(TrainingDiverged) as diverged:
        helpers.train("ws", 0, epochs=2, n_pairs=100, batch_size=10, lr=100, data_root=mnist_root)
    assert str(diverged.value) == "the loss became nan at epoch 1 of ws seed 0 (lr 100): lower lr"
    assert not isinstance(diverged.value, UsageError)  # a failed run, exit code 1


# --- helpers.notebook.save: what the notebooks call to write their record ---------------------
def test_save_refuses_a_record_made_with_other_parameters_unless_replace(results, capsys):
    path = record_path(results, "ws", 0)
    record = read_record(path)
    other = {**record, "params": {**record["params"], "epochs": 3},
             "history": record["history"] + [record["history"][-1]]}
    before = path.read_bytes()
    with pytest.raises(UsageError, match=r"ws/seed-0.json was made with other parameters "
                                         r"\(epochs 2 there, 3 asked\): choose another "
                                         r"results_dir, or set replace = True"):
        save(other, results)
    assert path.read_bytes() == before and capsys.readouterr().out == ""
    save(other, results, replace=True)
    assert capsys.readouterr().out == f"record written to {path}\n"
    assert read_record(path)["params"]["epochs"] == 3
    save(record, None)  # no results_dir: nothing written, nothing printed
    assert capsys.readouterr().out == "" and read_record(path)["params"]["epochs"] == 3
    save({**other, "device": "cuda:0", "params": {**other["params"], "device": "cuda"}},
         results)  # a run-only parameter: the same run, replaced without a word
    assert read_record(path)["device"] == "cuda:0"


@pytest.mark.slow
def test_a_notebook_run_by_papermill_does_not_replace_a_record_of_other_parameters(
        results, tmp_path, mnist_root):
    import papermill

    path = record_path(results, "ws", 0)  # the fixture's: 2 epochs
    before = path.read_bytes()
    with pytest.raises(papermill.PapermillExecutionError) as refused:
        papermill.execute_notebook(
            str(REPO / "notebooks" / "weight_sharing.ipynb"), str(tmp_path / "out.ipynb"),
            parameters={"experiment": "ws", "seed": 0, "epochs": 1, "n_pairs": 100,
                        "results_dir": str(results), "data_root": mnist_root},
            kernel_name="python3", cwd=str(tmp_path), progress_bar=False)
    assert refused.value.ename == "UsageError"
    assert "was made with other parameters (epochs 2 there, 1 asked)" in refused.value.evalue
    assert path.read_bytes() == before


# --- MNIST, checked before anything starts ---------------------------------------------------
@pytest.fixture
def mnist_copy(tmp_path, mnist_root):
    """An MNIST root of links to the real files."""
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in mnist.MNIST_MD5:
        (raw / name).symlink_to(Path(mnist_root) / "MNIST" / "raw" / name)
    return raw


def test_a_missing_mnist_file_or_a_folder_in_its_place_is_found_before_anything(mnist_copy):
    root = mnist_copy.parent.parent
    assert mnist.check_data_root(root) == root.resolve()
    (mnist_copy / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataError, match="MNIST file .*t10k-images-idx3-ubyte is missing: set "
                                        "MNIST_ROOT"):
        mnist.check_data_root(root)
    mnist.check_data_root(root, splits=(True,))  # validation runs read no test image
    (mnist_copy / "t10k-images-idx3-ubyte").mkdir()
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte is a folder: move it away"):
        mnist.check_data_root(root)


def test_missing_mnist_under_the_default_folder_is_downloaded_once_or_refused(
        tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    # The default data/ may be downloaded into; no network here: a mirror that refuses.
    monkeypatch.setattr(mnist, "DEFAULT_DATA", tmp_path / "data")
    monkeypatch.delenv("MNIST_ROOT", raising=False)
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    assert mnist.check_data_root() == (tmp_path / "data").resolve()  # may still download
    with pytest.raises(DataError) as refused:
        mnist.ensure_data_root()
    assert str(refused.value) == (
        f"MNIST files are missing under {tmp_path / 'data' / 'MNIST' / 'raw'} and could not be "
        f"downloaded (no network?): set MNIST_ROOT (or data_root) to the folder holding "
        f"MNIST/raw, or put the four MNIST files in {tmp_path / 'data' / 'MNIST' / 'raw'}")
