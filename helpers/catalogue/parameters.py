"""The run parameters: one table, from which their conversion, their checks and `list` derive.
Their defaults are the report's protocol and the report's network as this project reads it
(docs/readings.md). `check` converts values given as text (-p, papermill) and refuses, in one
line, a value of the wrong type or out of range, a combination that cannot run, and a value the
run would not read (it would silently change nothing)."""

import contextlib
import math
import re
from dataclasses import dataclass

from ..errors import UsageError
from ..science.losses import WEIGHTINGS
from ..science.mnist import MAX_PAIRS

# science/models.py's MODELS without importing torch (a test keeps the two equal)
MODEL_NAMES = ("baseline", "weight_sharing", "deep_weight_sharing")
WEIGHTS, ALPHA_WEIGHTS = tuple(WEIGHTINGS), tuple(n for n, w in WEIGHTINGS.items() if w.uses_alpha)
HEADS, HEAD_INPUTS = ("linear", "hidden", "computed"), ("logits", "softmax", "log_softmax")
INITS, DROPOUT_PLACES = ("default", "xavier", "kaiming"), ("hidden", "outputs", "both")


@dataclass(frozen=True)
class Parameter:
    default: object
    help: str
    kind: str = "float"           # int | float | bool | choice | text
    bounds: str = ""              # the allowed interval: "[0, 1)", "(0, 100]", "[0, )"
    choices: tuple = ()
    read: tuple = None            # (params -> whether a run reads it, the same in words)

    def refuses(self, value):
        """None when `value` is within the bounds, else the interval in words ('in [0, 1)',
        'from 1 to 5000', '>= 1')."""
        opening, low, high, closing = re.fullmatch(r"([\[(])(\S+), ?(\S*)([\])])",
                                                    self.bounds).groups()
        number = int if self.kind == "int" else float  # (seeds up to 2**64 - 1: exact)
        if (value > number(low) if opening == "(" else value >= number(low)) and (
                not high or (value < number(high) if closing == ")" else value <= number(high))):
            return None
        return (f"{'>' if opening == '(' else '>='} {low}" if not high else
                f"from {low} to {high}" if self.kind == "int" else f"in {self.bounds}")


def P(default, help, kind="float", bounds="", choices=(), read=None):  # a row of the table
    return Parameter(default, help, "choice" if choices else kind, bounds, choices, read)


# Who reads what: (the condition, in words for the message when a value would change nothing).
SHARING = (lambda p: p["model"] != "baseline", "by a weight-sharing model")
REPORT_NET = (lambda p: p["model"] == "weight_sharing", "by model weight_sharing")
BASELINE = (lambda p: p["model"] == "baseline", "by model baseline")
LEARNED_HEAD = (lambda p: SHARING[0](p) and p["comparison"] != "computed", "by a learned head")
HIDDEN_HEAD = (lambda p: SHARING[0](p) and p["comparison"] == "hidden", "by comparison hidden")
DROPOUT = (lambda p: REPORT_NET[0](p) and p["dropout"] > 0, "by weight_sharing with dropout > 0")
NORMALISED = (lambda p: REPORT_NET[0](p) and p["batch_norm"], "by weight_sharing with batch_norm")
DIGIT_LOSS = (lambda p: SHARING[0](p) and p["weighting"] != "none", "with digit losses trained")
ALPHA = (lambda p: p["weighting"] in ALPHA_WEIGHTS, f"by weighting {' or '.join(ALPHA_WEIGHTS)}")
SGD = (lambda p: p["optimizer"] == "sgd", "by optimizer sgd")
has_digit_outputs = SHARING[0]  # every network but the baseline gives two 10-vectors

