"""What the report publishes, as DataFrames (which records count, Tables III and IV, a group's
rows, budgets, numerics), and the README block. As in the report, an error % is a mean over the
rounds, an SD counts errors; a gap is ours minus the report's (points). The catalogue says where
a row goes (`report`, `beside`, groups `holdout` and `beyond`)."""

import ast
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalogue import experiments
from ..catalogue.parameters import DEFAULTS, check, checked_overrides, differing, reads
from ..errors import UsageError
from ..runs.records import Results
from ..runs.runner import parse_seeds
from ..science.losses import trains_digits
from ..science.numerics import label as numerics_label
from . import stats
from .stats import number, percent  # the tables' formats: a count, an error in percent

README_START = "<!-- results: written by `python -m helpers summary` from results/; do not edit -->"
README_END = "<!-- end of results -->"
REPORT_UNIT = "errors out of 1000"  # the report's SDs count errors out of its 1000 test pairs
# A row is far from the report when its train or test error differs from the report's by more
# than FAR_POINTS percentage points, or by more than FAR_SDS of the report's SDs (in points):
# whichever is smaller.
FAR_POINTS, FAR_SDS = 1.5, 2.0
HOLDOUT, BEYOND = "holdout", "beyond"  # catalogue groups with tables of their own


@dataclass
class Published(Results):
    """The records the report counts (and the damaged ones), and those left out with why."""
    left_out: list = field(default_factory=list)

    @property
    def diverged_rounds(self):  # {row: how many of its rounds diverged}
        return Counter(record["experiment"] for record in self.diverged)


def parsed_overrides(overrides):
    """The -p of a batch as a dict: given as one (the command line), or as its text (a notebook
    run by hand, papermill's `-p overrides '{"epochs": 1}'`)."""
    for parse in (json.loads, ast.literal_eval) * isinstance(overrides, str):
        try:
            overrides = parse(overrides.strip() or "{}")
            break
        except (ValueError, SyntaxError):
            continue
    if not isinstance(overrides, (dict, type(None))):
        raise UsageError(f"overrides {overrides!r} is not a dict of run parameters: give it as "
                         f"{{\"epochs\": 1, \"n_pairs\": 100}}")
    return checked_overrides(overrides)


def published(found, overrides=None):
    """The records of `found` made with their row's parameters (with `overrides`, the -p of
    their batch, a dict or its text; run-only ones aside) and one of its seeds -> Published,
    naming the others (those of trainings that diverged are kept apart, as `found` has them)."""
    overrides, expected, kept, left_out = parsed_overrides(overrides), {}, ([], []), []
    for record in found.records + found.diverged:
        name = record["experiment"]
        row = experiments.EXPERIMENTS.get(name)
        if row and name not in expected:
            expected[name] = check({**DEFAULTS, **row["params"], **overrides, "experiment": name})
        differ = [f"{key} {record['params'].get(key)!r}, the row's {expected[name][key]!r}"
                  for key in differing(record["params"], expected.get(name, {}))
                  if key != "seed"]
        why = ("not a catalogue row" if not row else
               f"seed {record['seed']}, not one of {row['seeds']}"
               if record["seed"] not in parse_seeds(row["seeds"]) else
               f"made with {'; '.join(differ[:3])}" if differ else None)
        if why:
            left_out.append((f"{name}/seed-{record['seed']}.json", why))
        else:
            kept["diverged" in record].append(record)
    return Published(found.folder, kept[0], found.damaged, kept[1], left_out)


def expected_rounds(name):  # the rounds catalogue row `name` is published with: its seeds
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
    return table.loc[experiments.ordered(table.index)]


def far_from_report(gap, report_sd):
    """Whether `gap` (points) exceeds FAR_POINTS or FAR_SDS report SDs, whichever is smaller."""
    return bool(np.isfinite(gap) and abs(gap) > min(FAR_POINTS, FAR_SDS * 100 * report_sd / 1000))


def report_table(found, table=None):
    """The report's Table `table` ("III", "IV"; None: both): ours beside its numbers, the gaps,
    the far errors, the rounds (and those expected); a row `beside` another right after it,
    when it has records."""
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
        if mine is None and row.get("beside"):  # a row shown beside another: when it has records
            continue
        number = {key: float(mine[key]) if mine is not None else np.nan
                  for key in ("train_pct", "train_sd", "test_pct", "test_sd")}
        gaps = {"train_gap": number["train_pct"] - train, "test_gap": number["test_pct"] - test}
        shown.append({"experiment": row["name"], "table": which, "label": label,
                      "beside": row.get("beside") or "",
                      "rounds": int(mine["rounds"]) if mine is not None else 0,
                      "diverged": found.diverged_rounds[row["name"]],
                      "expected_rounds": expected_rounds(row["name"]), **number,
                      "report_train_pct": train, "report_train_sd": train_sd,
                      "report_test_pct": test, "report_test_sd": test_sd, **gaps,
                      "far": ", ".join(kind for kind, sd in (("train", train_sd), ("test", test_sd))
                                       if far_from_report(gaps[f"{kind}_gap"], sd)),
                      "n_test": int(mine["n_test"]) if mine is not None else 0})
    return pd.DataFrame(shown).set_index("experiment")


