"""The readings study (docs/readings.md): a point's metric is the mean validation error of the
rows it affects; the reading with the lowest is taken, the first rebuild's on a tie to the
second decimal; a reading with a row short of rounds (diverged runs leave no record) gets none.
SHOWN_WITH_READINGS rows enter no metric."""

import pandas as pd

from ..catalogue import experiments

FIRST = "first"


def readings_table(frame):
    """Per (point, reading, row) with records: rounds, mean validation error %, SD, in_metric."""
    rows = []
    for point, (what, bases, readings) in experiments.READINGS.items():
        for reading in (FIRST, *readings):
            for base in (*bases, *experiments.SHOWN_WITH_READINGS):
                these = frame[frame["experiment"] == f"val-{base}-{reading}"] if len(frame) \
                    else frame
                if these.empty:
                    continue
                rows.append({"point": point, "open": what, "reading": reading, "row": base,
                             "in_metric": base in bases, "rounds": len(these),
                             "seeds": ",".join(map(str, sorted(these["seed"]))),
                             "validation_pct": these["test_error_rate"].mean(),
                             "sd_errors": these["test_errors"].std()})
    return pd.DataFrame(rows, columns=["point", "open", "reading", "row", "in_metric", "rounds",
                                       "seeds", "validation_pct", "sd_errors"])


def point_metrics(table):
    """Per point and reading: its metric (or NaN), against the first rebuild's, `taken`."""
    rows, table = [], table[table["in_metric"]]
    full = int(table["rounds"].max()) if len(table) else 0
    for point, (_, bases, options) in experiments.READINGS.items():
        metrics = {}
        for reading, group in table[table["point"] == point].groupby("reading", sort=False):
            complete = set(group["row"]) == set(bases) and (group["rounds"] == full).all()
            metrics[reading] = group["validation_pct"].mean() if complete else float("nan")
        known = {r: m for r, m in metrics.items() if pd.notna(m)}
        taken = min(known, key=lambda r: (round(known[r], 2), r != FIRST)) \
            if known and len(metrics) > len(options) else None  # every reading has records
        for reading, metric in metrics.items():
            rows.append({"point": point, "reading": reading, "metric_pct": metric,
                         "vs_first": metric - metrics.get(FIRST, float("nan")),
                         "taken": reading == taken})
    return pd.DataFrame(rows, columns=["point", "reading", "metric_pct", "vs_first", "taken"])


def taken(metrics):
    """{point: the reading the rule takes}."""
    return dict(metrics.loc[metrics["taken"], ["point", "reading"]].itertuples(index=False))
