"""`best` and what it added: the deeper digit network, the comparison heads, the optimiser and
schedule options, augmentation, and the validation pairs used to choose it."""

import pytest
import torch
from torch import nn

import helpers
import helpers.science.data
from helpers import UsageError, resolve
from helpers.science.data import generate_pair_sets, generate_validation_sets
from helpers.science.losses import loss_weights
from helpers.science.models import (
    ComputedComparison,
    DeepDigitNet,
    LinearComparison,
    WeightSharingNet,
    build_model,
    count_parameters,
)
from helpers.science.training import random_affine


def one_hot_logits(digits):
    """Logits whose softmax is (numerically) one-hot on `digits`."""
    return torch.nn.functional.one_hot(torch.tensor(digits), 10).float() * 50


def test_computed_comparison_on_sure_digits_is_the_true_comparison():
    firsts, seconds = [0, 3, 5, 9, 4], [0, 3, 2, 8, 9]
    logits = torch.stack((one_hot_logits(firsts), one_hot_logits(seconds)), 1)
    answer = ComputedComparison()(logits).argmax(1)
    assert answer.tolist() == [int(a <= b) for a, b in zip(firsts, seconds)]


def test_computed_comparison_probability():
    # two uniform digits: P(first <= second) = 55 / 100
    uniform = torch.zeros(1, 2, 10)
    assert ComputedComparison()(uniform).exp()[0, 1].item() == pytest.approx(0.55, abs=1e-6)
    # first is 3 or 7 with 1/2 each, second is surely 5: P(<=) = 1/2 (3 <= 5, not 7)
    first = torch.full((10,), -1e4)
    first[[3, 7]] = 0.0
    logits = torch.stack((first, one_hot_logits([5])[0]))[None]
    probabilities = ComputedComparison()(logits).exp()[0]
    assert probabilities.tolist() == pytest.approx([0.5, 0.5], abs=1e-5)
    assert list(ComputedComparison().parameters()) == []


def test_linear_head_is_the_reports_layer_bit_for_bit():
    # the report's networks must keep their numbers: same initialisation, same outputs
    torch.manual_seed(3)
    head = LinearComparison()
    torch.manual_seed(3)
    linear = nn.Linear(20, 2)
    digits = torch.randn(5, 2, 10)
    assert torch.equal(head.weight, linear.weight)
    assert torch.equal(head(digits), linear(digits.view(5, 20)))


def test_best_network_size_and_outputs():
    params = resolve("best")
    model = build_model(params)
    assert count_parameters(model) == 140_458 <= 150_000
    assert isinstance(model.digit_net, DeepDigitNet) and isinstance(model, WeightSharingNet)
    out = model.eval()(torch.randn(3, 2, 14, 14))
    assert out["comparison"].shape == (3, 2) and out["digits"].shape == (3, 2, 10)
    heads = {name: count_parameters(build_model({**params, "comparison": name}))
             for name in ("linear", "hidden", "computed")}
    assert heads == {"linear": 140_500, "hidden": 140_458 + 23 * params["head_hidden"] + 2,
                     "computed": 140_458}


def test_digits_weighting_trains_the_digits_alone():
    assert loss_weights("digits", 0.3, 7, 25) == (0.0, 1.0)