PARAMETERS = {
    "experiment": P("ws-aux", "catalogue name of the configuration", "text"),
    "seed": P(0, "round: the same pairs, initialisation and batches", "int", f"[0, {2**64 - 1}]"),
    "n_pairs": P(1000, "number of training pairs, and of test pairs", "int", f"[1, {MAX_PAIRS}]"),
    "epochs": P(25, "passes over the training pairs", "int", "[1, 10000]"),
    "lr": P(0.1, "learning rate", bounds="(0, 100]"),
    "batch_size": P(100, "mini-batch size (at most n_pairs)", "int"),
    "optimizer": P("sgd", "sgd | adam", choices=("sgd", "adam")),
    "model": P("weight_sharing", "network: " + " | ".join(MODEL_NAMES), choices=MODEL_NAMES),
    "weighting": P("eq1", "loss weighting: " + " | ".join(WEIGHTS), choices=WEIGHTS),
    "alpha": P(1.0, "aux weight: eq2's; eq3's at the last epoch", bounds="[0, )", read=ALPHA),
    # The report's network (docs/readings.md: P1-P5 and P7 shape it, P6 the baseline)
    "batch_norm": P(True, "batch norm in the digit network", "bool", read=REPORT_NET),
    "dropout": P(0.5, "dropout in the dense layers (0: none)", bounds="[0, 1)", read=SHARING),
    "dropout_2d": P(0.3, "Dropout2d after the convolutions", bounds="[0, 1)", read=REPORT_NET),
    "dropout_at": P("hidden", "dense dropout after the dense layer (hidden), on the 10 outputs "
                              "(outputs), or both", choices=DROPOUT_PLACES, read=DROPOUT),
    "batch_norm_outputs": P(True, "batch norm on the 10 outputs too", "bool", read=NORMALISED),
    "digit_width": P(32, "channels of the first convolutions (x2 next)", "int", "[1, 1024]",
                     read=SHARING),
    "digit_hidden": P(256, "digit network's dense layer", "int", "[1, 65536]", read=SHARING),
    "comparison": P("hidden", "head: linear (20 -> 2) | hidden (20 -> head_hidden -> 2) | "
                              "computed (P(a <= b) from the digits)", choices=HEADS, read=SHARING),
    "head_hidden": P(512, "units of a hidden head", "int", "[1, 65536]", read=HIDDEN_HEAD),
    "head_input": P("logits", "the 10-vectors a learned head reads: " + " | ".join(HEAD_INPUTS),
                    choices=HEAD_INPUTS, read=LEARNED_HEAD),
    "init": P("default", "initialisation: " + " | ".join(INITS), choices=INITS),
    "baseline_hidden": P(200, "baseline's dense layer", "int", "[1, 65536]", read=BASELINE),
    "baseline_kernel": P(3, "baseline's convolutions: 3 (two 3x3, two max-pools) | 5 (two 5x5, "
                            "one max-pool)", "int", "[3, 5]", read=BASELINE),
    # Training beyond the report's protocol (`best`)
    "momentum": P(0.0, "SGD momentum, Nesterov when > 0", bounds="[0, 1)", read=SGD),
    "weight_decay": P(0.0, "L2 weight decay of the optimiser", bounds="[0, 1]"),
    "schedule": P("constant", "constant | onecycle (cosine)", choices=("constant", "onecycle")),
    "label_smoothing": P(0.0, "of the digit losses", bounds="[0, 1)", read=DIGIT_LOSS),
    "augment_shift": P(0.0, "random shift of each image, up to pixels", bounds="[0, 7]"),
    "augment_rotation": P(0.0, "random rotation of each image, +- degrees", bounds="[0, 180]"),
    "augment_scale": P(0.0, "random zoom of each image, 1 +- this fraction", bounds="[0, 1)"),
    "evaluate_on": P("test", "test | validation (unused MNIST training images)",
                     choices=("test", "validation")),
    "device": P("auto", "auto (CUDA when available) | cpu | cuda", choices=("auto", "cpu", "cuda")),
    "threads": P(1, "CPU threads (results depend on it: keep it fixed)", "int", "[1, )"),
    "data_root": P(None, "folder holding MNIST/raw; default $MNIST_ROOT, else data/", "text"),
}
DEFAULTS = {name: parameter.default for name, parameter in PARAMETERS.items()}
RUN_ONLY = ("device", "data_root")  # never change what a run computes


def reads(params):
    """The parameters a run with `params` reads, but its name and round: what it computes."""
    return [name for name, p in PARAMETERS.items() if name not in ("experiment", "seed", *RUN_ONLY)
            and (p.read is None or p.read[0](params))]


