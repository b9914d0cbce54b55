"""Which differences between configurations are real: paired statistics over the seeds, each
family of tests corrected with Holm's method, and the one rule that words every verdict.

Every configuration sees the same pairs for the same seed, so two configurations are compared
*paired*, seed by seed (scipy.stats.ttest_rel), which removes the variation that comes from the
pairs themselves. Each question asks several such tests at once, and the more tests, the more
of them come out below 0.05 by chance: every family of tests (the report's comparisons, the
alpha sweep against alpha = 1, the ablation of `best`, the comparison-head study) gets Holm's
correction (statsmodels' multipletests, method="holm"), and a difference is read as real only
when its Holm-adjusted p-value is below LEVEL.

`verdict` is that rule, and `judgement` the one way a sentence states it: every generated
sentence of the report (the conclusion, the README block, the summaries below) goes through
them, so a difference the corrected test does not support never reads as better or worse.
"""

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ..catalogue import experiments
from .diagnosis import DIGITS_RIGHT_COMPARISON_WRONG, ERROR_KINDS

LEVEL = 0.05  # a Holm-adjusted p-value below this is a verdict; anything else is not
LOWER, HIGHER, NOT_DISTINGUISHABLE = "lower", "higher", "not distinguishable"


# ---------------------------------------------------------------------------------------------
# The verdict: one rule, one wording
# ---------------------------------------------------------------------------------------------
def verdict(difference, p_adjusted, level=LEVEL):
    """LOWER or HIGHER (the sign of `difference`, a minus b) when the corrected p-value
    `p_adjusted` is below `level`; NOT_DISTINGUISHABLE otherwise, and when there is no p-value
    (fewer than two rounds, or no spread to test against)."""
    if p_adjusted is None or difference is None or not np.isfinite(p_adjusted) \
            or not np.isfinite(difference) or difference == 0 or p_adjusted >= level:
        return NOT_DISTINGUISHABLE
    return LOWER if difference < 0 else HIGHER


def judgement(a, b, difference, p_adjusted, measure="test error"):
    """The verdict on a against b as a phrase, e.g. "`ws-aux` has a lower test error than
    `ws`" or "`ws-aux-c0.75` is not distinguishable from `ws-aux` in test error";
    `difference` is a minus b."""
    word = verdict(difference, p_adjusted)
    if word == NOT_DISTINGUISHABLE:
        return f"{a} is not distinguishable from {b} in {measure}"
    return f"{a} has a {word} {measure} than {b}"


def format_p(p, name="p"):
    """'p = 0.021' (two significant digits), 'p < 0.001', or 'no p-value'."""
    if p is None or not np.isfinite(p):
        return f"no {name}-value"
    return f"{name} < 0.001" if p < 0.001 else f"{name} = {p:.2g}"


def p_cell(p):
    """A p-value for a table cell: '0.021', '< 0.001', or '-'."""
    if p is None or not np.isfinite(p):
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def holm(p_values):
    """(Holm-adjusted p-values, family size) of `p_values`: the family is the tests that have
    a p-value; a missing one (NaN) stays missing and does not count."""
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, np.nan)
    tested = np.isfinite(p_values)
    if tested.any():
        adjusted[tested] = multipletests(p_values[tested], method="holm")[1]
    return adjusted, int(tested.sum())


def _corrected(table, difference="mean_difference"):
    """`table` with p_holm, family (its size) and verdict columns, from its p_value column."""
    table = table.copy()
    table["p_holm"], family = holm(table["p_value"]) if len(table) else ([], 0)
    table["family"] = family
    table["verdict"] = [verdict(d, p) for d, p in zip(table[difference], table["p_holm"])]
    return table


def _p_text(row):
    """'p = 0.021, Holm-adjusted p = 0.13 (family of 8 tests)' for one row of a family."""
    if not np.isfinite(row["p_value"]):
        reason = "fewer than 2 paired rounds" if row["rounds"] < 2 else "no spread to test"
        return f"no p-value ({reason})"
    return (f"{format_p(row['p_value'])}, Holm-adjusted {format_p(row['p_holm'])} "
            f"(family of {row['family']} tests)")


