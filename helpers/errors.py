"""The two kinds of failure a user can cause, each mapped to a clear one-line message.

A `UsageError` is a mistake in what was asked (a parameter, a name, a folder): exit code 2.
A `DataError` is a problem with the MNIST files on disk: also exit code 2, since the fix is
the user's (point MNIST_ROOT at good files). A training that diverged is neither: it is an
outcome, recorded as such (`TrainingDiverged`). Anything else is a bug and keeps its traceback.
"""

import math


class UsageError(ValueError):
    """Bad input from the user; the message names the problem and the fix."""

    exit_code = 2


class DataError(UsageError):
    """MNIST missing, unreadable or damaged under the data root."""


class TrainingDiverged(RuntimeError):
    """A training's loss, or a number of its network, stopped being finite: where (`diverged`:
    the epoch, the step and its loss) and the epochs before (`history`), which the run records
    as its outcome. The message suggests the usual fix (a lower learning rate)."""

    def __init__(self, message, diverged, history):
        super().__init__(message)
        self.diverged, self.history = diverged, history


def diverged_at(at):
    """Where a training diverged (`at`: its record's `diverged`), in words."""
    what = (f"the loss became {at['loss']}" if not math.isfinite(float(at["loss"])) else
            f"the network's numbers stopped being finite (loss {at['loss']})")
    return f"{what} at epoch {at['epoch']} (step {at['step']})"
