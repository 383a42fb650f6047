"""The CLI's thread policy: how many intra-op threads a command gives torch when not told.

Kept free of torch at import, so that building the command-line parser stays cheap.
"""

from __future__ import annotations

import argparse
import logging
import os

log = logging.getLogger(__name__)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_average() -> float:
    """The 1-minute load average (0 where the OS keeps none, as on Windows)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def default_threads(cores: int, load: float) -> int:
    """Intra-op threads for a command that was not told: the cores that other jobs leave idle, at least 1.

    torch's own default takes every core. When other processes keep those cores busy, its OpenMP
    threads wait for each other at every barrier and a step slows many times over: an FNO step
    (width 32, 33x33, batch 10) took 8042 ms on 2 threads against 268 ms on 1 on a 2-core machine
    at load 8.8, and 53 ms against 51-59 ms idle (docs/performance.md). So the 1-minute load
    average is subtracted from the core count (rounded to nearest); an idle machine keeps all its
    cores.
    """
    return max(1, min(cores, int(cores - load + 0.5)))


def resolve_threads(
    requested: int | None = None, environ=os.environ, cores: int | None = None, load: float | None = None
) -> tuple[int, str]:
    """The intra-op thread count for a command, and why: ``(threads, reason)``.

    ``requested`` (``--threads``) wins; 0 or ``None`` means choose: ``OMP_NUM_THREADS`` or
    ``MKL_NUM_THREADS`` set in the environment is the user's choice and is kept; otherwise
    :func:`default_threads` of ``cores`` and ``load`` (default: read from the OS).

    Raises:
        ValueError: for a negative count.
    """
    if requested is not None and requested < 0:
        raise ValueError(f"--threads {requested}: give a positive thread count, or 0 to let lowprec choose.")
    if requested:
        return requested, "--threads"
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if environ.get(var, "").strip().isdigit() and int(environ[var]) > 0:
            return int(environ[var]), var
    cores = usable_cores() if cores is None else cores
    load = load_average() if load is None else load
    return default_threads(cores, load), f"{cores} cores at 1-minute load {load:.1f}"


def configure_threads(requested: int | None = None) -> int:
    """Set torch's intra-op thread count by :func:`resolve_threads`; return it. Every CLI command calls this."""
    import torch

    threads, reason = resolve_threads(requested)
    torch.set_num_threads(threads)
    log.debug("using %d CPU thread%s (%s)", threads, "s" * (threads != 1), reason)
    return threads


def add_threads_flag(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` on a command that computes; :func:`configure_threads` reads it."""
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads for torch (default: the cores not busy with other jobs, by the load "
        "average, or OMP_NUM_THREADS when set; 1 is steadiest on a shared machine)",
    )
