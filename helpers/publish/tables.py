"""The numbers the report publishes, as DataFrames: which records count, Tables III and IV beside
the report's numbers, the rows of a group, the budgets, the numerics; and the README block, its
template rendered with those numbers.

As in the report (docs/protocol.md), an error in percent is a mean over the rounds and the SD is
the standard deviation of the NUMBER of errors (ddof=1); a gap is ours minus the report's, in
points. Which rows go where comes from the catalogue: a row with `report` is a row of the
report's tables, a row with `beside` is shown next to that row (or in the table of its group,
for group `holdout`), and the rows of group `beyond` are shown with their budgets.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalogue import experiments
from ..catalogue.parameters import DEFAULTS, RUN_ONLY, check
from ..errors import UsageError
from ..runs.records import Results
from ..runs.runner import parse_seeds
from ..science.numerics import label as numerics_label
from . import stats

README_START = "<!-- results: written by `python -m helpers summary` from results/; do not edit -->"
README_END = "<!-- end of results -->"
REPORT_UNIT = "errors out of 1000"  # the report's SDs count errors out of its 1000 test pairs
# A row is far from the report when its train or test error differs from the report's by more
# than FAR_POINTS percentage points, or by more than FAR_SDS of the report's SDs (in points):
# whichever is smaller.
FAR_POINTS, FAR_SDS = 1.5, 2.0
HOLDOUT, BEYOND = "holdout", "beyond"  # catalogue groups with tables of their own


@dataclass
class Published:
    """The records of a folder the report counts (`found`), and those it leaves out, with why."""
    found: Results
    left_out: list = field(default_factory=list)   # (experiment/seed-k.json, why)

    @property
    def frame(self):
        return self.found.frame

    @property
    def records(self):
        return self.found.records


def checked_overrides(overrides):
    """`overrides` (run parameter -> value, text allowed, as -p gives them) converted and
    checked; UsageError for an unknown name or a bad value."""
    unknown = sorted(set(overrides or {}) - set(DEFAULTS))
    if unknown:
        raise UsageError(f"unknown parameter {', '.join(map(repr, unknown))}: python -m "
                         f"helpers list names them")
    values = check({**DEFAULTS, **(overrides or {})})
    return {name: values[name] for name in overrides or {}}


def published(found, overrides=None):
    """The records of `found` (runs.records.load) that are their catalogue row's: made with the
    row's parameters (with `overrides`, the -p of their batch; RUN_ONLY ones aside) and one of
    its seeds. -> Published, with each record left out and why."""
    overrides, expected, kept, left_out = checked_overrides(overrides), {}, [], []
    for record in found.records:
        name = record["experiment"]
        row = experiments.EXPERIMENTS.get(name)
        if row and name not in expected:
            expected[name] = check({**DEFAULTS, **row["params"], **overrides, "experiment": name})
        differ = [f"{key} {record['params'].get(key)!r}, the row's {value!r}"
                  for key, value in expected.get(name, {}).items()
                  if key not in (*RUN_ONLY, "seed") and record["params"].get(key) != value]
        why = ("not a catalogue row" if not row else
               f"seed {record['seed']}, not one of {row['seeds']}"
               if record["seed"] not in parse_seeds(row["seeds"]) else
               f"made with {'; '.join(differ[:3])}" if differ else None)
        if why:
            left_out.append((f"{name}/seed-{record['seed']}.json", why))
        else:
            kept.append(record)
    return Published(Results(found.folder, kept, found.damaged), left_out)


def ordered(names):
    """`names` in catalogue order, then any others by name."""
    present = set(names)
    known = [row["name"] for row in experiments.CATALOGUE if row["name"] in present]
    return known + sorted(present - set(known))


def expected_rounds(name):
    """The rounds catalogue row `name` is published with: its seeds."""
    return len(parse_seeds(experiments.EXPERIMENTS[name]["seeds"]))


def configuration_stats(frame):
    """Per experiment: rounds, mean error rates (%), SD of the error counts, held-out pairs."""
    if frame.empty:
        return pd.DataFrame(columns=["rounds", "train_pct", "train_sd", "test_pct", "test_sd",
                                     "n_test"])
    grouped = frame.groupby("experiment")
    table = pd.DataFrame({
        "rounds": grouped.size(), "train_pct": grouped["train_error_rate"].mean(),
        "train_sd": grouped["train_errors"].std(), "test_pct": grouped["test_error_rate"].mean(),
        "test_sd": grouped["test_errors"].std(), "n_test": grouped["n_test"].max()})
    return table.loc[ordered(table.index)]


def far_from_report(gap, report_sd):
    """True when `gap` (points) is more than FAR_POINTS, or more than FAR_SDS of the report's
    SDs (`report_sd`, errors out of its 1000 pairs, in points): whichever is smaller."""
    return bool(np.isfinite(gap) and abs(gap) > min(FAR_POINTS, FAR_SDS * 100 * report_sd / 1000))


def report_table(found, table=None):
    """The report's Table `table` ("III", "IV"; None: both) from `found` (Published): per
    catalogue row, ours beside the published numbers, the gaps, the errors far from the report,
    the rounds counted and those the row is published with. A row shown beside another comes
    right after it."""
    rows = [row for row in experiments.CATALOGUE if row.get("report") and not row.get("beside")]
    for row in experiments.CATALOGUE:
        if row.get("report") and row.get("beside") and HOLDOUT not in row["group"]:
            rows.insert(1 + max(i for i, r in enumerate(rows)
                                if row["beside"] in (r["name"], r.get("beside"))), row)
    ours, shown = configuration_stats(found.frame), []
    for row in rows:
        which, label, train, train_sd, test, test_sd = row["report"]
        if table not in (None, which):
            continue
        mine = ours.loc[row["name"]] if row["name"] in ours.index else None
        number = {key: float(mine[key]) if mine is not None else np.nan
                  for key in ("train_pct", "train_sd", "test_pct", "test_sd")}
        gaps = {"train_gap": number["train_pct"] - train, "test_gap": number["test_pct"] - test}
        shown.append({"experiment": row["name"], "table": which, "label": label,
                      "beside": row.get("beside") or "",
                      "rounds": int(mine["rounds"]) if mine is not None else 0,
                      "expected_rounds": expected_rounds(row["name"]), **number,
                      "report_train_pct": train, "report_train_sd": train_sd,
                      "report_test_pct": test, "report_test_sd": test_sd, **gaps,
                      "far": ", ".join(kind for kind, sd in (("train", train_sd), ("test", test_sd))
                                       if far_from_report(gaps[f"{kind}_gap"], sd)),
                      "n_test": int(mine["n_test"]) if mine is not None else 0})
    return pd.DataFrame(shown).set_index("experiment")


def number(value, digits=1, signed=False):
    """A number as the tables print it ('-' when missing)."""
    return "-" if pd.isna(value) else f"{value:{'+' if signed else ''}.{digits}f}"


def rounds_cells(table):
    """'10', or '7 of 10' for a row with fewer rounds than its seeds."""
    return [str(n) if n == expected else f"{n} of {expected}"
            for n, expected in zip(table["rounds"], table["expected_rounds"])]


def show_table(table, kinds=("test", "train")):
    """`report_table` laid out for reading: for each kind of error ours, the report's and the
    gap, one unit per column; then which errors are far from the report."""
    sizes = {int(n) for n in table["n_test"] if n}
    unit = f"errors out of {sizes.pop()}" if len(sizes) == 1 else "errors"
    columns = {("", "report row"): [f"Table {t}, {label}" for t, label in
                                    zip(table["table"], table["label"])],
               ("", "rounds"): rounds_cells(table)}
    for kind in kinds:
        for column, values in (("%", f"{kind}_pct"), (f"SD ({unit})", f"{kind}_sd"),
                               ("report %", f"report_{kind}_pct"),
                               (f"report SD ({REPORT_UNIT})", f"report_{kind}_sd"),
                               ("gap (points)", f"{kind}_gap")):
            columns[(f"{kind} error", column)] = [number(v, signed=column.startswith("gap"))
                                                  for v in table[values]]
    columns[("", "far from the report")] = [far or "-" for far in table["far"]]
    return pd.DataFrame(columns, index=table.index)


def group_table(found, group):
    """The rows of catalogue group `group` with records: their seeds, rounds (and those
    expected), mean test error %, SD of the count and, for a row shown beside another, that
    row's mean test error %."""
    ours = configuration_stats(found.frame)
    rows = [{"experiment": row["name"], "description": row["description"], "seeds": row["seeds"],
             "rounds": int(ours.loc[row["name"], "rounds"]),
             "expected_rounds": expected_rounds(row["name"]),
             "test_pct": ours.loc[row["name"], "test_pct"],
             "test_sd": ours.loc[row["name"], "test_sd"], "beside": row.get("beside") or "",
             "beside_test_pct": ours["test_pct"].get(row.get("beside"), np.nan)}
            for row in experiments.CATALOGUE if group in row["group"] and row["name"] in ours.index]
    return pd.DataFrame(rows, columns=["experiment", "description", "seeds", "rounds",
                                       "expected_rounds", "test_pct", "test_sd", "beside",
                                       "beside_test_pct"]).set_index("experiment")


