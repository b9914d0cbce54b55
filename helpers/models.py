"""The report's networks, rebuilt from its text (its figures are lost).

Every network maps a batch of pairs (N x 2 x 14 x 14) to a dict of logits:
`comparison` (N x 2, class 1 means "first digit <= second") and, for the networks that
recognise digits, `digits` (N x 2 x 10, the logits of each image's digit).
`build_model(params)` picks the network from the run parameters; `MODELS` names them.
"""

import torch
from torch import nn


class MaxPool2d(nn.MaxPool2d):
    """`nn.MaxPool2d` that pools a CPU tensor in channels-last layout.

    PyTorch's CPU max-pool is about 20x slower on NCHW tensors this small than on
    channels-last ones; the two copies cost far less, and the result and its gradient are
    bit-identical (a max has no rounding, and the output is handed back in NCHW).
    """

    def forward(self, x):
        if x.device.type != "cpu":
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


class BaselineNet(nn.Module):
    """Convolutions and dense layers on the 2-channel image; no batch norm, no dropout,
    no weight sharing (the report's Fig. 1).

    2x14x14 -> conv 3x3 (32) -> ReLU -> max-pool 2 -> conv 3x3 (64) -> ReLU -> max-pool 2
    -> 256 -> dense 200 -> ReLU -> dense 2.  70,906 parameters.
    It has to learn digit recognition twice, once per channel, from 1000 pairs.
    """

    def __init__(self, hidden=200):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, 32, kernel_size=3), nn.ReLU(), MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3), nn.ReLU(), MaxPool2d(2),
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
    53,002 parameters without batch norm, 53,450 with it.
    """

    def __init__(self, batch_norm=True, dropout=0.5, dropout_2d=0.3, hidden=128):
        super().__init__()
        p2d, p1d = dropout_2d, dropout

        def conv_block(c_in, c_out):
            layers = [nn.Conv2d(c_in, c_out, kernel_size=3)]
            layers += [nn.BatchNorm2d(c_out)] if batch_norm else []
            layers += [nn.ReLU(), MaxPool2d(2)]
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


class WeightSharingNet(nn.Module):
    """One `DigitNet` applied to each image of the pair, then a comparison layer on the two
    10-vectors (the report's Fig. 2).

    Both images go through the *same* module in one batched call (2N images), so the
    parameters are shared, not copied, and each training pair teaches the digit network twice.
    The comparison head is one linear layer 20 -> 2: a linear map can express
    "sum_k k * (p_second[k] - p_first[k]) >= 0", which is all the comparison needs.
    53,044 parameters without batch norm, 53,492 with it (42 of them in the head).
    """

    def __init__(self, batch_norm=True, dropout=0.5, dropout_2d=0.3):
        super().__init__()
        self.digit_net = DigitNet(batch_norm=batch_norm, dropout=dropout, dropout_2d=dropout_2d)
        self.comparison_head = nn.Linear(20, 2)

    def forward(self, pairs):
        n = pairs.size(0)
        digits = self.digit_net(pairs.reshape(2 * n, 1, 14, 14)).view(n, 2, 10)
        return {"comparison": self.comparison_head(digits.view(n, 20)), "digits": digits}


# architecture name (the `model` parameter) -> constructor taking the run parameters
MODELS = {
    "baseline": lambda params: BaselineNet(),
    "weight_sharing": lambda params: WeightSharingNet(batch_norm=params["batch_norm"],
                                                      dropout=params["dropout"],
                                                      dropout_2d=params["dropout_2d"]),
}


def build_model(params):
    return MODELS[params["model"]](params)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
