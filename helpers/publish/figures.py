"""Every figure of the report, made from run records (and saved as PNG when a folder is given).

One run: `run_curves`. Over the rounds: `test_errors`, `learning_curves`. The analysis:
`sweep`, `digit_confusions`, `gallery`.
"""

from pathlib import Path

import numpy as np

from ..catalogue import experiments
from .diagnosis import confusion_matrix, digit_arrays, misclassified_pairs
from .tables import history_frame, ordered_experiments


def save_figure(figure, figures_dir, name):
    """Save `figure` as figures_dir/name (PNG) when a figures folder is given."""
    if figures_dir:
        path = Path(figures_dir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
        print(f"saved {path}")


def run_curves(record):
    """Loss terms (left) and train and test error (right) per epoch of one run."""
    import matplotlib.pyplot as plt

    history = record["history"]
    epochs = [row["epoch"] for row in history]
    figure, (losses, errors) = plt.subplots(1, 2, figsize=(11, 3.8))
    labels = {"loss": "total (weighted)", "loss_comparison": "comparison",
              "loss_digit_first": "first digit", "loss_digit_second": "second digit"}
    for key, label in labels.items():
        if key in history[0]:
            losses.plot(epochs, [row[key] for row in history], label=label)
    losses.set(xlabel="epoch", ylabel="cross-entropy (mean over the epoch)", title="loss terms")
    losses.legend()
    n_train, n_test = record["n_train"], record["n_test"]
    errors.plot(epochs, [100 * row["train_errors_running"] / n_train for row in history],
                label="train (counted during the epoch)")
    errors.plot(epochs, [100 * row["test_errors"] / n_test for row in history],
                label="test (end of the epoch)")
    errors.set(xlabel="epoch", ylabel="error (%)", title="comparison error")
    errors.legend()
    figure.suptitle(f"{record['experiment']}, seed {record['seed']}")
    figure.tight_layout()
    plt.show()


def test_errors(found, figures_dir=None):
    """Test error of every round, per configuration: box plot, the rounds as points, and the
    report's published mean as a red cross. Saved as test_errors.png when figures_dir is set."""
    import matplotlib.pyplot as plt

    frame = found.frame
    if frame.empty:
        print("no records to plot")
        return
    names = ordered_experiments(frame)
    values = [frame.loc[frame["experiment"] == name, "test_error_rate"].to_numpy() for name in names]
    figure, axes = plt.subplots(figsize=(max(6, 1.2 * len(names)), 4))
    axes.boxplot(values, showfliers=False)
    axes.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
    for position, points in enumerate(values, start=1):
        # spread the points evenly across the box (deterministic, unlike random jitter)
        offsets = [0.0] if len(points) == 1 else [-0.15 + 0.3 * i / (len(points) - 1)
                                                  for i in range(len(points))]
        axes.plot([position + o for o in offsets], points, "o", color="tab:blue", alpha=0.6,
                  markersize=4)
    published = [experiments.EXPERIMENTS[name]["report"][4]
                 if experiments.EXPERIMENTS.get(name, {}).get("report") else None for name in names]
    marked = [(i, p) for i, p in enumerate(published, start=1) if p is not None]
    if marked:
        axes.plot(*zip(*marked), "x", color="tab:red", markersize=9, label="report's mean")
        axes.legend()
    axes.set(ylabel="test error (%)", title="Test error of each round (points) per configuration")
    figure.tight_layout()
    save_figure(figure, figures_dir, "test_errors.png")
    plt.show()


def learning_curves(found, figures_dir=None):
    """Train (counted during the epoch) and test error per epoch, mean and SD band over the
    rounds, one panel per configuration. Saved as learning_curves.png when figures_dir is set."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    history = history_frame(found)
    if history.empty:
        print("no records to plot")
        return
    names = ordered_experiments(history)
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.8 * rows),
                                sharex=True, sharey=True, squeeze=False)
    for axis, name in zip(axes.flat, names):
        curves = history[history["experiment"] == name].groupby("epoch")
        for column, label in (("train_pct", "train"), ("test_pct", "test")):
            mean, sd = curves[column].mean(), curves[column].std(ddof=1).fillna(0)
            axis.plot(mean.index, mean, label=label)
            axis.fill_between(mean.index, mean - sd, mean + sd, alpha=0.25)
        rounds = history.loc[history["experiment"] == name, "seed"].nunique()
        axis.set_title(f"{name} ({rounds} round{'s' if rounds != 1 else ''})", fontsize=10)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in axes.flat[len(names):]:
        axis.set_visible(False)
    for axis in axes[:, 0]:
        axis.set_ylabel("error (%)")
    for axis in axes[-1, :]:
        axis.set_xlabel("epoch")
    axes.flat[0].legend()
    figure.suptitle("Comparison error per epoch: mean and SD band over the rounds")
    figure.tight_layout()
    save_figure(figure, figures_dir, "learning_curves.png")
    plt.show()


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
    plt.show()


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


def digit_confusions(records, names=("ws-aux", "best"), figures_dir=None, data_root=None):
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
    plt.show()
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
    plt.show()
