"""The run parameters: one table, from which their conversion, their checks, `python -m helpers
list` and the notebooks' error messages all derive.

Every run is a dict of these names. A catalogue row sets some of them; the rest take the
default here, which is the report's protocol. `check` converts values given as text (the
runner's `-p NAME VALUE`, papermill's parameters) and refuses, in one line, a value of the wrong
type or out of range, a combination that cannot run, and a value given for a parameter that the
run would not read (it would silently change nothing).
"""

import math
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import UsageError
from ..science.losses import WEIGHTINGS
from ..science.mnist import MAX_PAIRS

# The networks of science/models.py (its MODELS, which imports torch: the runner checks names
# without it; a test keeps the two lists equal).
MODEL_NAMES = ("baseline", "weight_sharing", "deep_weight_sharing")
WEIGHTING_NAMES = tuple(WEIGHTINGS)
_ALPHA_WEIGHTINGS = tuple(name for name, w in WEIGHTINGS.items() if w.uses_alpha)


@dataclass(frozen=True)
class Parameter:
    default: object
    help: str
    kind: str = "float"                # int | float | bool | choice | text
    choices: tuple = ()
    low: Optional[float] = None        # the allowed interval; None: unbounded
    high: Optional[float] = None
    open_low: bool = False             # low itself not allowed
    open_high: bool = False
    read_if: Optional[Callable] = None  # params -> whether the run reads this parameter
    read_when: str = ""                 # ... in words, for the message when it does not

    def interval(self):
        """The allowed values in words: 'in [0, 1)', 'from 1 to 5000', '>= 1'."""
        low, high = _number(self.low), _number(self.high)
        if self.kind == "int" and self.low is not None and self.high is not None:
            return f"from {low} to {high}"
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.open_low else '['}{low}, {high}{')' if self.open_high else ']'}"
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {low}"
        return f"{'<' if self.open_high else '<='} {high}"


def _number(value):
    return str(value) if isinstance(value, (int, type(None))) else f"{value:g}"


def _weight_sharing(p):
    return p["model"] != "baseline"


