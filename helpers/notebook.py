"""What the architecture notebooks call: reading their `parameters` cell, showing the network,
its run's curves and final errors, saving its record (the report's figures are in
`publish.figures`).

Papermill injects the parameters it is given as a cell of assignments after the notebook's
`parameters` cell, and only warns about a name that cell does not define. `parameters()`
is the check that papermill lacks: it reads the notebook's globals, rejects a name papermill
injected that it does not know or an experiment of another notebook, and returns the full
parameter dict, resolved and checked by the catalogue (`catalogue.resolve`, as for the runner).

Importing this module inside IPython makes a `UsageError` print as one line (its message)
instead of a traceback: the mistake is the user's, the fix is in the message.
"""

import ast
import os
import types

from .catalogue import experiments
from .catalogue.parameters import DEFAULTS, PARAMETERS
from .errors import UsageError, diverged_at
from .files import check_writable, lock_folder, relative
from .runs import records
from .science.models import build_model, count_parameters

# Names a notebook's parameters cell may set besides the run parameters.
NOTEBOOK_PARAMETERS = ("results_dir", "replace")
# Names the notebooks bind themselves after the parameters cell: re-running the cells
# interactively must not make them look like injected parameters.
NOTEBOOK_RESULTS = ("params", "record")
# IPython's own globals (history, display hook, shell helpers).
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}
# What papermill can inject: JSON-like values. Modules, functions, classes, networks,
# tensors and figures are never parameters.
_PARAMETER_TYPES = (bool, int, float, str, list, dict, tuple)


def _injected_names(namespace):
    """The names of `namespace` that could be parameters (not IPython's, private or code)."""
    names = set()
    for name, value in namespace.items():
        # None means "not given": a parameters cell may list a name this version lacks
        if value is None or name.startswith("_") or name in _IPYTHON_NAMES:
            continue
        if isinstance(value, (types.ModuleType, types.FunctionType, type)):
            continue
        if isinstance(value, _PARAMETER_TYPES):
            names.add(name)
    return names


