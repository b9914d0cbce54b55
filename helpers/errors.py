"""The two kinds of failure a user can cause, each mapped to a clear one-line message.

A `UsageError` is a mistake in what was asked (a parameter, a name, a folder): exit code 2.
A `DataError` is a problem with the MNIST files on disk: also exit code 2, since the fix is
the user's (point MNIST_ROOT at good files). A `TrainingDiverged` run is a failed run (exit 1),
told in one line. Anything else is a bug and keeps its traceback.
"""


class UsageError(ValueError):
    """Bad input from the user; the message names the problem and the fix."""

    exit_code = 2


class DataError(UsageError):
    """MNIST missing, unreadable or damaged under the data root."""


class TrainingDiverged(RuntimeError):
    """The loss of a training stopped being a finite number: a failed run (exit code 1), not a
    user's mistake, though the message suggests the usual fix (a lower learning rate)."""
