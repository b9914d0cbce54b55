"""The experiment catalogue and the run parameters: the one place that says what each
configuration of the report is, and which parameter values are allowed.

`CATALOGUE` is plain data, one row per configuration: its name, the notebook that runs it,
the parameters it sets (everything else takes `DEFAULTS`, the report's protocol), and the
row of the report it reproduces with that row's published numbers.
"""

import math

from .errors import UsageError

# ---------------------------------------------------------------------------------------------
# Parameters: one vocabulary for the catalogue, notebook `parameters` cells, the runner's
# `-p NAME VALUE` and run records.  name -> (default, description)
# ---------------------------------------------------------------------------------------------
PARAMETERS = {
    "experiment": ("ws-aux", "catalogue name of the configuration"),
    "seed": (0, "round: the same seed gives the same pairs, initialisation and batch order"),
    "n_pairs": (1000, "number of training pairs, and of test pairs"),
    "epochs": (25, "passes over the training pairs"),
    "lr": (0.1, "learning rate"),
    "batch_size": (100, "mini-batch size"),
    "optimizer": ("sgd", "sgd | adam"),
    "model": ("weight_sharing", "network: baseline | weight_sharing | deep_weight_sharing"),
    "weighting": ("eq1", "auxiliary loss weighting: none | eq1 | eq2 | eq3 | digits (L_A + L_B)"),
    "alpha": (1.0, "aux weight: eq2's constant; eq3's value at the last epoch (from 1 at the first)"),
    "batch_norm": (True, "batch norm in the digit network"),
    "dropout": (0.5, "dropout probability in the dense layers (0 = none)"),
    "dropout_2d": (0.3, "Dropout2d probability after the convolutions (0 = none)"),
    "comparison": ("linear", "comparison head: linear (the report's) | hidden | computed "
                             "(P(first <= second) from the two digit distributions)"),
    "momentum": (0.0, "SGD momentum, Nesterov when > 0 (0 = plain SGD, the report's); "
                      "schedule onecycle cycles it from 0.95 to 0.85 and back"),
    "weight_decay": (0.0, "L2 weight decay of the optimiser"),
    "schedule": ("constant", "learning rate: constant | onecycle (warm-up to lr, cosine to ~0)"),
    "label_smoothing": (0.0, "label smoothing of the digit cross-entropies (0 = none)"),
    "augment_shift": (0.0, "augmentation: random translation of each image, up to this many pixels"),
    "augment_rotation": (0.0, "augmentation: random rotation of each image, up to +- degrees"),
    "augment_scale": (0.0, "augmentation: random zoom of each image, 1 +- this fraction"),
    "evaluate_on": ("test", "test pairs | validation (pairs of unused MNIST training images, "
                            "for choosing without the test pairs)"),
    "device": ("auto", "auto (CUDA when available) | cpu | cuda"),
    "threads": (1, "CPU threads for this training (results depend on it: keep it fixed)"),
    "data_root": (None, "folder holding MNIST/raw; default $MNIST_ROOT, else data/"),
}
DEFAULTS = {name: default for name, (default, _) in PARAMETERS.items()}
# Parameters that never change what a run computes: two records may differ in them alone.
RUN_ONLY = ("device", "data_root")
CHOICES = {
    "optimizer": ("sgd", "adam"),
    "model": ("baseline", "weight_sharing", "deep_weight_sharing"),
    "weighting": ("none", "eq1", "eq2", "eq3", "digits"),
    "comparison": ("linear", "hidden", "computed"),
    "schedule": ("constant", "onecycle"),
    "evaluate_on": ("test", "validation"),
    "device": ("auto", "cpu", "cuda"),
}
MAX_PAIRS = 5000  # 10,000 MNIST test images make at most 5000 disjoint pairs

