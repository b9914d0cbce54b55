"""Helpers of the notebook report: pair data, networks, training, the experiment catalogue,
run records, the notebook runner and the report tables."""

from .errors import DataError, UsageError
from .experiments import CATALOGUE, resolve, run

__all__ = ["CATALOGUE", "DataError", "UsageError", "resolve", "run"]
__version__ = "0.1.0"