def show_table(table, kinds=("test", "train")):
    """`report_table` laid out for reading, one unit per column."""
    unit = stats.error_unit(table[table["n_test"] > 0])
    one = table["table"].nunique() == 1  # a table of its own: its rows need no "Table III"
    columns = {("", "the report's row"): [label if one else f"Table {t}, {label}" for t, label in
                                    zip(table["table"], table["label"])],
               ("", "rounds"): [str(n) if n == expected else f"{n} of {expected}" + f", {gone} "
                                f"diverged" * bool(gone) for n, expected, gone in zip(
                                    table["rounds"], table["expected_rounds"], table["diverged"])]}
    for kind in kinds:
        for column, values in (("%", f"{kind}_pct"), (f"SD ({unit})", f"{kind}_sd"),
                               ("report %", f"report_{kind}_pct"),
                               (f"report SD ({REPORT_UNIT})", f"report_{kind}_sd"),
                               ("gap (points)", f"{kind}_gap")):
            columns[(f"{kind} error", column)] = [
                number(v) if column.startswith(("SD", "report SD")) else
                percent(v, signed=column.startswith("gap")) for v in table[values]]
    columns[("", "far from the report")] = [far or "-" for far in table["far"]]
    return pd.DataFrame(columns, index=table.index)


def group_table(found, group):
    """The rows of catalogue group `group` with records (of trainings that diverged, too), and
    the mean of the row beside each."""
    ours, gone = configuration_stats(found.frame), found.diverged_rounds
    rows = [row for row in experiments.CATALOGUE
            if group in row["group"] and (row["name"] in ours.index or row["name"] in gone)]
    return pd.DataFrame({
        "seeds": [row["seeds"] for row in rows],
        "expected_rounds": [expected_rounds(row["name"]) for row in rows],
        "diverged": [gone[row["name"]] for row in rows],
        "beside": [row.get("beside", "") for row in rows],
        "beside_test_pct": [ours["test_pct"].get(row.get("beside"), np.nan) for row in rows]},
        index=pd.Index([row["name"] for row in rows], name="experiment")).join(ours)


def budget_table(found, reference=experiments.EQ1):
    """Per configuration, from its records (their budget, counted when each was made): pairs,
    epochs, batch, steps, parameters, FLOPs, median seconds, and each against `reference`'s."""
    rows, params_of = {}, {}
    for name in experiments.ordered({r["experiment"] for r in found.records}):
        runs = [r for r in found.records if r["experiment"] == name]
        first = min(runs, key=lambda r: r["seed"])
        params, budget = first["params"], first["budget"]
        params_of[name] = params
        rows[name] = {"rounds": len(runs), "training pairs": params["n_pairs"],
                      "epochs": params["epochs"], "batch size": params["batch_size"],
                      "optimiser steps": budget["steps"], "parameters": first["n_parameters"],
                      "GFLOP per training": budget["training_flops"] / 1e9,
                      "seconds per training (median)": np.median([r["seconds"] for r in runs])}
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("experiment")
    for column, short in (("optimiser steps", "steps"), ("parameters", "parameters"),
                          ("GFLOP per training", "FLOPs"),
                          ("seconds per training (median)", "seconds")):
        if reference in table.index:
            table[f"{short} vs {reference} (x)"] = table[column] / table.loc[reference, column]
    if reference in table.index:
        table["keeps"] = [keeps(params_of[name], table.loc[name], table.loc[reference])
                          for name in table.index]
    return table.round(2)


def keeps(params, spends, reference):
    """What of the report's budget a run with `params` keeps, in words: the terms of its Table
    I, and no more parameters and training FLOPs than `reference` spends."""
    kept = [words for name, words in experiments.REPORT_BUDGET.items()
            if params[name] == DEFAULTS[name]]
    table = ("all of Table I" if len(kept) == len(experiments.REPORT_BUDGET) else
             "of Table I: " + ", ".join(kept))
    return ", ".join([table] + [what for what, column in (("parameters", "parameters"), (
        "FLOPs", "GFLOP per training")) if spends[column] <= reference[column]])


