"""The helpers of the notebook report, in four layers (each imports only those above it):

- `science`: the pairs of digits, the networks, the loss and the training of one run;
- `catalogue`: the run parameters and the configurations of the report, one row each;
- `runs`: run records, and where runs execute (papermill, local workers or Dask);
- `publish`: the tables, statistics, figures, notebooks and README block made from records.

`notebook` is what the notebooks call, `cli` is `python -m helpers`, `bench` the benchmark.
"""

from .catalogue import CATALOGUE, resolve
from .errors import DataError, UsageError

__all__ = ["CATALOGUE", "DataError", "UsageError", "resolve", "train"]
__version__ = "0.2.0"


def train(experiment, seed=0, **overrides):
    """Train configuration `experiment` for round `seed` in this process -> its run record."""
    from .science.training import run_experiment

    return run_experiment(resolve(experiment, seed=seed, **overrides))