def _papermill_names(history):
    """The names papermill's injected cell (its last one, '# Parameters') assigned: in an IPython
    kernel's history `In`. None where papermill injected nothing (a notebook run by hand)."""
    injected = [cell for cell in history if cell.startswith("# Parameters\n")]
    if not injected:
        return None
    return {target.id for node in ast.parse(injected[-1]).body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def check_names(namespace, known, ignore=()):
    """Raise UsageError if `namespace` holds a parameter-like name outside `known`: in a kernel
    (which keeps its history, `In`), only the names papermill injected count, so that a
    scratch variable typed in an interactive kernel is no parameter."""
    names = _injected_names(namespace)
    if isinstance(namespace.get("In"), list):
        names &= _papermill_names(namespace["In"]) or set()
    unknown = sorted(names - set(known) - set(ignore))
    if unknown:
        raise UsageError(f"unknown parameter {', '.join(map(repr, unknown))}: "
                         f"this notebook knows {', '.join(sorted(known))}")


def parameters(namespace, notebook):
    """The checked run parameters of an architecture notebook, from its `globals()`.

    A parameter left at None takes the catalogue's value for the experiment (the report's
    protocol). Raises UsageError, before anything is trained, for an unknown name, a value
    of the wrong type or out of range, or an experiment that another notebook runs.
    """
    known = set(PARAMETERS) | set(NOTEBOOK_PARAMETERS)
    check_names(namespace, known, ignore=NOTEBOOK_RESULTS)
    experiment = namespace.get("experiment")
    row = experiments.get(experiment)
    if row["notebook"] != notebook:
        mine = [r["name"] for r in experiments.CATALOGUE if r["notebook"] == notebook]
        shown = [name for name in mine if not name.startswith("val-")]
        others = f" (or one of its {len(mine) - len(shown)} val-* rows)" if len(shown) < len(mine) \
            else ""
        raise UsageError(f"experiment {experiment!r} runs in notebooks/{row['notebook']}, "
                         f"not {notebook}: choose one of {', '.join(shown)} here{others}")
    results_dir, replace = namespace.get("results_dir"), namespace.get("replace", False)
    if results_dir is not None and (not isinstance(results_dir, str) or not results_dir.strip()):
        raise UsageError(f"results_dir must be None (write nothing) or a folder's name, got "
                         f"{results_dir!r}")
    if not isinstance(replace, bool):
        raise UsageError(f"replace must be True or False, got {replace!r}")
    overrides = {name: namespace[name] for name in PARAMETERS
                 if name != "experiment" and namespace.get(name) is not None}
    params = experiments.resolve(experiment, **overrides)
    if results_dir is not None:  # what save() refuses, refused before anything trains
        check_writable(results_dir, "results", "results_dir")
        records.check_own_run(params, results_dir, "set results_dir to another folder")
    return params


def print_parameters(params):
    """The experiment, its round, and the parameters changed from its catalogue row.

    (The full parameter dict is in the run record; printing only the changes keeps the
    committed notebooks' outputs stable when a parameter is added to the vocabulary.)
    """
    row = experiments.get(params["experiment"])
    catalogue_values = {**DEFAULTS, **row["params"], "experiment": row["name"],
                        "seed": params["seed"]}
    changed = [f"{name}={value}" for name, value in params.items()
               if value != catalogue_values[name]]
    print(f"{row['name']} ({row['description']}), seed {params['seed']}")
    print("its catalogue row sets:", ", ".join(f"{k}={v}" for k, v in row["params"].items()))
    print("changed here:", ", ".join(changed) or f"nothing (the catalogue's {row['name']})")


def run_code(params):
    """The code a run with `params` executes, chosen from them, by part: the network (its class,
    and for a weight-sharing one the digit network and the comparison head), the loss (the
    weighting's function and the loss of a step) and the training (the loop and its step)."""
    from .science import losses, models, training

    model = build_model(params)
    network = [cls for cls in type(model).__mro__ if cls.__module__ == models.__name__]
    if hasattr(model, "digit_net"):
        network += [type(model.digit_net), type(model.comparison_head)]
    return {"network": network,
            "loss": [losses.WEIGHTINGS[params["weighting"]].weights, losses.loss_terms],
            "training": [training.train]}


def show_code(params, part):
    """Show `part` ("network", "loss" or "training") of `run_code(params)` as the package holds
    it: the notebook explains the code its run executes without a copy of it. A weighting is
    shown with its formula."""
    import inspect

    from IPython.display import Code, Markdown, display

    from .science.losses import WEIGHTINGS

    weighting = WEIGHTINGS[params["weighting"]]
    for item in run_code(params)[part]:
        if item is weighting.weights:
            display(Markdown(f"`weighting = {params['weighting']}`: $${weighting.formula}$$"))
        display(Code(inspect.getsource(item), language="python"))


def show_network(params):
    """Print the network these parameters build and its number of trainable parameters."""
    model = build_model(params)
    print(model)
    print(f"{count_parameters(model):,} trainable parameters")


# What a training spends that counts as kept when it is no more than the reference's.
AT_MOST = ("optimiser steps", "trainable parameters", "GFLOP per training")


def training_cost(params):
    """What one training with `params` spends: the terms of the report's Table I, its optimiser
    steps, trainable parameters and training GFLOP (science.training.training_budget)."""
    from .science.training import training_budget

    budget = training_budget(params)
    return {**{words: params[name] for name, words in experiments.REPORT_BUDGET.items()},
            "optimiser steps": budget["steps"],
            "trainable parameters": count_parameters(build_model(params)),
            "GFLOP per training": round(budget["training_flops"] / 1e9, 1)}


def run_curves(record):
    """Show the loss terms (left) and the train and test error (right) per epoch of one run
    (of a diverged one, the epochs before)."""
    from matplotlib.ticker import MaxNLocator

    from .publish.figures import marker, show, subplots

    history = record["history"]
    if not history:  # (a training that diverged in its first epoch)
        return print(f"no epoch to show: {diverged_at(record['diverged'])}")
    epochs = [row["epoch"] for row in history]
    figure, (losses, errors) = subplots(1, 2, figsize=(11, 3.8))
    for key, label in (("loss", "total (weighted)"), ("loss_comparison", "comparison"),
                       ("loss_digit_first", "first digit"), ("loss_digit_second", "second digit")):
        if key in history[0]:
            losses.plot(epochs, [row[key] for row in history], label=label, marker=marker(epochs))
    for key, n, label in (("train_errors_running", "n_train", "train (counted during the epoch)"),
                          ("test_errors", "n_test", "test (end of the epoch)")):
        errors.plot(epochs, [100 * row[key] / record[n] for row in history], label=label,
                    marker=marker(epochs))
    losses.set(xlabel="epoch", ylabel="cross-entropy (epoch mean)", title="loss terms")
    errors.set(xlabel="epoch", ylabel="error (%)", title="comparison error")
    for axis in (losses, errors):
        axis.legend()
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    figure.suptitle(f"{record['experiment']}, seed {record['seed']}" + (
        f": {diverged_at(record['diverged'])}" if "diverged" in record else ""))
    show(figure)


def loss_weights(record):
    """Show the weights of L_cmp and of L_A + L_B at each epoch of one run."""
    from matplotlib.ticker import MaxNLocator

    from .publish.figures import marker, show, subplots
    from .science.losses import WEIGHTINGS

    epochs = [row["epoch"] for row in record["history"]]
    if not epochs:
        return print(f"no epoch to show: {diverged_at(record['diverged'])}")
    figure, axes = subplots(figsize=(6, 3))
    weights = {key: [row[key] for row in record["history"]]
               for key in ("weight_comparison", "weight_digits")}
    for (key, label), style in zip((("weight_comparison", "weight of $L_{cmp}$"),
                                    ("weight_digits", "weight of $L_A + L_B$")), ("-", "--")):
        axes.plot(epochs, weights[key], style, label=label, marker=marker(epochs), linewidth=2)
    top = max(max(values) for values in weights.values())  # from 0: equal weights read as such
    axes.set_ylim(0, 1.1 * top if top > 0 else 1)
    params = record["params"]
    alpha = f", alpha = {params['alpha']:g}" if WEIGHTINGS[params["weighting"]].uses_alpha else ""
    axes.set(xlabel="epoch", ylabel="weight", title=f"weighting {params['weighting']}{alpha}" + (
        f", diverged at epoch {record['diverged']['epoch']}" if "diverged" in record else ""))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axes.legend()
    show(figure)


def print_final_errors(record):
    """The run's final error rates and counts (the numbers the report's tables average)."""
    if "diverged" in record:
        return print(f"{record['experiment']}, seed {record['seed']}: "
                     f"{diverged_at(record['diverged'])}; no final errors (recorded as diverged: "
                     f"a lower lr may train)")
    print(f"{record['experiment']}, seed {record['seed']}, {record['params']['epochs']} epochs:")
    for split in ("train", "test"):
        errors, total = record[f"{split}_errors"], record[f"n_{split}"]
        print(f"  {split} error {record[f'{split}_error_rate']:5.2f}% ({errors} of {total} pairs)")


def save(record, results_dir, replace=False):
    """Write `record` under `results_dir` (nothing when it is None) and print where. Returns
    None: a notebook cell ending with this call shows only the printed line.

    Refused in one line (UsageError): a record the folder does not admit (the project's
    results/ and validation/ take only the catalogue's own runs: `records.check_own_run`);
    a folder a runner is writing (its lock is held); a valid record at that place made with
    other parameters, unless `replace` is true: a notebook never silently replaces a result.
    """
    if results_dir is None:
        return
    fix = "set results_dir to another folder"
    records.check_own_run(record["params"], results_dir, fix)
    lock = lock_folder(results_dir, fix, patience=2)  # runs saving at once into runs/
    try:
        path = records.record_path(results_dir, record["experiment"], record["seed"])
        before, why = records.identity(path), ""
        try:
            differ = [] if replace is True else records.parameter_differences(
                records.read_record(path)["params"], record["params"])
            why = differ and f"was made with other parameters ({'; '.join(differ[:3])})"
        except records.KeptRecord as kept:  # (a newer version's, one this user cannot read)
            why = not replace and str(kept)
        except records.DamagedRecord:  # none there, or nothing to keep
            pass
        if why:
            raise UsageError(f"{relative(path)} {why}: {fix}, or set replace = True to "
                             f"replace it")
        print("record written to", records.publish(record, results_dir, lock, before, fix))
    finally:
        os.close(lock)


def _one_line_usage_error(shell, etype, value, tb, tb_offset=None):
    line = [f"{etype.__name__}: {value}"]
    shell._showtraceback(etype, value, line)  # publishes the error output, as showtraceback does
    return line


def _install_one_line_errors():
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: nothing to install
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((UsageError,), _one_line_usage_error)


_install_one_line_errors()