def numerics_table(found):
    """Per numerics (software, processor, threads) of `found`: records, configurations."""
    made = {}
    for record in found.records:
        made.setdefault(numerics_label(record["numerics"]), []).append(record["experiment"])
    table = pd.DataFrame([(name, len(names), ", ".join(experiments.ordered(names)))
                          for name, names in made.items()],
                         columns=["numerics", "records", "configurations"])
    return table.sort_values(["records", "numerics"], ascending=[False, True]).set_index("numerics")


def params(name):
    """The parameters catalogue row `name` runs with, those its run reads."""
    values = experiments.resolve(name)
    return {key: values[key] for key in reads(values)}


def discounted(names):
    """Those of `names` whose weighting discounts the digit losses, eq. (2) or (3)."""
    return [name for name in names if params(name)["weighting"].startswith(("eq2", "eq3"))]


def computed(names):
    """Those of `names` that compute the comparison from the two digit distributions."""
    return [name for name in names if params(name).get("comparison") == "computed"]


def changes(found, validation=None):
    """What the reproduction changed, in the records' numbers: the auxiliary-loss rows against
    the report and the first rebuild, the sizes, `same-budget`'s budget, the head study."""
    table = report_table(found)
    counted = table[table["rounds"] > 0]
    ours, first = counted[counted["beside"] == ""], counted[counted["beside"] != ""]
    aux = ours.loc[[name for name in ours.index if trains_digits(params(name))]]
    rebuilt = aux[aux.index.isin(first["beside"])]
    heads = validation.frame if validation is not None else pd.DataFrame()
    return {"aux": aux, "below": aux[aux["test_gap"] < 0], "above": aux[aux["test_gap"] > 0],
            "first": first[first["beside"].isin(aux.index)], "rebuilt": rebuilt,
            "sizes": budget_table(found)["parameters"] if found.records else pd.Series(),
            "cap": experiments.MAX_BUDGET_PARAMETERS,
            "budget": {name: DEFAULTS[name] for name in experiments.REPORT_BUDGET},
            "heads": heads.groupby("experiment")["test_error_rate"].mean() if len(heads) else {},
            "computed": computed(group_table(found, BEYOND).index), "params": params}


def readme_block(found, template, validation=None):
    """The README's results block: `template` (Jinja2) rendered with the numbers of `found`
    (and of `validation`, the head study's records)."""
    import jinja2

    table = report_table(found)
    paired = stats.paired_table(found.frame)
    numbers = {
        "table": table, "paired": paired, "budget": budget_table(found),
        "holdout": group_table(found, HOLDOUT), "beyond": group_table(found, BEYOND),
        "changes": changes(found, validation), "numerics": list(numerics_table(found).index),
        "unit": stats.error_unit(found.frame), "diverged": found.diverged,
        "headline": [name for name in experiments.HEADLINE if table.loc[name, "rounds"]],
        "seeds": ", ".join(sorted({experiments.EXPERIMENTS[n]["seeds"] for n in table.index})),
        "reference": experiments.EQ1, "number": number, "percent": percent,
        "verdicts": {word: paired[paired["verdict"] == word] for word in
                     (stats.LOWER, stats.HIGHER, stats.NOT_DISTINGUISHABLE)}}
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True,
                                      lstrip_blocks=True)
    return environment.from_string(Path(template).read_text(encoding="utf-8")) \
        .render(**numbers).strip()


def readme_text(text, block):
    """`text` (a README, markers checked) with `block` between its results markers."""
    head, rest = text.split(README_START, 1)
    return f"{head}{README_START}\n{block}\n{README_END}{rest.split(README_END, 1)[1]}"


class ForPeople:
    """A table as a page shows it (`for_people`): full text, no index column, '-' for NaN."""

    def __init__(self, frame):
        self.frame = frame

    def _repr_html_(self):
        with pd.option_context("display.max_colwidth", None):
            return self.frame.to_html(index=False, na_rep="-")

    def __repr__(self):
        return self.frame.to_string(index=False, na_rep="-")


def for_people(frame, index=True):
    """`frame` for a page: its index as its first columns (a value repeated down one of them
    shown once), one header row, no cell cut, a short cell on one line ('< 0.001')."""
    shown = (frame.reset_index() if index else frame.copy()).map(
        lambda v: v.replace(" ", "\u00a0") if isinstance(v, str) and len(v) <= 14 else v)
    for i in reversed(range(frame.index.nlevels if index and frame.index.nlevels > 1 else 0)):
        repeat = shown.iloc[:, :i + 1].eq(shown.iloc[:, :i + 1].shift()).all(axis=1)
        shown[shown.columns[i]] = shown[shown.columns[i]].astype(object).where(~repeat, "")
    return ForPeople(shown)