# ---------------------------------------------------------------------------------------------
# The catalogue.  `report` = (table, row label, train %, SD, test %, SD) as published;
# SD is the standard deviation of the number of errors out of 1000; None for rows beyond the
# report. `group` names the sets a row belongs to (`report`, `sweep`, `best`, `ablation`), so
# that a whole set can be run by its name.
# ---------------------------------------------------------------------------------------------
_WS_PLAIN = {"batch_norm": False, "dropout": 0.0, "dropout_2d": 0.0}
CATALOGUE = [
    {"name": "baseline", "group": ("report",), "notebook": "baseline.ipynb",
     "description": "convnet on the 2-channel image; no weight sharing, batch norm or dropout",
     "params": {"model": "baseline", "weighting": "none", "batch_norm": False,
                "dropout": 0.0, "dropout_2d": 0.0},
     "report": ("III", "Baseline", 4.4, 60, 20.1, 47)},
    {"name": "ws-plain", "group": ("report",), "notebook": "weight_sharing.ipynb",
     "description": "weight sharing without batch norm and dropout",
     "params": {"weighting": "none", **_WS_PLAIN},
     "report": ("IV", "WS (w/o)", 4.0, 29.4, 14.5, 8.3)},
    {"name": "ws", "group": ("report", "sweep"), "notebook": "weight_sharing.ipynb",
     "description": "weight sharing with batch norm and dropout",
     "params": {"weighting": "none"},
     "report": ("III", "WS", 3.8, 5.5, 12.6, 9.4)},
    {"name": "ws-aux", "group": ("report", "sweep"), "notebook": "auxiliary_loss.ipynb",
     "description": "weight sharing + auxiliary loss, eq. (1): L_cmp + L_A + L_B",
     "params": {"weighting": "eq1"},
     "report": ("III", "WS+AuxLoss", 3.9, 4.6, 6.9, 5.5)},
    {"name": "ws-aux-c0.5", "group": ("report", "sweep"), "notebook": "auxiliary_loss.ipynb",
     "description": "auxiliary loss, eq. (2), constant alpha = 0.5",
     "params": {"weighting": "eq2", "alpha": 0.5},
     "report": ("IV", "alpha = 0.5 (eq.2)", 3.6, 8.4, 7.5, 5.1)},
    {"name": "ws-aux-c0.75", "group": ("report", "sweep"), "notebook": "auxiliary_loss.ipynb",
     "description": "auxiliary loss, eq. (2), constant alpha = 0.75",
     "params": {"weighting": "eq2", "alpha": 0.75},
     "report": ("IV", "alpha = 0.75 (eq.2)", 3.5, 4.1, 7.0, 4.3)},
    {"name": "ws-aux-d0.25", "group": ("report",), "notebook": "auxiliary_loss.ipynb",
     "description": "auxiliary loss, eq. (3), alpha decaying linearly from 1 to 0.25",
     "params": {"weighting": "eq3", "alpha": 0.25},
     "report": ("IV", "alpha = 0.25 (eq.3)", 4.2, 6.8, 8.2, 5.4)},
    {"name": "ws-aux-d0.75", "group": ("report",), "notebook": "auxiliary_loss.ipynb",
     "description": "auxiliary loss, eq. (3), alpha decaying linearly from 1 to 0.75",
     "params": {"weighting": "eq3", "alpha": 0.75},
     "report": ("IV", "alpha = 0.75 (eq.3)", 7.6, 7.4, 7.5, 8.0)},
]

# The open question of the report: which alpha in eq. (2)?  Ten seeds of each alpha.
# alpha 0 is `ws` (L_cmp alone) and alpha 1 is `ws-aux` (eq. 1): the same loss, bit for bit,
# so those two rows stand for them and are not trained twice.
SWEEP_ALPHAS = (0, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 4, 8)
SWEEP = {alpha: {0: "ws", 1: "ws-aux"}.get(alpha, f"ws-aux-c{alpha:g}") for alpha in SWEEP_ALPHAS}
CATALOGUE += [
    {"name": name, "group": ("sweep",), "notebook": "auxiliary_loss.ipynb",
     "description": f"auxiliary loss, eq. (2), constant alpha = {alpha:g} (the alpha sweep)",
     "params": {"weighting": "eq2", "alpha": float(alpha)}, "report": None}
    for alpha, name in SWEEP.items() if name not in {row["name"] for row in CATALOGUE}]

# Beyond the report (issue 4): `best`, every choice made on validation pairs of seeds 100+
# (pairs of MNIST training images that the training pairs do not use), never on test pairs.
BEST_PARAMS = {"model": "deep_weight_sharing", "comparison": "computed", "weighting": "digits",
               "dropout": 0.0, "dropout_2d": 0.0, "optimizer": "sgd", "lr": 0.05,
               "momentum": 0.9, "weight_decay": 5e-4, "schedule": "onecycle", "batch_size": 25,
               "label_smoothing": 0.1, "augment_shift": 1.5, "augment_rotation": 10.0,
               "augment_scale": 0.1}
