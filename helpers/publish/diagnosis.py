"""Where the errors come from: each record's truth recomputed from its seed (nothing is
retrained), the digit confusion, the kind of each comparison error (`classify_pairs`)."""

from functools import lru_cache

import numpy as np
import pandas as pd

from ..science.losses import trains_digits

DIGITS_RIGHT_COMPARISON_WRONG = "digits right, comparison wrong"
DIGIT_WRONG_FLIPS_ORDER = "a digit wrong, order flipped"
DIGIT_WRONG_ORDER_KEPT = "a digit wrong, order kept"
DIGIT_WRONG_ANSWER_RIGHT = "a digit wrong, answer right"
ALL_RIGHT = "all right"
ERROR_KINDS = [DIGITS_RIGHT_COMPARISON_WRONG, DIGIT_WRONG_FLIPS_ORDER, DIGIT_WRONG_ORDER_KEPT]
KINDS = ERROR_KINDS + [DIGIT_WRONG_ANSWER_RIGHT, ALL_RIGHT]


def truth_of(record, data_root=None):
    """(input, target, classes) of `record`'s held-out pairs, as numpy arrays (raw images)."""
    params = record["params"]
    return _pairs(record["seed"], params["n_pairs"], params.get("evaluate_on", "test"),
                  data_root if data_root is not None else params.get("data_root"))


@lru_cache(maxsize=64)
def _pairs(seed, n_pairs, evaluate_on, data_root):
    from ..science.data import generate_pair_sets, generate_validation_sets  # torch: when used

    sets = generate_validation_sets if evaluate_on == "validation" else generate_pair_sets
    return tuple(t.numpy() for t in sets(n_pairs, seed, data_root)[3:])


def digits_wrong(records, data_root=None):
    """The share (%) of the digits of `records`' held-out pairs that their runs recognised wrong."""
    wrong = sum(int((truth_of(r, data_root)[2] != np.asarray(r["test_digit_predictions"])).sum())
                for r in records)
    return 100 * wrong / (2 * sum(r["n_test"] for r in records))


def confusion_matrix(true_digits, predicted_digits):
    """10 x 10 counts: row = true digit, column = predicted digit."""
    counts = np.bincount(10 * np.ravel(true_digits) + np.ravel(predicted_digits), minlength=100)
    return pd.DataFrame(counts.reshape(10, 10), index=pd.Index(range(10), name="true"),
                        columns=pd.Index(range(10), name="predicted"))


def classify_pairs(classes, target, predicted, predicted_digits):
    """The kind (KINDS) of each pair: a comparison error with both digits right, or with a digit
    wrong that flips the order or keeps it; a digit wrong on a pair answered right; all right."""
    classes, seen = np.asarray(classes), np.asarray(predicted_digits)
    target, wrong = np.asarray(target), np.asarray(predicted) != np.asarray(target)
    digits_right = (seen == classes).all(axis=1)
    flips = (seen[:, 0] <= seen[:, 1]).astype(int) != target
    kinds = np.select([wrong & digits_right, wrong & flips, wrong, ~digits_right],
                      [DIGITS_RIGHT_COMPARISON_WRONG, DIGIT_WRONG_FLIPS_ORDER,
                       DIGIT_WRONG_ORDER_KEPT, DIGIT_WRONG_ANSWER_RIGHT], default=ALL_RIGHT)
    return pd.Categorical(kinds, categories=KINDS)


def error_kinds(records, data_root=None):
    """Per experiment whose digits are trained (`trains_digits`): rounds, pairs of each kind."""
    rows = []
    for record in records:
        if record.get("test_digit_predictions") is None or not trains_digits(record["params"]):
            continue
        _, target, classes = truth_of(record, data_root)
        kinds = classify_pairs(classes, target, record["test_predictions"],
                               record["test_digit_predictions"])
        rows.append({"experiment": record["experiment"],
                     **pd.Series(kinds).value_counts().reindex(KINDS, fill_value=0)})
    frame = pd.DataFrame(rows, columns=["experiment", *KINDS])
    table = frame.groupby("experiment", sort=False)[KINDS].sum()
    table.insert(0, "rounds", frame.groupby("experiment", sort=False).size())
    return table
