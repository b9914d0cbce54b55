"""Where the errors come from, and which differences are real: computed from the run records.

The records keep each test pair's predicted comparison and predicted digits; the true digits and
targets are recomputed from the seed (`generate_pair_sets` is a pure function of it), so the
analysis never retrains. Every configuration sees the same pairs for the same seed, so two
configurations are compared *paired*, seed by seed (scipy.stats.ttest_rel), which removes the
variation that comes from the pairs themselves.
"""

from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats

from . import experiments
from .report import save_figure
from .data import generate_pair_sets, generate_validation_sets

# The comparisons the report makes (before -> after), then ours: the paired difference is
# errors(after) - errors(before), so a negative difference means `after` makes fewer errors.
REPORT_COMPARISONS = [
    ("baseline", "ws", "weight sharing with batch norm and dropout"),
    ("ws-plain", "ws", "batch norm and dropout, given weight sharing"),
    ("ws", "ws-aux", "the auxiliary loss, eq. (1)"),
    ("ws-aux-c0.5", "ws-aux", "alpha 0.5 -> 1 in eq. (2)"),
    ("ws-aux-c0.75", "ws-aux", "alpha 0.75 -> 1 in eq. (2)"),
    ("ws-aux-d0.25", "ws-aux", "eq. (3) decaying to 0.25 -> eq. (1)"),
    ("ws-aux-d0.75", "ws-aux", "eq. (3) decaying to 0.75 -> eq. (1)"),
    ("ws-aux", "best", "this project's best model"),
]

# Kinds of pairs, by what went wrong (see `classify_pairs`).
DIGITS_RIGHT_COMPARISON_WRONG = "both digits right, comparison wrong"
DIGIT_WRONG_FLIPS_ORDER = "a digit wrong that flips the order"
DIGIT_WRONG_ORDER_KEPT = "a digit wrong, order kept, comparison wrong anyway"
DIGIT_WRONG_ANSWER_RIGHT = "digit mistake(s) that did not change the answer"
ALL_RIGHT = "both digits and comparison right"
ERROR_KINDS = [DIGITS_RIGHT_COMPARISON_WRONG, DIGIT_WRONG_FLIPS_ORDER, DIGIT_WRONG_ORDER_KEPT]
KINDS = ERROR_KINDS + [DIGIT_WRONG_ANSWER_RIGHT, ALL_RIGHT]


# ---------------------------------------------------------------------------------------------
# The truth behind a record: its held-out pairs, recomputed from the seed
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def held_out_pairs(seed, n_pairs=1000, evaluate_on="test", data_root=None):
    """(input, target, classes) of the pairs a record was measured on (raw 0..255 images)."""
    sets = generate_validation_sets if evaluate_on == "validation" else generate_pair_sets
    return sets(n_pairs, seed, data_root)[3:]


def truth_of(record, data_root=None):
    """(input, target, classes) of `record`'s held-out pairs, as numpy arrays."""
    params = record["params"]
    pairs = held_out_pairs(record["seed"], params["n_pairs"], params.get("evaluate_on", "test"),
                           data_root if data_root is not None else params.get("data_root"))
    return tuple(t.numpy() for t in pairs)


# ---------------------------------------------------------------------------------------------
# Digit confusion and the kinds of comparison errors
# ---------------------------------------------------------------------------------------------
def confusion_matrix(true_digits, predicted_digits):
    """10 x 10 counts: row = true digit, column = predicted digit."""
    true_digits, predicted_digits = np.ravel(true_digits), np.ravel(predicted_digits)
    counts = np.bincount(10 * true_digits + predicted_digits, minlength=100)
    return pd.DataFrame(counts.reshape(10, 10), index=pd.Index(range(10), name="true"),
                        columns=pd.Index(range(10), name="predicted"))


