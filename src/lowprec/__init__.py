"""lowprec: neural PDE solvers trained and run in reduced precision."""

__version__ = "0.1.0"

from .precision import PrecisionPolicy, PrecisionSchedule, current_policy, get_policy  # noqa: E402

__all__ = ["PrecisionPolicy", "PrecisionSchedule", "current_policy", "get_policy", "__version__"]
