"""Which differences between configurations are real: paired statistics over the seeds, each
family of tests corrected with Holm's method, and the one rule that words every verdict.

Every configuration sees the same pairs for the same seed, so two configurations are compared
*paired*, seed by seed (scipy.stats.ttest_rel). Each question asks several such tests at once (a
family: the report's comparisons, the alpha sweep against alpha = 1, the ablation of `best`, the
comparison heads), and each family gets Holm's correction (statsmodels): a difference is real
only when its Holm-adjusted p-value is below LEVEL. `verdict` is that rule and `judgement` the
one phrase that states it, so that no unsupported difference reads as better or worse.
"""

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ..catalogue import experiments

LEVEL = 0.05  # a Holm-adjusted p-value below this is a verdict; anything else is not
LOWER, HIGHER, NOT_DISTINGUISHABLE = "lower", "higher", "not distinguishable"


def verdict(difference, p_adjusted, level=LEVEL):
    """LOWER or HIGHER (the sign of `difference`, a minus b) when the corrected p-value is below
    `level`; NOT_DISTINGUISHABLE otherwise, and without a p-value."""
    if p_adjusted is None or difference is None or not np.isfinite(p_adjusted) \
            or not np.isfinite(difference) or difference == 0 or p_adjusted >= level:
        return NOT_DISTINGUISHABLE
    return LOWER if difference < 0 else HIGHER


