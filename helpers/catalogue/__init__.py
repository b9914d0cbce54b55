"""The catalogue: the run parameters (`parameters`) and the configurations (`experiments`)."""
from .experiments import CATALOGUE, EXPERIMENTS, expand, get, resolve  # noqa: F401
from .parameters import DEFAULTS, PARAMETERS  # noqa: F401
