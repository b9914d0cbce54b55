"""Every figure of the report, from run records: each `*_figure` returns its figure, `show`
shows one and saves it as PNG when a folder is given, silently (a notebook's outputs are the
same either way). Constrained layout: it never warns. pandas and `diagnosis` are imported by
the figures that use them: a run's kernel draws its curves with `subplots` and `show` alone
and starts faster without them (docs/speed.md)."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..catalogue import experiments

DPI = 100               # PNG pixels per inch: 8 inches wide is 800 px, the README's width
README_WIDTH = 8.0      # inches: test_errors.png is shown at its size in the README
MARKED_EPOCHS = 10      # curves of this many epochs or fewer show a marker at each epoch


def subplots(*args, **kwargs):
    return plt.subplots(*args, layout="constrained", **kwargs)


def show(figure, figures_dir=None, name=None):
    """Show `figure` (None: nothing to plot), saved as figures_dir/name when a folder is given."""
    if figure is None:
        return print("no records to plot")
    if figures_dir:
        Path(figures_dir).mkdir(parents=True, exist_ok=True)
        figure.savefig(Path(figures_dir) / name, dpi=DPI)
    plt.show()
    plt.close(figure)


def marker(epochs):  # few points: a marker each (one epoch: a line alone is invisible)
    return "o" if len(epochs) <= MARKED_EPOCHS else None


def plot_order(names):
    """`names` in catalogue order, the alpha sweep's rows (eq. 2) together in alpha order where
    the first of them would be, and each row `beside` another right after it."""
    names = experiments.ordered(names)
    alphas = {name: alpha for alpha, name in experiments.SWEEP.items()
              if name.startswith("ws-aux-c")}
    first = next((i for i, name in enumerate(names) if name in alphas), 0)
    names = sorted(names, key=lambda n: (first, alphas[n]) if n in alphas else (names.index(n), 0))
    beside = {n: (experiments.EXPERIMENTS.get(n) or {}).get("beside") for n in names}
    shown = [n for n in names if beside[n] not in names]
    for name in [n for n in names if n not in shown]:
        shown.insert(1 + max(i for i, n in enumerate(shown) if beside[name] in (n, beside[n])),
                     name)
    return shown


def test_errors_figure(found):
    """Test error of each round per configuration, the report's mean as a red cross (or None)."""
    frame = found.frame
    if frame.empty:
        return None
    names = plot_order(frame["experiment"])
    values = [frame.loc[frame["experiment"] == name, "test_error_rate"].to_numpy()
              for name in names]
    positions = np.arange(1, len(names) + 1)
    figure, axes = subplots(figsize=(README_WIDTH, 1.4 + 0.36 * len(names)))
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
    rounds, a panel per configuration (not for a row shown beside another). None without
    records."""
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    history = pd.DataFrame([
        {"experiment": r["experiment"], "seed": r["seed"], "epoch": step["epoch"],
         "train": 100 * step["train_errors_running"] / r["n_train"],
         "test": 100 * step["test_errors"] / r["n_test"]}
        for r in found.records for step in r["history"]
        if not (experiments.EXPERIMENTS.get(r["experiment"]) or {}).get("beside")])
    if history.empty:
        return None
    names = plot_order(history["experiment"])
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    figure, axes = subplots(rows, columns, sharey=True, figsize=(3.4 * columns, 2.8 * rows),
                            squeeze=False)
    for axis, name in zip(axes.flat, names):
        these = history[history["experiment"] == name]
        for column in ("train", "test"):
            curve = these.groupby("epoch")[column]
            mean, sd = curve.mean(), curve.std().fillna(0)
            axis.plot(mean.index, mean, label=column, marker=marker(mean.index), markersize=4)
            axis.fill_between(mean.index, mean - sd, mean + sd, alpha=0.25)
        rounds = these["seed"].nunique()
        axis.set_title(f"{name} ({rounds} round{'s' * (rounds != 1)})", fontsize=10)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
    for axis in axes.flat[len(names):]:
        axis.set_visible(False)
    for axis in axes[:, 0]:
        axis.set_ylabel("error (%)")
    axes.flat[0].legend()
    figure.suptitle("Error per epoch: mean, SD band")
    return figure


def sweep_figure(table):
    """The alpha sweep (`against_table` by alpha): mean test error and its 95% CI per alpha."""
    figure, axes = subplots(figsize=(7, 4))
    axes.fill_between(table["alpha"], table["mean_ci_low"], table["mean_ci_high"], alpha=0.25,
                      label="95% CI of the mean")
    axes.plot(table["alpha"], table["error_pct"], "o-", label="mean over the rounds")
    axes.set_xscale("symlog", linthresh=0.1)  # alpha 0 on the axis, 0.1 .. 8 spread
    axes.set_xticks(table["alpha"], [f"{a:g}" for a in table["alpha"]])
    axes.set(xlabel="alpha in eq. (2)", ylabel="test error (%)", title="The alpha sweep")
    axes.legend()
    return figure


def confusions_figure(records, names, data_root=None):
    """The digit confusion of each of `names`, on a log scale (the diagonal dwarfs the rest)."""
    from matplotlib.colors import LogNorm

    from .diagnosis import confusion_matrix, truth_of

    figure, axes = subplots(1, len(names), figsize=(5.5 * len(names), 5), squeeze=False)
    for axis, name in zip(axes[0], names):
        runs = [r for r in records if r["experiment"] == name]
        values = confusion_matrix(np.concatenate([truth_of(r, data_root)[2] for r in runs]),
                                  np.concatenate([r["test_digit_predictions"] for r in runs]))
        values = values.to_numpy()
        axis.imshow(np.where(values > 0, values, np.nan), cmap="Blues",
                    norm=LogNorm(vmin=1, vmax=max(values.max(), 2)))
        for (i, j), count in np.ndenumerate(values):
            if count:
                axis.text(j, i, str(count), ha="center", va="center", fontsize=7,
                          color="white" if i == j else "black")
        wrong = 100 * (1 - values.trace() / values.sum())
        axis.set(xticks=range(10), yticks=range(10), xlabel="predicted digit",
                 ylabel="true digit", title=f"{name}, {len(runs)} rounds: {wrong:.2f}% wrong")
    return figure


def gallery_figure(records, name, limit=12, data_root=None):
    """The first test pairs the first round of `name` answered wrong (None when there is none)."""
    from .diagnosis import truth_of

    record = min((r for r in records if r["experiment"] == name), key=lambda r: r["seed"])
    inputs, target, classes = truth_of(record, data_root)
    seen = np.asarray(record["test_digit_predictions"])
    wrong = np.flatnonzero(np.asarray(record["test_predictions"]) != target)[:limit]
    if not len(wrong):
        return None
    rows = -(-len(wrong) // 6)
    figure, axes = subplots(rows, 6, figsize=(12, 1.4 * rows + 0.4), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, i in zip(axes.flat, wrong):
        axis.imshow(np.concatenate(inputs[i], axis=1), cmap="gray_r")
        axis.set_title(f"true {classes[i][0]}{'<=' if target[i] else '>'}{classes[i][1]}, "
                       f"seen {seen[i][0]},{seen[i][1]}", fontsize=8)
    figure.suptitle(f"{record['experiment']}, seed {record['seed']}: misclassified")
    return figure
