"""Every figure of the report, made from run records (and saved as PNG when a folder is given).

One run: `run_curves`. Over the rounds: `test_errors`, `learning_curves`. The analysis:
`sweep`, `digit_confusions`, `gallery`. Each figure that is tested has a `*_figure` builder
that returns it; the function of the same name without `_figure` shows it, and saves it when
a folder is given, silently: a notebook's outputs are the same whether it saves figures or not.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from ..catalogue import experiments
from .diagnosis import confusion_matrix, digit_arrays, misclassified_pairs
from .tables import history_frame, ordered_experiments

DPI = 100               # PNG pixels per inch: 8 inches wide is 800 px, the README's width
README_WIDTH = 8.0      # inches: test_errors.png is shown at its size in the README
MARKED_EPOCHS = 10      # curves of this many epochs or fewer show a marker at each epoch


def save_figure(figure, figures_dir, name):
    """Save `figure` as figures_dir/name (PNG) when a figures folder is given; prints nothing."""
    if figures_dir:
        path = Path(figures_dir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=DPI)


def _show(figure):
    import matplotlib.pyplot as plt

    plt.show()
    plt.close(figure)


def _marker(epochs):
    """A marker for curves with few points (one epoch: a line alone would be invisible)."""
    return "o" if len(epochs) <= MARKED_EPOCHS else None


def plot_order(names):
    """`names` in catalogue order, except the alpha sweep's own rows (eq. 2, constant alpha),
    which come together in alpha order where the first of them would be."""
    ordered = ordered_experiments(pd.DataFrame({"experiment": list(names)}))
    sweep = {name: alpha for alpha, name in experiments.SWEEP.items()
             if name.startswith("ws-aux-c")}
    swept = sorted((name for name in ordered if name in sweep), key=sweep.get)
    if not swept:
        return ordered
    first = min(ordered.index(name) for name in swept)
    others = [name for name in ordered if name not in sweep]
    before = sum(1 for name in ordered[:first] if name not in sweep)
    return others[:before] + swept + others[before:]


def run_curves_figure(record):
    """Loss terms (left) and train and test error (right) per epoch of one run."""
    import matplotlib.pyplot as plt

    history = record["history"]
    epochs = [row["epoch"] for row in history]
    marker = _marker(epochs)
    figure, (losses, errors) = plt.subplots(1, 2, figsize=(11, 3.8))
    labels = {"loss": "total (weighted)", "loss_comparison": "comparison",
              "loss_digit_first": "first digit", "loss_digit_second": "second digit"}
    for key, label in labels.items():
        if key in history[0]:
            losses.plot(epochs, [row[key] for row in history], label=label, marker=marker)
    losses.set(xlabel="epoch", ylabel="cross-entropy (mean over the epoch)", title="loss terms")
    losses.legend()
    n_train, n_test = record["n_train"], record["n_test"]
    errors.plot(epochs, [100 * row["train_errors_running"] / n_train for row in history],
                label="train (counted during the epoch)", marker=marker)
    errors.plot(epochs, [100 * row["test_errors"] / n_test for row in history],
                label="test (end of the epoch)", marker=marker)
    errors.set(xlabel="epoch", ylabel="error (%)", title="comparison error")
    errors.legend()
    from matplotlib.ticker import MaxNLocator

    for axis in (losses, errors):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(f"{record['experiment']}, seed {record['seed']}")
    figure.tight_layout()
    return figure


def run_curves(record):
    """Show `run_curves_figure(record)`."""
    _show(run_curves_figure(record))


def loss_weights(record):
    """The weights of L_cmp and of L_A + L_B at each epoch of one run (its weighting)."""
    import matplotlib.pyplot as plt

    history = record["history"]
    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(figsize=(6, 3))
    for key, label in (("weight_comparison", "weight of $L_{cmp}$"),
                       ("weight_digits", "weight of $L_A + L_B$")):
        axes.plot(epochs, [row[key] for row in history], label=label, marker=_marker(epochs))
    axes.set(xlabel="epoch", ylabel="weight",
             title=f"{record['params']['weighting']}, alpha = {record['params']['alpha']:g}")
    axes.legend()
    figure.tight_layout()
    _show(figure)


def test_errors_figure(found):
    """Test error of every round, one row per configuration (`plot_order`, top to bottom): a
    box plot, the rounds as points and the report's published mean as a red cross; sized to
    be read at the README's width. None when there are no records."""
    import matplotlib.pyplot as plt

    frame = found.frame
    if frame.empty:
        return None
    names = plot_order(frame["experiment"])
    values = [frame.loc[frame["experiment"] == name, "test_error_rate"].to_numpy() for name in names]
    positions = np.arange(1, len(names) + 1)
    figure, axes = plt.subplots(figsize=(README_WIDTH, 1.3 + 0.36 * len(names)))
    axes.boxplot(values, positions=positions, orientation="horizontal", showfliers=False,
                 widths=0.6)
    for position, points in zip(positions, values):
        # spread the points evenly across the box (deterministic, unlike random jitter)
        offsets = [0.0] if len(points) == 1 else np.linspace(-0.18, 0.18, len(points))
        axes.plot(points, position + np.asarray(offsets), "o", color="tab:blue", alpha=0.6,
                  markersize=4, label="one round" if position == 1 else None)
    published = [experiments.EXPERIMENTS[name]["report"][4]
                 if (experiments.EXPERIMENTS.get(name) or {}).get("report") else None
                 for name in names]
    marked = [(p, y) for y, p in zip(positions, published) if p is not None]
    if marked:
        axes.plot(*zip(*marked), "x", color="tab:red", markersize=9, markeredgewidth=2,
                  label="the report's mean")
    # below the axes, where it hides no row
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.45 / (0.36 * len(names) + 0.2)),
                ncol=2, frameon=False)
    axes.set_yticks(positions, names)
    axes.set_ylim(len(names) + 0.6, 0.4)  # the first configuration on top
    axes.grid(axis="x", alpha=0.3)
    axes.set(xlabel="test error (% of the held-out pairs)",
             title="Test error of each round (points), per configuration")
    figure.tight_layout()
    return figure