def _fixed(values, digits):
    """Numbers for a table cell, `digits` decimals ('-' for a missing one)."""
    return ["-" if v is None or not np.isfinite(v) else f"{v:.{digits}f}" for v in values]


def _signed(value, digits=1):
    return "-" if not np.isfinite(value) else f"{value:+.{digits}f}"


def _interval(low, high):
    return "-" if not (np.isfinite(low) and np.isfinite(high)) else f"{low:+.1f} to {high:+.1f}"


def error_unit(frame):
    """'errors out of 1000' when every record of `frame` has 1000 held-out pairs, etc."""
    sizes = set(frame["n_test"]) if "n_test" in frame and len(frame) else set()
    return f"errors out of {sizes.pop()}" if len(sizes) == 1 else "errors"


# ---------------------------------------------------------------------------------------------
# Paired statistics
# ---------------------------------------------------------------------------------------------
def paired_difference(before, after, confidence=0.95):
    """Mean of after - before over the common seeds, its `confidence` interval (Student t) and
    the paired t-test's two-sided p-value (scipy.stats.ttest_rel); `before`/`after` are
    Series of error counts indexed by seed."""
    common = before.index.intersection(after.index).sort_values()
    difference = (after.loc[common] - before.loc[common]).astype(float)
    n = len(difference)
    row = {"rounds": n, "mean_before": before.loc[common].mean(),
           "mean_after": after.loc[common].mean(), "mean_difference": difference.mean(),
           "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    if n >= 2:
        sem = stats.sem(difference)
        if sem > 0:
            row["ci_low"], row["ci_high"] = stats.t.interval(confidence, n - 1,
                                                             loc=difference.mean(), scale=sem)
            row["p_value"] = stats.ttest_rel(after.loc[common], before.loc[common]).pvalue
        else:  # every round differs by the same amount: no spread to test against
            row["ci_low"] = row["ci_high"] = difference.mean()
    return row


def errors_by_seed(frame, experiment, column="test_errors"):
    rows = frame[frame["experiment"] == experiment]
    return rows.set_index("seed")[column]


PAIRED_COLUMNS = ["before", "after", "change", "rounds", "mean_before", "mean_after",
                  "mean_difference", "ci_low", "ci_high", "p_value", "p_holm", "family",
                  "verdict"]


def paired_table(frame, comparisons=experiments.COMPARISONS, confidence=0.95):
    """One row per (before, after, what changes) whose two experiments both have records:
    the paired difference in test errors (counts, after minus before), its CI, its p-value
    and its Holm-adjusted p-value over the rows of this table (one family), and the verdict
    on `after` against `before`."""
    rows = []
    present = set(frame["experiment"]) if len(frame) else set()
    for before, after, change in comparisons:
        if before in present and after in present:
            row = paired_difference(errors_by_seed(frame, before), errors_by_seed(frame, after),
                                    confidence)
            if row["rounds"]:
                rows.append({"before": before, "after": after, "change": change, **row})
    return _corrected(pd.DataFrame(rows, columns=PAIRED_COLUMNS[:-3]))[PAIRED_COLUMNS]


def show_paired(table, unit="errors out of 1000"):
    """`paired_table` laid out for reading: one unit per column, both p-values, the family."""
    family = int(table["family"].max()) if len(table) else 0
    return pd.DataFrame({
        "after vs before": [f"{a} vs {b}" for a, b in zip(table["after"], table["before"])],
        "what changes": table["change"],
        "paired rounds": table["rounds"],
        f"mean difference ({unit}, after - before)": [_signed(d) for d in
                                                      table["mean_difference"]],
        f"95% CI ({unit})": [_interval(lo, hi) for lo, hi in
                             zip(table["ci_low"], table["ci_high"])],
        "p": [p_cell(p) for p in table["p_value"]],
        f"p, Holm ({family} tests)": [p_cell(p) for p in table["p_holm"]],
        "verdict (after vs before)": table["verdict"],
    }).set_index("after vs before")


def _rounds(n):
    n = int(n)
    return f"{n} paired round{'s' * (n != 1)}"


def describe_difference(row, unit="errors out of 1000", measure="test error"):
    """One sentence for one row of `paired_table`, read from its numbers; its verdict is
    `judgement`'s."""
    interval = (f", 95% CI {_interval(row['ci_low'], row['ci_high'])}"
                if np.isfinite(row["ci_low"]) else "")
    return (f"{row['after']} vs {row['before']} ({row['change']}): mean difference "
            f"{_signed(row['mean_difference'])} {unit} (after minus before) over "
            f"{_rounds(int(row['rounds']))}{interval}; {_p_text(row)}: "
            f"{judgement(row['after'], row['before'], row['mean_difference'], row['p_holm'], measure)}.")


def paired_summary(table, unit="errors out of 1000"):
    """Every row of `paired_table` in words (markdown): one bullet per comparison."""
    if table.empty:
        return "No comparison has records of both its configurations yet."
    family = int(table["family"].max())
    lines = [f"{len(table)} comparisons; Holm's correction over the {family} that have a "
             f"p-value (one family). A difference is a verdict only when its Holm-adjusted "
             f"p-value is below {LEVEL:g}.", ""]
    lines += [f"- {describe_difference(row, unit)}" for _, row in table.iterrows()]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The alpha sweep
# ---------------------------------------------------------------------------------------------
SWEEP_COLUMNS = ["alpha", "experiment", "rounds", "test_pct", "ci_low", "ci_high", "sd_errors",
                 "vs_alpha_1", "diff_ci_low", "diff_ci_high", "p_value", "p_holm", "family",
                 "verdict"]


def sweep_table(frame, confidence=0.95):
    """Per alpha of eq. (2) (experiments.SWEEP): rounds, mean test error % and its confidence
    interval (Student t over the rounds), and the paired difference in test errors with
    alpha = 1 (`ws-aux`): its CI, p-value, and Holm-adjusted p-value over the other alphas
    (one family), with the verdict on each alpha against alpha = 1."""
    rows = []
    reference = errors_by_seed(frame, experiments.SWEEP[1]) if len(frame) else pd.Series()
    for alpha, name in experiments.SWEEP.items():
        rates = frame.loc[frame["experiment"] == name].set_index("seed")["test_error_rate"] \
            if len(frame) else pd.Series()
        if rates.empty:
            continue
        n = len(rates)
        low = high = rates.mean()
        if n >= 2 and rates.std() > 0:
            low, high = stats.t.interval(confidence, n - 1, loc=rates.mean(), scale=stats.sem(rates))
        paired = {"mean_difference": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                  "p_value": np.nan}
        if alpha != 1 and len(reference):
            paired = paired_difference(reference, errors_by_seed(frame, name), confidence)
        rows.append({"alpha": alpha, "experiment": name, "rounds": n, "test_pct": rates.mean(),
                     "ci_low": low, "ci_high": high, "sd_errors": errors_by_seed(frame, name).std(),
                     "vs_alpha_1": paired["mean_difference"], "diff_ci_low": paired["ci_low"],
                     "diff_ci_high": paired["ci_high"], "p_value": paired["p_value"]})
    table = pd.DataFrame(rows, columns=SWEEP_COLUMNS[:-3])
    return _corrected(table, difference="vs_alpha_1")[SWEEP_COLUMNS]


def show_sweep(table, unit="errors out of 1000"):
    """`sweep_table` laid out for reading."""
    family = int(table["family"].max()) if len(table) else 0
    return pd.DataFrame({
        "alpha": [f"{a:g}" for a in table["alpha"]],
        "experiment": table["experiment"],
        "rounds": table["rounds"],
        "test error % (mean)": _fixed(table["test_pct"], 2),
        "95% CI of the mean (%)": [f"{lo:.2f} to {hi:.2f}" for lo, hi in
                                   zip(table["ci_low"], table["ci_high"])],
        f"SD ({unit})": _fixed(table["sd_errors"], 1),
        f"vs alpha = 1 ({unit})": [_signed(d) for d in table["vs_alpha_1"]],
        f"95% CI of the difference ({unit})": [_interval(lo, hi) for lo, hi in
                                               zip(table["diff_ci_low"], table["diff_ci_high"])],
        "p": [p_cell(p) for p in table["p_value"]],
        f"p, Holm ({family} tests)": [p_cell(p) for p in table["p_holm"]],
        "verdict (vs alpha = 1)": [v if a != 1 else "-" for a, v in
                                   zip(table["alpha"], table["verdict"])],
    }).set_index("alpha")


def _alphas(values):
    return ", ".join(f"{a:g}" for a in values) or "none"


def sweep_answer(table):
    """The answer of the sweep about alpha, in words (markdown), from `sweep_table`'s
    numbers; every verdict is Holm-corrected over the alphas tested against alpha = 1."""
    if table.empty:
        return "No records of the alpha sweep yet."
    best = table.loc[table["test_pct"].idxmin()]
    lines = [f"Lowest mean test error: alpha = {best['alpha']:g} with {best['test_pct']:.2f}% "
             f"(95% CI {best['ci_low']:.2f} to {best['ci_high']:.2f}, {best['rounds']} rounds)."]
    others = table[table["alpha"] != 1]
    if 1 in set(table["alpha"]) and len(others):
        family = int(others["family"].max())
        by = {word: others.loc[others["verdict"] == word, "alpha"].tolist()
              for word in (LOWER, HIGHER, NOT_DISTINGUISHABLE)}
        lines.append(
            f"Paired against alpha = 1 (eq. 1), with Holm's correction over the {family} "
            f"alphas tested: lower test error than alpha = 1: {_alphas(by[LOWER])}; higher test "
            f"error: {_alphas(by[HIGHER])}; not distinguishable from alpha = 1: "
            f"{_alphas(by[NOT_DISTINGUISHABLE])}.")
        if best["alpha"] != 1:
            lines.append(f"So the lowest mean, alpha = {best['alpha']:g}, "
                         + ("is not distinguishable from alpha = 1."
                            if best["verdict"] == NOT_DISTINGUISHABLE
                            else f"has a {best['verdict']} test error than alpha = 1."))
    with_aux = table[table["alpha"] > 0]
    if 0 in set(table["alpha"]) and len(with_aux):
        zero = table.loc[table["alpha"] == 0].iloc[0]
        lines.append(f"Without the auxiliary loss (alpha = 0) the mean test error is "
                     f"{zero['test_pct']:.2f}%; the alphas from {with_aux['alpha'].min():g} to "
                     f"{with_aux['alpha'].max():g} give means from {with_aux['test_pct'].min():.2f}% "
                     f"to {with_aux['test_pct'].max():.2f}%.")
    return " ".join(lines)


# ---------------------------------------------------------------------------------------------
# The ablation of `best` (validation pairs of seeds 100+)
# ---------------------------------------------------------------------------------------------
ABLATION_COLUMNS = ["experiment", "removed", "rounds", "seeds", "validation_pct", "sd_errors",
                    "vs_best", "ci_low", "ci_high", "p_value", "p_holm", "family", "verdict",
                    "n_parameters", "seconds"]


def _against(frame, name, reference, confidence):
    """The records of `name` in `frame`, summed up (rounds, seeds, mean validation error %, SD
    of the error count, parameters, mean seconds), with their paired difference in errors from
    `reference` (its CI and p-value; NaN for the reference itself). None without records."""
    these = frame[frame["experiment"] == name] if len(frame) else frame
    if these.empty:
        return None
    row = {"experiment": name, "rounds": len(these),
           "seeds": ",".join(map(str, sorted(these["seed"]))),
           "validation_pct": these["test_error_rate"].mean(),
           "sd_errors": these["test_errors"].std(), "n_parameters": these["n_parameters"].iloc[0],
           "seconds": these["seconds"].mean(), "difference": np.nan, "ci_low": np.nan,
           "ci_high": np.nan, "p_value": np.nan}
    base = errors_by_seed(frame, reference)
    if name != reference and len(base):
        paired = paired_difference(base, errors_by_seed(frame, name), confidence)
        row.update({"difference": paired["mean_difference"], "ci_low": paired["ci_low"],
                    "ci_high": paired["ci_high"], "p_value": paired["p_value"]})
    return row


def ablation_table(frame, confidence=0.95):
    """One row per ablation experiment with records: what is removed, rounds, mean validation
    error %, SD of the error count, and the paired difference with `best-val` (its CI, its p
    and its Holm-adjusted p over the ablation rows, one family; the verdict on the row against
    `best-val`)."""
    rows = []
    for suffix, (removed, _) in experiments.ABLATION.items():
        row = _against(frame, f"{experiments.BEST_VALIDATION}{suffix}",
                       experiments.BEST_VALIDATION, confidence)
        if row is not None:
            difference = row.pop("difference")
            rows.append({**row, "removed": removed, "vs_best": difference})
    table = pd.DataFrame(rows, columns=[c for c in ABLATION_COLUMNS
                                        if c not in ("p_holm", "family", "verdict")])
    return _corrected(table, difference="vs_best")[ABLATION_COLUMNS]


def _show_against(table, difference, versus, unit):
    """A table of one family against its reference row (`best-val`), laid out for reading: one
    unit per column, both p-values, the family's size."""
    family = int(table["family"].max()) if len(table) else 0
    return {
        "rounds": table["rounds"],
        "validation error % (mean)": _fixed(table["validation_pct"], 2),
        f"SD ({unit})": _fixed(table["sd_errors"], 1),
        f"vs {versus} ({unit})": [_signed(d) for d in table[difference]],
        f"95% CI ({unit})": [_interval(lo, hi) for lo, hi in zip(table["ci_low"], table["ci_high"])],
        "p": [p_cell(p) for p in table["p_value"]],
        f"p, Holm ({family} tests)": [p_cell(p) for p in table["p_holm"]],
        f"verdict (vs {versus})": [v if e != experiments.BEST_VALIDATION else "-" for e, v in
                                   zip(table["experiment"], table["verdict"])],
        "parameters": table["n_parameters"],
    }


def show_ablation(table, unit="errors out of 1000"):
    """`ablation_table` laid out for reading."""
    return pd.DataFrame({"experiment": table["experiment"],
                         **_show_against(table, "vs_best", experiments.BEST_VALIDATION, unit),
                         "seconds per training (mean)": _fixed(table["seconds"], 1),
                         }).set_index("experiment")


def ablation_summary(table, unit="errors out of 1000"):
    """What the ablation says, in words (markdown), from `ablation_table`'s numbers."""
    if table.empty or experiments.BEST_VALIDATION not in set(table["experiment"]):
        return ("No ablation records yet: python -m helpers run ablation --seeds 100-104 "
                "--results validation")
    full = table.set_index("experiment").loc[experiments.BEST_VALIDATION]
    removed = table[table["experiment"] != experiments.BEST_VALIDATION]
    removed = removed.sort_values("vs_best", ascending=False)
    family = int(removed["family"].max()) if len(removed) else 0
    reference = experiments.BEST_VALIDATION
    lines = [f"`{reference}`: {full['validation_pct']:.2f}% validation error over "
             f"{full['rounds']} seeds ({full['seeds']}). Each ingredient removed in turn, paired "
             f"with `{reference}` "
             f"seed by seed; Holm's correction over the {family} rows tested.", ""]
    for _, row in removed.iterrows():
        lines.append(f"- Without {row['removed']}: {row['validation_pct']:.2f}%, mean difference "
                     f"{_signed(row['vs_best'])} {unit} (95% CI "
                     f"{_interval(row['ci_low'], row['ci_high'])}, {row['rounds']} seeds); "
                     f"{_p_text(row)}: "
                     + judgement(f"`{row['experiment']}`", f"`{reference}`", row["vs_best"],
                                 row["p_holm"], "validation error") + ".")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The comparison-head study (experiments.HEAD_STUDY): `best`'s trunk, three heads.
# ---------------------------------------------------------------------------------------------
HEAD_COLUMNS = ["head", "experiment", "rounds", "validation_pct", "sd_errors", "vs_computed",
                "ci_low", "ci_high", "p_value", "p_holm", "family", "verdict", "n_parameters"]


def head_table(frame, confidence=0.95):
    """Per comparison head: rounds, validation error %, SD of the count, and the paired
    difference in errors from the computed head (its CI, p, Holm-adjusted p over the heads
    compared, one family, and the verdict)."""
    rows = []
    for name, head in experiments.HEAD_STUDY.items():
        row = _against(frame, name, experiments.BEST_VALIDATION, confidence)
        if row is not None:
            difference = row.pop("difference")
            rows.append({**row, "head": head, "vs_computed": difference})
    table = pd.DataFrame(rows, columns=[c for c in HEAD_COLUMNS
                                        if c not in ("p_holm", "family", "verdict")])
    return _corrected(table, difference="vs_computed")[HEAD_COLUMNS]


def show_heads(table, unit="errors out of 1000"):
    """`head_table` laid out for reading."""
    return pd.DataFrame({"head": table["head"], "experiment": table["experiment"],
                         **_show_against(table, "vs_computed", "the computed head", unit),
                         }).set_index("head")


def head_summary(heads, kinds, unit="errors out of 1000"):
    """Which head, and why, in words (markdown) from the numbers of `head_table` and
    `error_kinds`."""
    if heads.empty:
        return ("No records of the head study yet: python -m helpers run ablation "
                "--seeds 100-104 --results validation")
    lowest = heads.loc[heads["validation_pct"].idxmin()]
    compared = heads[heads["experiment"] != experiments.BEST_VALIDATION]
    family = int(compared["family"].max()) if len(compared) else 0
    lines = [f"Lowest mean validation error: the {lowest['head']} head, "
             f"{lowest['validation_pct']:.2f}% over {lowest['rounds']} seeds. Each learned head "
             f"is paired with the computed one seed by seed; Holm's correction over the "
             f"{family} heads tested.", ""]
    for _, row in compared.iterrows():
        if row["rounds"] and experiments.BEST_VALIDATION in set(heads["experiment"]):
            lines.append(f"- The {row['head']} head: mean difference {_signed(row['vs_computed'])} "
                         f"{unit} from the computed head (95% CI "
                         f"{_interval(row['ci_low'], row['ci_high'])}); {_p_text(row)}: "
                         + judgement(f"the {row['head']} head", "the computed head",
                                     row["vs_computed"], row["p_holm"], "validation error")
                         + ".")
    if len(kinds):
        lines.append("")
    for name, row in kinds.iterrows():
        errors = int(row[ERROR_KINDS].sum())
        if errors:
            lines.append(f"- {experiments.HEAD_STUDY.get(name, name)}: "
                         f"{int(row[DIGITS_RIGHT_COMPARISON_WRONG])} of its {errors} comparison "
                         f"errors have both digits right "
                         f"({100 * row[DIGITS_RIGHT_COMPARISON_WRONG] / errors:.0f}%).")
    return "\n".join(lines)
