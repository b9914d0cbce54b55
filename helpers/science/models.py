"""The report's networks, rebuilt from its text (its figures are lost).

Every network maps a batch of pairs (N x 2 x 14 x 14) to a dict of logits:
`comparison` (N x 2, class 1 means "first digit <= second") and, for the networks that
recognise digits, `digits` (N x 2 x 10, the logits of each image's digit).
`MODELS` names them; `build_model(params)` builds the one the run parameters name.
"""

import inspect

import torch
from torch import nn


class BaselineNet(nn.Module):
    """Convolutions and dense layers on the 2-channel image; no batch norm, no dropout,
    no weight sharing (the report's Fig. 1).

    2x14x14 -> conv 3x3 (32) -> ReLU -> max-pool 2 -> conv 3x3 (64) -> ReLU -> max-pool 2
    -> 256 -> dense 200 -> ReLU -> dense 2. Its sizes are a reading of
    the text (docs/readings.md, P6): `baseline_hidden` is the dense layer's width, and
    `baseline_kernel` 5 makes both convolutions 5x5 (14 -> 10 -> pool 5 -> 1: 64 features,
    no second pool). It has to learn digit recognition twice, once per channel, from 1000
    pairs. (Each ReLU runs after its max-pool: the same function, as max and ReLU commute,
    with the same gradients, on a quarter of the values.)
    """

    def __init__(self, baseline_hidden=200, baseline_kernel=3):
        super().__init__()
        k = baseline_kernel
        second_pool = [nn.MaxPool2d(2)] if k == 3 else []
        self.features = nn.Sequential(
            nn.Conv2d(2, 32, kernel_size=k), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=k), *second_pool, nn.ReLU(),
            nn.Flatten(),
        )
        features = 64 * (2 * 2 if k == 3 else 1)
        self.classifier = nn.Sequential(nn.Linear(features, baseline_hidden), nn.ReLU(),
                                        nn.Linear(baseline_hidden, 2))

    def forward(self, pairs):
        return {"comparison": self.classifier(self.features(pairs))}


class DigitNet(nn.Module):
    """The shared digit network: one 1x14x14 image -> 10 digit outputs (the report's Fig. 3).

    conv 3x3 (width) [BN] ReLU max-pool 2 [Dropout2d] -> conv 3x3 (2 width) [BN] ReLU max-pool
    2 [Dropout2d] -> dense (hidden) [BN] ReLU [Dropout] -> dense 10 [BN].
    Batch norm and both dropouts are switchable (a probability of 0 leaves the layer out), as
    the report runs it with (Dropout2d 0.3, Dropout 0.5: its Table II) and without them. The
    readings of docs/readings.md are options: `width` and `hidden` (P3), `dropout_at`
    "hidden" (after the dense layer), "outputs" (on the 10 outputs: "after the dense network
    for digit recognition") or "both", and `batch_norm_outputs` (P2). The defaults are the
    report's network as the run parameters' defaults read it (a test keeps them equal). (ReLU
    runs after the max-pool: the same function and gradients, as max and ReLU commute, on a
    quarter of the values.)
    """

    def __init__(self, batch_norm=True, dropout=0.5, dropout_2d=0.3, width=32, hidden=256,
                 dropout_at="hidden", batch_norm_outputs=True):
        super().__init__()
        p2d, p1d = dropout_2d, dropout

        def conv_block(c_in, c_out):
            layers = [nn.Conv2d(c_in, c_out, kernel_size=3)]
            layers += [nn.BatchNorm2d(c_out)] if batch_norm else []
            layers += [nn.MaxPool2d(2), nn.ReLU()]
            layers += [nn.Dropout2d(p2d)] if p2d else []
            return layers

        # Created in this order (the dense layer, the convolutions, the output layer), as the
        # initialisation draws from the generator in creation order: the records depend on it.
        dense = [nn.Linear(2 * width * 4, hidden)]
        dense += [nn.BatchNorm1d(hidden)] if batch_norm else []
        dense += [nn.ReLU()]
        dense += [nn.Dropout(p1d)] if p1d and dropout_at in ("hidden", "both") else []
        convolutions = [*conv_block(1, width), *conv_block(width, 2 * width), nn.Flatten()]
        outputs = [nn.Linear(hidden, 10)]
        outputs += [nn.BatchNorm1d(10)] if batch_norm and batch_norm_outputs else []
        outputs += [nn.Dropout(p1d)] if p1d and dropout_at in ("outputs", "both") else []
        self.layers = nn.Sequential(*convolutions, *dense, *outputs)

    def forward(self, images):
        return self.layers(images)


