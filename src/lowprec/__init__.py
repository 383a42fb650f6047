"""lowprec: neural PDE solvers trained and run in reduced precision."""

__version__ = "0.1.0"

__all__ = ["PrecisionPolicy", "PrecisionSchedule", "current_policy", "get_policy", "__version__"]


def __getattr__(name):
    # Imported on first use, so that `lowprec --help` does not pay for importing torch.
    if name in __all__:
        from . import precision

        return getattr(precision, name)
    raise AttributeError(f"module 'lowprec' has no attribute {name!r}")