def judgement(a, b, difference, p_adjusted, measure="test error"):
    """The verdict on a against b as a phrase ("`ws-aux` has a lower test error than `ws`");
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


def _cell(value, digits=1, signed=False):
    return "-" if value is None or not np.isfinite(value) else \
        f"{value:{'+' if signed else ''}.{digits}f}"


def error_unit(frame):
    """'errors out of 1000' when every record of `frame` has 1000 held-out pairs, etc."""
    sizes = set(frame["n_test"]) if "n_test" in frame and len(frame) else set()
    return f"errors out of {sizes.pop()}" if len(sizes) == 1 else "errors"


def holm(p_values):
    """(Holm-adjusted p-values, family size): the family is the tests that have a p-value."""
    p_values = np.asarray(p_values, dtype=float)
    adjusted, tested = np.full(p_values.shape, np.nan), np.isfinite(p_values)
    if tested.any():
        adjusted[tested] = multipletests(p_values[tested], method="holm")[1]
    return adjusted, int(tested.sum())


def paired_difference(before, after, confidence=0.95):
    """Mean of after - before over the common seeds, its `confidence` interval (Student t) and
    the paired t-test's p-value; `before`, `after`: error counts indexed by seed."""
    common = before.index.intersection(after.index).sort_values()
    difference = (after.loc[common] - before.loc[common]).astype(float)
    row = {"rounds": len(common), "mean_before": before.loc[common].mean(),
           "mean_after": after.loc[common].mean(), "difference": difference.mean(),
           "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    if len(common) >= 2 and stats.sem(difference) > 0:
        row["ci_low"], row["ci_high"] = stats.t.interval(
            confidence, len(common) - 1, loc=difference.mean(), scale=stats.sem(difference))
        row["p_value"] = stats.ttest_rel(after.loc[common], before.loc[common]).pvalue
    elif len(common) >= 2:  # every round differs by the same amount: no spread to test against
        row["ci_low"] = row["ci_high"] = difference.mean()
    return row


def errors_by_seed(frame, experiment, column="test_errors"):
    rows = frame[frame["experiment"] == experiment] if len(frame) else frame
    return rows.set_index("seed")[column] if len(rows) else pd.Series(dtype=float)


def _family(rows, columns):
    """A family of tests as a DataFrame, with p_holm, its size and each row's verdict."""
    table = pd.DataFrame(rows, columns=columns)
    table["p_holm"], table["family"] = holm(table["p_value"]) if len(table) else ([], 0)
    table["verdict"] = [verdict(d, p) for d, p in zip(table["difference"], table["p_holm"])]
    return table


def paired_table(frame, comparisons=experiments.COMPARISONS, confidence=0.95):
    """Per (before, after, what changes) with common seeds: the paired difference in errors
    (after minus before), its CI and p-value, Holm over this table, the verdict on `after`."""
    rows = [{"before": before, "after": after, "change": change, **row}
            for before, after, change in comparisons
            for row in [paired_difference(errors_by_seed(frame, before),
                                          errors_by_seed(frame, after), confidence)]
            if row["rounds"]]
    return _family(rows, ["before", "after", "change", "rounds", "mean_before", "mean_after",
                          "difference", "ci_low", "ci_high", "p_value"])


def against_table(frame, labels, reference, confidence=0.95):
    """A family measured against one `reference` row: per experiment of `labels` ({name: what
    it is}) with records, its rounds, seeds, mean error % and that mean's confidence interval,
    SD of the error count, parameters, mean seconds, and the paired difference in errors from
    `reference`, Holm-corrected over the rows (the reference itself has no p-value)."""
    rows, base = [], errors_by_seed(frame, reference)
    for name, label in labels.items():
        rates = errors_by_seed(frame, name, "test_error_rate")
        if rates.empty:
            continue
        low = high = rates.mean()
        if len(rates) >= 2 and rates.std() > 0:
            low, high = stats.t.interval(confidence, len(rates) - 1, loc=rates.mean(),
                                         scale=stats.sem(rates))
        these = frame[frame["experiment"] == name]
        paired = paired_difference(base, errors_by_seed(frame, name), confidence) \
            if name != reference else {}
        rows.append({"experiment": name, "label": label, "rounds": len(rates),
                     "seeds": ",".join(map(str, sorted(rates.index))), "error_pct": rates.mean(),
                     "mean_ci_low": low, "mean_ci_high": high,
                     "sd_errors": these["test_errors"].std(),
                     "n_parameters": int(these["n_parameters"].iloc[0]),
                     "seconds": these["seconds"].mean(),
                     **{key: paired.get(key, np.nan)
                        for key in ("difference", "ci_low", "ci_high", "p_value")}})
    return _family(rows, ["experiment", "label", "rounds", "seeds", "error_pct", "mean_ci_low",
                          "mean_ci_high", "sd_errors", "n_parameters", "seconds", "difference",
                          "ci_low", "ci_high", "p_value"])


def sweep_table(frame, confidence=0.95):
    """`against_table` of the alpha sweep of eq. (2) (experiments.SWEEP) against alpha = 1
    (`ws-aux`), with each row's alpha."""
    table = against_table(frame, {name: alpha for alpha, name in experiments.SWEEP.items()},
                          experiments.SWEEP[1], confidence)
    return table.rename(columns={"label": "alpha"})


def ablation_labels():
    """{experiment: what it removes} of the ablation of `best` (experiments.ABLATION)."""
    return {f"{experiments.BEST_VALIDATION}{suffix}": removed
            for suffix, (removed, _) in experiments.ABLATION.items()}


def _tested(table, unit, versus="difference"):
    """The tested columns of a family, laid out for reading: one unit per column."""
    family = int(table["family"].max()) if len(table) else 0
    return {f"{versus} ({unit})": [_cell(d, signed=True) for d in table["difference"]],
            f"95% CI ({unit})": ["-" if not np.isfinite(lo) else f"{lo:+.1f} to {hi:+.1f}"
                                 for lo, hi in zip(table["ci_low"], table["ci_high"])],
            "p": [format_p(p, "").strip(" =") if np.isfinite(p) else "-"
                  for p in table["p_value"]],
            f"p, Holm ({family} tests)": [format_p(p, "").strip(" =") if np.isfinite(p) else "-"
                                          for p in table["p_holm"]],
            "verdict": [v if np.isfinite(p) else "-" for v, p in
                        zip(table["verdict"], table["p_value"])]}


def show_paired(table, unit="errors out of 1000"):
    """`paired_table` laid out for reading."""
    return pd.DataFrame({
        "after vs before": [f"{a} vs {b}" for a, b in zip(table["after"], table["before"])],
        "what changes": table["change"], "paired rounds": table["rounds"],
        **_tested(table, unit)}).set_index("after vs before")


def show_against(table, reference, measure="validation error", unit="errors out of 1000"):
    """`against_table` (or `sweep_table`) laid out for reading."""
    return pd.DataFrame({
        "experiment": table["experiment"],
        "what": table["label"] if "label" in table else [f"{a:g}" for a in table["alpha"]],
        "rounds": table["rounds"],
        f"{measure} % (mean)": [_cell(v, 2) for v in table["error_pct"]],
        "95% CI of the mean": [f"{lo:.2f} to {hi:.2f}" for lo, hi in
                               zip(table["mean_ci_low"], table["mean_ci_high"])],
        f"SD ({unit})": [_cell(v) for v in table["sd_errors"]],
        **_tested(table, unit, f"vs {reference}"), "parameters": table["n_parameters"],
        "seconds per training (mean)": [_cell(v) for v in table["seconds"]],
    }).set_index("experiment")
