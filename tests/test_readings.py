"""The readings study's rule (docs/readings.md), applied by helpers.publish.readings."""

import pandas as pd
import pytest

from helpers.catalogue import experiments
from helpers.publish import readings


def study_frame(errors, rounds=10, missing=()):
    """Records of every readings row: `errors` maps (row, reading) -> mean errors out of 1000
    (100 elsewhere); `missing` lists (row, reading) with a single round."""
    rows = []
    for point, (_, bases, options) in readings.READINGS.items():
        for reading in ("first", *options):
            for base in bases:
                mean = errors.get((base, reading), 100)
                count = 1 if (base, reading) in missing else rounds
                for seed in range(100, 100 + count):
                    wiggle = (seed % 2) * 2 - 1
                    rows.append({"experiment": f"val-{base}-{reading}", "seed": seed,
                                 "test_errors": mean + wiggle,
                                 "test_error_rate": (mean + wiggle) / 10})
    return pd.DataFrame(rows).drop_duplicates(["experiment", "seed"])  # `first` rows are shared


def test_the_reading_with_the_lowest_metric_over_the_rows_is_taken():
    # softmax: far better on ws-aux, far worse on the others: worse on average, not taken;
    # xavier: a little better on all three: taken
    frame = study_frame({("ws-aux", "softmax"): 70, ("ws", "softmax"): 250,
                         ("ws-plain", "softmax"): 450, ("ws-plain", "xavier"): 98,
                         ("ws", "xavier"): 97, ("ws-aux", "xavier"): 99})
    metrics = readings.point_metrics(readings.readings_table(frame))
    taken = readings.taken(metrics)
    assert taken["P1"] == "first" and taken["P4"] == "xavier"
    p1 = metrics[metrics["point"] == "P1"].set_index("reading")
    assert p1.loc["softmax", "metric_pct"] == (7 + 25 + 45) / 3
    assert {point for point, reading in taken.items() if reading != "first"} == {"P4"}


def test_a_tie_to_the_second_decimal_keeps_the_first_rebuild():
    frame = study_frame({("baseline", "dense128"): 100})  # equal to first
    assert readings.taken(readings.point_metrics(readings.readings_table(frame)))["P6"] == "first"
    metrics = readings.point_metrics(readings.readings_table(study_frame({})))
    assert set(readings.taken(metrics).values()) == {"first"}
    assert metrics["taken"].sum() == len(readings.READINGS)  # one reading per point


def test_a_reading_with_a_row_short_of_rounds_is_not_eligible():
    # its surviving runs look good, but the diverged ones left no record
    frame = study_frame({("ws-plain", "kaiming"): 10, ("ws", "kaiming"): 90,
                         ("ws-aux", "kaiming"): 90}, missing=[("ws-plain", "kaiming")])
    metrics = readings.point_metrics(readings.readings_table(frame))
    assert readings.taken(metrics)["P4"] == "first"
    assert metrics.set_index(["point", "reading"]).loc[("P4", "kaiming"), "metric_pct"] != \
        metrics.set_index(["point", "reading"]).loc[("P4", "kaiming"), "metric_pct"]  # NaN
    assert metrics.set_index(["point", "reading"]).loc[("P4", "first"), "taken"]


def test_the_reading_closest_to_the_report_is_close_on_both_columns_at_once():
    # ws-aux's report: train 3.9%, test 6.9%. "a" matches the test error and misses the train
    # error by 3.4 points; "b" misses both by 0.5: b is the closest on both columns.
    rows = []
    for name, train, test in (("val-ws-aux-first", 4.4, 11.9), ("val-ws-aux-hidden512", 0.5, 6.9),
                              ("val-ws-aux-softmax", 4.4, 7.4)):
        rows += [{"experiment": name, "seed": 100 + i, "train_error_rate": train,
                  "test_error_rate": test} for i in range(2)]
    near = readings.closest_to_report(pd.DataFrame(rows), rows=("ws-aux",)).set_index("experiment")
    assert near.loc["val-ws-aux-hidden512", "distance"] == pytest.approx(3.4)
    assert near.loc["val-ws-aux-softmax", "distance"] == pytest.approx(0.5)
    assert near["distance"].idxmin() == "val-ws-aux-softmax"
    assert near.loc["val-ws-aux-softmax", "reading"] == "reading P1 'softmax'"
    assert near.loc["val-ws-aux-first", "test_gap"] == pytest.approx(5.0)
    assert readings.closest_to_report(pd.DataFrame()).empty
    # a reading with a round that diverged: its mean leaves that round out, so it is no candidate
    gone = readings.closest_to_report(readings.without_diverged(pd.DataFrame(rows), [
        {"experiment": "val-ws-aux-softmax", "seed": 102}]), rows=("ws-aux",))
    assert set(gone["experiment"]) == {"val-ws-aux-first", "val-ws-aux-hidden512"}


def test_no_record_of_the_study_gives_empty_tables_not_an_error():
    # a summary with -p finds none of the study's records (made with the report's protocol)
    table = readings.readings_table(pd.DataFrame(columns=["experiment", "seed", "test_errors",
                                                          "test_error_rate"]))
    assert table.empty
    metrics = readings.point_metrics(table)
    assert metrics.empty and list(metrics.columns) == ["point", "reading", "metric_pct",
                                                       "vs_first", "taken"]
    assert readings.taken(metrics) == {}
