"""The experiment catalogue: what each configuration runs. A row is a name, its groups (a group
runs by its name), the notebook that runs it, its seeds, a description and the parameters it
sets; the others take their defaults (parameters.py: the report's protocol and network). The rows
published on the test pairs are written below, one line each; the finished studies' rows are
frozen in studies.jsonl, one a line with every parameter it reads, so no default moves them.
`report`: the report's row (table, label, train %, SD, test %, SD: SDs of errors out of 1000).
"""

import json
from pathlib import Path

from ..errors import UsageError
from . import parameters as vocabulary

TEST_SEEDS, HOLDOUT_SEEDS = "0-9", "1000-1009"
BASELINE, WS, AUX = "baseline.ipynb", "weight_sharing.ipynb", "auxiliary_loss.ipynb"


def row(name, groups, notebook, description, report=None, seeds=TEST_SEEDS, beside=None, **params):
    """A catalogue row: `groups` space-separated, `params` those that differ from the defaults."""
    return {"name": name, "group": tuple(groups.split()), "notebook": notebook, "seeds": seeds,
            "description": description, "params": params, "report": report,
            **({"beside": beside} if beside else {})}


# The report's Tables III and IV, as published.
REPORT = {
    "baseline": ("III", "Baseline", 4.4, 60, 20.1, 47),
    "ws-plain": ("IV", "WS (w/o)", 4.0, 29.4, 14.5, 8.3),
    "ws": ("III", "WS", 3.8, 5.5, 12.6, 9.4),
    "ws-aux": ("III", "WS+AuxLoss", 3.9, 4.6, 6.9, 5.5),
    "ws-aux-c0.5": ("IV", "alpha = 0.5 (eq.2)", 3.6, 8.4, 7.5, 5.1),
    "ws-aux-c0.75": ("IV", "alpha = 0.75 (eq.2)", 3.5, 4.1, 7.0, 4.3),
    "ws-aux-d0.25": ("IV", "alpha = 0.25 (eq.3)", 4.2, 6.8, 8.2, 5.4),
    "ws-aux-d0.75": ("IV", "alpha = 0.75 (eq.3)", 7.6, 7.4, 7.5, 8.0),
}
CATALOGUE = [
    # The report's configurations, on the report's network (the defaults)
    row("baseline", "report", BASELINE, "convnet on the 2-channel image; no weight sharing, batch norm or dropout", REPORT["baseline"], model="baseline", weighting="none"),
    row("ws-plain", "report", WS, "weight sharing without batch norm and dropout", REPORT["ws-plain"], weighting="none", batch_norm=False, dropout=0.0, dropout_2d=0.0),
    row("ws", "report sweep", WS, "weight sharing with batch norm and dropout", REPORT["ws"], weighting="none"),
    row("ws-aux", "report sweep", AUX, "weight sharing + auxiliary loss, eq. (1): L_cmp + L_A + L_B", REPORT["ws-aux"], weighting="eq1"),
    row("ws-aux-c0.5", "report sweep", AUX, "auxiliary loss, eq. (2), constant alpha = 0.5", REPORT["ws-aux-c0.5"], weighting="eq2", alpha=0.5),
    row("ws-aux-c0.75", "report sweep", AUX, "auxiliary loss, eq. (2), constant alpha = 0.75", REPORT["ws-aux-c0.75"], weighting="eq2", alpha=0.75),
    row("ws-aux-d0.25", "report", AUX, "auxiliary loss, eq. (3), alpha decaying geometrically from 1 to 0.25", REPORT["ws-aux-d0.25"], weighting="eq3-geometric", alpha=0.25),
    row("ws-aux-d0.75", "report", AUX, "auxiliary loss, eq. (3), alpha decaying geometrically from 1 to 0.75", REPORT["ws-aux-d0.75"], weighting="eq3-geometric", alpha=0.75),
    # The alpha sweep of eq. (2) (alpha 0 is `ws` and alpha 1 is `ws-aux`: the same losses)
    row("ws-aux-c0.1", "sweep", AUX, "auxiliary loss, eq. (2), constant alpha = 0.1 (the alpha sweep)", weighting="eq2", alpha=0.1),
    row("ws-aux-c0.25", "sweep", AUX, "auxiliary loss, eq. (2), constant alpha = 0.25 (the alpha sweep)", weighting="eq2", alpha=0.25),
    row("ws-aux-c1.5", "sweep", AUX, "auxiliary loss, eq. (2), constant alpha = 1.5 (the alpha sweep)", weighting="eq2", alpha=1.5),
    row("ws-aux-c2", "sweep", AUX, "auxiliary loss, eq. (2), constant alpha = 2 (the alpha sweep)", weighting="eq2", alpha=2),
    row("ws-aux-c4", "sweep", AUX, "auxiliary loss, eq. (2), constant alpha = 4 (the alpha sweep)", weighting="eq2", alpha=4),
    row("ws-aux-c8", "sweep", AUX, "auxiliary loss, eq. (2), constant alpha = 8 (the alpha sweep)", weighting="eq2", alpha=8),
    # Beyond the report, every choice made on validation pairs (seeds 100+), never on test pairs
    row("best", "beyond", "best.ipynb", "deeper shared digit net trained on the digit labels alone (augmented, one-cycle SGD), comparison computed from the two digit distributions", model="deep_weight_sharing", digit_width=32, digit_hidden=128, dropout=0.0, comparison="computed", weighting="digits", label_smoothing=0.1, lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="onecycle", batch_size=25, augment_shift=1.5, augment_rotation=10.0, augment_scale=0.1),
    row("same-budget", "beyond", "same_budget.ipynb", "the report's training budget kept (plain SGD 0.1, batch 100, 25 epochs, no augmentation, <= 80,000 parameters): a narrower deeper digit net (24 and 48 channels, dense 64), dropout 0.25, comparison computed from the two digit distributions, eq. (1)", model="deep_weight_sharing", digit_width=24, digit_hidden=64, dropout=0.25, comparison="computed", weighting="eq1"),
    row("same-compute", "beyond", "same_budget.ipynb", "the report's whole budget kept (plain SGD 0.1, batch 100, 25 epochs, no augmentation, at most ws-aux's parameters and training FLOPs): the report's digit network with a dense layer of 128, comparison computed from the two digit distributions, digit losses alone", digit_width=32, digit_hidden=128, dropout=0.5, dropout_2d=0.3, batch_norm_outputs=True, comparison="computed", weighting="digits"),
]
FROZEN = Path(__file__).with_name("studies.jsonl").read_text().splitlines()  # the finished studies
CATALOGUE += [{**r, "group": tuple(r["group"]), "report": r.get("report") and tuple(r["report"])}
              for r in map(json.loads, FROZEN)]