@pytest.mark.parametrize("overrides, fragment", [
    ({"comparison": "linear"}, "weighting digits leaves a learned linear comparison head untrained"),
    ({"dropout_2d": 0.3}, "dropout_2d = 0.3 would change nothing: dropout_2d is read only by "
                          "model weight_sharing"),
    ({"augment_shift": 8}, "augment_shift must be in [0, 7]"),
    ({"momentum": 1}, "momentum must be in [0, 1)"),
    ({"schedule": "cosine"}, "schedule must be one of constant, onecycle"),
    ({"evaluate_on": "train"}, "evaluate_on must be one of test, validation"),
])
def test_best_parameters_are_checked(overrides, fragment):
    with pytest.raises(UsageError, match=fragment.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        resolve("best", **overrides)


def test_random_affine_without_ranges_is_the_identity_and_keeps_the_background():
    generator = torch.Generator().manual_seed(0)
    pairs = torch.randn(4, 2, 14, 14)
    same = random_affine(pairs, generator, background=-0.4)
    assert torch.allclose(same, pairs, atol=1e-5)
    blank = torch.full((4, 2, 14, 14), -0.4)
    moved = random_affine(blank, generator, -0.4, shift=2, rotation=15, scale=0.1)
    assert torch.allclose(moved, blank, atol=1e-6)


def test_random_affine_moves_each_image_its_own_way():
    generator = torch.Generator().manual_seed(0)
    image = torch.zeros(14, 14)
    image[4:10, 6:8] = 1.0  # a bar
    pairs = image.expand(8, 2, 14, 14).clone()
    moved = random_affine(pairs, generator, 0.0, shift=2)
    flat = moved.view(16, -1)
    assert not torch.allclose(flat[0], flat[1])  # the two images of a pair differ
    assert len({tuple(row.round(decimals=3).tolist()) for row in flat}) > 8
    # a translation moves ink, it does not create or destroy it (the bar stays inside)
    assert torch.allclose(flat.sum(1), torch.full((16,), 12.0), atol=1e-3)


def test_validation_pairs_share_the_training_pairs_and_never_load_the_test_images(
        mnist_root, monkeypatch):
    n = 300
    train_input, train_target, train_classes = generate_pair_sets(n, 5, mnist_root)[:3]
    real_load = helpers.science.data.load_mnist

    def train_split_only(train, root=None):
        assert train, "the validation pairs must not load the MNIST test images"
        return real_load(train, root)

    monkeypatch.setattr(helpers.science.data, "load_mnist", train_split_only)
    sets = generate_validation_sets(n, 5, mnist_root)
    assert torch.equal(sets[0], train_input) and torch.equal(sets[1], train_target)
    assert torch.equal(sets[2], train_classes)
    val_input, val_target, val_classes = sets[3:]
    assert val_input.shape == (n, 2, 14, 14)
    assert torch.equal(val_target, (val_classes[:, 0] <= val_classes[:, 1]).long())
    # other images than the training pairs' (MNIST has no exact duplicates among these)
    train_images = {tuple(x.flatten().tolist()) for x in train_input.view(-1, 14, 14)}
    assert not any(tuple(x.flatten().tolist()) in train_images for x in val_input.view(-1, 14, 14))


@pytest.mark.slow
def test_best_trains_with_tiny_parameters(mnist_root):
    record = helpers.train("best", 0, epochs=2, n_pairs=100, data_root=mnist_root)
    assert record["n_parameters"] == 140_458 and len(record["history"]) == 2
    assert record["params"]["schedule"] == "onecycle"
    first, last = record["history"]
    assert (first["weight_comparison"], first["weight_digits"]) == (0.0, 1.0)
    assert last["loss"] < first["loss"]
    assert len(record["test_digit_predictions"]) == 100
    again = helpers.train("best", 0, epochs=2, n_pairs=100, data_root=mnist_root)
    assert again["test_predictions"] == record["test_predictions"]
    assert again["history"] == record["history"]


@pytest.mark.slow
def test_validation_run_measures_validation_pairs(mnist_root):
    record = helpers.train("best", 101, epochs=1, n_pairs=100, evaluate_on="validation",
                         data_root=mnist_root)
    validation = generate_validation_sets(100, 101, mnist_root)
    test = generate_pair_sets(100, 101, mnist_root)
    predicted = torch.tensor(record["test_predictions"])
    assert record["test_errors"] == int((predicted != validation[4]).sum())
    assert record["params"]["evaluate_on"] == "validation"
    assert not torch.equal(validation[5], test[5])


@pytest.mark.slow
def test_best_notebook_writes_its_record(tmp_path, mnist_root):
    import json
    from pathlib import Path

    import papermill

    from helpers.runs.records import read_record, record_path

    repo = Path(__file__).resolve().parent.parent
    results = tmp_path / "results"
    output = tmp_path / "best.ipynb"
    papermill.execute_notebook(
        str(repo / "notebooks" / "best.ipynb"), str(output), kernel_name="python3",
        cwd=str(tmp_path), progress_bar=False,
        parameters={"experiment": "best", "seed": 2, "epochs": 1, "n_pairs": 100,
                    "data_root": mnist_root, "results_dir": str(results)})
    record = read_record(record_path(results, "best", 2))
    assert record["params"]["comparison"] == "computed" and record["params"]["epochs"] == 1
    cells = json.loads(output.read_text())["cells"]
    text = "\n".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
    assert f"({record['test_errors']} of 100 pairs)" in text and "140,458 trainable" in text
