"""The readings study (docs/readings.md): how each reading of the report's open design points
fares on validation pairs, and which one the stated rule takes.

Rule (written before any reading was trained): the metric of a point is the mean validation
error over seeds 100-109 of the rows it affects, averaged over those rows with equal weight;
the reading with the lowest metric is taken, the first rebuild's when it ties to the second
decimal. A reading with a row short of rounds gets no metric (a diverged run leaves no record,
so that row's mean would be over the runs that survived). The rows of SHOWN_WITH_READINGS are
shown beside the study and enter no metric.
"""

import pandas as pd

from ..catalogue import experiments

FIRST = "first"


def readings_table(frame):
    """One row per (point, reading, row of the report) with records: rounds, seeds, mean
    validation error (%), SD of the error count, and whether the row enters the metric."""
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
    """Per point and reading: the metric (mean over the affected rows of their mean validation
    error; NaN when a row is missing or short of rounds), its difference from the first
    rebuild's, and whether the rule takes it."""
    rows = []
    table = table[table["in_metric"]]
    full = int(table["rounds"].max()) if len(table) else 0
    for point, (_, bases, _) in experiments.READINGS.items():
        metrics = {}
        for reading, group in table[table["point"] == point].groupby("reading", sort=False):
            complete = set(group["row"]) == set(bases) and (group["rounds"] == full).all()
            metrics[reading] = group["validation_pct"].mean() if complete else float("nan")
        known = {r: m for r, m in metrics.items() if pd.notna(m)}
        taken = min(known, key=lambda r: (round(known[r], 2), r != FIRST)) if known else None
        for reading, metric in metrics.items():
            rows.append({"point": point, "reading": reading, "metric_pct": metric,
                         "vs_first": metric - metrics.get(FIRST, float("nan")),
                         "taken": reading == taken})
    return pd.DataFrame(rows, columns=["point", "reading", "metric_pct", "vs_first", "taken"])


def taken(metrics):
    """{point: the reading the rule takes}."""
    return dict(metrics.loc[metrics["taken"], ["point", "reading"]].itertuples(index=False))


def show_metrics(metrics):
    """`point_metrics` laid out for reading."""
    def cell(value, signed=False):
        return "not eligible" if pd.isna(value) else f"{value:{'+' if signed else ''}.2f}"

    return pd.DataFrame({
        "point": metrics["point"], "reading": metrics["reading"],
        "metric: mean validation error (%)": [cell(v) for v in metrics["metric_pct"]],
        "vs the first rebuild (points)": [cell(v, True) for v in metrics["vs_first"]],
        "taken by the rule": ["yes" if t else "" for t in metrics["taken"]],
    }).set_index(["point", "reading"])


def wide(table):
    """The readings table laid out for reading: one line per (point, reading), one column per
    row of the report, each cell its mean validation error (%) over the seeds ('of N rounds'
    when short), '-' where the point does not touch the row."""
    if table.empty:
        return pd.DataFrame()
    full = int(table["rounds"].max())
    cells = table.assign(cell=[f"{pct:.2f}" + (f" ({n} of {full} rounds)" if n < full else "")
                               for pct, n in zip(table["validation_pct"], table["rounds"])])
    shown = cells.pivot(index=["point", "reading"], columns="row", values="cell")
    shown = shown.reindex(pd.MultiIndex.from_frame(cells[["point", "reading"]]
                                                   .drop_duplicates()))
    order = [row for row in experiments.REPORT_EXPERIMENTS if row in shown.columns]
    return shown[order].fillna("-")


def points_table():
    """The open points of the report: what is open, the rows it affects, each reading and the
    parameters that make it (from the catalogue)."""
    rows = []
    for point, (what, bases, readings) in experiments.READINGS.items():
        for reading, change in {FIRST: {}, **readings}.items():
            made = ", ".join(f"{k}={v}" for k, v in change.items()) or "the first rebuild's"
            rows.append({"point": point, "what is open": what, "rows": ", ".join(bases),
                         "reading": reading, "parameters": made})
    return pd.DataFrame(rows).set_index(["point", "what is open", "rows"])


def per_seed(frame, names):
    """Validation errors (out of 1000) of `names`, one column each, one row per seed."""
    return pd.DataFrame({name: frame[frame["experiment"] == name].set_index("seed")["test_errors"]
                         for name in names if len(frame) and (frame["experiment"] == name).any()})


def diagnosis_table(frame):
    """The diagnosis rows (`val-ws*-epochs*`) beside the first rebuild's 25 epochs: epochs,
    rounds, mean validation errors and their SD, mean train errors (out of 1000)."""
    rows = []
    for name in (f"val-{base}-{suffix}" for base in experiments.DIAGNOSED
                 for suffix in (FIRST, *experiments.DIAGNOSIS)):
        these = frame[frame["experiment"] == name] if len(frame) else frame
        if len(these):
            rows.append({"experiment": name, "epochs": int(these["param.epochs"].iloc[0]),
                         "rounds": len(these),
                         "validation errors (mean)": these["test_errors"].mean(),
                         "SD": these["test_errors"].std(),
                         "train errors (mean)": these["train_errors"].mean()})
    return pd.DataFrame(rows).set_index("experiment").round(1) if rows else pd.DataFrame()
