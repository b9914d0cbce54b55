"""The loss: the cross-entropy of the comparison and of each image's digit, and the weightings
of the report's equations that add them up.

`WEIGHTINGS` maps each `weighting` parameter to the weights (of L_cmp, of L_A + L_B) it gives
at each epoch; add a weighting by adding a function and a row. `loss_terms` is the one loss of
a training step. This module imports torch only when `loss_terms` is first called: the catalogue
reads `WEIGHTINGS` in the runner, which starts without torch.
"""

from dataclasses import dataclass
from typing import Callable, Optional


def comparison_only(epoch, epochs, alpha):
    return 1.0, 0.0


def eq1(epoch, epochs, alpha):
    return 1.0, 1.0


def eq2(epoch, epochs, alpha):
    return 1.0, alpha


def eq3(epoch, epochs, alpha):
    """a decays linearly from 1 at the first epoch to alpha at the last."""
    progress = epoch / (epochs - 1) if epochs > 1 else 1.0
    a = 1.0 + (alpha - 1.0) * progress
    return 1.0 - a, a


def eq3_discount(epoch, epochs, alpha):
    """a = alpha ** epoch: alpha read as a per-epoch discount of the digits' weight."""
    a = alpha ** epoch
    return 1.0 - a, a


def eq3_geometric(epoch, epochs, alpha):
    """a decays geometrically from 1 at the first epoch to alpha at the last."""
    progress = epoch / (epochs - 1) if epochs > 1 else 1.0
    a = alpha ** progress
    return 1.0 - a, a


def digits_only(epoch, epochs, alpha):
    return 0.0, 1.0


@dataclass(frozen=True)
class Weighting:
    weights: Callable      # (0-based epoch, epochs, alpha) -> (weight of L_cmp, of L_A + L_B)
    formula: str           # the loss it makes, in LaTeX
    uses_alpha: bool = False
    max_alpha: Optional[float] = None  # eq. (3)'s weights stay in [0, 1] only for alpha <= 1


WEIGHTINGS = {
    "none": Weighting(comparison_only, r"L = L_{cmp}"),
    "eq1": Weighting(eq1, r"L = L_{cmp} + L_A + L_B"),
    "eq2": Weighting(eq2, r"L = L_{cmp} + \alpha (L_A + L_B)", uses_alpha=True),
    # eq. (3): L = (1 - a_t) L_cmp + a_t (L_A + L_B), with three readings of a_t
    # (docs/readings.md, P5); t = 0 .. T-1 is the epoch
    "eq3": Weighting(eq3, r"L = (1 - a_t) L_{cmp} + a_t (L_A + L_B),\ "
                          r"a_t = 1 + (\alpha - 1) \frac{t}{T - 1}", uses_alpha=True, max_alpha=1),
    "eq3-discount": Weighting(eq3_discount, r"L = (1 - a_t) L_{cmp} + a_t (L_A + L_B),\ "
                                            r"a_t = \alpha^t", uses_alpha=True, max_alpha=1),
    "eq3-geometric": Weighting(eq3_geometric, r"L = (1 - a_t) L_{cmp} + a_t (L_A + L_B),\ "
                                              r"a_t = \alpha^{t / (T - 1)}", uses_alpha=True,
                               max_alpha=1),
    # the digit labels alone, for a comparison computed from the digits (L_cmp still measured)
    "digits": Weighting(digits_only, r"L = L_A + L_B"),
}


def loss_weights(weighting, alpha, epoch, epochs):
    """(weight of L_cmp, weight of L_A + L_B) of `weighting` at 0-based `epoch` of `epochs`."""
    return WEIGHTINGS[weighting].weights(epoch, epochs, alpha)


def loss_terms(outputs, target, classes, weights, label_smoothing=0.0):
    """(the loss to minimise, {name: term}) of one batch.

    The terms are the cross-entropies of the comparison (`loss_comparison`) and, for a network
    with digit outputs, of each image's digit (`loss_digit_first`, `loss_digit_second`, with
    `label_smoothing`), all measured whatever their weight; the loss is
    w_cmp L_cmp + w_digits (L_A + L_B) for `weights` = (w_cmp, w_digits).
    """
    import torch.nn.functional as F

    w_cmp, w_digits = weights
    terms = {"loss_comparison": F.cross_entropy(outputs["comparison"], target)}
    loss = w_cmp * terms["loss_comparison"]
    if "digits" in outputs:
        digits = outputs["digits"]
        terms["loss_digit_first"] = F.cross_entropy(digits[:, 0], classes[:, 0],
                                                    label_smoothing=label_smoothing)
        terms["loss_digit_second"] = F.cross_entropy(digits[:, 1], classes[:, 1],
                                                     label_smoothing=label_smoothing)
        if w_digits:
            loss = loss + w_digits * (terms["loss_digit_first"] + terms["loss_digit_second"])
    return loss, terms


def trains_digits(params):
    """Whether its weighting trains the digit outputs on the labels at some epoch (else, as for
    `ws`, they are not digit predictions and error kinds mean nothing)."""
    weighting, epochs = WEIGHTINGS[params["weighting"]], params["epochs"]
    return any(weighting.weights(epoch, epochs, params.get("alpha", 1.0))[1] > 0
               for epoch in range(epochs))