CATALOGUE.append(
    {"name": "best", "group": ("best",), "notebook": "best.ipynb",
     "description": "deeper shared digit net trained on the digit labels alone (augmented, "
                    "one-cycle SGD), comparison computed from the two digit distributions",
     "params": BEST_PARAMS, "report": None})
# The ablation of `best`: each ingredient removed in turn, measured on validation pairs.
# name suffix -> (what is removed, the parameters that remove it)
ABLATION = {
    "": ("nothing (best itself)", {}),
    "-no-augment": ("augmentation", {"augment_shift": 0.0, "augment_rotation": 0.0,
                                     "augment_scale": 0.0}),
    "-report-net": ("the deeper digit net (the report's DigitNet instead)",
                    {"model": "weight_sharing", "dropout": 0.5, "dropout_2d": 0.3}),
    "-no-label-smoothing": ("label smoothing", {"label_smoothing": 0.0}),
    "-report-optimiser": ("momentum, weight decay, one-cycle schedule, small batches (the "
                          "report's SGD: lr 0.1, batch 100)",
                          {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0,
                           "schedule": "constant", "batch_size": 100}),
    "-linear-head": ("the computed comparison (a learned linear head, eq. 1 loss)",
                     {"comparison": "linear", "weighting": "eq1"}),
    "-hidden-head": ("the computed comparison (a learned head with a hidden layer, eq. 1 loss)",
                     {"comparison": "hidden", "weighting": "eq1"}),
}
CATALOGUE += [
    {"name": f"best-val{suffix}", "group": ("ablation",), "notebook": "best.ipynb",
     "description": f"best without {removed}, on validation pairs" if suffix else
                    "best, on validation pairs",
     "params": {**BEST_PARAMS, **change, "evaluate_on": "validation"}, "report": None}
    for suffix, (removed, change) in ABLATION.items()]

EXPERIMENTS = {row["name"]: row for row in CATALOGUE}
REPORT_EXPERIMENTS = [row["name"] for row in CATALOGUE if row.get("report")]
GROUPS = sorted({group for row in CATALOGUE for group in row["group"]})


def group(name):
    """The names of the rows of group `name` (report, sweep, best, ablation), in catalogue order."""
    if name not in GROUPS:
        raise UsageError(f"unknown group {name!r}: choose one of {', '.join(GROUPS)}")
    return [row["name"] for row in CATALOGUE if name in row["group"]]


def get(name):
    """The catalogue row called `name`."""
    if name not in EXPERIMENTS:
        raise UsageError(f"unknown experiment {name!r}: choose one of {', '.join(EXPERIMENTS)} "
                         f"(python -m helpers list shows them)")
    return EXPERIMENTS[name]