def _publish(figure, figures_dir, name):
    """Show `figure` (None: there was nothing to plot), saved as `name` in `figures_dir`."""
    if figure is None:
        print("no records to plot")
        return
    save_figure(figure, figures_dir, name)
    _show(figure)


def test_errors(found, figures_dir=None):
    """Show `test_errors_figure(found)`; saved as test_errors.png when figures_dir is set."""
    _publish(test_errors_figure(found), figures_dir, "test_errors.png")


def learning_curves_figure(found):
    """Train (counted during the epoch) and test error per epoch, mean and SD band over the
    rounds, one panel per configuration (`plot_order`); every panel at the bottom of its
    column has its epoch tick labels. None when there are no records."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    history = history_frame(found)
    if history.empty:
        return None
    names = plot_order(history["experiment"])
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.8 * rows),
                                sharex=True, sharey=True, squeeze=False)
    for axis, name in zip(axes.flat, names):
        curves = history[history["experiment"] == name].groupby("epoch")
        for column, label in (("train_pct", "train"), ("test_pct", "test")):
            mean, sd = curves[column].mean(), curves[column].std(ddof=1).fillna(0)
            axis.plot(mean.index, mean, label=label, marker=_marker(mean.index), markersize=4)
            axis.fill_between(mean.index, mean - sd, mean + sd, alpha=0.25)
        rounds = history.loc[history["experiment"] == name, "seed"].nunique()
        axis.set_title(f"{name} ({rounds} round{'s' if rounds != 1 else ''})", fontsize=10)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in axes.flat[len(names):]:
        axis.set_visible(False)
    for axis in axes[:, 0]:
        axis.set_ylabel("error (%)")
    for column in range(columns):
        # the lowest panel of each column: the last row, or the row above an empty panel
        bottom = axes[(len(names) - 1 - column) // columns, column]
        bottom.tick_params(axis="x", labelbottom=True)
        bottom.set_xlabel("epoch")
    axes.flat[0].legend()
    figure.suptitle("Comparison error per epoch: mean and SD band over the rounds")
    figure.tight_layout()
    return figure


def learning_curves(found, figures_dir=None):
    """Show `learning_curves_figure(found)`; saved as learning_curves.png when figures_dir
    is set."""
    _publish(learning_curves_figure(found), figures_dir, "learning_curves.png")


def sweep(table, figures_dir=None):
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
    _show(figure)


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


def digit_confusions(records, names=(experiments.EQ1, experiments.BEST), figures_dir=None,
                     data_root=None):
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
    _show(figure)
    return shown


def gallery(record, limit=12, figures_dir=None, data_root=None):
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
    _show(figure)
