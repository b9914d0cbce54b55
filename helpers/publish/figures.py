"""Every figure of the report, made from run records: each `*_figure` returns its figure, and
`show` shows one, saved as PNG when a folder is given, silently (a notebook's outputs are the
same whether it saves figures or not). Constrained layout: it never warns."""

from pathlib import Path

import numpy as np
import pandas as pd

from ..catalogue import experiments
from .diagnosis import confusion_matrix, digit_arrays, misclassified_pairs
from .tables import ordered

DPI = 100               # PNG pixels per inch: 8 inches wide is 800 px, the README's width
README_WIDTH = 8.0      # inches: test_errors.png is shown at its size in the README
MARKED_EPOCHS = 10      # curves of this many epochs or fewer show a marker at each epoch


def _figure(*args, **kwargs):
    import matplotlib.pyplot as plt

    return plt.subplots(*args, layout="constrained", **kwargs)


def show(figure, figures_dir=None, name=None):
    """Show `figure` (None: nothing to plot), saved as figures_dir/name when a folder is given."""
    import matplotlib.pyplot as plt

    if figure is None:
        return print("no records to plot")
    if figures_dir:
        Path(figures_dir).mkdir(parents=True, exist_ok=True)
        figure.savefig(Path(figures_dir) / name, dpi=DPI)
    plt.show()
    plt.close(figure)


def _marker(epochs):
    """A marker for curves with few points (one epoch: a line alone would be invisible)."""
    return "o" if len(epochs) <= MARKED_EPOCHS else None


def plot_order(names):
    """`names` in catalogue order, the alpha sweep's rows (eq. 2) together in alpha order where
    the first of them would be."""
    names = ordered(names)
    alphas = {name: alpha for alpha, name in experiments.SWEEP.items() if name.startswith("ws-aux-c")}
    swept = sorted((name for name in names if name in alphas), key=alphas.get)
    if not swept:
        return names
    first = min(names.index(name) for name in swept)
    others = [name for name in names if name not in alphas]
    before = sum(1 for name in names[:first] if name not in alphas)
    return others[:before] + swept + others[before:]


def run_curves_figure(record):
    """Loss terms (left) and train and test error (right) per epoch of one run."""
    from matplotlib.ticker import MaxNLocator

    history = record["history"]
    epochs = [row["epoch"] for row in history]
    figure, (losses, errors) = _figure(1, 2, figsize=(11, 3.8))
    for key, label in (("loss", "total (weighted)"), ("loss_comparison", "comparison"),
                       ("loss_digit_first", "first digit"), ("loss_digit_second", "second digit")):
        if key in history[0]:
            losses.plot(epochs, [row[key] for row in history], label=label, marker=_marker(epochs))
    for key, n, label in (("train_errors_running", "n_train", "train (counted during the epoch)"),
                          ("test_errors", "n_test", "test (end of the epoch)")):
        errors.plot(epochs, [100 * row[key] / record[n] for row in history], label=label,
                    marker=_marker(epochs))
    losses.set(xlabel="epoch", ylabel="cross-entropy (epoch mean)", title="loss terms")
    errors.set(xlabel="epoch", ylabel="error (%)", title="comparison error")
    for axis in (losses, errors):
        axis.legend()
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(f"{record['experiment']}, seed {record['seed']}")
    return figure


def run_curves(record):
    show(run_curves_figure(record))


def loss_weights(record):
    """Show the weights of L_cmp and of L_A + L_B at each epoch of one run."""
    epochs = [row["epoch"] for row in record["history"]]
    figure, axes = _figure(figsize=(6, 3))
    for key, label in (("weight_comparison", "weight of $L_{cmp}$"),
                       ("weight_digits", "weight of $L_A + L_B$")):
        axes.plot(epochs, [row[key] for row in record["history"]], label=label,
                  marker=_marker(epochs))
    axes.set(xlabel="epoch", ylabel="weight",
             title=f"{record['params']['weighting']}, alpha = {record['params']['alpha']:g}")
    axes.legend()
    show(figure)


def test_errors_figure(found):
    """Test error of every round, one row per configuration (`plot_order`, top to bottom): a
    box, the rounds as points and the report's mean as a red cross. None without records."""
    frame = found.frame
    if frame.empty:
        return None
    names = plot_order(frame["experiment"])
    values = [frame.loc[frame["experiment"] == name, "test_error_rate"].to_numpy() for name in names]
    positions = np.arange(1, len(names) + 1)
    figure, axes = _figure(figsize=(README_WIDTH, 1.4 + 0.36 * len(names)))
    axes.boxplot(values, positions=positions, orientation="horizontal", showfliers=False,
                 widths=0.6)
    for position, points in zip(positions, values):  # spread evenly: no random jitter
        offsets = np.linspace(-0.18, 0.18, len(points)) if len(points) > 1 else [0.0]
        axes.plot(points, position + np.asarray(offsets), "o", color="tab:blue", alpha=0.6,
                  markersize=4, label="one round" if position == 1 else None)
    marked = [(experiments.EXPERIMENTS[name]["report"][4], y) for y, name in zip(positions, names)
              if (experiments.EXPERIMENTS.get(name) or {}).get("report")]
    if marked:
        axes.plot(*zip(*marked), "x", color="tab:red", markersize=9, markeredgewidth=2,
                  label="the report's mean")
    figure.legend(loc="outside lower center", ncol=2, frameon=False)
    axes.set_yticks(positions, names)
    axes.set_ylim(len(names) + 0.6, 0.4)  # the first configuration on top
    axes.grid(axis="x", alpha=0.3)
    axes.set(xlabel="test error (%)", title="Test error of each round")
    return figure