CATALOGUE += [  # the same configurations on seeds that no choice has seen
    row("ws-holdout", "holdout", WS, "weight sharing with batch norm and dropout; seeds that no choice has seen", REPORT["ws"], HOLDOUT_SEEDS, "ws", weighting="none"),
    row("ws-aux-holdout", "holdout", AUX, "weight sharing + auxiliary loss, eq. (1): L_cmp + L_A + L_B; seeds that no choice has seen", REPORT["ws-aux"], HOLDOUT_SEEDS, "ws-aux", weighting="eq1"),
    row("same-budget-holdout", "holdout", "same_budget.ipynb", "the report's training budget kept, same-budget's network; seeds that no choice has seen", None, HOLDOUT_SEEDS, "same-budget", model="deep_weight_sharing", digit_width=24, digit_hidden=64, dropout=0.25, comparison="computed", weighting="eq1"),
    row("same-compute-holdout", "holdout", "same_budget.ipynb", "the report's whole budget kept, same-compute's network; seeds that no choice has seen", None, HOLDOUT_SEEDS, "same-compute", digit_width=32, digit_hidden=128, dropout=0.5, dropout_2d=0.3, batch_norm_outputs=True, comparison="computed", weighting="digits"),
]
EXPERIMENTS = {entry["name"]: entry for entry in CATALOGUE}
REPORT_EXPERIMENTS = [name for name in REPORT if name in EXPERIMENTS]
GROUPS = sorted({group for entry in CATALOGUE for group in entry["group"]})
# alpha -> the row of the sweep: weighting none is alpha 0, eq. (1) alpha 1
SWEEP = dict(sorted(({"none": 0, "eq1": 1}.get(entry["params"]["weighting"], entry["params"].get(
    "alpha")), entry["name"]) for entry in CATALOGUE if "sweep" in entry["group"]))