PARAMETERS = {
    "experiment": Parameter("ws-aux", "catalogue name of the configuration", "text"),
    "seed": Parameter(0, "round: the same seed gives the same pairs, initialisation and batch "
                         "order", "int", low=0, high=2 ** 64 - 1),
    "n_pairs": Parameter(1000, "number of training pairs, and of test pairs", "int",
                         low=1, high=MAX_PAIRS),
    "epochs": Parameter(25, "passes over the training pairs", "int", low=1, high=10_000),
    "lr": Parameter(0.1, "learning rate", low=0, high=100, open_low=True),
    "batch_size": Parameter(100, "mini-batch size (at most n_pairs)", "int"),
    "optimizer": Parameter("sgd", "sgd | adam", "choice", ("sgd", "adam")),
    "model": Parameter("weight_sharing", "network: " + " | ".join(MODEL_NAMES), "choice",
                       MODEL_NAMES),
    "weighting": Parameter("eq1", "loss weighting: none (L_cmp) | eq1 | eq2 | eq3 | digits "
                                  "(L_A + L_B)", "choice", WEIGHTING_NAMES),
    "alpha": Parameter(1.0, "aux weight: eq2's constant; eq3's value at the last epoch (from 1 "
                            "at the first)", low=0,
                       read_if=lambda p: p["weighting"] in _ALPHA_WEIGHTINGS,
                       read_when=f"by weighting {' or '.join(_ALPHA_WEIGHTINGS)}"),
    "batch_norm": Parameter(True, "batch norm in the digit network", "bool",
                            read_if=lambda p: p["model"] == "weight_sharing",
                            read_when="by model weight_sharing"),
    "dropout": Parameter(0.5, "dropout probability in the dense layers (0 = none)", low=0,
                         high=1, open_high=True, read_if=_weight_sharing,
                         read_when="by a weight-sharing model"),
    "dropout_2d": Parameter(0.3, "Dropout2d probability after the convolutions (0 = none)",
                            low=0, high=1, open_high=True,
                            read_if=lambda p: p["model"] == "weight_sharing",
                            read_when="by model weight_sharing"),
    # The readings of the report's open design points (docs/readings.md): P1-P4 shape the
    # weight-sharing network, P6 the baseline; P5 is a weighting (eq3, eq3-discount, ...).
    "head_input": Parameter("logits", "what the two 10-vectors are when they reach a learned "
                                      "comparison head: logits | softmax | log_softmax",
                            "choice", ("logits", "softmax", "log_softmax"),
                            read_if=lambda p: _weight_sharing(p) and p["comparison"] != "computed",
                            read_when="by a learned comparison head (linear or hidden)"),
    "dropout_at": Parameter("hidden", "where the dense dropout sits: hidden (after the dense "
                                      "layer) | outputs (on the 10 outputs) | both", "choice",
                            ("hidden", "outputs", "both"),
                            read_if=lambda p: p["model"] == "weight_sharing" and p["dropout"] > 0,
                            read_when="by model weight_sharing with dropout > 0"),
    "batch_norm_outputs": Parameter(False, "batch norm on the 10 digit outputs too", "bool",
                                    read_if=lambda p: p["model"] == "weight_sharing"
                                    and p["batch_norm"],
                                    read_when="by model weight_sharing with batch_norm"),
    "digit_width": Parameter(32, "channels of the digit network's convolutions before its "
                                 "first max-pool (twice that after it)", "int", low=1, high=1024,
                             read_if=_weight_sharing, read_when="by a weight-sharing model"),
    "digit_hidden": Parameter(128, "width of the digit network's dense layer", "int", low=1,
                              high=65536, read_if=_weight_sharing,
                              read_when="by a weight-sharing model"),
    "init": Parameter("default", "weight initialisation: default (PyTorch's) | xavier | kaiming",
                      "choice", ("default", "xavier", "kaiming")),
    "baseline_hidden": Parameter(200, "width of the baseline's dense layer", "int", low=1,
                                 high=65536, read_if=lambda p: p["model"] == "baseline",
                                 read_when="by model baseline"),
    "baseline_kernel": Parameter(3, "the baseline's convolution size: 3 (two 3x3 convolutions, "
                                    "two max-pools) | 5 (two 5x5, one max-pool)", "int", low=3,
                                 high=5, read_if=lambda p: p["model"] == "baseline",
                                 read_when="by model baseline"),
    "comparison": Parameter("linear", "comparison head: linear (the report's) | hidden | "
                                      "computed (P(first <= second) from the two digit "
                                      "distributions)", "choice",
                            ("linear", "hidden", "computed"), read_if=_weight_sharing,
                            read_when="by a weight-sharing model"),
    "head_hidden": Parameter(64, "units of the hidden layer of a hidden comparison head "
                                 "(20 -> head_hidden -> ReLU -> 2)", "int", low=1, high=65536,
                             read_if=lambda p: _weight_sharing(p) and p["comparison"] == "hidden",
                             read_when="by comparison hidden"),
    "momentum": Parameter(0.0, "SGD momentum, Nesterov when > 0 (0 = plain SGD, the "
                               "report's); schedule onecycle cycles it from 0.95 to 0.85",
                          low=0, high=1, open_high=True,
                          read_if=lambda p: p["optimizer"] == "sgd",
                          read_when="by optimizer sgd"),
    "weight_decay": Parameter(0.0, "L2 weight decay of the optimiser", low=0, high=1),
    "schedule": Parameter("constant", "learning rate: constant | onecycle (warm-up to lr, "
                                      "cosine to ~0)", "choice", ("constant", "onecycle")),
    "label_smoothing": Parameter(0.0, "label smoothing of the digit cross-entropies (0 = none)",
                                 low=0, high=1, open_high=True,
                                 read_if=lambda p: _weight_sharing(p) and p["weighting"] != "none",
                                 read_when="when digit losses are trained (weighting not none)"),
    "augment_shift": Parameter(0.0, "augmentation: random translation of each image, up to "
                                    "this many pixels", low=0, high=7),
    "augment_rotation": Parameter(0.0, "augmentation: random rotation of each image, up to "
                                       "+- degrees", low=0, high=180),
    "augment_scale": Parameter(0.0, "augmentation: random zoom of each image, 1 +- this "
                                    "fraction", low=0, high=1, open_high=True),
    "evaluate_on": Parameter("test", "test pairs | validation (pairs of unused MNIST training "
                                     "images, for choosing without the test pairs)", "choice",
                             ("test", "validation")),
    "device": Parameter("auto", "auto (CUDA when available) | cpu | cuda", "choice",
                        ("auto", "cpu", "cuda")),
    "threads": Parameter(1, "CPU threads for this training (results depend on it: keep it "
                            "fixed)", "int", low=1),
    "data_root": Parameter(None, "folder holding MNIST/raw; default $MNIST_ROOT, else data/",
                           "text"),
}
DEFAULTS = {name: parameter.default for name, parameter in PARAMETERS.items()}
# Parameters that never change what a run computes: two records may differ in them alone.
RUN_ONLY = ("device", "data_root")