# ---------------------------------------------------------------------------------------------
# Validation: every parameter is checked here, before any data is loaded or any training.
# ---------------------------------------------------------------------------------------------
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def _as_bool(name, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise UsageError(f"{name} must be true or false, got {value!r}")


def _as_int(name, value):
    if isinstance(value, bool):
        raise UsageError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise UsageError(f"{name} must be an integer, got {value!r}")


def _as_float(name, value):
    if not isinstance(value, bool):
        try:
            number = float(value)
            if math.isfinite(number):
                return number
        except (TypeError, ValueError):
            pass
    raise UsageError(f"{name} must be a finite number, got {value!r}")


def _as_choice(name, value):
    text = str(value).strip().lower() if value is not None else ""
    if text not in CHOICES[name]:
        raise UsageError(f"{name} must be one of {', '.join(CHOICES[name])}, got {value!r}")
    return text


_CONVERT = {"seed": _as_int, "threads": _as_int, "n_pairs": _as_int, "epochs": _as_int,
            "batch_size": _as_int,
            "lr": _as_float, "alpha": _as_float, "dropout": _as_float, "dropout_2d": _as_float,
            "batch_norm": _as_bool, "optimizer": _as_choice, "model": _as_choice,
            "weighting": _as_choice, "device": _as_choice,
            "comparison": _as_choice, "schedule": _as_choice, "evaluate_on": _as_choice,
            "momentum": _as_float, "weight_decay": _as_float, "label_smoothing": _as_float,
            "augment_shift": _as_float,
            "augment_rotation": _as_float, "augment_scale": _as_float}


def _check_ranges(p):
    def need(ok, message):
        if not ok:
            raise UsageError(message)

    need(p["seed"] >= 0, f"seed must be >= 0, got {p['seed']}")
    need(1 <= p["n_pairs"] <= MAX_PAIRS,
         f"n_pairs must be from 1 to {MAX_PAIRS} (10,000 test images), got {p['n_pairs']}")
    need(p["epochs"] >= 1, f"epochs must be >= 1, got {p['epochs']}")
    need(p["lr"] > 0, f"lr must be > 0, got {p['lr']}")
    need(1 <= p["batch_size"] <= p["n_pairs"],
         f"batch_size must be from 1 to n_pairs ({p['n_pairs']}), got {p['batch_size']}")
    need(p["threads"] >= 1, f"threads must be >= 1, got {p['threads']}")
    need(p["alpha"] >= 0, f"alpha must be >= 0, got {p['alpha']}")
    for name in ("dropout", "dropout_2d"):
        need(0 <= p[name] < 1, f"{name} must be in [0, 1), got {p[name]}")
    need(not (p["model"] == "baseline" and p["weighting"] != "none"),
         "the baseline network has no digit outputs: use weighting none with model baseline")
    _check_best_ranges(p, need)
    if p["device"] == "cuda":
        import torch
        need(torch.cuda.is_available(), "device cuda asked for, but no CUDA GPU is available: "
                                        "use device auto or cpu")


def _check_best_ranges(p, need):
    """The ranges of the parameters `best` added (optimiser, schedule, augmentation, heads)."""
    need(0 <= p["momentum"] < 1, f"momentum must be in [0, 1), got {p['momentum']}")
    need(p["weight_decay"] >= 0, f"weight_decay must be >= 0, got {p['weight_decay']}")
    need(0 <= p["label_smoothing"] < 1,
         f"label_smoothing must be in [0, 1), got {p['label_smoothing']}")
    need(0 <= p["augment_shift"] <= 7,
         f"augment_shift must be from 0 to 7 pixels (half the image), got {p['augment_shift']}")
    need(0 <= p["augment_rotation"] <= 180,
         f"augment_rotation must be from 0 to 180 degrees, got {p['augment_rotation']}")
    need(0 <= p["augment_scale"] < 1, f"augment_scale must be in [0, 1), got {p['augment_scale']}")
    need(not (p["model"] == "baseline" and p["comparison"] != "linear"),
         "the baseline network has no comparison head: use comparison linear with model baseline")
    need(not (p["comparison"] != "computed" and p["weighting"] == "digits"),
         f"weighting digits leaves a learned {p['comparison']} comparison head untrained: "
         f"use comparison computed, or another weighting")
    need(not (p["model"] == "deep_weight_sharing" and (not p["batch_norm"] or p["dropout_2d"])),
         "deep_weight_sharing always has batch norm and no Dropout2d: "
         "leave batch_norm true and dropout_2d 0")


def resolve(experiment, **overrides):
    """The full, checked parameter dict of `experiment` with `overrides` applied.

    Raises `UsageError` (one line: the problem and the fix) for an unknown experiment or
    parameter, a value of the wrong type, or one out of range.
    """
    row = get(experiment)
    unknown = sorted(set(overrides) - set(PARAMETERS) - {"experiment"})
    if unknown:
        raise UsageError(f"unknown parameter {', '.join(map(repr, unknown))}: "
                         f"known ones are {', '.join(PARAMETERS)}")
    params = {**DEFAULTS, **row["params"], **overrides, "experiment": experiment}
    for name, convert in _CONVERT.items():
        params[name] = convert(name, params[name])
    if params["data_root"] in ("", "None", "none"):
        params["data_root"] = None
    elif params["data_root"] is not None:
        params["data_root"] = str(params["data_root"])
    _check_ranges(params)
    return params


def run(name, seed=0, **overrides):
    """Train configuration `name` for round `seed` in this process and return its run record."""
    from .training import run_experiment

    return run_experiment(resolve(name, seed=seed, **overrides))
