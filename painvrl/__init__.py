"""painvrl: Pareto Invariant Representation Learning for multimedia recommendation."""
from . import _core

__version__ = "0.1.0"
__all__ = ["__version__"]
