"""Records with chosen error counts, for the tests of what is published from them.

Each record is a real fixture record (tests/fixtures/results: tiny trainings of 100 pairs and 2
epochs, see fixtures/make_results.py) with its experiment, parameters, seed and error counts
replaced: the statistics, the tables and the notebooks then read numbers whose answer the test
knows. Every record is its catalogue row's with TINY as overrides, so the publication counts
it when told TINY (as `python -m helpers summary -p n_pairs 100 -p epochs 2` would).
"""

import json
import shutil
from pathlib import Path

from helpers.catalogue import experiments
from helpers.publish import tables
from helpers.runs.records import (FINAL, _n_parameters, _test_targets, load, record_path,
                                  write_record)
from helpers.science.losses import WEIGHTINGS
from helpers.science.training import training_budget

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "results"
TINY = {"n_pairs": 100, "epochs": 2}  # what the fixture records were made with
# A round-to-round pattern of mean 0: added to a difference d, the paired t statistic is
# d / (3 * sd([1, -1, ...]) / sqrt(10)), so d = 3 gives p = 0.015 and d = 30 p < 1e-9.
WIGGLE = [3, -3] * 5


def fixture():
    """The fixture records as the publication counts them (TINY)."""
    return tables.published(load(FIXTURE), TINY)


def template(experiment):
    """The fixture's seed-0 record of `experiment` (ws-aux's for one it lacks), made that
    catalogue row's record with TINY."""
    name = experiment if record_path(FIXTURE, experiment, 0).is_file() else "ws-aux"
    record = json.loads(record_path(FIXTURE, name, 0).read_text())
    record["experiment"] = experiment
    record["params"] = experiments.resolve(experiment, **TINY)
    record.pop("schema", None)
    return consistent(record)


def round_of(record, seed, test_errors=None):
    """`record` made round `seed`'s, with `test_errors` (else its own count): its own history,
    its predictions wrong on exactly that many of the seed's test pairs."""
    record["seed"] = record["params"]["seed"] = seed
    errors = record["test_errors"] if test_errors is None else int(round(test_errors))
    record["test_errors"] = record["history"][-1]["test_errors"] = errors
    record["test_error_rate"] = 100 * errors / record["n_test"]
    record["history"][0]["train_errors_running"] = seed % 100
    targets = _test_targets(record["n_test"], seed, record["params"]["evaluate_on"] ==
                            "validation", None)
    record["test_predictions"] = [t if i >= errors else 1 - t for i, t in enumerate(targets)]
    return record


def consistent(record):
    """`record` made what its params would make where a record is checked against them: its
    history's loss weights and loss, its parameter count, its budget (as a run computes them)."""
    p = record["params"]
    for epoch, row in enumerate(record["history"]):
        w = WEIGHTINGS[p["weighting"]].weights(epoch, p["epochs"], p["alpha"])
        row["weight_comparison"], row["weight_digits"] = w
        row["loss"] = w[0] * row["loss_comparison"] + w[1] * (
            row.get("loss_digit_first", 0) + row.get("loss_digit_second", 0))
    shapes = {key: value for key, value in p.items() if key not in ("experiment", "seed")}
    record["n_parameters"] = _n_parameters(json.dumps(shapes, sort_keys=True))
    record["budget"] = training_budget(p)
    return record


def write_records(results_dir, test_errors, train_errors=None, first_seed=None):
    """Write records under `results_dir`: for each experiment, one round per entry of
    `test_errors[experiment]` (seeds from `first_seed`, else the row's first seed), with those
    test errors (and train errors from `train_errors[experiment]`, else the template's);
    -> the folder."""
    results_dir = Path(results_dir)
    shutil.rmtree(results_dir, ignore_errors=True)
    for name, errors in test_errors.items():
        start = first_seed if first_seed is not None else \
            int(experiments.EXPERIMENTS[name]["seeds"].split("-")[0])
        for seed, count in enumerate(errors, start=start):
            record = round_of(template(name), seed, count)
            if train_errors and name in train_errors:
                record["train_errors"] = int(train_errors[name][seed - start])
                record["train_error_rate"] = 100 * record["train_errors"] / record["n_train"]
            write_record(record, results_dir)
    return results_dir


def diverged_at_epoch_2(record):
    """A fixture record (2 epochs of 1 step) made into the one of a training that diverged at
    its second step: its first epoch's history, where it diverged, no final keys."""
    for key in FINAL:
        del record[key]
    record.update(history=record["history"][:1], diverged={"epoch": 2, "step": 2, "loss": "inf"})
    return record
