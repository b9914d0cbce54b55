"""The report's Tables III and IV rebuilt from the run records beside its published numbers,
the budget of each configuration, the numerics behind a results folder, a conclusion written
from the numbers and the corrected tests, and the README's results section.

Conventions of the report (docs/protocol.md): errors in percent are means over the rounds; the
SD is the standard deviation of the NUMBER of errors (sample SD, ddof=1, as torch.std computes
it). Every column holds one unit and says which in its header; a gap to the report is ours
minus the report's, in percentage points. Every table counts the rounds behind each row and
marks a row with fewer rounds than expected: nothing is silently averaged over fewer rounds.
Damaged records are named and left out. `found` is what `runs.records.load` read from a
results folder.

Every comparison word of the generated text comes from `stats.judgement` (Holm-corrected
paired tests); distances to the report follow `far_from_report`.
"""

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalogue import experiments
from ..catalogue.parameters import RUN_ONLY
from ..science.numerics import label as numerics_label
from . import stats

# Parameters that may differ between the rounds of one protocol: the round itself, those that
# never change what is computed, and the thread count (it changes the numbers, not the protocol).
_NOT_PROTOCOL = ("experiment", "seed", "threads", *RUN_ONLY)
REPORT_PAIRS = 1000  # the report's test (and train) pairs: its SDs count errors out of these

# A row is far from the report when its train or test error differs from the report's by more
# than FAR_POINTS percentage points, or by more than FAR_SDS of the report's SDs (in points):
# whichever is smaller.
FAR_POINTS = 1.5
FAR_SDS = 2.0
FAR_RULE = (f"more than {FAR_POINTS:g} points from the report's, or more than "
            f"{FAR_SDS:g} of the report's SDs (in points), whichever is smaller")


def describe(found):
    """What was found (markdown): records, configurations, damaged files left out."""
    if not found.records:
        lines = [f"No run records under `{found.folder}` yet: run `python -m helpers run all "
                 f"--seeds 0-9` (or `make report`) to produce them."]
    else:
        frame = found.frame
        lines = [f"{len(frame)} run records of {frame['experiment'].nunique()} configurations "
                 f"under `{found.folder}`."]
    for path, reason in found.damaged:
        lines.append(f"- Damaged record left out: {Path(path).parent.name}/{Path(path).name} "
                     f"({reason}); rerunning that run replaces it.")
    return "\n".join(lines[:1] + ([""] if len(lines) > 1 else []) + lines[1:])


def ordered_experiments(frame):
    """Experiments with records, in catalogue order, then any others by name."""
    present = set(frame["experiment"])
    known = [row["name"] for row in experiments.CATALOGUE if row["name"] in present]
    return known + sorted(present - set(known))


def _protocol_note(records):
    """'' when the records ran the catalogue's parameters, else what differs."""
    if not records:
        return ""
    name = records[0]["experiment"]
    if name not in experiments.EXPERIMENTS:
        return "not in the catalogue"
    protocol = experiments.resolve(name)
    differing = {}
    for record in records:
        for key, value in record["params"].items():
            if key not in _NOT_PROTOCOL and key in protocol and protocol[key] != value:
                differing.setdefault(key, set()).add(repr(value) if isinstance(value, str)
                                                     else str(value))
    if not differing:
        return ""
    return "not the report's protocol: " + ", ".join(
        f"{key}={'/'.join(sorted(values))}" for key, values in sorted(differing.items()))


def expected_rounds_of(found, expected_rounds=None):
    """Rounds each row should count: the argument, else the most rounds any configuration has."""
    if expected_rounds:
        return int(expected_rounds)
    frame = found.frame
    return int(frame.groupby("experiment").size().max()) if len(frame) else 0


