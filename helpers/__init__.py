"""The helpers of the notebook report, in four layers (each imports only those above it):

- `science`: the pairs of digits, the networks, the loss and the training of one run;
- `catalogue`: the run parameters and the configurations of the report, one row each;
- `runs`: run records, and where runs execute (papermill, local workers or Dask);
- `publish`: the tables, statistics, figures, notebooks and README block made from records.

`notebook` is what the notebooks call, `kernel` where they execute (a warm Jupyter kernel),
`cli` is `python -m helpers`, `bench` the benchmark.
"""

import sys

# jsonschema's optional IRI format checks compile 38 grammars when imported (3.5 s, before
# every notebook execution through nbformat); the notebooks' schema uses none of them.
sys.modules.setdefault("rfc3987_syntax", None)

from .errors import DataError, UsageError  # noqa: E402

__all__ = ["CATALOGUE", "DataError", "UsageError", "resolve", "train"]
__version__ = "0.2.0"


def __getattr__(name):  # the catalogue's, imported when asked for (python -m helpers: in main)
    if name not in ("CATALOGUE", "resolve"):
        raise AttributeError(f"module 'helpers' has no attribute {name!r}")
    from . import catalogue

    return getattr(catalogue, name)


def train(experiment, seed=0, **overrides):
    """Train configuration `experiment` for round `seed` in this process -> its run record (a
    diverged training's holds `diverged`, where, in place of final errors: errors.diverged_at)."""
    from .catalogue import resolve
    from .science.training import run_experiment

    return run_experiment(resolve(experiment, seed=seed, **overrides))
