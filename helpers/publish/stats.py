"""Which differences between configurations are real: paired statistics over the seeds.

Every configuration sees the same pairs for the same seed, so two configurations are compared
*paired*, seed by seed (scipy.stats.ttest_rel), which removes the variation that comes from the
pairs themselves.
"""

import numpy as np
import pandas as pd
from scipy import stats

from ..catalogue import experiments
from .diagnosis import DIGITS_RIGHT_COMPARISON_WRONG, ERROR_KINDS


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


def paired_table(frame, comparisons=experiments.COMPARISONS, confidence=0.95):
    """One row per (before, after, what changes) whose two experiments both have records:
    the paired difference in test errors (counts out of n_test), its CI and p-value."""
    rows = []
    present = set(frame["experiment"])
    for before, after, change in comparisons:
        if before in present and after in present:
            row = paired_difference(errors_by_seed(frame, before), errors_by_seed(frame, after),
                                    confidence)
            if row["rounds"]:
                rows.append({"before": before, "after": after, "change": change, **row})
    return pd.DataFrame(rows, columns=["before", "after", "change", "rounds", "mean_before",
                                       "mean_after", "mean_difference", "ci_low", "ci_high",
                                       "p_value"])


def describe_difference(row, unit="errors out of 1000"):
    """One sentence for one row of `paired_table`, read from its numbers."""
    verdict = ("fewer" if row["mean_difference"] < 0 else "more")
    if np.isnan(row["p_value"]) or row["p_value"] >= 0.05:
        significance = f"not significant at 5% (p = {row['p_value']:.2g})"
    else:
        significance = f"significant at 5% (p = {row['p_value']:.2g})"
    return (f"{row['after']} vs {row['before']} ({row['change']}): "
            f"{abs(row['mean_difference']):.1f} {verdict} {unit} on average over "
            f"{row['rounds']} paired rounds, 95% CI [{row['ci_low']:.1f}, {row['ci_high']:.1f}], "
            f"{significance}.")


# ---------------------------------------------------------------------------------------------
# The alpha sweep
# ---------------------------------------------------------------------------------------------
def sweep_table(frame, confidence=0.95):
    """Per alpha of eq. (2) (experiments.SWEEP): rounds, mean test error % and its confidence
    interval (Student t over the rounds), and the paired difference with alpha = 1 (`ws-aux`)."""
    rows = []
    reference = errors_by_seed(frame, experiments.SWEEP[1])
    for alpha, name in experiments.SWEEP.items():
        rates = frame.loc[frame["experiment"] == name].set_index("seed")["test_error_rate"]
        if rates.empty:
            continue
        n = len(rates)
        low = high = rates.mean()
        if n >= 2 and rates.std() > 0:
            low, high = stats.t.interval(confidence, n - 1, loc=rates.mean(), scale=stats.sem(rates))
        paired = paired_difference(reference, errors_by_seed(frame, name), confidence) \
            if len(reference) else {"mean_difference": np.nan, "p_value": np.nan}
        rows.append({"alpha": alpha, "experiment": name, "rounds": n, "test_pct": rates.mean(),
                     "ci_low": low, "ci_high": high, "sd_errors": errors_by_seed(frame, name).std(),
                     "vs_alpha_1": paired["mean_difference"], "p_vs_alpha_1": paired["p_value"]})
    return pd.DataFrame(rows, columns=["alpha", "experiment", "rounds", "test_pct", "ci_low",
                                       "ci_high", "sd_errors", "vs_alpha_1", "p_vs_alpha_1"])


def sweep_answer(table):
    """The answer of the sweep about alpha, in words, from `sweep_table`'s numbers."""
    if table.empty:
        return "No records of the alpha sweep yet."
    best = table.loc[table["test_pct"].idxmin()]
    lines = [f"Lowest mean test error: alpha = {best['alpha']:g} with {best['test_pct']:.2f}% "
             f"(95% CI {best['ci_low']:.2f} to {best['ci_high']:.2f}, {best['rounds']} rounds)."]
    with_aux = table[table["alpha"] > 0]
    if not with_aux.empty:
        indistinct = with_aux[(with_aux["ci_low"] <= best["ci_high"])]["alpha"].tolist()
        lines.append(f"Alphas whose interval overlaps the best one's: "
                     f"{', '.join(f'{a:g}' for a in indistinct)}.")
        significant = with_aux[with_aux["p_vs_alpha_1"] < 0.05]
        better = significant[significant["vs_alpha_1"] < 0]["alpha"].tolist()
        worse = significant[significant["vs_alpha_1"] > 0]["alpha"].tolist()
        lines.append("Paired against alpha = 1 (eq. 1): "
                     + (f"significantly better (p < 0.05): {', '.join(f'{a:g}' for a in better)}; "
                        if better else "no alpha is significantly better (p < 0.05); ")
                     + (f"significantly worse: {', '.join(f'{a:g}' for a in worse)}."
                        if worse else "none is significantly worse."))
    if 0 in set(table["alpha"]) and len(with_aux):
        zero = table.loc[table["alpha"] == 0].iloc[0]
        lines.append(f"Without the auxiliary loss (alpha = 0) the error is {zero['test_pct']:.2f}%; "
                     f"every alpha from {with_aux['alpha'].min():g} to {with_aux['alpha'].max():g} "
                     f"gives {with_aux['test_pct'].min():.2f}% to {with_aux['test_pct'].max():.2f}%.")
    return " ".join(lines)