def classify_pairs(classes, target, predicted, predicted_digits):
    """The kind (one of KINDS) of each pair, from its true digits `classes` (N x 2), true
    comparison `target`, predicted comparison and predicted digits (N x 2).

    A comparison error is either made with both digits right (the comparison itself failed),
    or with a digit wrong; then the predicted digits either put the pair in the wrong order
    (the digit mistake flipped the answer) or in the right one (the comparison erred anyway).
    A digit mistake on a pair answered right did not change the answer.
    """
    classes, predicted_digits = np.asarray(classes), np.asarray(predicted_digits)
    target, predicted = np.asarray(target), np.asarray(predicted)
    comparison_wrong = predicted != target
    digits_right = (predicted_digits == classes).all(axis=1)
    order_of_digits = (predicted_digits[:, 0] <= predicted_digits[:, 1]).astype(int)
    flips = order_of_digits != target
    kinds = np.select(
        [comparison_wrong & digits_right, comparison_wrong & flips, comparison_wrong,
         ~digits_right],
        [DIGITS_RIGHT_COMPARISON_WRONG, DIGIT_WRONG_FLIPS_ORDER, DIGIT_WRONG_ORDER_KEPT,
         DIGIT_WRONG_ANSWER_RIGHT], default=ALL_RIGHT)
    return pd.Categorical(kinds, categories=KINDS)


def digit_arrays(records, data_root=None):
    """(true digits, predicted digits) of all held-out images of `records`, flattened."""
    true, predicted = [], []
    for record in records:
        true.append(truth_of(record, data_root)[2].ravel())
        predicted.append(np.asarray(record["test_digit_predictions"]).ravel())
    return np.concatenate(true), np.concatenate(predicted)


def error_kinds(records, data_root=None):
    """Per experiment: how many held-out pairs of each kind, summed over its records, and the
    comparison errors and digit errors per round."""
    rows = []
    for record in records:
        if record["test_digit_predictions"] is None:
            continue  # the baseline has no digit outputs
        _, target, classes = truth_of(record, data_root)
        kinds = classify_pairs(classes, target, record["test_predictions"],
                               record["test_digit_predictions"])
        rows.append({"experiment": record["experiment"], "seed": record["seed"],
                     **pd.Series(kinds).value_counts().reindex(KINDS, fill_value=0).to_dict()})
    frame = pd.DataFrame(rows, columns=["experiment", "seed", *KINDS])
    table = frame.groupby("experiment", sort=False)[KINDS].sum()
    table.insert(0, "rounds", frame.groupby("experiment", sort=False).size())
    return table


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


def paired_table(frame, comparisons=REPORT_COMPARISONS, confidence=0.95):
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


def plot_sweep(table, figures_dir=None):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    # alpha 0 cannot sit on a log axis: a symlog axis keeps 0 and spreads 0.1 .. 8
    axes.fill_between(table["alpha"], table["ci_low"], table["ci_high"], alpha=0.25,
                      label="95% confidence interval of the mean")
    axes.plot(table["alpha"], table["test_pct"], "o-", label="mean over the rounds")
    axes.set_xscale("symlog", linthresh=0.1)
    axes.set_xticks(table["alpha"], [f"{a:g}" for a in table["alpha"]])
    axes.set(xlabel="alpha in eq. (2): L_cmp + alpha (L_A + L_B)", ylabel="test error (%)",
             title="The alpha sweep")
    axes.legend()
    figure.tight_layout()
    save_figure(figure, figures_dir, "alpha_sweep.png")
    plt.show()


# ---------------------------------------------------------------------------------------------
# Figures of errors
# ---------------------------------------------------------------------------------------------
def plot_confusion(matrix, title, axes):
    """Digit confusion on a log colour scale (the diagonal dwarfs the mistakes otherwise)."""
    from matplotlib.colors import LogNorm

    values = matrix.to_numpy()
    axes.imshow(np.where(values > 0, values, np.nan), cmap="Blues",
                norm=LogNorm(vmin=1, vmax=max(values.max(), 2)))
    for (i, j), count in np.ndenumerate(values):
        if count:
            axes.text(j, i, str(count), ha="center", va="center", fontsize=7,
                      color="white" if i == j else "black")
    axes.set(xticks=range(10), yticks=range(10), xlabel="predicted digit", ylabel="true digit",
             title=title)


