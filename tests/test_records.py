"""Run records without a runner: what a valid record holds (everything any reader reads, with
numbers consistent with each other and with its pairs), how one is written (atomically, never
with a NaN), how the loader names and leaves out every other file, and the MNIST checks made
before anything starts."""

import json
import math
import os
import re
import shutil
import threading
from pathlib import Path

import pytest
from publish_tools import diverged_at_epoch_2

import helpers
from helpers import DataError, UsageError
from helpers.errors import diverged_at
from helpers.catalogue.parameters import MODEL_NAMES, PARAMETERS
from helpers.catalogue.parameters import has_digit_outputs
from helpers.runs.records import (
    NUMERICS,
    SCHEMA_VERSION,
    DamagedRecord,
    KeptRecord,
    check_against_pairs,
    load,
    read_record,
    record_path,
    validate,
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


def _without(*keys):
    """A change removing the key at the path `keys` (e.g. "params", "epochs")."""
    def change(record):
        for key in keys[:-1]:
            record = record[key]
        del record[keys[-1]]
    return change


# (what is wrong, the change, the start of the reason given). Each is a record that reads as
# JSON of the right shape; the summary, the analysis or the runner would otherwise read it.
IMPOSSIBLE = [
    ("negative count", lambda r: r.update(train_errors=-50, train_error_rate=-50.0),
     "train_errors -50 is not a count"),
    ("count above n", lambda r: r.update(train_errors=10 ** 6, train_error_rate=10 ** 6.0),
     "train_errors 1000000 is not a count"),
    ("rate not the counts'", lambda r: r.update(test_error_rate=99.9), "test_error_rate 99.9 is not"),
    ("NaN rate", lambda r: r.update(test_error_rate=math.nan), "test_error_rate is not a finite"),
    ("NaN in the history", lambda r: r["history"][0].update(loss=math.inf),
     "history[0].loss is not a finite"),
    ("n_test 10^9", lambda r: r.update(n_test=10 ** 9), "n_test 1000000000 is not its params' n_pairs"),
    ("n not the params' n_pairs", lambda r: r.update(n_test=200, test_error_rate=r["test_errors"] / 2),
     "n_test 200 is not its params' n_pairs (100)"),
    ("predictions of another length", lambda r: r["test_predictions"].pop(),
     "test_predictions is not n_test (100) 0s and 1s"),
    ("a prediction not 0 or 1", lambda r: r["test_predictions"].__setitem__(0, 7),
     "test_predictions is not n_test"),
    ("a digit prediction out of 0-9", lambda r: r["test_digit_predictions"].__setitem__(0, [3, 12]),
     "test_digit_predictions is not n_test pairs of digits"),
    ("history of other length than epochs", lambda r: r["history"].pop(), "1 epochs in its history"),
    ("params of another seed", lambda r: r["params"].update(seed=5), "its params say seed 5"),
    ("test errors edited to 0 with their rate",
     lambda r: r.update(test_errors=0, test_error_rate=0.0), "test_errors 0 is not its last epoch's"),
    ("a negative seed", lambda r: (r.update(seed=-1), r["params"].update(seed=-1)),
     "params: seed must be from 0 to"),
    ("an epoch count as text", lambda r: r["params"].update(epochs="2"),
     "params.epochs is '2', not a valid value (2)"),
    ("numerics {}", lambda r: r.update(numerics={}), "numerics lacks python, torch"),
    ("numerics without pinned", _without("numerics", "pinned"), "numerics lacks pinned"),
    ("params without epochs", _without("params", "epochs"), "params lacks epochs"),
    ("params without threads", _without("params", "threads"), "params lacks threads"),
    ("params without weighting", _without("params", "weighting"), "params lacks weighting"),
    ("history rows {}", lambda r: r.update(history=[{}, {}]), "history[0] lacks epoch"),
    ("no budget", _without("budget"), "the record lacks budget"),
    ("no test_digit_predictions", _without("test_digit_predictions"),
     "the record lacks test_digit_predictions"),
    ("null digit predictions of a network with digits", lambda r: r.update(
        test_digit_predictions=None), "test_digit_predictions is not n_test pairs of digits"),
    ("relabelled: eq2's alpha 0.5 over eq1's weights", lambda r: r["params"].update(
        weighting="eq2", alpha=0.5), "history[0]'s loss weights are not weighting eq2's (1.0, 0.5)"),
    ("weight_digits 7 under weighting none", lambda r: r["history"][1].update(weight_digits=7),
     "history[1]'s loss weights are not weighting none's (1.0, 0.0)"),
    ("a loss of -1e300", lambda r: r["history"][1].update(loss=-1e300),
     "history[1].loss is not its weighted loss terms"),
    ("a loss that is not its terms'", lambda r: r["history"][0].update(loss=r["history"][0][
        "loss"] * 1.01), "history[0].loss is not its weighted loss terms"),
    ("a loss as text", lambda r: r["history"][0].update(loss="0.5"),
     "history[0].loss is not its weighted loss terms"),
    ("a zeroed budget", lambda r: r["budget"].update(steps=0, training_flops=0,
                                                     evaluation_flops=0),
     "budget is not 2 steps of its params"),
    ("a budget of other steps", lambda r: r["budget"].update(steps=3), "budget is not 2 steps"),
]


@pytest.mark.parametrize("change, reason", [case[1:] for case in IMPOSSIBLE],
                         ids=[case[0] for case in IMPOSSIBLE])
def test_an_impossible_or_incomplete_record_is_named_and_left_out(results, change, reason):
    """A record that passes as JSON but is impossible (counts, rates, NaN, sizes), edited
    (test errors set to 0 with their rate, a negative seed, an epoch count as text) or that
    lacks what any reader reads (numerics and their pin, a parameter, a history row's keys,
    the budget, the digit predictions of a network with digits) is damaged: the loader names
    it and leaves it out, so that no reader stops on it (a KeyError naming no file) or
    averages it in."""
    path = record_path(results, "ws", 1)
    kept = read_record(record_path(results, "ws", 0))
    _rewrite(path, change)
    with pytest.raises(DamagedRecord, match="^" + re.escape(reason)):
        read_record(path)
    found = load(results)  # what the summary and the report read
    assert [(p.name, why.startswith(reason)) for p, why in found.damaged] == [("seed-1.json", True)]
    assert [r["seed"] for r in found.records if r["experiment"] == "ws"] == [0]
    assert found.frame.query("experiment == 'ws'")["test_errors"].tolist() == [kept["test_errors"]]


def test_a_copy_of_a_record_under_another_seed_is_named_and_left_out(results):
    """seed 0's record saved as seed 7 (its seed fields edited) is valid on its own, but its
    history and predictions are seed 0's: a copy, not a fourth round."""
    copy = json.loads(record_path(results, "ws", 0).read_text())
    copy["seed"] = copy["params"]["seed"] = 7
    record_path(results, "ws", 7).write_text(json.dumps(copy))
    read_record(record_path(results, "ws", 7))
    found = load(results)
    assert [(p.name, why) for p, why in found.damaged] == [
        ("seed-7.json", "a copy of seed 0's record (its history)")]
    assert sorted(r["seed"] for r in found.records if r["experiment"] == "ws") == [0, 1]


def test_a_record_whose_errors_are_not_its_predictions_on_its_pairs_is_damaged(results):
    """The test errors (and the last epoch's) edited together: consistent on paper, but its own
    predictions on its pairs, made again from MNIST, give another count."""
    record = read_record(record_path(results, "ws", 0))
    check_against_pairs(record)
    record["test_errors"] = record["history"][-1]["test_errors"] = record["test_errors"] - 3
    record["test_error_rate"] = record["test_errors"]
    validate(record)
    with pytest.raises(DamagedRecord, match=r"^test_errors \d+ is not the count of its wrong "
                                            r"test_predictions \(\d+\)"):
        check_against_pairs(record)


@pytest.mark.parametrize("change, reason", [
    (lambda r: r.update(n_parameters=1), "n_parameters 1 is not its network's"),
    (lambda r: r.update(n_parameters=r["n_parameters"] + 1), "n_parameters \\d+ is not its"),
    (lambda r: (r.update(test_errors=0, test_error_rate=0.0), r["history"][-1].update(
        test_errors=0)), "test_errors 0 is not the count of its wrong test_predictions"),
    (lambda r: r["test_predictions"].__setitem__(0, 1 - r["test_predictions"][0]),
     "test_errors \\d+ is not the count of its wrong test_predictions"),
], ids=["one parameter", "one parameter more", "test errors 0 with all that says them",
        "a prediction flipped"])
def test_a_record_its_parameters_would_not_make_is_damaged_for_every_reader(results, change,
                                                                            reason):
    """Consistent on paper, but not what its parameters make: its network's parameter count,
    the count of its predictions that are wrong on its pairs (made again). `load`, what the
    runner skips and what the summary and the notebooks count, names it and leaves it out."""
    path = record_path(results, "ws-aux", 1)
    _rewrite(path, change)
    read_record(path)
    found = load(results)
    assert [p.name for p, _ in found.damaged] == ["seed-1.json"]
    assert re.match(reason, found.damaged[0][1]), found.damaged[0][1]
    assert [r["seed"] for r in found.records if r["experiment"] == "ws-aux"] == [0]


def test_a_copy_under_another_seed_with_its_own_history_is_named_by_its_predictions(results):
    """seed 0's record saved as seed 7 with its history edited (its predictions seed 0's)."""
    copy = json.loads(record_path(results, "ws", 0).read_text())
    copy["seed"] = copy["params"]["seed"] = 7
    copy["history"][0]["train_errors_running"] += 1
    record_path(results, "ws", 7).write_text(json.dumps(copy))
    assert [(p.name, why) for p, why in load(results).damaged] == [
        ("seed-7.json", "a copy of seed 0's record (its predictions)")]


@pytest.mark.parametrize("text, error", [
    ('{"seed": ' + "9" * 5000 + "}", "ValueError"), ("[" * 200_000, "RecursionError"),
    ('{"a": ' * 5000 + "1" + "}" * 5000, "RecursionError")],
    ids=["a 5000-digit number", "200000 brackets", "5000 nested objects"])
def test_a_record_too_large_to_parse_is_damaged_not_a_crash(results, text, error):
    record_path(results, "ws", 1).write_text(text)
    with pytest.raises(DamagedRecord, match=f"^unreadable \\({error}\\)$"):
        read_record(record_path(results, "ws", 1))
    assert [(p.name, why) for p, why in load(results).damaged] == [
        ("seed-1.json", f"unreadable ({error})")]


def test_a_record_of_a_newer_schema_is_told_apart(results):
    """A newer version's record is not damaged for the runner to replace: it says so."""
    _rewrite(record_path(results, "ws", 0), lambda r: r.update(schema=SCHEMA_VERSION + 1))
    with pytest.raises(KeptRecord, match=f"schema {SCHEMA_VERSION + 1}, this version reads"):
        read_record(record_path(results, "ws", 0))
    _rewrite(record_path(results, "ws", 1), lambda r: r.update(schema=SCHEMA_VERSION - 1))
    with pytest.raises(DamagedRecord) as older:
        read_record(record_path(results, "ws", 1))
    assert not isinstance(older.value, KeptRecord)


def test_every_fixture_record_is_consistent_with_its_pairs():
    found = load(FIXTURE)
    assert len(found.records) == 15 and not found.damaged
    for record in found.records:
        check_against_pairs(record)


def test_the_declared_parts_are_what_a_run_writes():
    """The declaration validate() checks against is what science writes: the numerics'
    keys, and digit predictions exactly for the networks with digit outputs."""
    import torch

    from helpers.science.models import build_model
    from helpers.science.numerics import describe

    assert tuple(describe(torch.device("cpu"), 1)) == NUMERICS
    for model in MODEL_NAMES:
        params = helpers.resolve("ws", model=model, weighting="none")
        out = build_model(params)(torch.zeros(2, 2, 14, 14))
        assert ("digits" in out) == has_digit_outputs(params), model
    record = read_record(record_path(FIXTURE, "ws", 0))
    assert set(record["params"]) == set(PARAMETERS)


def test_round_trip_atomic_and_readable_by_all(results, tmp_path):
    record = read_record(record_path(results, "ws", 0))
    path = write_record(record, tmp_path / "out")
    assert path == tmp_path / "out" / "ws" / "seed-0.json" and read_record(path) == record
    assert path.stat().st_mode & 0o777 == 0o644
    write_record({**record, "seconds": 1.0}, tmp_path / "out")
    assert [p.name for p in path.parent.iterdir()] == ["seed-0.json"]  # no temporary left
    assert read_record(path)["seconds"] == 1.0


def test_a_failed_write_keeps_the_old_record(results, monkeypatch):
    path = record_path(results, "ws", 0)
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(UsageError, match="No space left on device"):  # one line, not a traceback
        write_record({**read_record(path), "seconds": 1.0}, results)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["seed-0.json", "seed-1.json"]


def test_a_record_in_the_wrong_file_or_unreadable_is_damaged(results):
    path = record_path(results, "ws", 1)
    path.rename(record_path(results, "ws", 5))
    with pytest.raises(DamagedRecord, match="not what its file name says"):
        read_record(record_path(results, "ws", 5))
    record_path(results, "ws", 0).write_text("{\"truncated")
    assert sorted(p.name for p, _ in load(results).damaged) == ["seed-0.json", "seed-5.json"]


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
        [("seed-1.json", "is not a regular file (a FIFO): move it away")]


@pytest.mark.slow  # trains
def test_a_diverging_training_is_recorded_where_it_diverged(mnist_root, tmp_path):
    """A loss that stops being finite ends the training; the run's record says where, in place
    of final errors: an outcome, read back as one."""
    # lr 100 with mini-batches of 10: the loss is NaN within the first epoch, at its 5th step
    record = helpers.train("ws", 0, epochs=2, n_pairs=100, batch_size=10, lr=100,
                           data_root=mnist_root)
    assert record["diverged"] == {"epoch": 1, "step": 5, "loss": "nan"}
    assert record["history"] == [] and "test_errors" not in record
    path = write_record(record, tmp_path)
    assert read_record(path)["diverged"] == record["diverged"]
    found = load(tmp_path)
    assert (found.records, found.damaged, [r["seed"] for r in found.diverged]) == ([], [], [0])
    # lr 3: the loss of seed 1's last step is finite (5.6e32), but that step's update leaves
    # the network NaN: found at the epoch's end, never measured as a trained network
    gone = helpers.train("ws", 1, lr=3, batch_size=10, epochs=1, n_pairs=60, data_root=mnist_root)
    assert gone["diverged"]["step"] == 6 and float(gone["diverged"]["loss"]) > 1e30
    assert diverged_at(read_record(write_record(gone, tmp_path))["diverged"]).startswith(
        "the network's numbers stopped being finite (loss 5.5")
    # lr 1: every weight stays finite, yet the outputs on the test pairs are NaN at epoch 2's
    # end (an argmax of NaN would have made 45 'errors')
    gone = helpers.train("ws", 1, lr=1, batch_size=20, epochs=2, n_pairs=100, data_root=mnist_root)
    assert gone["diverged"]["epoch"] == 2 and gone["diverged"]["step"] == 10
    assert len(gone["history"]) == 1 and "test_errors" not in gone


@pytest.mark.parametrize("change, reason", [
    (lambda r: None, None),
    (lambda r: r["diverged"].update(step=1), "diverged is not an epoch, a step of it"),
    (lambda r: r["diverged"].update(epoch=3, step=3), "diverged is not an epoch, a step of it"),
    (lambda r: r["diverged"].update(loss="1.5e+300"), None),  # the network's numbers, at the end
    (lambda r: r["diverged"].update(loss="x1"), "diverged is not an epoch, a step of it"),
    (lambda r: r["diverged"].update(loss=0.5), "diverged is not an epoch, a step of it"),
    (lambda r: r["diverged"].update(loss="-1.0"), "diverged is not an epoch, a step of it"),
    (lambda r: r["diverged"].update(why="x"), "diverged is not an epoch, a step of it"),
    (lambda r: r["diverged"].pop("loss"), "diverged lacks loss"),
    (lambda r: r["history"].pop(), "0 epochs in its history, not 1 (the epochs before it"),
    (lambda r: r.pop("budget"), "the record lacks budget"),
    (lambda r: r.update(n_parameters=1), "n_parameters 1 is not its network's"),
    (lambda r: r.update(diverged={}), "diverged lacks epoch, step, loss"),
    (lambda r: r.update(diverged=True), "'diverged' has the wrong type"),
    (lambda r: r.update(test_errors=3), "it diverged, yet has final errors or predictions"),
], ids=["valid", "a step of another epoch", "an epoch beyond its epochs",
        "a finite loss at the epoch's end", "a loss not a number's text", "a loss as a number",
        "a negative loss", "a key besides",
        "no loss", "a history short of the epochs before", "no budget", "one parameter",
        "diverged {}", "diverged true", "a test error count besides"])
def test_a_diverged_record_is_checked_as_any_other(results, change, reason):
    """A diverged training's record is valid only as consistent as a trained one's: where it
    diverged within its budget, the epochs before in its history, its network's size."""
    path = record_path(results, "ws", 1)
    _rewrite(path, lambda r: (diverged_at_epoch_2(r), change(r)))
    found = load(results)
    assert [r["seed"] for r in found.records if r["experiment"] == "ws"] == [0]
    if reason is None:
        assert [r["seed"] for r in found.diverged] == [1] and not found.damaged
    else:
        assert not found.diverged and [p.name for p, _ in found.damaged] == ["seed-1.json"]
        assert found.damaged[0][1].startswith(reason), found.damaged[0][1]


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
