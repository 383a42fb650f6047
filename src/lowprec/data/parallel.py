"""Generate a data set in several processes, merging into the cache entry one process would write.

Every generator draws sample ``i`` from numpy's generator seeded with ``(seed, i)``, through one
per-sample method that its ``generate`` loop calls with the sample's index: ``sample(i)`` (Darcy),
``initial(i)`` (Burgers, diffusion-sorption) or ``initial_vorticity(i)`` (Navier-Stokes). Worker ``w``
of ``W`` solves a contiguous block of indices ``[lo, hi)``: a copy of the parameters with ``n = hi - lo``
whose per-sample method reads index ``lo + i``. The blocks, concatenated in order, are the arrays one
process computes (bit for bit for the per-sample solvers; to rounding for the batched torch solvers,
whose batches then split at other places, as a different ``--batch-size`` would), and they are written
to the same cache file, under the same key, as one process would write.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import torch

from .base import ProblemParams, load_or_generate

log = logging.getLogger("lowprec")

# The method each generator's loop calls with a sample's index as its last argument (the first one a
# generator has).
PER_SAMPLE = ("sample", "initial", "initial_vorticity", "initial_state")


def blocks(n: int, workers: int) -> list[tuple[int, int]]:
    """``workers`` contiguous index ranges covering ``range(n)``, sizes differing by at most one (none empty)."""
    workers = max(1, min(workers, n))
    return [(n * w // workers, n * (w + 1) // workers) for w in range(workers)]


def shifted(params: ProblemParams, lo: int, hi: int) -> ProblemParams:
    """``params`` for samples ``lo`` .. ``hi - 1``: ``n = hi - lo``, and its sample ``i`` is sample ``lo + i``."""
    name = next((m for m in PER_SAMPLE if callable(getattr(params, m, None))), None)
    if name is None:
        raise ValueError(
            f"{type(params).__name__} has none of the per-sample methods {', '.join(PER_SAMPLE)}, "
            "so its samples cannot be split over processes; generate it with --workers 1."
        )
    part = dataclasses.replace(params, n=hi - lo)
    method = getattr(part, name)
    # The dataclass is frozen; this instance only.
    object.__setattr__(part, name, lambda *args: method(*args[:-1], args[-1] + lo))
    return part


def _generate_block(params: ProblemParams, lo: int, hi: int, threads: int, speed: dict) -> tuple[torch.Tensor, ...]:
    torch.set_num_threads(threads)
    return tuple(shifted(params, lo, hi).generate(progress=False, **speed))


def generate_parallel(params: ProblemParams, workers: int, **speed) -> tuple[torch.Tensor, ...]:
    """``params.generate(**speed)``, its samples split over ``workers`` processes (each with an equal share
    of this process's torch threads)."""
    parts = blocks(params.n, workers)
    if len(parts) == 1:
        return tuple(params.generate(progress=False, **speed))
    threads = max(1, torch.get_num_threads() // len(parts))
    # spawn, not fork: a forked child inherits torch's thread pools and any CUDA context half set up.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(parts), mp_context=context) as pool:
        futures = [pool.submit(_generate_block, params, lo, hi, threads, speed) for lo, hi in parts]
        results = [f.result() for f in futures]
    return tuple(torch.cat(arrays) for arrays in zip(*results))


def load_or_generate_parallel(params: ProblemParams, workers: int, cache_dir=None, **speed):
    """:func:`lowprec.data.base.load_or_generate` with the generation split over ``workers`` processes:
    the same cache lock, the same entry."""
    return load_or_generate(params, cache_dir, progress=False, workers=workers, **speed)