def budget_table(found, reference=experiments.EQ1):
    """Per configuration, from its records: training pairs, epochs, batch size, optimiser steps,
    trainable parameters, training FLOPs (the budget each record keeps, counted when it was
    made), median seconds per training, and each against `reference`'s (a ratio)."""
    rows = {}
    for name in ordered({r["experiment"] for r in found.records}):
        records = sorted((r for r in found.records if r["experiment"] == name),
                         key=lambda r: r["seed"])
        params, budget = records[0]["params"], records[0]["budget"]
        rows[name] = {"rounds": len(records), "training pairs": params["n_pairs"],
                      "epochs": params["epochs"], "batch size": params["batch_size"],
                      "optimiser steps": budget["steps"], "parameters": records[0]["n_parameters"],
                      "GFLOP per training": budget["training_flops"] / 1e9,
                      "seconds per training (median)": np.median([r["seconds"] for r in records])}
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("experiment")
    for column, short in (("optimiser steps", "steps"), ("parameters", "parameters"),
                          ("GFLOP per training", "FLOPs"),
                          ("seconds per training (median)", "seconds")):
        if reference in table.index:
            table[f"{short} vs {reference} (x)"] = table[column] / table.loc[reference, column]
    return table.round(2)


def numerics_table(found):
    """Per numerics (software, processor, instruction set, threads) that made records of
    `found`: how many records, of which configurations."""
    made = {}
    for record in found.records:
        made.setdefault(numerics_label(record["numerics"]), []).append(record["experiment"])
    table = pd.DataFrame([(name, len(names), ", ".join(ordered(names)))
                          for name, names in made.items()],
                         columns=["numerics", "records", "configurations"])
    return table.sort_values(["records", "numerics"], ascending=[False, True]).set_index("numerics")


