"""The readings study (docs/readings.md): a point's metric is the mean validation error of the
rows it affects; the reading with the lowest is taken, the first rebuild's on a tie to the
second decimal; a reading with a row short of rounds (one diverged, say) gets none.
SHOWN_WITH_READINGS rows enter no metric."""

import pandas as pd

from ..catalogue import experiments

FIRST = "first"

# The study's design (its rows are frozen in the catalogue): each open design point of the
# report, each reading varied alone from the first rebuild's on the rows it affects (validation
# pairs, seeds 100-109). point -> (what is open, the rows it affects, {reading: its parameters}).
# P7's widths span the hidden layers of published solutions (100 and 500 units) in x4 steps.
READINGS = {
    "P1": ("what the two 10-vectors are at the final layer", ("ws-plain", "ws", "ws-aux"),
           {"softmax": {"head_input": "softmax"}, "log-softmax": {"head_input": "log_softmax"}}),
    "P2": ("where dropout and batch norm sit in the dense part", ("ws", "ws-aux"),
           {"dropout-out": {"dropout_at": "outputs"}, "dropout-both": {"dropout_at": "both"},
            "bn-out": {"batch_norm_outputs": True},
            "dropout-out-bn-out": {"dropout_at": "outputs", "batch_norm_outputs": True},
            "dropout-both-bn-out": {"dropout_at": "both", "batch_norm_outputs": True}}),
    "P3": ("the digit network's size", ("ws-plain", "ws", "ws-aux"),
           {"dense256": {"digit_hidden": 256}, "conv16-32": {"digit_width": 16}}),
    "P4": ("initialisation", ("ws-plain", "ws", "ws-aux"),
           {"xavier": {"init": "xavier"}, "kaiming": {"init": "kaiming"}}),
    "P5": ("eq. (3)'s schedule of alpha", ("ws-aux-d0.25", "ws-aux-d0.75"),
           {"discount": {"weighting": "eq3-discount"}, "geometric": {"weighting": "eq3-geometric"}}),
    "P6": ("the baseline's size", ("baseline",),
           {"dense128": {"baseline_hidden": 128}, "conv5": {"baseline_kernel": 5}}),
    "P7": ("the form of the final (comparison) layer", ("ws-plain", "ws", "ws-aux"),
           {f"hidden{width}": {"comparison": "hidden", "head_hidden": width}
            for width in (32, 128, 512)}),
}
# Rows shown beside the study without entering a point's metric (every point changes them too).
SHOWN_WITH_READINGS = ("ws-aux-c0.5", "ws-aux-c0.75")
WS_ROWS = ("ws-plain", "ws", "ws-aux", *SHOWN_WITH_READINGS, "ws-aux-d0.25", "ws-aux-d0.75")
# The rule's outcome at each step (the tests check each against the committed records):
# round 1 (rows val-<row>-<reading>); round 2 (a) its taken readings combined
# (val-<row>-combined), not better than its best single change, B; (b) every point varied from
# B (val-<row>-<B>-<reading>); (c) (b)'s changes combined on top of B, which the rule took.
ROUND1_TAKEN = {"P2": "bn-out", "P3": "dense256", "P4": "xavier", "P5": "geometric",
                "P7": "hidden512"}
ROUND2_BASE = {"P7": "hidden512"}
ROUND2_TAG = "-".join(ROUND2_BASE.values())
ROUND2_POINTS = [point for point in READINGS if point != "P6"]
ROUND2_TAKEN = {"P2": "bn-out", "P3": "dense256", "P5": "geometric"}
CHOSEN_READINGS = {**ROUND2_BASE, **ROUND2_TAKEN}  # the report's network: the defaults
# The diagnosis (validation pairs): are the rows still learning at epoch 25?
DIAGNOSIS, DIAGNOSED = {"epochs50": {"epochs": 50}, "epochs100": {"epochs": 100}}, ("ws", "ws-aux")


def round2_name(base, point=None, reading=None):
    """The validation row of `base` at B, or at B with `point` set to `reading`."""
    if point is None or ROUND2_BASE.get(point, "first") == reading:
        return f"val-{base}-{ROUND2_TAG}"
    if point in ROUND2_BASE:  # B's own point varied: round 1's rows
        return f"val-{base}-{reading}"
    return f"val-{base}-{ROUND2_TAG}-{reading}"


def without_diverged(frame, diverged):
    """`frame` less the records of each row with a round among `diverged` (the records of
    trainings that diverged): a mean over the rounds that trained would leave those out, so such
    a row has no mean anywhere in the study."""
    return frame[~frame["experiment"].isin({r["experiment"] for r in diverged})] if len(
        frame) else frame