def differing(recorded, asked):
    """The parameters of `asked` that change what a run computes (all but RUN_ONLY) and that
    `recorded` (a record's params) has otherwise: the one test of "another run's record"."""
    return [key for key, value in asked.items()
            if key not in RUN_ONLY and recorded.get(key) != value]


def parameter_differences(recorded, asked):
    """'name X there, Y asked' for each of `differing`."""
    return [f"{key} {recorded.get(key)!r} there, {asked[key]!r} asked"
            for key in differing(recorded, asked)]


def has_digit_outputs(params):  # every network but the baseline gives two 10-vectors
    return params["model"] != "baseline"


def trains_digits(params):
    """Whether its weighting trains the digit outputs on the labels at some epoch (else, as for
    `ws`, they are not digit predictions and error kinds mean nothing)."""
    weighting, epochs = WEIGHTINGS[params["weighting"]], params["epochs"]
    return any(weighting.weights(epoch, epochs, params.get("alpha", 1.0))[1] > 0
               for epoch in range(epochs))


# ---------------------------------------------------------------------------------------------
# Conversion: values may come as text (-p NAME VALUE, papermill) or as Python values.
# ---------------------------------------------------------------------------------------------
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def _convert(name, value):
    parameter = PARAMETERS[name]
    kind = parameter.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise UsageError(f"{name} must be true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise UsageError(f"{name} must be an integer, got {value!r}")
    if kind == "float":
        if not isinstance(value, bool):
            try:
                number = float(value)
                if math.isfinite(number):
                    return number
            except (TypeError, ValueError, OverflowError):
                pass
        raise UsageError(f"{name} must be a finite number, got {value!r}")
    if kind == "choice":
        text = str(value).strip().lower() if value is not None else ""
        if text not in parameter.choices:
            raise UsageError(f"{name} must be one of {', '.join(parameter.choices)}, "
                             f"got {value!r}")
        return text
    if name == "data_root":
        return None if value in (None, "", "None", "none") else str(value)
    return value


def _in_range(name, value):
    parameter = PARAMETERS[name]
    low, high = parameter.low, parameter.high
    below = low is not None and (value < low or (parameter.open_low and value == low))
    above = high is not None and (value > high or (parameter.open_high and value == high))
    if below or above:
        raise UsageError(f"{name} must be {parameter.interval()}, got {value!r}")


# Combinations that cannot run: (when it is wrong, what to do), checked after the ranges.
CONSTRAINTS = [
    (lambda p: not 1 <= p["batch_size"] <= p["n_pairs"],
     lambda p: f"batch_size must be from 1 to n_pairs ({p['n_pairs']}), got {p['batch_size']}"),
    (lambda p: p["model"] == "baseline" and p["weighting"] != "none",
     lambda p: "the baseline network has no digit outputs: use weighting none with model "
               "baseline"),
    (lambda p: (WEIGHTINGS[p["weighting"]].max_alpha or math.inf) < p["alpha"],
     lambda p: f"{p['weighting']} needs alpha in [0, {WEIGHTINGS[p['weighting']].max_alpha:g}] "
               f"(its weights are 1 - a and a, a between alpha and 1), got {p['alpha']:g}"),
    (lambda p: p["baseline_kernel"] not in (3, 5),
     lambda p: f"baseline_kernel must be 3 or 5, got {p['baseline_kernel']}"),
    (lambda p: p["comparison"] != "computed" and p["weighting"] == "digits",
     lambda p: f"weighting digits leaves a learned {p['comparison']} comparison head "
               f"untrained: use comparison computed, or another weighting"),
]


def check(values, overrides=()):
    """`values` (every name of PARAMETERS) converted and checked -> a new dict.

    `overrides` names the values the user gave (not the catalogue row): one that the run would
    not read is refused rather than silently ignored. Raises UsageError (one line).
    """
    params = {name: _convert(name, values[name]) for name in PARAMETERS}
    for name, parameter in PARAMETERS.items():
        if parameter.kind in ("int", "float"):
            _in_range(name, params[name])
    for wrong, message in CONSTRAINTS:
        if wrong(params):
            raise UsageError(message(params))
    for name in overrides:
        parameter = PARAMETERS[name]
        if parameter.read_if is not None and not parameter.read_if(params):
            raise UsageError(f"{name} = {params[name]!r} would change nothing: {name} is read "
                             f"only {parameter.read_when}, and {params['experiment']} has "
                             f"model {params['model']}, weighting {params['weighting']}, "
                             f"optimizer {params['optimizer']}; drop {name}, or set what "
                             f"reads it")
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