# ---------------------------------------------------------------------------------------------
# The ablation of `best` (validation pairs of seeds 100+)
# ---------------------------------------------------------------------------------------------
def ablation_table(frame, confidence=0.95):
    """One row per ablation experiment with records: what is removed, rounds, mean validation
    error %, SD of the error count, and the paired difference with `best-val` (its CI, p)."""
    rows = []
    full = errors_by_seed(frame, "best-val")
    for suffix, (removed, _) in experiments.ABLATION.items():
        name = f"best-val{suffix}"
        these = frame[frame["experiment"] == name]
        if these.empty:
            continue
        row = {"experiment": name, "removed": removed, "rounds": len(these),
               "seeds": ",".join(map(str, sorted(these["seed"]))),
               "validation_pct": these["test_error_rate"].mean(),
               "sd_errors": these["test_errors"].std(), "n_parameters": these["n_parameters"].iloc[0],
               "seconds": these["seconds"].mean()}
        if suffix and len(full):
            paired = paired_difference(full, errors_by_seed(frame, name), confidence)
            row.update({"vs_best": paired["mean_difference"], "ci_low": paired["ci_low"],
                        "ci_high": paired["ci_high"], "p_value": paired["p_value"]})
        rows.append(row)
    return pd.DataFrame(rows, columns=["experiment", "removed", "rounds", "seeds",
                                       "validation_pct", "sd_errors", "vs_best", "ci_low",
                                       "ci_high", "p_value", "n_parameters", "seconds"])


def ablation_summary(table):
    """What the ablation says, in words, from `ablation_table`'s numbers."""
    if table.empty or "best-val" not in set(table["experiment"]):
        return ("No ablation records yet: python -m helpers run ablation --seeds 100-104 "
                "--results validation")
    full = table.set_index("experiment").loc["best-val"]
    lines = [f"best: {full['validation_pct']:.2f}% validation error over {full['rounds']} seeds "
             f"({full['seeds']})."]
    for _, row in table[table["experiment"] != "best-val"].sort_values(
            "vs_best", ascending=False).iterrows():
        verdict = "costs" if row["vs_best"] > 0 else "saves"
        lines.append(f"Removing {row['removed']}: {row['validation_pct']:.2f}%, i.e. {verdict} "
                     f"{abs(row['vs_best']):.1f} errors per 1000 pairs (95% CI "
                     f"{row['ci_low']:+.1f} to {row['ci_high']:+.1f}, paired p = "
                     f"{row['p_value']:.2g}, {row['rounds']} seeds).")
    return "\n".join(lines)


# The comparison-head study (experiments.HEAD_STUDY): `best`'s trunk, three heads.
def head_table(frame, confidence=0.95):
    """Per comparison head: rounds, validation error %, SD of the count, and the paired
    difference in errors from the computed head."""
    rows = []
    computed = errors_by_seed(frame, "best-val")
    for name, head in experiments.HEAD_STUDY.items():
        these = frame[frame["experiment"] == name]
        if these.empty:
            continue
        row = {"head": head, "experiment": name, "rounds": len(these),
               "validation_pct": these["test_error_rate"].mean(),
               "sd_errors": these["test_errors"].std(), "n_parameters": these["n_parameters"].iloc[0]}
        if name != "best-val" and len(computed):
            paired = paired_difference(computed, errors_by_seed(frame, name), confidence)
            row.update({"vs_computed": paired["mean_difference"], "ci_low": paired["ci_low"],
                        "ci_high": paired["ci_high"], "p_value": paired["p_value"]})
        rows.append(row)
    return pd.DataFrame(rows, columns=["head", "experiment", "rounds", "validation_pct",
                                       "sd_errors", "vs_computed", "ci_low", "ci_high", "p_value",
                                       "n_parameters"])


def head_summary(heads, kinds):
    """Which head, and why, in words from the numbers of `head_table` and `error_kinds`."""
    if heads.empty:
        return ("No records of the head study yet: python -m helpers run ablation "
                "--seeds 100-104 --results validation")
    best = heads.loc[heads["validation_pct"].idxmin()]
    lines = [f"Lowest validation error: the {best['head']} head, {best['validation_pct']:.2f}% "
             f"over {best['rounds']} seeds."]
    for _, row in heads[heads["experiment"] != "best-val"].iterrows():
        if not np.isnan(row["vs_computed"]):
            lines.append(f"The {row['head']} head makes {row['vs_computed']:+.1f} errors per 1000 "
                         f"pairs relative to the computed one (95% CI {row['ci_low']:+.1f} to "
                         f"{row['ci_high']:+.1f}, paired p = {row['p_value']:.2g}).")
    for name, row in kinds.iterrows():
        errors = int(row[ERROR_KINDS].sum())
        if errors:
            lines.append(f"{experiments.HEAD_STUDY.get(name, name)}: {int(row[DIGITS_RIGHT_COMPARISON_WRONG])} "
                         f"of its {errors} errors have both digits right "
                         f"({100 * row[DIGITS_RIGHT_COMPARISON_WRONG] / errors:.0f}%).")
    return "\n".join(lines)