def learning_curves_figure(found):
    """Train (counted during the epoch) and test error per epoch, mean and SD band over the
    rounds, one panel per configuration; the lowest panel of each column has its epoch ticks.
    None without records."""
    from matplotlib.ticker import MaxNLocator

    history = pd.DataFrame([
        {"experiment": r["experiment"], "seed": r["seed"], "epoch": step["epoch"],
         "train": 100 * step["train_errors_running"] / r["n_train"],
         "test": 100 * step["test_errors"] / r["n_test"]}
        for r in found.records for step in r["history"]])
    if history.empty:
        return None
    names = plot_order(history["experiment"])
    columns = min(4, len(names))
    figure, axes = _figure(-(-len(names) // columns), columns, sharex=True, sharey=True,
                           figsize=(3.4 * columns, 2.8 * -(-len(names) // columns)), squeeze=False)
    for axis, name in zip(axes.flat, names):
        these = history[history["experiment"] == name]
        for column in ("train", "test"):
            curve = these.groupby("epoch")[column]
            mean, sd = curve.mean(), curve.std().fillna(0)
            axis.plot(mean.index, mean, label=column, marker=_marker(mean.index), markersize=4)
            axis.fill_between(mean.index, mean - sd, mean + sd, alpha=0.25)
        rounds = these["seed"].nunique()
        axis.set_title(f"{name} ({rounds} round{'s' * (rounds != 1)})", fontsize=10)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in axes.flat[len(names):]:
        axis.set_visible(False)
    for axis in axes[:, 0]:
        axis.set_ylabel("error (%)")
    for column in range(columns):
        bottom = axes[(len(names) - 1 - column) // columns, column]
        bottom.tick_params(axis="x", labelbottom=True)
        bottom.set_xlabel("epoch")
    axes.flat[0].legend()
    figure.suptitle("Comparison error per epoch (mean, SD band)")
    return figure


def sweep_figure(table):
    """The alpha sweep (stats.sweep_table): mean test error and its 95% interval per alpha."""
    figure, axes = _figure(figsize=(7, 4))
    axes.fill_between(table["alpha"], table["mean_ci_low"], table["mean_ci_high"], alpha=0.25,
                      label="95% CI of the mean")
    axes.plot(table["alpha"], table["error_pct"], "o-", label="mean over the rounds")
    axes.set_xscale("symlog", linthresh=0.1)  # alpha 0 on the axis, 0.1 .. 8 spread
    axes.set_xticks(table["alpha"], [f"{a:g}" for a in table["alpha"]])
    axes.set(xlabel="alpha in eq. (2)", ylabel="test error (%)", title="The alpha sweep")
    axes.legend()
    return figure


def confusions_figure(records, names, data_root=None):
    """The digit confusion over all rounds of each of `names`, side by side, on a log colour
    scale (the diagonal dwarfs the mistakes otherwise)."""
    from matplotlib.colors import LogNorm

    figure, axes = _figure(1, len(names), figsize=(5.5 * len(names), 5), squeeze=False)
    for axis, name in zip(axes[0], names):
        runs = [r for r in records if r["experiment"] == name]
        values = confusion_matrix(*digit_arrays(runs, data_root)).to_numpy()
        axis.imshow(np.where(values > 0, values, np.nan), cmap="Blues",
                    norm=LogNorm(vmin=1, vmax=max(values.max(), 2)))
        for (i, j), count in np.ndenumerate(values):
            if count:
                axis.text(j, i, str(count), ha="center", va="center", fontsize=7,
                          color="white" if i == j else "black")
        axis.set(xticks=range(10), yticks=range(10), xlabel="predicted digit",
                 ylabel="true digit", title=f"{name}, {len(runs)} rounds: "
                                            f"{100 * (1 - values.trace() / values.sum()):.2f}% wrong")
    return figure


def gallery_figure(record, limit=12, data_root=None):
    """The first `limit` test pairs `record` answered wrong, with their true digits and those
    the network saw (None when there is none)."""
    pairs = misclassified_pairs(record, limit, data_root)
    if not pairs:
        return None
    rows = -(-len(pairs) // 6)
    figure, axes = _figure(rows, 6, figsize=(12, 1.4 * rows + 0.4), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (images, true, seen, target) in zip(axes.flat, pairs):
        axis.imshow(np.concatenate(images, axis=1), cmap="gray_r")
        axis.set_title(f"true {true[0]}{'<=' if target else '>'}{true[1]}, "
                       f"seen {seen[0]},{seen[1]}", fontsize=8)
    figure.suptitle(f"{record['experiment']}, seed {record['seed']}: misclassified")
    return figure
