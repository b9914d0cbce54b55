"""The readings study (docs/readings.md): how each reading of the report's open design points
fares on validation pairs, and which one the stated rule takes.

Rule (written before any reading was trained): the metric of a point is the mean validation
error over seeds 100-109 of the rows it affects, averaged over those rows with equal weight;
the reading with the lowest metric is taken, the first rebuild's when it ties to the second
decimal. Round 2 combines the readings taken and keeps the combination only if its metric over
ws-plain, ws and ws-aux is lower than that of the best single change.
"""

import pandas as pd

from ..catalogue import experiments

FIRST = "first"


def readings_table(frame, round2=False):
    """One row per (point, reading, row of the report) with records: rounds, seeds, mean
    validation error (%) and the SD of the error count (out of 1000). `base` marks the reading
    each point is varied from: the first rebuild's in round 1; in round 2, B's (the points of
    P6, which round 2 does not vary, are left out)."""
    rows = []
    for point, (what, bases, readings) in experiments.READINGS.items():
        if round2 and point not in experiments.ROUND2_POINTS:
            continue
        own = experiments.ROUND2_BASE.get(point, FIRST) if round2 else FIRST
        for reading in (FIRST, *readings):
            for base in bases:
                name = (experiments.round2_name(base, point, reading) if round2
                        else f"val-{base}-{reading}")
                these = frame[frame["experiment"] == name]
                if these.empty:
                    continue
                rows.append({"point": point, "open": what, "reading": reading, "row": base,
                             "base": reading == own, "rounds": len(these),
                             "seeds": ",".join(map(str, sorted(these["seed"]))),
                             "validation_pct": these["test_error_rate"].mean(),
                             "sd_errors": these["test_errors"].std()})
    return pd.DataFrame(rows, columns=["point", "open", "reading", "row", "base", "rounds",
                                       "seeds", "validation_pct", "sd_errors"])


def point_metrics(table):
    """Per point and reading: the metric (mean over the affected rows of their mean validation
    error), and whether the rule takes it. A reading gets no metric (it cannot be taken) when
    one of its rows has fewer rounds than the study's: a run whose training diverged leaves no
    record (its loss became NaN: the runner fails it), so that row's mean would be over the
    runs that happened to survive."""
    rows = []
    full = int(table["rounds"].max()) if len(table) else 0
    for point, (_, bases, _) in experiments.READINGS.items():
        these = table[table["point"] == point]
        if these.empty:
            continue
        metrics = {}
        for reading, group in these.groupby("reading", sort=False):
            complete = set(group["row"]) == set(bases) and (group["rounds"] == full).all()
            metrics[reading] = group["validation_pct"].mean() if complete else float("nan")
        own = these.loc[these["base"], "reading"].iloc[0] if these["base"].any() else FIRST
        reference = metrics.get(own, float("nan"))
        known = {r: m for r, m in metrics.items() if pd.notna(m)}
        taken = min(known, key=lambda r: (round(known[r], 2), r != own)) if known else None
        for reading, metric in metrics.items():
            rows.append({"point": point, "reading": reading, "metric_pct": metric,
                         "vs_first": metric - reference, "taken": reading == taken})
    return pd.DataFrame(rows, columns=["point", "reading", "metric_pct", "vs_first", "taken"])


def combined_metric(frame, rows=("ws-plain", "ws", "ws-aux")):
    """Round 2 (a): the mean over `rows` of the mean validation error (%) of the combination of
    round 1's readings (`val-<row>-combined`), NaN while a row has no records."""
    means = [frame.loc[frame["experiment"] == f"val-{row}-combined", "test_error_rate"].mean()
             for row in rows]
    return sum(means) / len(means)


def taken(metrics):
    """{point: the reading the rule takes}."""
    return dict(metrics.loc[metrics["taken"], ["point", "reading"]].itertuples(index=False))


def wide(table):
    """The readings table laid out for reading: one line per (point, reading), one column per
    row of the report, each cell its mean validation error (%) over the seeds; a row with
    fewer rounds than the study's says how many it has, and '-' marks a row the point does not
    affect."""
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
            rows.append({"point": point, "open": what, "rows": ", ".join(bases),
                         "reading": reading, "parameters": made})
    return pd.DataFrame(rows).set_index(["point", "open", "rows"])


def decision(metrics):
    """The rule's outcome in words (markdown), from `point_metrics`."""
    lines = []
    for point, group in metrics.groupby("point", sort=False):
        chosen = group.loc[group["taken"], "reading"].iloc[0]
        others = group[~group["taken"]].sort_values("metric_pct")
        what = experiments.READINGS[point][0]
        line = (f"- **{point}** ({what}): the rule takes **{chosen}** "
                f"({group.loc[group['taken'], 'metric_pct'].iloc[0]:.2f}%)")
        if len(others):
            line += "; the others: " + ", ".join(
                f"{row.reading} {row.metric_pct:.2f}%" if pd.notna(row.metric_pct) else
                f"{row.reading} not eligible (a row short of rounds: diverged runs)"
                for row in others.itertuples())
        lines.append(line + ".")
    taken_readings = taken(metrics)
    if all(reading == FIRST for reading in taken_readings.values()):
        lines.append("\nEvery point keeps the first rebuild's reading: their combination is the "
                     "first rebuild itself, so round 2 has nothing to combine and the catalogue "
                     "rows stay as they were.")
    else:
        changed = {p: r for p, r in taken_readings.items() if r != FIRST}
        lines.append("\nReadings that change: " + ", ".join(f"{p} {r}" for p, r in
                                                            changed.items()) + ".")
    return "\n".join(lines)


def per_seed(frame, names):
    """Validation errors (out of 1000) of `names`, one column each, one row per seed."""
    columns = {name: frame[frame["experiment"] == name].set_index("seed")["test_errors"]
               for name in names if (frame["experiment"] == name).any()}
    return pd.DataFrame(columns)


def diagnosis_table(frame):
    """The diagnosis rows (`val-ws*-epochs*`) beside the first rebuild's 25 epochs: rounds, mean
    validation errors and their SD, and mean train errors (out of 1000), one line per row."""
    names = [f"val-{base}-{suffix}" for base in experiments.DIAGNOSED
             for suffix in (FIRST, *experiments.DIAGNOSIS)]
    rows = []
    for name in names:
        these = frame[frame["experiment"] == name] if len(frame) else frame
        if len(these):
            rows.append({"experiment": name, "epochs": int(these["param.epochs"].iloc[0]),
                         "rounds": len(these), "validation_errors": these["test_errors"].mean(),
                         "sd": these["test_errors"].std(),
                         "train_errors": these["train_errors"].mean()})
    return pd.DataFrame(rows, columns=["experiment", "epochs", "rounds", "validation_errors",
                                       "sd", "train_errors"]).set_index("experiment").round(1)
