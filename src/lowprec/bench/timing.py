"""Timing a step on any device: warm-up, several timed repeats, peak memory, saved activations.

A step is a callable that runs one unit of work (a training step, a layer's
forward and backward) and returns a tensor whose finiteness we check (the
loss). Each repeat is timed alone, between device synchronizations, and the
median is reported: one slow repeat (a page fault, another job on the
machine) does not move it.

Memory: on CUDA, the allocator's peak over the warm-up and the repeats
(parameters, gradients, optimizer state and activations). CPU keeps no such
statistic, so every device also gets the bytes autograd saves for the
backward pass, from :class:`lowprec.train.metrics.SavedTensorMeter`: the part
that mixed precision changes most.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..train.metrics import SavedTensorMeter


@dataclass
class Timing:
    ms: float  # median over the repeats
    ms_min: float
    warmup_s: float  # wall time of the warm-up (includes torch.compile's compilation)
    peak_mib: float | None
    finite: bool  # every step's returned value was finite


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(step: Callable[[], torch.Tensor], device: torch.device, warmup: int, repeats: int) -> Timing:
    """Run ``step`` ``warmup`` times untimed, then ``repeats`` times timed one by one."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    values = []
    start = time.perf_counter()
    for _ in range(warmup):
        values.append(step().detach())
    synchronize(device)
    warmup_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        values.append(step().detach())
        synchronize(device)
        times.append(1e3 * (time.perf_counter() - start))
    finite = bool(torch.isfinite(torch.stack([v.float().reshape(()) for v in values])).all())
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return Timing(statistics.median(times), min(times), warmup_s, peak, finite)


def saved_mib(forward: Callable[[], object]) -> float:
    """MiB of distinct tensors autograd saves during ``forward()`` (which should build a graph)."""
    with SavedTensorMeter() as meter:
        out = forward()
    del out
    return meter.mib
