"""The catalogue: the run parameters (`parameters`) and the configurations (`experiments`)."""

from .experiments import CATALOGUE, EXPERIMENTS, expand, get, resolve
from .parameters import DEFAULTS, PARAMETERS

__all__ = ["CATALOGUE", "DEFAULTS", "EXPERIMENTS", "PARAMETERS", "expand", "get", "resolve"]