def paired_with_rates(found):
    """stats.paired_table over the catalogue's comparisons, with the means in percent."""
    paired = stats.paired_table(found.frame)
    n_test = found.frame.groupby("experiment")["n_test"].max() if len(found.frame) else {}
    for side in ("before", "after"):
        paired[f"{side}_pct"] = [100 * m / n_test[name] for m, name in
                                 zip(paired[f"mean_{side}"], paired[side])]
    return paired


def readme_block(found, template):
    """The README's results block: `template` (a Jinja2 file) rendered with the numbers of
    `found` (Published), and `number`, `judgement` and `format_p` to word them."""
    import jinja2

    table = report_table(found)
    numbers = {
        "table": table, "paired": paired_with_rates(found), "budget": budget_table(found),
        "holdout": group_table(found, HOLDOUT), "beyond": group_table(found, BEYOND),
        "numerics": list(numerics_table(found).index), "unit": stats.error_unit(found.frame),
        "headline": [name for name in experiments.HEADLINE if table.loc[name, "rounds"]],
        "seeds": ", ".join(sorted({experiments.EXPERIMENTS[n]["seeds"] for n in table.index})),
        "reference": experiments.EQ1, "far_points": FAR_POINTS, "far_sds": FAR_SDS,
        "level": stats.LEVEL, "number": number, "judgement": stats.judgement,
        "format_p": stats.format_p}
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True,
                                      lstrip_blocks=True)
    return environment.from_string(Path(template).read_text(encoding="utf-8")) \
        .render(**numbers).strip()


def readme_text(text, block):
    """`text` (a README) with `block` between its results markers (ValueError without them)."""
    if README_START not in text or README_END not in text:
        raise ValueError("no results markers")
    head, rest = text.split(README_START, 1)
    return f"{head}{README_START}\n{block}\n{README_END}{rest.split(README_END, 1)[1]}"