def readings_table(frame, round2=False, diverged=()):
    """Per (point, reading, row) with records (`frame`'s, or among `diverged`, the records of
    trainings that diverged): rounds that trained, seeds, mean validation error % (none with a
    round that diverged), SD of the error count, rounds that `diverged`, `in_metric`, and `base`:
    the reading each point is varied from (the first rebuild's in round 1; B's in round 2, which
    leaves P6 out)."""
    rows = []
    for point, (what, bases, readings) in READINGS.items():
        if round2 and point not in ROUND2_POINTS:
            continue
        own = ROUND2_BASE.get(point, FIRST) if round2 else FIRST
        shown = () if round2 else SHOWN_WITH_READINGS
        for reading in (FIRST, *readings):
            for base in (*bases, *shown):
                name = (round2_name(base, point, reading) if round2
                        else f"val-{base}-{reading}")
                these = frame[frame["experiment"] == name] if len(frame) else frame
                gone = sum(record["experiment"] == name for record in diverged)
                if these.empty and not gone:
                    continue
                rows.append({"point": point, "open": what, "reading": reading, "row": base,
                             "in_metric": base in bases, "base": reading == own,
                             "rounds": len(these),
                             "seeds": ",".join(map(str, sorted(these["seed"]))),
                             "validation_pct": these["test_error_rate"].mean() if not gone
                             else float("nan"), "sd_errors": these["test_errors"].std(),
                             "diverged": gone})
    return pd.DataFrame(rows, columns=["point", "open", "reading", "row", "in_metric", "base",
                                       "rounds", "seeds", "validation_pct", "sd_errors",
                                       "diverged"])


def point_metrics(table):
    """Per point and reading: its metric (or NaN), against the first rebuild's, `taken`."""
    rows, table = [], table[table["in_metric"].astype(bool)]
    full = int((table["rounds"] + table["diverged"]).max()) if len(table) else 0
    for point, (_, bases, options) in READINGS.items():
        these = table[table["point"] == point]
        if these.empty:
            continue
        metrics = {}
        for reading, group in table[table["point"] == point].groupby("reading", sort=False):
            complete = set(group["row"]) == set(bases) and (group["rounds"] == full).all()
            metrics[reading] = group["validation_pct"].mean() if complete else float("nan")
        own = these.loc[these["base"], "reading"].iloc[0] if these["base"].any() else FIRST
        known = {r: m for r, m in metrics.items() if pd.notna(m)}
        taken = min(known, key=lambda r: (round(known[r], 2), r != own)) \
            if known and len(metrics) > len(options) else None  # every reading has records
        for reading, metric in metrics.items():
            rows.append({"point": point, "reading": reading, "metric_pct": metric,
                         "vs_first": metric - metrics.get(own, float("nan")),
                         "taken": reading == taken})
    return pd.DataFrame(rows, columns=["point", "reading", "metric_pct", "vs_first", "taken"])


def combined_metric(frame, rows=("ws-plain", "ws", "ws-aux"), tag="combined"):
    """Round 2 (a), `val-<row>-combined`, or (c), tag `<B>-combined`: the mean over `rows` of
    the mean validation error (%) of a combination, NaN while a row has no records."""
    means = [frame.loc[frame["experiment"] == f"val-{row}-{tag}", "test_error_rate"].mean()
             for row in rows]
    return sum(means) / len(means)


def change_metric(frame, point, reading, rows=("ws-plain", "ws", "ws-aux")):
    """Round 2 (c): one change of (b) on top of B, as a combination is measured: the mean over
    `rows` of their mean validation error (%), B's own on a row the point does not affect."""
    def mean(row):
        name = round2_name(row, *((point, reading) if row in
                                               READINGS[point][1] else ()))
        return frame.loc[frame["experiment"] == name, "test_error_rate"].mean()
    return sum(map(mean, rows)) / len(rows)


def taken(metrics):
    """{point: the reading the rule takes}."""
    return dict(metrics.loc[metrics["taken"], ["point", "reading"]].itertuples(index=False))


def closest_to_report(frame, rows=WS_ROWS):
    """Per row of `rows` and reading the study measured on it (rounds 1 and 2): its mean train
    and validation error (%), their gaps to the report's train and test errors (points), and
    `distance`, the larger of the two: a reading is close to the report on both columns at once
    when it is small."""
    columns = ["row", "experiment", "reading", "train_pct", "validation_pct", "train_gap",
               "test_gap", "distance"]
    if not len(frame):
        return pd.DataFrame(columns=columns)
    means = frame.groupby("experiment")[["train_error_rate", "test_error_rate"]].mean()
    found = []
    for row in rows:
        _, _, train, _, test, _ = experiments.EXPERIMENTS[row]["report"]
        for name, entry in experiments.EXPERIMENTS.items():
            if "readings" in entry["group"] and entry["description"].startswith(f"{row}, ") \
                    and name in means.index:
                ours_train, ours_test = means.loc[name]
                found.append({"row": row, "experiment": name,
                              "reading": entry["description"][len(row) + 2:]
                              .removesuffix(", on validation pairs"),
                              "train_pct": ours_train, "validation_pct": ours_test,
                              "train_gap": ours_train - train, "test_gap": ours_test - test,
                              "distance": max(abs(ours_train - train), abs(ours_test - test))})
    return pd.DataFrame(found, columns=columns)
