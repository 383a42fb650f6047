"""Benchmarks: training-step and per-layer timing, memory and accuracy per policy and backend (``lowprec bench``)."""

from typing import TYPE_CHECKING

from .._lazy import lazy_package

if TYPE_CHECKING:
    from .run import run_bench
    from .settings import BenchConfig

lazy_package(__name__)

__all__ = ["BenchConfig", "run_bench"]