def configuration_stats(found):
    """Per experiment: rounds, seeds, mean error rates, SD of the error counts, cost."""
    frame = found.frame
    columns = ["rounds", "seeds", "train_pct", "train_sd", "test_pct", "test_sd",
               "n_parameters", "seconds", "n_test"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    grouped = frame.groupby("experiment")
    per_config = pd.DataFrame({
        "rounds": grouped.size(),
        "seeds": grouped["seed"].agg(lambda s: ",".join(map(str, sorted(s)))),
        "train_pct": grouped["train_error_rate"].mean(),
        "train_sd": grouped["train_errors"].std(ddof=1),
        "test_pct": grouped["test_error_rate"].mean(),
        "test_sd": grouped["test_errors"].std(ddof=1),
        "n_parameters": grouped["n_parameters"].agg(lambda s: "/".join(map(str, sorted(set(s))))),
        "seconds": grouped["seconds"].median(),
        "n_test": grouped["n_test"].max(),
    })
    return per_config.loc[ordered_experiments(frame), columns]


# ---------------------------------------------------------------------------------------------
# Tables III and IV beside the report
# ---------------------------------------------------------------------------------------------
def far_from_report(gap, report_sd):
    """True when `gap` (ours minus the report's, in points) is FAR_RULE; `report_sd` is the
    report's SD in errors out of its 1000 pairs."""
    if gap is None or not np.isfinite(gap):
        return False
    threshold = min(FAR_POINTS, FAR_SDS * 100 * report_sd / REPORT_PAIRS)
    return abs(gap) > threshold


def report_table(found, table=None, expected_rounds=None):
    """The report's Table `table` ("III" or "IV"; None: both) rebuilt: one row per
    configuration, ours beside the published numbers, the gaps (ours minus the report's, in
    points), whether the row is far from the report, the rounds counted, and a note on
    incomplete rows."""
    per_config = configuration_stats(found)
    expected = expected_rounds_of(found, expected_rounds)
    rows = []
    for row in experiments.CATALOGUE:
        if not row.get("report") or (table is not None and row["report"][0] != table):
            continue
        which, label, train, train_sd, test, test_sd = row["report"]
        name = row["name"]
        ours = per_config.loc[name] if name in per_config.index else None
        rounds = int(ours["rounds"]) if ours is not None else 0
        notes = []
        if rounds == 0:
            notes.append("no records")
        elif rounds < expected:
            notes.append(f"INCOMPLETE: {rounds} of {expected} rounds")
        protocol = _protocol_note([r for r in found.records if r["experiment"] == name])
        if protocol:
            notes.append(protocol)
        def number(key, ours=ours):
            return float(ours[key]) if ours is not None else float("nan")

        train_gap, test_gap = number("train_pct") - train, number("test_pct") - test
        far = [kind for kind, gap, sd in (("train", train_gap, train_sd), ("test", test_gap, test_sd))
               if far_from_report(gap, sd)]
        rows.append({"configuration": label, "experiment": name, "table": which,
                     "rounds": rounds, "train_pct": number("train_pct"),
                     "train_sd": number("train_sd"), "test_pct": number("test_pct"),
                     "test_sd": number("test_sd"), "report_train_pct": train,
                     "report_train_sd": train_sd, "report_test_pct": test,
                     "report_test_sd": test_sd, "train_gap": train_gap, "test_gap": test_gap,
                     "far": ", ".join(far),
                     "n_test": int(ours["n_test"]) if ours is not None else 0,
                     "note": "; ".join(notes)})
    return pd.DataFrame(rows).set_index("configuration")


def _rounds_header(table):
    rounds = sorted({int(r) for r in table["rounds"] if r})
    return f"mean of {rounds[0]} rounds" if len(rounds) == 1 else "mean over the rounds"


def _sd_unit(table):
    sizes = sorted({int(n) for n in table["n_test"] if n})
    return f"errors out of {sizes[0]}" if len(sizes) == 1 else "errors"


def _measure_columns(table, kind):
    """The columns of one measure (train or test), one unit each, ours then the report's, in
    the same format (one decimal, as the report prints them)."""
    def fmt(value, places, signed=False):
        return "-" if pd.isna(value) else f"{value:{'+' if signed else ''}.{places}f}"

    return {
        f"{kind} error % ({_rounds_header(table)})": [fmt(v, 1) for v in table[f"{kind}_pct"]],
        f"SD ({_sd_unit(table)})": [fmt(v, 1) for v in table[f"{kind}_sd"]],
        f"report {kind} %": [fmt(v, 1) for v in table[f"report_{kind}_pct"]],
        f"report SD (errors out of {REPORT_PAIRS})": [fmt(v, 1) for v in table[f"report_{kind}_sd"]],
        "gap to the report (points)": [fmt(v, 1, signed=True) for v in table[f"{kind}_gap"]],
    }


def show_table(table):
    """`report_table`'s output laid out for reading: for test and train error, ours, the
    report's and the gap, one unit per column; then whether the row is far from the report."""
    columns = {("", "experiment"): list(table["experiment"]), ("", "rounds"): list(table["rounds"])}
    for kind in ("test", "train"):
        for name, values in _measure_columns(table, kind).items():
            columns[(f"{kind} error", name.replace(f"{kind} error ", ""))] = values
    columns[("", "far from the report")] = [far or "-" for far in table["far"]]
    columns[("", "note")] = [note or "-" for note in table["note"]]
    shown = pd.DataFrame(columns, index=table.index)
    shown.columns = pd.MultiIndex.from_tuples(shown.columns)
    return shown


# ---------------------------------------------------------------------------------------------
# What each configuration costs: the training budget
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _training_flops(params_json):
    from ..bench import training_flops  # torch, and the benchmark's one FLOP count

    return training_flops(json.loads(params_json))[0]


def training_flops_of(params):
    """FLOPs of one training with `params` (bench.training_flops: one counted step times the
    optimiser steps; convolutions and matrix products, forward and backward)."""
    budget = {k: v for k, v in params.items() if k not in ("experiment", "seed", "data_root",
                                                           "device", "threads", "results_dir")}
    return _training_flops(json.dumps(budget, sort_keys=True))


BUDGET = ("n_pairs", "epochs", "batch_size")


def budget_table(found, reference=experiments.EQ1):
    """Per configuration: training pairs, epochs, batch size, optimiser steps
    (epochs x ceil(pairs / batch size)), trainable parameters, FLOPs of one training, median
    seconds per training over its records (with the device and threads that timed them), and
    each against `reference` (a ratio; '-' when `reference` has no records). The budget is
    read from the lowest seed's parameters; a configuration whose rounds differ in it is
    noted."""
    frame = found.frame
    if frame.empty:
        return pd.DataFrame()
    rows = {}
    for name in ordered_experiments(frame):
        records = sorted((r for r in found.records if r["experiment"] == name),
                         key=lambda r: r["seed"])
        params = records[0]["params"]
        steps = params["epochs"] * math.ceil(params["n_pairs"] / params["batch_size"])
        varies = [key for key in BUDGET if len({r["params"][key] for r in records}) > 1]
        timing = sorted({f"{r['device']}, {r['params']['threads']} thread"
                         f"{'s' * (r['params']['threads'] != 1)}" for r in records})
        rows[name] = {"rounds": len(records), "training pairs": params["n_pairs"],
                      "epochs": params["epochs"], "batch size": params["batch_size"],
                      "optimiser steps": steps,
                      "parameters": int(np.median([r["n_parameters"] for r in records])),
                      "GFLOP per training": training_flops_of(params) / 1e9,
                      "seconds per training (median)": float(np.median([r["seconds"]
                                                                        for r in records])),
                      "timed on": " / ".join(timing),
                      "note": f"rounds differ in {', '.join(varies)}" if varies else "-"}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "experiment"
    for column, short in (("optimiser steps", "steps"), ("parameters", "parameters"),
                          ("GFLOP per training", "FLOPs"),
                          ("seconds per training (median)", "seconds")):
        ratio = (table[column] / table.loc[reference, column]).round(2) \
            if reference in table.index else np.nan
        table[f"{short} vs {reference} (x)"] = ratio
    table["GFLOP per training"] = table["GFLOP per training"].round(2)
    table["seconds per training (median)"] = table["seconds per training (median)"].round(2)
    return table


# ---------------------------------------------------------------------------------------------
# The numerics behind the records of a folder (science/numerics.py)
# ---------------------------------------------------------------------------------------------
def numerics_table(found):
    """Per numerics (software, processor, instruction set, threads) that produced records of
    `found`: how many records, of which configurations (catalogue order)."""
    groups = {}
    for record in found.records:
        groups.setdefault(numerics_label(record["numerics"]), []).append(record["experiment"])
    rows = []
    for name, made in groups.items():
        order = ordered_experiments(pd.DataFrame({"experiment": made}))
        rows.append({"numerics": name, "records": len(made), "experiments": ", ".join(order)})
    table = pd.DataFrame(rows, columns=["numerics", "records", "experiments"])
    return table.sort_values(["records", "numerics"], ascending=[False, True]).set_index("numerics")


def numerics_summary(found):
    """One paragraph (markdown) on which numerics made the records of `found`, saying plainly
    when the folder mixes several."""
    if not found.records:
        return f"No records under `{found.folder}`, so no numerics to show."
    table = numerics_table(found)
    if len(table) == 1:
        return (f"All {len(found.records)} records under `{found.folder}` were made with the same "
                f"numerics: {table.index[0]}.")
    mixed = [name for name in ordered_experiments(found.frame)
             if len({numerics_label(r["numerics"]) for r in found.records
                     if r["experiment"] == name}) > 1]
    text = (f"The records under `{found.folder}` mix {len(table)} numerics (table below): a record "
            f"is reproduced bit for bit only with its own numerics, and two configurations made "
            f"with different numerics differ by that too.")
    if mixed:
        text += f" Configurations whose rounds span several numerics: {', '.join(mixed)}."
    return text


def history_frame(found):
    """One row per (experiment, seed, epoch) of the records' histories, errors in percent."""
    rows = []
    for record in found.records:
        for step in record["history"]:
            rows.append({"experiment": record["experiment"], "seed": record["seed"],
                         "epoch": step["epoch"],
                         "train_pct": 100 * step["train_errors_running"] / record["n_train"],
                         "test_pct": 100 * step["test_errors"] / record["n_test"]})
    return pd.DataFrame(rows, columns=["experiment", "seed", "epoch", "train_pct", "test_pct"])


# ---------------------------------------------------------------------------------------------
# The conclusion: every number and every comparison word is read from the tables and tests.
# ---------------------------------------------------------------------------------------------
def _same_direction(ours, report_before, report_after):
    """How the report's two means relate to our verdict (only called on a verdict)."""
    theirs = np.sign(report_after - report_before)
    if theirs == 0:
        return "the report's two means are equal"
    return ("the report's means go the same way" if (theirs < 0) == (ours == stats.LOWER)
            else "the report's means go the other way")


def _comparison_bullet(row, published, unit):
    """One comparison of the report's family, in words."""
    before, after = row["before"], row["after"]
    rounds = int(row["rounds"])
    text = (f"- {row['change']} (`{before}` to `{after}`), over {rounds} paired "
            f"round{'s' * (rounds != 1)}: mean test error {row['mean_before_pct']:.2f}% to "
            f"{row['mean_after_pct']:.2f}%, mean paired difference "
            f"{stats._signed(row['mean_difference'])} {unit}"
            + (f" (95% CI {stats._interval(row['ci_low'], row['ci_high'])})"
               if np.isfinite(row["ci_low"]) else "")
            + f", {stats._p_text(row)}: "
            + stats.judgement(f"`{after}`", f"`{before}`", row["mean_difference"], row["p_holm"])
            + ".")
    if before in published and after in published:
        text += f" The report's means: {published[before]:.1f}% to {published[after]:.1f}%"
        text += (f" ({_same_direction(row['verdict'], published[before], published[after])})."
                 if row["verdict"] != stats.NOT_DISTINGUISHABLE else ".")
    return text


def _paired_with_rates(found):
    """stats.paired_table over the catalogue's comparisons, with the means in percent."""
    paired = stats.paired_table(found.frame)
    # the means of the rounds the test paired (the common seeds), in percent
    n_test = found.frame.groupby("experiment")["n_test"].max()
    paired["mean_before_pct"] = [100 * m / n_test[b] for m, b in zip(paired["mean_before"],
                                                                   paired["before"])]
    paired["mean_after_pct"] = [100 * m / n_test[a] for m, a in zip(paired["mean_after"],
                                                                 paired["after"])]
    return paired


def _far_paragraph(rows):
    """The rows far from the report, named with both gaps; the others listed."""
    have = rows[rows["rounds"] > 0]
    if have.empty:
        return ""
    far, near = [], []
    for name, row in have.iterrows():
        gaps = (f"train {row['train_pct']:.2f}% against the report's "
                f"{row['report_train_pct']:.1f}%, gap {row['train_gap']:+.1f} points; test "
                f"{row['test_pct']:.2f}% against {row['report_test_pct']:.1f}%, gap "
                f"{row['test_gap']:+.1f} points")
        (far if row["far"] else near).append((name, gaps))
    text = (f"Against the report, on train and test error: a row is called far from the report "
            f"when either error is {FAR_RULE}.")
    if far:
        text += (" Far from the report: "
                 + "; ".join(f"`{name}` ({gaps})" for name, gaps in far) + ".")
    else:
        text += " No row is far from the report."
    if near:
        text += (" Within that distance on both: "
                 + ", ".join(f"`{name}`" for name, _ in near) + ".")
    return text


def _discounted(paired, published):
    """The discounted weightings (eq. 2 and 3 rows) against eq. (1), in one sentence."""
    eq1 = experiments.EQ1
    variants = paired[(paired["after"] == eq1) & paired["before"].str.startswith(eq1 + "-")]
    if not len(variants):
        return ""
    # the verdict on each variant against eq. (1): the opposite sign of ws-aux minus it
    words = {name: stats.verdict(-d, p) for name, d, p in
             zip(variants["before"], variants["mean_difference"], variants["p_holm"])}

    def listed(word):
        return ", ".join(f"`{n}`" for n, w in words.items() if w == word) or "none"

    text = (f"Of the {len(words)} discounted weightings tested against eq. (1) (`ws-aux`): "
            f"lower test error than eq. (1): {listed(stats.LOWER)}; higher: "
            f"{listed(stats.HIGHER)}; not distinguishable from it: "
            f"{listed(stats.NOT_DISTINGUISHABLE)}.")
    return text + (" The report's means: " + ", ".join(f"`{n}` {published[n]:.1f}%"
                                                       for n in words)
                   + f", against {published['ws-aux']:.1f}% for eq. (1) (the report gives no "
                     f"test).")


def _far_line(rows):
    """The rows far from the report, each with its far gaps only, in one sentence."""
    have = rows[rows["rounds"] > 0]
    far = [f"`{name}` (" + ", ".join(f"{kind} {row[f'{kind}_gap']:+.1f}"
                                     for kind in row["far"].split(", ")) + ")"
           for name, row in have.iterrows() if row["far"]]
    near = [f"`{name}`" for name, row in have.iterrows() if not row["far"]]
    return (f"**Far from the report** ({FAR_RULE}; gaps in points): "
            + (", ".join(far) if far else "no row")
            + (f"; within it: {', '.join(near)}." if near else "."))


def conclusion(found, expected_rounds=None):
    """A short markdown conclusion that states only what the tables and the Holm-corrected
    paired tests show."""
    if not found.records:
        return "No run records yet, so nothing to conclude."
    rows = report_table(found, None, expected_rounds).set_index("experiment")
    have = [name for name in rows.index if rows.loc[name, "rounds"] > 0]
    paragraphs = []

    rounds = sorted({int(rows.loc[name, "rounds"]) for name in have})
    counted = ("" if not rounds else f"{rounds[0]} rounds" if len(rounds) == 1
               else f"{rounds[0]} to {rounds[-1]} rounds")
    intro = f"These numbers come from {len(found.records)} run records"
    intro += (f" ({counted} per configuration of the report; the report used 10)."
              if counted else ".")
    incomplete = [name for name in rows.index if rows.loc[name, "note"].startswith(("INCOMPLETE",
                                                                                    "no records"))]
    if incomplete:
        intro += f" Incomplete or missing: {', '.join(incomplete)}."
    off_protocol = [name for name in have if "protocol" in rows.loc[name, "note"]]
    if off_protocol:
        intro += (f" The records of {', '.join(sorted(off_protocol))} were not run with the "
                  f"report's protocol, so they are not comparable with its numbers.")
    if found.damaged:
        intro += f" {len(found.damaged)} damaged record(s) were left out."
    paragraphs.append(intro)

    paired = _paired_with_rates(found)
    unit = stats.error_unit(found.frame)
    published = {name: rows.loc[name, "report_test_pct"] for name in rows.index}
    if len(paired):
        family = int(paired["family"].max())
        paragraphs.append(
            f"The comparisons, each paired by seed, with Holm's correction over the {family} "
            f"tested (one family); a difference is called lower or higher only when its "
            f"Holm-adjusted p-value is below {stats.LEVEL:g}, and is otherwise not "
            f"distinguishable:\n\n"
            + "\n".join(_comparison_bullet(row, published, unit) for _, row in paired.iterrows()))

    discounted = _discounted(paired, published)
    if discounted:
        paragraphs.append(discounted)

    far = _far_paragraph(rows)
    if far:
        paragraphs.append(far)

    sds = [100 * rows.loc[name, "test_sd"] / rows.loc[name, "n_test"] for name in have
           if pd.notna(rows.loc[name, "test_sd"])]
    if sds and len(have) > 1:
        paragraphs.append(
            f"Single rounds vary: the SD of the test error over the rounds ranges from "
            f"{min(sds):.2f} to {max(sds):.2f} percentage points across these configurations, "
            f"which is why every difference above is tested paired by seed and corrected for "
            f"the number of tests.")
    return "\n\n".join(paragraphs)


# ---------------------------------------------------------------------------------------------
# The README's results section, written from the records (never typed): `python -m helpers
# summary` replaces the text between the two markers, and a test checks it is up to date.
# ---------------------------------------------------------------------------------------------
README_START = "<!-- results: written by `python -m helpers summary` from results/; do not edit -->"
README_END = "<!-- end of results -->"


def _markdown(frame):
    """A DataFrame as a GitHub markdown table (pandas' to_markdown needs the tabulate package)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _readme_table(table, kind):
    """One measure (test or train) of both report tables, one unit per column."""
    columns = {"configuration": [f"`{name}`" for name in table["experiment"]]}
    if kind == "test":
        columns["report row"] = [f"Table {which}, {label}" for which, label in
                                 zip(table["table"], table.index)]
    columns["rounds"] = list(table["rounds"])
    measured = _measure_columns(table, kind)
    first = next(iter(measured))
    measured[first] = [f"**{v}**" if kind == "test" and v != "-" else v for v in measured[first]]
    columns.update(measured)
    return _markdown(pd.DataFrame(columns))


def _budget_line(found):
    """`best` against `ws-aux` in training budget, from the budget table."""
    names = set(found.frame["experiment"])
    if not {experiments.BEST, experiments.EQ1} <= names:
        return ""
    budget = budget_table(found).loc[experiments.BEST]
    return (f" against `{experiments.EQ1}`, one training of `{experiments.BEST}` takes "
            f"{budget['steps vs ws-aux (x)']:g}x the optimiser steps, "
            f"{budget['parameters vs ws-aux (x)']:g}x the parameters, "
            f"{budget['FLOPs vs ws-aux (x)']:g}x the FLOPs and "
            f"{budget['seconds vs ws-aux (x)']:g}x the seconds (median over the rounds).")


def headline(found):
    """The study's answer in one sentence: the mean test errors of the report's three steps
    (and `best`), beside the report's."""
    per_config = configuration_stats(found)
    steps = [name for name in experiments.HEADLINE if name in per_config.index]
    if not steps:
        return "No records of the report's configurations yet."
    published = {row["name"]: row["report"][4] for row in experiments.CATALOGUE if row["report"]}
    text = ("**Mean test error over the rounds: " + ", ".join(
        f"`{name}` {per_config.loc[name, 'test_pct']:.1f}%" for name in steps)
        + "** (the report: " + ", ".join(f"{published[name]:g}%" for name in steps) + ")")
    if experiments.BEST in per_config.index:
        text += (f"; beyond the report, `{experiments.BEST}` "
                 f"{per_config.loc[experiments.BEST, 'test_pct']:.2f}% with "
                 f"another training budget")
    return text + "."


NUMERICS = Path(__file__).resolve().parents[2] / "docs" / "numerics"


def measured_moves():
    """{configuration: the largest same-seed move in test errors measured when only the
    numerics change}: between the three hosts of docs/numerics/*-at-212b2e2.json and under the
    perturbation of docs/numerics/cross-numerics.json ({} when they are missing)."""
    import itertools
    import json

    moves = {}
    perturbed = NUMERICS / "cross-numerics.json"
    if perturbed.is_file():
        for name, row in json.loads(perturbed.read_text())["configurations"].items():
            moves[name] = row["test_largest"]
    hosts = [json.loads(path.read_text())["records"]
             for path in sorted(NUMERICS.glob("*-at-212b2e2.json"))
             if not json.loads(path.read_text()).get("pins")]
    for a, b in itertools.combinations(hosts, 2):
        for key in set(a) & set(b):
            name = key.split("/")[0]
            moves[name] = max(moves.get(name, 0), abs(a[key]["test_errors"] - b[key]["test_errors"]))
    return moves


def _reproduction_line(found):
    """Where the records reproduce bit for bit, and how far a run moves elsewhere."""
    import json

    from ..science.numerics import label

    kinds = {json.dumps(r["numerics"], sort_keys=True): r["numerics"] for r in found.records}
    if len(kinds) != 1:
        return (f"These records were made with {len(kinds)} different numerics: see "
                f"[docs/numerics.md](docs/numerics.md).")
    text = (f"They reproduce bit for bit on a machine with the records' numerics "
            f"({label(next(iter(kinds.values())))}); elsewhere a run's errors move")
    moves = measured_moves()
    if "baseline" in moves and len(moves) > 1:
        text += (f" by up to {max(v for k, v in moves.items() if k != 'baseline')} test errors "
                 f"out of 1000 for the weight-sharing rows and {moves['baseline']} for the "
                 f"baseline, as measured between three x86-64 hosts and under other numerics")
    return text + " ([docs/numerics.md](docs/numerics.md))."


def readme_results(found, expected_rounds=None):
    """The README's results section (markdown) from the records in `found`."""
    if not found.records:
        return "No run records yet: `make report` produces them."
    per_config = configuration_stats(found)
    both = report_table(found, None, expected_rounds)
    parts = [headline(found), "", _reproduction_line(found), "",
             "Means over the rounds (seeds 0-9); SD: of the number of errors over the rounds, "
             "as the report gives it; gap: ours minus the report's, in points.",
             "", "**Test error** (the report's Tables III and IV; the train errors are in the "
                 "[summary](notebooks/summary.ipynb), and far train errors are named below)", "",
             _readme_table(both, "test")]
    if experiments.BEST in per_config.index:
        best = per_config.loc[experiments.BEST]
        parts += ["", f"**Beyond the report**: `best`, {best['test_pct']:.2f}% mean test error "
                      f"(SD {best['test_sd']:.1f} errors out of 1000, {int(best['rounds'])} "
                      f"rounds), with another budget:" + _budget_line(found)]
    paired = _paired_with_rates(found)
    rows = both.set_index("experiment")
    if len(paired):
        family = int(paired["family"].max())
        parts += ["", f"**What the paired tests say** (the report's comparisons, seeds paired, "
                      f"Holm's correction over the {family} tested; a verdict only below "
                      f"{stats.LEVEL:g}):", ""]
        parts += [f"- {row['change']}: " + stats.judgement(
                      f"`{row['after']}`", f"`{row['before']}`", row["mean_difference"],
                      row["p_holm"]) + f" (Holm-adjusted {stats.format_p(row['p_holm'])})."
                  for _, row in paired.iterrows()]
    parts += ["", _far_line(rows),
              "", "Every interval, p-value and figure, and which alpha: [summary]"
                  "(notebooks/summary.ipynb), [analysis](notebooks/analysis.ipynb); why the far "
                  "rows are far: [readings](notebooks/readings.ipynb)."]
    return "\n".join(parts)
