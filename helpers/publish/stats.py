"""Which differences are real: configurations paired seed by seed (same seed, same pairs), each
family of tests Holm-corrected (scipy.stats, statsmodels). `verdict` is the one rule (adjusted
p below LEVEL), `judgement` the one phrase that states it."""

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ..catalogue import experiments

LEVEL = 0.05  # a Holm-adjusted p-value below this is a verdict; anything else is not
LOWER, HIGHER, NOT_DISTINGUISHABLE = "lower", "higher", "not distinguishable"
TESTED = ("difference", "ci_low", "ci_high", "p_value")  # the paired test of a family's row


def verdict(difference, p_adjusted, level=LEVEL):
    """LOWER or HIGHER (difference: a minus b) when p_adjusted < level, else NOT_DISTINGUISHABLE."""
    if p_adjusted is None or difference is None or not np.isfinite(p_adjusted) \
            or not np.isfinite(difference) or difference == 0 or p_adjusted >= level:
        return NOT_DISTINGUISHABLE
    return LOWER if difference < 0 else HIGHER


def judgement(a, b, difference, p_adjusted, measure="test error"):
    """The verdict on a against b as a phrase; `difference` is a minus b. The sentence that
    says it names the family it was corrected over."""
    word = verdict(difference, p_adjusted)
    if word == NOT_DISTINGUISHABLE:
        return f"{a} is not distinguishable from {b} in {measure}"
    return f"{a} has a {word} {measure} than {b}"


def format_p(p, name="p"):
    """'p = 0.021' (two significant digits), 'p < 0.001', or 'no p-value'."""
    if p is None or not np.isfinite(p):
        return f"no {name}-value"
    return f"{name} < 0.001" if p < 0.001 else f"{name} = {p:.2g}"


def error_unit(frame):
    """'errors out of 1000' when every record of `frame` has 1000 held-out pairs, etc."""
    sizes = set(frame["n_test"]) if "n_test" in frame and len(frame) else set()
    return f"errors out of {sizes.pop()}" if len(sizes) == 1 else "errors"


def holm(p_values):
    """(Holm-adjusted p-values, family size): the family, the tests that have a p-value."""
    p_values = np.asarray(p_values, dtype=float)
    adjusted, tested = np.full(p_values.shape, np.nan), np.isfinite(p_values)
    if tested.any():
        adjusted[tested] = multipletests(p_values[tested], method="holm")[1]
    return adjusted, int(tested.sum())


def paired_difference(before, after, confidence=0.95):
    """Mean of after - before (counts by seed) over common seeds, its CI, the t-test's p-value."""
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


def _family(rows, columns):  # with p_holm, the family's size and each verdict
    table = pd.DataFrame(rows, columns=columns)
    table["p_holm"], table["family"] = holm(table["p_value"]) if len(table) else ([], 0)
    table["verdict"] = [verdict(d, p) for d, p in zip(table["difference"], table["p_holm"])]
    return table


def paired_table(frame, comparisons=experiments.COMPARISONS, confidence=0.95):
    """Per comparison with common seeds: both means (count, %), the paired test, Holm-corrected."""
    rows = []
    for before, after, change in comparisons:
        row = paired_difference(errors_by_seed(frame, before), errors_by_seed(frame, after),
                                confidence)
        if row["rounds"]:
            pairs = {name: frame.loc[frame["experiment"] == name, "n_test"].max() / 100
                     for name in (before, after)}
            rows.append({"before": before, "after": after, "change": change, **row,
                         "before_pct": row["mean_before"] / pairs[before],
                         "after_pct": row["mean_after"] / pairs[after]})
    return _family(rows, ["before", "after", "change", "rounds", "mean_before", "mean_after",
                          "before_pct", "after_pct", *TESTED])


def against_table(frame, labels, reference, confidence=0.95):
    """Per experiment of `labels` ({name: what it is}): error % and its CI, SD, cost, and the
    paired test against `reference`, Holm-corrected."""
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
                     **{key: paired.get(key, np.nan) for key in TESTED}})
    return _family(rows, ["experiment", "label", "rounds", "seeds", "error_pct", "mean_ci_low",
                          "mean_ci_high", "sd_errors", "n_parameters", "seconds", *TESTED])


def number(value, digits=1, signed=False):
    """A number as the tables print it ('-' when missing): a count (an SD, a difference in
    errors) with one decimal."""
    return "-" if pd.isna(value) else f"{value:{'+' if signed else ''}.{digits}f}"


def percent(value, signed=False):
    """An error rate, or a gap between two, in percent (points): two decimals, everywhere."""
    return number(value, 2, signed)


def _cells(values, digits=1, signed=False):
    return [number(v, digits, signed) for v in values]


def tested(table, unit, versus="difference"):
    """The tested columns of a family, laid out for reading."""
    family = int(table["family"].max()) if len(table) else 0
    return {f"{versus} ({unit})": _cells(table["difference"], signed=True),
            f"95% CI ({unit})": [f"{lo:+.1f} to {hi:+.1f}" if np.isfinite(lo) else "-"
                                 for lo, hi in zip(table["ci_low"], table["ci_high"])],
            **{name: [format_p(p, "").strip(" =") if np.isfinite(p) else "-" for p in table[key]]
               for name, key in (("p", "p_value"), (f"p, Holm ({family} tests)", "p_holm"))},
            "verdict": [v if np.isfinite(p) else "-"
                        for v, p in zip(table["verdict"], table["p_value"])]}


def show_against(table, reference, measure="validation error", unit="errors out of 1000"):
    """`against_table` laid out for reading."""
    return pd.DataFrame({
        "experiment": table["experiment"],
        "what": table["label"],
        "rounds": table["rounds"], f"{measure} % (mean)": _cells(table["error_pct"], 2),
        "95% CI of the mean": [f"{lo:.2f} to {hi:.2f}" for lo, hi in
                               zip(table["mean_ci_low"], table["mean_ci_high"])],
        f"SD ({unit})": _cells(table["sd_errors"]), **tested(table, unit, f"vs {reference}"),
        "parameters": table["n_parameters"],
        "seconds per training (mean)": _cells(table["seconds"])}).set_index("experiment")
