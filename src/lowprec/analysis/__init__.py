"""Accuracy you can prove: discretization error against precision error, per layer and per frequency.

See ``docs/analysis.md``. The command is ``lowprec analyze``.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_package

if TYPE_CHECKING:
    from .errors import (
        FP8,
        capture,
        convergence_rate,
        crossover,
        discretization_errors,
        fp8_emulated,
        layer_names,
        precision_errors,
        round_fp8,
        sample_to,
    )
    from .inputs import FAMILIES, synthetic_inputs
    from .study import DEFAULT_POLICIES, DEFAULT_RESOLUTIONS, accuracy_study, plot_study

lazy_package(__name__)

__all__ = [
    "FP8",
    "FAMILIES",
    "DEFAULT_POLICIES",
    "DEFAULT_RESOLUTIONS",
    "accuracy_study",
    "plot_study",
    "capture",
    "convergence_rate",
    "crossover",
    "discretization_errors",
    "fp8_emulated",
    "layer_names",
    "precision_errors",
    "round_fp8",
    "sample_to",
    "synthetic_inputs",
]
