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
    -> 256 -> dense 200 -> ReLU -> dense 2.  70,906 parameters.
    It has to learn digit recognition twice, once per channel, from 1000 pairs.
    (The code applies each ReLU after its max-pool: the same function, as max and ReLU
    commute, with the same gradients, on a quarter of the values.)
    """

    def __init__(self, hidden=200):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, 32, kernel_size=3), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=3), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(nn.Linear(256, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, pairs):
        return {"comparison": self.classifier(self.features(pairs))}


class DigitNet(nn.Module):
    """The shared digit network: one 1x14x14 image -> 10 digit logits (the report's Fig. 3).

    conv 3x3 (32) [BN] ReLU max-pool 2 [Dropout2d] -> conv 3x3 (64) [BN] ReLU max-pool 2
    [Dropout2d] -> 256 -> dense 128 [BN] ReLU [Dropout] -> dense 10.
    Batch norm and both dropouts are switchable (a probability of 0 leaves the layer out), as
    the report runs it with (Dropout2d 0.3, Dropout 0.5: its Table II) and without them.
    53,002 parameters without batch norm, 53,450 with it. (ReLU runs after the max-pool: the
    same function and gradients, as max and ReLU commute, on a quarter of the values.)
    """

    def __init__(self, batch_norm=True, dropout=0.5, dropout_2d=0.3, hidden=128):
        super().__init__()
        p2d, p1d = dropout_2d, dropout

        def conv_block(c_in, c_out):
            layers = [nn.Conv2d(c_in, c_out, kernel_size=3)]
            layers += [nn.BatchNorm2d(c_out)] if batch_norm else []
            layers += [nn.MaxPool2d(2), nn.ReLU()]
            layers += [nn.Dropout2d(p2d)] if p2d else []
            return layers

        dense = [nn.Linear(256, hidden)]
        dense += [nn.BatchNorm1d(hidden)] if batch_norm else []
        dense += [nn.ReLU()]
        dense += [nn.Dropout(p1d)] if p1d else []
        self.layers = nn.Sequential(*conv_block(1, 32), *conv_block(32, 64), nn.Flatten(),
                                    *dense, nn.Linear(hidden, 10))

    def forward(self, images):
        return self.layers(images)


class DeepDigitNet(nn.Module):
    """A deeper digit network for `best`: VGG-style 3x3 convolutions that keep the 14x14 border.

    conv 3x3 (32) BN ReLU -> conv 3x3 (32) BN ReLU -> max-pool 2 (7x7)
    -> conv 3x3 (64) BN ReLU -> conv 3x3 (64) BN ReLU -> max-pool 2 (3x3)
    -> 576 -> [Dropout] dense 128 BN ReLU [Dropout] -> dense 10.
    140,458 parameters (the convolutions and the hidden dense layer have no bias: the batch
    norm after each one has its own shift). Two convolutions per scale see 5x5 and then 14x14
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
    """A learned comparison with one hidden layer: 20 -> 64 -> ReLU -> 2 (1,474 parameters)."""

    def __init__(self, hidden=64):
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


class WeightSharingNet(nn.Module):
    """One digit network applied to each image of the pair, then a comparison head on the two
    10-vectors (the report's Fig. 2).

    Both images go through the *same* module in one batched call (2N images), so the
    parameters are shared, not copied, and each training pair teaches the digit network twice.
    The report's comparison head is one linear layer 20 -> 2 (`comparison="linear"`): a linear
    map of the two logit vectors can express a score difference such as
    "sum_k k * (s_second[k] - s_first[k])", a rough stand-in for the comparison; `hidden` and
    `computed` are the other heads (see COMPARISON_HEADS).
    With the report's `DigitNet` and the linear head: 53,044 parameters without batch norm,
    53,492 with it (42 of them in the head). `digit_net` replaces the report's digit network.
    """

    def __init__(self, batch_norm=True, dropout=0.5, dropout_2d=0.3, comparison="linear",
                 digit_net=None):
        super().__init__()
        self.digit_net = digit_net if digit_net is not None else \
            DigitNet(batch_norm=batch_norm, dropout=dropout, dropout_2d=dropout_2d)
        self.comparison_head = COMPARISON_HEADS[comparison]()

    def forward(self, pairs):
        n = pairs.size(0)
        digits = self.digit_net(pairs.reshape(2 * n, 1, 14, 14)).view(n, 2, 10)
        return {"comparison": self.comparison_head(digits), "digits": digits}


class DeepWeightSharingNet(WeightSharingNet):
    """`best`'s network: the deeper digit network (`DeepDigitNet`), shared by the two images."""

    def __init__(self, dropout=0.0, comparison="computed"):
        super().__init__(comparison=comparison, digit_net=DeepDigitNet(dropout=dropout))


# The `model` parameter names one of these; `build_model` gives each constructor the run
# parameters its signature names (the others keep the constructor's defaults).
MODELS = {"baseline": BaselineNet, "weight_sharing": WeightSharingNet,
          "deep_weight_sharing": DeepWeightSharingNet}


def build_model(params):
    network = MODELS[params["model"]]
    wanted = inspect.signature(network).parameters
    return network(**{name: params[name] for name in wanted if name in params})


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