# The comparisons (before, after, what changes) the analysis tests, paired by seed, as one family
COMPARISONS = [
    ("baseline", "ws", "weight sharing with batch norm and dropout"),
    ("ws-plain", "ws", "batch norm and dropout, given weight sharing"),
    ("ws", "ws-aux", "the auxiliary loss, eq. (1)"),
    ("ws-aux-c0.5", "ws-aux", "alpha 0.5 -> 1 in eq. (2)"),
    ("ws-aux-c0.75", "ws-aux", "alpha 0.75 -> 1 in eq. (2)"),
    ("ws-aux-d0.25", "ws-aux", "eq. (3) decaying to 0.25 -> eq. (1)"),
    ("ws-aux-d0.75", "ws-aux", "eq. (3) decaying to 0.75 -> eq. (1)"),
    ("ws-aux-first", "ws-aux", "the readings the study took, given eq. (1)"),
    ("ws-aux", "same-budget", "another network under the report's training budget"),
    ("ws-aux", "same-compute", "another network at the report's whole budget, compute too"),
    ("ws-aux", "best", "this project's best model"),
]
# The rows the publication names: the report's three steps (the headline), eq. (1), the
# reference of the weightings and budgets, `best`, and the reference of its ablation.
HEADLINE, EQ1, BEST, BEST_VALIDATION = ("baseline", "ws", "ws-aux"), "ws-aux", "best", "best-val"
HEAD_STUDY = {BEST_VALIDATION: "computed P(a <= b)", "best-val-linear-head": "learned linear",
              "best-val-hidden-head": "learned, hidden layer"}
# The ablation of `best` (validation pairs): row -> the ingredient it removes.
ABLATION = {entry["name"]: entry["description"].removeprefix("best without ").removesuffix(
    ", on validation pairs") for entry in CATALOGUE if "ablation" in entry["group"]}

# The report's Table I in words (its values: the defaults), and same-budget's parameter cap
REPORT_BUDGET = {"optimizer": "optimiser", "lr": "learning rate", "momentum": "momentum",
                 "weight_decay": "weight decay", "schedule": "schedule", "batch_size": "batch size",
                 "epochs": "epochs", "n_pairs": "pairs", "augment_shift": "shifts",
                 "augment_rotation": "rotations", "augment_scale": "zoom"}
MAX_BUDGET_PARAMETERS = 80_000


def get(name):
    """The catalogue row called `name`."""
    if name not in EXPERIMENTS:
        tested = [e["name"] for e in CATALOGUE if e["params"].get("evaluate_on") != "validation"]
        raise UsageError(f"unknown experiment {name!r}: choose one of {', '.join(tested)}, a "
                         f"validation row (best-val*, val-*, budget-val-*) or a group "
                         f"({', '.join(GROUPS)}); python -m helpers list shows them all")
    return EXPERIMENTS[name]


def ordered(names):
    """`names` in catalogue order, then any others by name."""
    present = set(names)
    return [name for name in EXPERIMENTS if name in present] + sorted(present - set(EXPERIMENTS))


def expand(names):
    """Experiment names, group names and `all` -> catalogue names, in catalogue order of each.
    `all` is every row measured on the test pairs; rows on validation pairs run only when
    named (by row or group)."""
    if not names:
        raise UsageError("name the experiments to run, or all (python -m helpers list shows "
                         "them)")
    chosen = []
    for name in names:
        rows = [EXPERIMENTS[name]] if name in EXPERIMENTS else [
            entry for entry in CATALOGUE if name in entry["group"] or (
                name == "all" and entry["params"].get("evaluate_on") != "validation")]
        if not rows:
            get(name)  # raises the one-line UsageError
        chosen += [entry["name"] for entry in rows if entry["name"] not in chosen]
    return chosen


def resolve(experiment, **overrides):
    """The full, checked parameter dict of `experiment` with `overrides` (None: the row's value);
    UsageError (one line) for an unknown name, a bad value, or one this run would not read."""
    entry = get(experiment)
    overrides = {name: value for name, value in overrides.items() if value is not None}
    unknown = sorted(set(overrides) - set(vocabulary.PARAMETERS))
    if unknown:
        raise UsageError(f"unknown parameter {', '.join(map(repr, unknown))}: known ones are "
                         f"{', '.join(vocabulary.PARAMETERS)} (python -m helpers list)")
    if "experiment" in overrides and overrides["experiment"] != experiment:
        raise UsageError(f"experiment is {experiment!r} here: name the experiment once")
    given = [name for name in overrides if name not in ("experiment", "seed")]
    values = {**vocabulary.DEFAULTS, **entry["params"], **overrides, "experiment": experiment}
    return vocabulary.check(values, overrides=given)
