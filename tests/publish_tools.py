"""Records with chosen error counts, for the tests of what is published from them.

Each record is a real fixture record (tests/fixtures/results, 100 held-out pairs) of the same
configuration, with its seed and error counts replaced: the statistics, the wording and the
tables then read numbers whose answer the test knows.
"""

import json
import shutil
from pathlib import Path

from helpers.runs.records import record_path, write_record

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "results"
# A round-to-round pattern of mean 0: added to a difference d, the paired t statistic is
# d / (3 * sd([1, -1, ...]) / sqrt(10)), so d = 3 gives p = 0.015 and d = 30 p < 1e-9.
WIGGLE = [3, -3] * 5


def template(experiment):
    """The fixture's seed-0 record of `experiment` (ws-aux's, renamed, for one it lacks)."""
    name = experiment if record_path(FIXTURE, experiment, 0).is_file() else "ws-aux"
    record = json.loads(record_path(FIXTURE, name, 0).read_text())
    record["experiment"] = record["params"]["experiment"] = experiment
    return record


def write_records(results_dir, test_errors, train_errors=None):
    """Write records under `results_dir`: for each experiment, one round per entry of
    `test_errors[experiment]` (seeds 0, 1, ...), with those test errors (and train errors from
    `train_errors[experiment]`, else the template's); -> the folder."""
    results_dir = Path(results_dir)
    shutil.rmtree(results_dir, ignore_errors=True)
    for name, errors in test_errors.items():
        for seed, count in enumerate(errors):
            record = template(name)
            record["seed"] = record["params"]["seed"] = seed
            record["test_errors"] = int(round(count))
            record["test_error_rate"] = 100 * record["test_errors"] / record["n_test"]
            # a record's last epoch counts its test errors; each round has its own history (a
            # record with another's history and predictions is a copy, left out)
            record["history"][-1]["test_errors"] = record["test_errors"]
            record["history"][0]["loss"] += seed * 1e-9
            if train_errors and name in train_errors:
                record["train_errors"] = int(train_errors[name][seed])
                record["train_error_rate"] = 100 * record["train_errors"] / record["n_train"]
            record.pop("schema", None)
            write_record(record, results_dir)
    return results_dir
