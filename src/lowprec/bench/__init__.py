"""Benchmarks: training-step and per-layer timing, memory and accuracy per policy and backend (``lowprec bench``)."""

from .run import BenchConfig, run_bench

__all__ = ["BenchConfig", "run_bench"]
