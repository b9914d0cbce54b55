"""Where the errors come from: the truth behind each record, recomputed from its seed, the
digit confusion, the kind of each comparison error, and the misclassified pairs.

The records keep each held-out pair's predicted comparison and predicted digits; the true
digits and targets are recomputed from the seed (`generate_pair_sets` is a pure function of
it), so nothing is retrained.
"""

from functools import lru_cache

import numpy as np
import pandas as pd

from ..science.data import generate_pair_sets, generate_validation_sets
from ..science.losses import WEIGHTINGS

# Kinds of pairs, by what went wrong (see `classify_pairs`).
DIGITS_RIGHT_COMPARISON_WRONG = "digits right, comparison wrong"
DIGIT_WRONG_FLIPS_ORDER = "a digit wrong, order flipped"
DIGIT_WRONG_ORDER_KEPT = "a digit wrong, order kept"
DIGIT_WRONG_ANSWER_RIGHT = "a digit wrong, answer right"
ALL_RIGHT = "all right"
ERROR_KINDS = [DIGITS_RIGHT_COMPARISON_WRONG, DIGIT_WRONG_FLIPS_ORDER, DIGIT_WRONG_ORDER_KEPT]
KINDS = ERROR_KINDS + [DIGIT_WRONG_ANSWER_RIGHT, ALL_RIGHT]


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


def trains_digits(params):
    """True when a run with `params` trains its digit outputs on the digit labels: its
    weighting gives L_A + L_B a weight above 0 at some epoch. Without that (weighting "none":
    `ws`, `ws-plain`), the digit outputs are whatever the comparison loss made of them, not
    digit predictions, and the error kinds below mean nothing for them."""
    weighting = WEIGHTINGS[params["weighting"]]
    epochs = params["epochs"]
    return any(weighting.weights(epoch, epochs, params.get("alpha", 1.0))[1] > 0
               for epoch in range(epochs))


def untrained_digits(records):
    """Configurations with digit outputs that are never trained on digit labels, by name."""
    return sorted({r["experiment"] for r in records if r.get("test_digit_predictions")
                   is not None and not trains_digits(r["params"])})


def error_kinds(records, data_root=None):
    """Per experiment whose digit outputs are trained on the digit labels (`trains_digits`):
    how many held-out pairs of each kind, summed over its records, with its rounds. Records
    without digit outputs (the baseline), or whose digits are never trained (`untrained_digits`
    names them), are left out."""
    rows = []
    for record in records:
        if record["test_digit_predictions"] is None or not trains_digits(record["params"]):
            continue
        _, target, classes = truth_of(record, data_root)
        kinds = classify_pairs(classes, target, record["test_predictions"],
                               record["test_digit_predictions"])
        rows.append({"experiment": record["experiment"], "seed": record["seed"],
                     **pd.Series(kinds).value_counts().reindex(KINDS, fill_value=0).to_dict()})
    frame = pd.DataFrame(rows, columns=["experiment", "seed", *KINDS])
    table = frame.groupby("experiment", sort=False)[KINDS].sum()
    table.insert(0, "rounds", frame.groupby("experiment", sort=False).size())
    return table


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