def plot_digit_confusions(records, names=("ws-aux", "best"), figures_dir=None, data_root=None):
    """Side by side, the digit confusion over all rounds of each of `names` that has records
    (saved as digit_confusion.png in `figures_dir`, when given); -> the names shown."""
    import matplotlib.pyplot as plt

    shown = [name for name in names if any(r["experiment"] == name for r in records)]
    if not shown:
        print(f"no records of {' or '.join(names)} yet")
        return shown
    figure, axes = plt.subplots(1, len(shown), figsize=(5.5 * len(shown), 5), squeeze=False)
    for axis, name in zip(axes[0], shown):
        runs = [r for r in records if r["experiment"] == name]
        matrix = confusion_matrix(*digit_arrays(runs, data_root))
        error = 100 * (1 - matrix.to_numpy().trace() / matrix.to_numpy().sum())
        plot_confusion(matrix, f"{name}: {len(runs)} rounds, digit error {error:.2f}%", axis)
    figure.tight_layout()
    save_figure(figure, figures_dir, "digit_confusion.png")
    plt.show()
    return shown


def first_round(records, name):
    """The record of `name` with the lowest seed."""
    return min((r for r in records if r["experiment"] == name), key=lambda r: r["seed"])


def misclassified_pairs(record, limit=12, data_root=None):
    """Up to `limit` test pairs `record` answered wrong: (images 2x14x14, true digits, predicted
    digits, true comparison)."""
    inputs, target, classes = truth_of(record, data_root)
    predicted = np.asarray(record["test_predictions"])
    digits = np.asarray(record["test_digit_predictions"])
    wrong = np.flatnonzero(predicted != target)[:limit]
    return [(inputs[i], classes[i], digits[i], int(target[i])) for i in wrong]


def plot_gallery(record, limit=12, figures_dir=None, data_root=None):
    import matplotlib.pyplot as plt

    pairs = misclassified_pairs(record, limit, data_root)
    if not pairs:
        print(f"{record['experiment']} seed {record['seed']}: no misclassified pair")
        return
    columns = 6
    rows = -(-len(pairs) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2 * columns, 1.35 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (images, true, predicted, target) in zip(axes.flat, pairs):
        axis.imshow(np.concatenate(images, axis=1), cmap="gray_r")
        axis.set_title(f"true {true[0]}{'<=' if target else '>'}{true[1]}, "
                       f"seen {predicted[0]},{predicted[1]}", fontsize=8)
    figure.suptitle(f"Misclassified test pairs of {record['experiment']}, seed {record['seed']}")
    figure.tight_layout()
    save_figure(figure, figures_dir, f"misclassified_{record['experiment']}.png")
    plt.show()


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


def error_kinds_summary(kinds):
    """The error kinds in words: for each configuration, what share of its comparison errors
    each kind is."""
    if kinds.empty:
        return "No records with digit outputs yet."
    lines = []
    for name, row in kinds.iterrows():
        errors = int(row[ERROR_KINDS].sum())
        if not errors:
            lines.append(f"{name}: no comparison error in {row['rounds']} rounds.")
            continue
        shares = ", ".join(f"{kind} {int(row[kind])} ({100 * row[kind] / errors:.0f}%)"
                           for kind in ERROR_KINDS)
        lines.append(f"{name} ({row['rounds']} rounds, {errors} comparison errors): {shares}; "
                     f"{int(row[DIGIT_WRONG_ANSWER_RIGHT])} pairs answered right despite a digit "
                     f"mistake.")
    return "\n".join(lines)


# The comparison-head study: the same trunk and training as `best`, three heads (validation).
HEAD_EXPERIMENTS = {"best-val": "computed P(a <= b)", "best-val-linear-head": "learned linear",
                    "best-val-hidden-head": "learned, hidden layer"}


def head_table(frame, confidence=0.95):
    """Per comparison head: rounds, validation error %, SD of the count, and the paired
    difference in errors from the computed head."""
    rows = []
    computed = errors_by_seed(frame, "best-val")
    for name, head in HEAD_EXPERIMENTS.items():
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
            lines.append(f"{HEAD_EXPERIMENTS.get(name, name)}: {int(row[DIGITS_RIGHT_COMPARISON_WRONG])} "
                         f"of its {errors} errors have both digits right "
                         f"({100 * row[DIGITS_RIGHT_COMPARISON_WRONG] / errors:.0f}%).")
    return "\n".join(lines)