class DeepDigitNet(nn.Module):
    """A deeper digit network for `best`: VGG-style 3x3 convolutions that keep the 14x14 border.

    conv 3x3 (32) BN ReLU -> conv 3x3 (32) BN ReLU -> max-pool 2 (7x7)
    -> conv 3x3 (64) BN ReLU -> conv 3x3 (64) BN ReLU -> max-pool 2 (3x3)
    -> 576 -> [Dropout] dense 128 BN ReLU [Dropout] -> dense 10, at `best`'s sizes (the
    convolutions and the hidden dense layer have no bias: the batch norm after each one has
    its own shift). Two convolutions per scale see 5x5 and then 14x14
    of the digit before the dense layers, where the report's net sees a 6x6 map of 3x3 cells.
    """

    def __init__(self, dropout=0.0, width=32, hidden=128):
        super().__init__()

        def conv_bn(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out), nn.ReLU()]

        dense = [nn.Dropout(dropout)] if dropout else []
        dense += [nn.Linear(2 * width * 9, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU()]
        dense += [nn.Dropout(dropout)] if dropout else []
        self.layers = nn.Sequential(
            *conv_bn(1, width), *conv_bn(width, width), nn.MaxPool2d(2),
            *conv_bn(width, 2 * width), *conv_bn(2 * width, 2 * width), nn.MaxPool2d(2),
            nn.Flatten(), *dense, nn.Linear(hidden, 10))

    def forward(self, images):
        return self.layers(images)


# ---------------------------------------------------------------------------------------------
# Comparison heads: (N x 2 x 10 digit logits) -> N x 2 comparison logits (class 1: first <= second)
# ---------------------------------------------------------------------------------------------
class LinearComparison(nn.Linear):
    """The report's comparison layer: one linear map 20 -> 2 on the two logit vectors (42 parameters)."""

    def __init__(self):
        super().__init__(20, 2)

    def forward(self, digits):
        return super().forward(digits.flatten(1))


class HiddenComparison(nn.Sequential):
    """A learned comparison with one hidden layer: 20 -> `hidden` -> ReLU -> 2 (23 * hidden + 2
    parameters)."""

    def __init__(self, hidden=512):
        super().__init__(nn.Flatten(), nn.Linear(20, hidden), nn.ReLU(), nn.Linear(hidden, 2))


class ComputedComparison(nn.Module):
    """No parameters: the comparison computed from the two digit distributions,

        P(first <= second) = sum_{i <= j} p_first(i) p_second(j),

    the two images' digits being independent given the images. Returned as the logits
    (log P(first > second), log P(first <= second)), so the answer is P(<=) > 1/2 and a
    cross-entropy on them is the log-loss of that probability.
    """

    def forward(self, digits):
        p = digits.softmax(2)
        second_at_least = p[:, 1].flip(1).cumsum(1).flip(1)  # P(second >= i), i = 0..9
        less_equal = (p[:, 0] * second_at_least).sum(1).clamp(1e-7, 1 - 1e-7)
        return torch.stack([torch.log1p(-less_equal), torch.log(less_equal)], 1)


COMPARISON_HEADS = {"linear": LinearComparison, "hidden": HiddenComparison,
                    "computed": ComputedComparison}


# What the two 10-vectors are when they reach a learned comparison head (docs/readings.md, P1).
HEAD_INPUTS = {"logits": lambda digits: digits, "softmax": lambda digits: digits.softmax(2),
               "log_softmax": lambda digits: digits.log_softmax(2)}


class WeightSharingNet(nn.Module):
    """One digit network applied to each image of the pair, then a comparison head on the two
    10-vectors (the report's Fig. 2).

    Both images go through the *same* module in one batched call (2N images), so the
    parameters are shared, not copied, and each training pair teaches the digit network twice.
    The report's comparison head is "a final layer" on the two 10-vectors: one linear layer
    20 -> 2 (`comparison="linear"`), or one hidden layer of `head_hidden` units with ReLU
    (`comparison="hidden"`; docs/readings.md, P7). The 10-vectors reach a learned head as raw
    logits, softmax probabilities or log-probabilities (`head_input`). On probabilities a linear map can compute the expected digits' difference
    sum_k k (p_second[k] - p_first[k]), which decides the comparison once the digits are
    recognised; on raw logits it cannot. `hidden` and `computed` are the other heads (see
    COMPARISON_HEADS). The `digits` output, which the auxiliary losses read, is always the
    logits. `digit_net` replaces the digit network. The defaults are the report's network as
    the run parameters' defaults read it (a test keeps them equal).
    """

    def __init__(self, batch_norm=True, dropout=0.5, dropout_2d=0.3, comparison="hidden",
                 head_input="logits", head_hidden=512, digit_width=32, digit_hidden=256,
                 dropout_at="hidden", batch_norm_outputs=True, digit_net=None):
        super().__init__()
        self.digit_net = digit_net if digit_net is not None else DigitNet(
            batch_norm=batch_norm, dropout=dropout, dropout_2d=dropout_2d, width=digit_width,
            hidden=digit_hidden, dropout_at=dropout_at, batch_norm_outputs=batch_norm_outputs)
        head = COMPARISON_HEADS[comparison]
        self.comparison_head = head(head_hidden) if head is HiddenComparison else head()
        # the computed head reads the logits (it takes their softmax itself)
        self.head_input = HEAD_INPUTS["logits" if comparison == "computed" else head_input]

    def forward(self, pairs):
        n = pairs.size(0)
        digits = self.digit_net(pairs.reshape(2 * n, 1, 14, 14)).view(n, 2, 10)
        return {"comparison": self.comparison_head(self.head_input(digits)), "digits": digits}


class DeepWeightSharingNet(WeightSharingNet):
    """`best`'s network: the deeper digit network (`DeepDigitNet`), shared by the two images.
    `digit_width` and `digit_hidden` size it as they size the report's (`same-budget` narrows
    it under the report's parameter budget)."""

    def __init__(self, dropout=0.0, comparison="computed", head_hidden=512, digit_width=32,
                 digit_hidden=128):
        super().__init__(comparison=comparison, head_hidden=head_hidden,
                         digit_net=DeepDigitNet(dropout=dropout, width=digit_width,
                                                hidden=digit_hidden))


# The `model` parameter names one of these; `build_model` gives each constructor the run
# parameters its signature names (the others keep the constructor's defaults).
MODELS = {"baseline": BaselineNet, "weight_sharing": WeightSharingNet,
          "deep_weight_sharing": DeepWeightSharingNet}


# Initialisation of the convolution and dense weights (docs/readings.md, P4); biases start at
# zero under the two named schemes. "default" keeps PyTorch's (Kaiming-uniform with a = sqrt(5)).
INITIALISATIONS = {
    "default": None,
    "xavier": nn.init.xavier_uniform_,
    "kaiming": lambda weight: nn.init.kaiming_normal_(weight, nonlinearity="relu"),
}


def build_model(params):
    """The network the run parameters name, its constructor given the parameters its signature
    names, its weights initialised by `params["init"]` (drawn from torch's global generator)."""
    network = MODELS[params["model"]]
    wanted = inspect.signature(network).parameters
    model = network(**{name: params[name] for name in wanted if name in params})
    initialise = INITIALISATIONS[params.get("init", "default")]
    if initialise is not None:
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                initialise(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    return model


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