def differing(recorded, asked):
    """The experiment, seed and parameters read by either run (a record's `recorded` params,
    `asked`) that differ: the one test of "another run's record"."""
    read = dict.fromkeys(name for params in (asked, recorded) if params for name in reads(params))
    return [key for key in ("experiment", "seed", *read) if key in asked and
            recorded.get(key) != asked[key]]




_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")
_WANTED = {"bool": "true or false", "int": "an integer", "float": "a finite number"}


def _convert(name, value):
    """`value` (text from -p or papermill, or a Python value) as parameter `name` takes it."""
    parameter, text, number = PARAMETERS[name], str(value).strip().lower(), math.nan
    kind, given_text = parameter.kind, isinstance(value, str)
    if kind == "bool" and (type(value) is bool or type(value) is int and value in (0, 1)
                           or given_text and text in _TRUE + _FALSE):
        return text in _TRUE if given_text else bool(value)
    if kind == "int" and type(value) is not bool:
        if type(value) is int or isinstance(value, float) and value.is_integer():
            return int(value)
        if given_text and re.fullmatch(r"[-+]?\d{1,30}", text):  # (no 5000-digit parse)
            return int(text)
    if kind == "float" and type(value) is not bool:
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            number = float(value)
        if math.isfinite(number):
            return number
    if kind == "choice" and value is not None and text in parameter.choices:
        return text
    if kind == "text":
        return value if name != "data_root" else None if text in ("", "none") else str(value)
    wanted = _WANTED.get(kind) or f"one of {', '.join(parameter.choices)}"
    raise UsageError(f"{name} must be {wanted}, got {value!r}")


# Combinations that cannot run: (when it is wrong, what to do), checked after the ranges.
CONSTRAINTS = [
    (lambda p: not 1 <= p["batch_size"] <= p["n_pairs"], lambda p: f"batch_size must be from 1 "
     f"to n_pairs ({p['n_pairs']}), got {p['batch_size']}"),
    (lambda p: p["model"] == "baseline" and p["weighting"] != "none", lambda p: "the baseline "
     "network has no digit outputs: use weighting none with model baseline"),
    (lambda p: (WEIGHTINGS[p["weighting"]].max_alpha or math.inf) < p["alpha"],
     lambda p: f"{p['weighting']} needs alpha in [0, {WEIGHTINGS[p['weighting']].max_alpha:g}] "
     f"(its weights are 1 - a and a, a between alpha and 1), got {p['alpha']:g}"),
    (lambda p: p["baseline_kernel"] == 4, lambda p: "baseline_kernel must be 3 or 5, got 4"),
    (lambda p: p["comparison"] != "computed" and p["weighting"] == "digits", lambda p: f"weighting"
     f" digits leaves a learned {p['comparison']} comparison head untrained: use comparison "
     f"computed, or another weighting"),
]


def check(values, overrides=()):
    """`values` (every name of PARAMETERS) converted and checked -> a new dict; UsageError (one
    line) if bad. `overrides`: the names the user gave, refused where the run would not read."""
    params = {name: _convert(name, values[name]) for name in PARAMETERS}
    for name, parameter in PARAMETERS.items():
        if parameter.bounds and parameter.refuses(params[name]):
            raise UsageError(f"{name} must be {parameter.refuses(params[name])}, got "
                             f"{params[name]!r}")
    for wrong, message in CONSTRAINTS:
        if wrong(params):
            raise UsageError(message(params))
    for name in overrides:
        read = PARAMETERS[name].read
        if read is not None and not read[0](params):
            raise UsageError(f"{name} = {params[name]!r} would change nothing: {name} is read "
                             f"only {read[1]}, and {params['experiment']} has model "
                             f"{params['model']}, weighting {params['weighting']}, optimizer "
                             f"{params['optimizer']}; drop {name}, or set what reads it")
    if params["device"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("device cuda asked for, but no CUDA GPU is available: use device "
                             "auto or cpu")
    return params


def checked_overrides(overrides):
    """`overrides` (-p NAME VALUE) converted and checked: UsageError when bad."""
    unknown = sorted(set(overrides or {}) - set(DEFAULTS))
    if unknown:
        raise UsageError(f"unknown parameter {', '.join(map(repr, unknown))}: python -m "
                         f"helpers list names them")
    values = check({**DEFAULTS, **(overrides or {})})
    return {name: values[name] for name in overrides or {}}
