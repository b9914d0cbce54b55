import pytest
import torch

import helpers

from helpers import resolve
from helpers.science.models import BaselineNet, WeightSharingNet, build_model, count_parameters


def test_output_shapes():
    pairs = torch.randn(7, 2, 14, 14)
    assert BaselineNet()(pairs)["comparison"].shape == (7, 2)
    out = WeightSharingNet().eval()(pairs)
    assert out["comparison"].shape == (7, 2) and out["digits"].shape == (7, 2, 10)


def test_parameter_counts_of_the_catalogue_are_of_the_report_order():
    names = ("baseline", "ws-plain", "ws", "ws-aux", "ws-plain-first", "ws-first", "ws-aux-first")
    counts = {name: count_parameters(build_model(resolve(name))) for name in names}
    # the first rebuild: a linear comparison layer (42 parameters) on a 32-64-128 digit net;
    # the study's readings: a 512-unit hidden head (11,778) on a dense layer of 256, and batch
    # norm on the digit outputs (20) where the network has batch norm
    assert counts == {"baseline": 70_906, "ws-plain-first": 53_044, "ws-first": 53_492,
                      "ws-aux-first": 53_492, "ws-plain": 98_956, "ws": 99_680, "ws-aux": 99_680}


def test_batch_norm_and_dropout_are_switchable():
    def kinds(model):
        return {type(m).__name__ for m in model.modules()}

    assert {"BatchNorm2d", "BatchNorm1d", "Dropout2d", "Dropout"} <= kinds(WeightSharingNet())
    plain = kinds(WeightSharingNet(batch_norm=False, dropout=0.0, dropout_2d=0.0))
    assert not plain & {"BatchNorm2d", "BatchNorm1d", "Dropout2d", "Dropout"}
    assert not kinds(BaselineNet()) & {"BatchNorm2d", "BatchNorm1d", "Dropout2d", "Dropout"}


def test_weight_sharing_is_real_not_a_copy():
    torch.manual_seed(0)
    net = WeightSharingNet(batch_norm=False, dropout=0.0, dropout_2d=0.0)
    first, second = torch.randn(1, 1, 14, 14), torch.randn(1, 1, 14, 14)
    # The digit logits of each image are the one digit network applied to that image ...
    out = net(torch.cat((first, second), 1))
    assert torch.allclose(out["digits"][0, 0], net.digit_net(first)[0], atol=1e-6)
    assert torch.allclose(out["digits"][0, 1], net.digit_net(second)[0], atol=1e-6)
    # ... so a change to one weight changes what both images see, and swapping the
    # images swaps the digit outputs exactly.
    swapped = net(torch.cat((second, first), 1))["digits"]
    assert torch.allclose(swapped[0, 0], out["digits"][0, 1], atol=1e-6)
    # gradients from both images land in the same tensors
    out["digits"][0, 0].sum().backward()
    grad_first = net.digit_net.layers[0].weight.grad.clone()
    net.zero_grad()
    out = net(torch.cat((first, second), 1))
    out["digits"][0, 1].sum().backward()
    grad_second = net.digit_net.layers[0].weight.grad.clone()
    assert not torch.allclose(grad_first, grad_second)
    assert sum(1 for m in net.modules() if isinstance(m, torch.nn.Conv2d)) == 2  # one trunk only


def test_the_catalogue_names_exactly_the_networks_of_models():
    # parameters.MODEL_NAMES lets the runner check `model` without importing torch; it must
    # name every network of MODELS and nothing else.
    from helpers.catalogue.parameters import MODEL_NAMES
    from helpers.science.models import MODELS

    assert set(MODEL_NAMES) == set(MODELS)


def test_each_reading_builds_the_network_it_names():
    from torch import nn

    def layers(**overrides):
        return [type(m).__name__ for m in build_model(resolve("ws-aux-first", **overrides)).digit_net.layers]

    first = layers()
    assert first[-1] == "Linear" and first[-2] == "Dropout"  # dropout after the hidden layer
    assert layers(dropout_at="outputs")[-1] == "Dropout"
    assert layers(dropout_at="outputs")[-2] == "Linear"
    assert layers(batch_norm_outputs=True)[-1] == "BatchNorm1d"
    both = layers(dropout_at="both", batch_norm_outputs=True)
    assert both[-3:] == ["Linear", "BatchNorm1d", "Dropout"] and both.count("Dropout") == 2
    small = build_model(resolve("ws-aux-first", digit_width=16, digit_hidden=64))
    assert small.digit_net.layers[0].out_channels == 16
    assert [m.out_features for m in small.modules() if isinstance(m, nn.Linear)][:2] == [64, 10]
    assert count_parameters(build_model(resolve("baseline", baseline_kernel=5))) == 66_298


def test_hidden_head_width_is_the_head_hidden_parameter():
    from helpers.science.models import build_model, count_parameters

    linear = count_parameters(build_model(helpers.resolve("ws-first")))
    for width in (32, 512):
        model = build_model(helpers.resolve("ws-first", comparison="hidden", head_hidden=width))
        assert model.comparison_head[1].out_features == width
        # the head 20 -> width -> 2 replaces the linear 20 -> 2 (42 parameters)
        assert count_parameters(model) == linear - 42 + 21 * width + 2 * width + 2


def test_head_hidden_is_refused_where_no_hidden_head_reads_it():
    with pytest.raises(helpers.UsageError, match="head_hidden = 32 would change nothing"):
        helpers.resolve("ws-first", head_hidden=32)


def test_training_budget_counts_shapes_and_leaves_the_random_state_alone():
    import torch

    from helpers.science.training import training_budget

    params = helpers.resolve("ws-aux-first")
    before = torch.random.get_rng_state()
    budget = training_budget(params)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert budget["steps"] == 25 * 10
    # the first rebuild's ws-aux: 107.0 GFLOP of training steps, 37.0 GFLOP of evaluation
    assert round(budget["training_flops"] / 1e9, 1) == 107.0
    assert round(budget["evaluation_flops"] / 1e9, 1) == 37.0
    half = training_budget({**params, "epochs": 5, "n_pairs": 500})
    # a tenth of the steps (batches of 100 still), a tenth of the evaluated pairs x epochs
    assert half["steps"] == 5 * 5 and half["training_flops"] == budget["training_flops"] // 10
    assert half["evaluation_flops"] == budget["evaluation_flops"] // 10


def test_the_networks_defaults_are_the_run_parameters_defaults():
    """The report's network is written once, as the run parameters' defaults: a network built
    without arguments is the one those defaults build (its constructor keeps the same values)."""
    import inspect

    from helpers.catalogue import DEFAULTS
    from helpers.science.models import DigitNet

    for network in (BaselineNet, WeightSharingNet):
        for name, parameter in inspect.signature(network).parameters.items():
            if name in DEFAULTS:
                assert parameter.default == DEFAULTS[name], (network.__name__, name)
    digit = inspect.signature(DigitNet).parameters
    assert (digit["width"].default, digit["hidden"].default) == (DEFAULTS["digit_width"],
                                                                 DEFAULTS["digit_hidden"])
