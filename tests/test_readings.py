"""The readings study's rule (docs/readings.md), applied by helpers.publish.readings."""

import pandas as pd

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
