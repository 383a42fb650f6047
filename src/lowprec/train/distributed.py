"""Data-parallel training over processes with PyTorch's own stack: torchrun, DDP, DistributedSampler.

One training run spans ``world_size`` processes (ranks), started by ``torchrun`` (or
``lowprec train --nproc N``, which runs torchrun's elastic agent in-process). Each rank holds the
whole model and data set, trains on its own share of every epoch's samples, and DDP averages the
gradients in the backward pass. :class:`Ranks` is everything the :class:`~lowprec.train.Trainer`
asks of the other processes:

* ``batches``: the epoch's sample indices for this rank, from a :class:`DistributedSampler` seeded
  like the single-process trainer, so batch order is a function of (seed, epoch) and one process
  draws exactly the permutation it always drew. Rank ``r`` of ``W`` takes every ``W``-th sample
  of that permutation; with per-rank batch ``b`` the ranks' step-``k`` batches together are the
  single-process step-``k`` batch of size ``W b``, and DDP's gradient average over ranks of
  per-rank mean losses equals the mean loss over ``W b`` samples.
* ``any``: a boolean all-reduced by "or", for the overflow flag, so every rank skips the same
  steps and moves its loss scale the same way (with sharded gradients a rank sees only its shard).
* ``sum`` and ``evaluate``: sums and test-set errors over all ranks (each rank scores a
  contiguous shard of each test set; the means are exact, not means of means).
* ``is_writer``: only rank 0 writes metrics, checkpoints and plots.

``batch_size`` is per rank (PyTorch's convention); the global batch is ``batch_size * world_size``.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import os
import types
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

log = logging.getLogger("lowprec")

# torchrun sets these in each worker's environment.
_RENDEZVOUS_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Ranks:
    """This process's place in a training run: ``rank`` of ``world_size`` (1: no other processes).

    ``device`` is where collective operations run their tensors (the GPU for NCCL, the CPU for gloo).
    """

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self):
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside world size {self.world_size}.")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_writer(self) -> bool:
        """Rank 0 alone writes files, so no file is written twice and none is half-written by a second rank."""
        return self.rank == 0

    # -- data --------------------------------------------------------------------------------
    def check_dataset(self, n: int) -> None:
        """Refuse a training set that the ranks cannot share evenly.

        DistributedSampler would pad it by repeating samples (or drop some), so the run would train on a
        different data set than one process does and the ranks' step counts would tie that to the world size.
        """
        if n % self.world_size:
            lower, upper = n - n % self.world_size, n + self.world_size - n % self.world_size
            raise ValueError(
                f"{n} training samples cannot be shared evenly by {self.world_size} processes; "
                f"use n_train {lower} or {upper} (a multiple of the world size), or "
                f"--nproc a divisor of {n}."
            )

    def batches(self, n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
        """This rank's batches of sample indices for ``epoch`` (each a 1-D int64 tensor)."""
        self.check_dataset(n)
        # seed * 100_003 + epoch seeds the permutation, as the single-process trainer always has.
        sampler = DistributedSampler(
            range(n), num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=seed * 100_003, drop_last=False
        )
        sampler.set_epoch(epoch)
        return list(torch.tensor(list(sampler), dtype=torch.long).split(batch_size))

    # -- model -------------------------------------------------------------------------------
    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to train: ``model`` itself for one process, else a DDP wrapper that shares its parameters.

        Buffers (the normalizers' statistics) are not broadcast on every forward: every rank computes them
        from the same data, and a forward pass without collectives lets one rank alone re-run the model to
        find the layer that overflowed.
        """
        if not self.distributed:
            return model
        device = next(model.parameters()).device
        ids = (
            [device.index if device.index is not None else torch.cuda.current_device()]
            if device.type == "cuda"
            else None
        )
        ddp = nn.parallel.DistributedDataParallel
        # torch >= 2.13 names the option forward_sync_buffers (and deprecates broadcast_buffers).
        quiet = (
            {"forward_sync_buffers": False}
            if "forward_sync_buffers" in inspect.signature(ddp).parameters
            else {"broadcast_buffers": False}
        )
        return ddp(model, device_ids=ids, **quiet)

    # -- collectives ----------------------------------------------------------------------------
    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (every rank gets the same answer)."""
        if not self.distributed:
            return bool(flag)
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums of ``values`` over ranks, in float64."""
        if not self.distributed:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def evaluate(self, model: nn.Module, dataset, policy, batch_size: int, device: torch.device) -> dict:
        """:func:`lowprec.train.evaluate` over all ranks: each scores its shard, the means are of all samples."""
        from .trainer import evaluate

        n = len(dataset.y)
        if not self.distributed:
            return evaluate(model, dataset, policy, batch_size, device)
        start, stop = n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size
        scores = evaluate(model, shard(dataset, start, stop), policy, batch_size, device) if stop > start else {}
        names = ["l2", "h1"] if getattr(dataset, "grid", "nodes") is not None else ["l2"]
        totals = self.sum([scores.get(k, 0.0) * (stop - start) for k in names])
        return {k: v / n for k, v in zip(names, totals)}


def fully_shard_model(model: nn.Module, **fsdp) -> nn.Module:
    """Shard ``model``'s parameters, gradients and optimizer state over the ranks with FSDP2 (in place).

    Every ``nn.ModuleList`` named ``blocks`` (the Fourier layers of FNO/TFNO, the stages of a UNet) has each
    of its modules sharded as one unit, so a block's weights are gathered just before it runs and freed
    after; the root shards what is left (lifting, projection, normalizers). Each rank then holds about
    1/world_size of the parameters, gradients and Adam moments; activations are not sharded (see
    docs/scaling.md). ``fsdp`` goes to ``torch.distributed.fsdp.fully_shard`` (e.g. ``mp_policy``).
    Parameters become DTensors: read a whole one with ``p.full_tensor()``.

    Optimise the sharded model with an optimizer built after this call. The :class:`~lowprec.train.Trainer`
    uses DDP; its checkpoints, overflow checks and evaluation assume whole parameters on every rank.
    """
    from torch.distributed.fsdp import fully_shard

    for name, module in model.named_modules():
        if name.rpartition(".")[2] == "blocks" and isinstance(module, nn.ModuleList):
            for block in module:
                fully_shard(block, **fsdp)
    return fully_shard(model, **fsdp)


def shard(dataset, start: int, stop: int):
    """Samples ``start:stop`` of a data set: its own ``subset`` where it has one, else a view of ``x``, ``y``."""
    if hasattr(dataset, "subset"):
        return dataset.subset(slice(start, stop))
    return types.SimpleNamespace(
        x=dataset.x[start:stop], y=dataset.y[start:stop], grid=getattr(dataset, "grid", "nodes")
    )


def current_ranks(device: torch.device | str = "cpu") -> Ranks:
    """The run this process belongs to: the default process group where one is initialised, else one process."""
    if not (dist.is_available() and dist.is_initialized()):
        return Ranks()
    collective = (
        torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    )
    return Ranks(dist.get_rank(), dist.get_world_size(), collective)


def launched_by_torchrun() -> bool:
    """Whether this process is a worker of torchrun (or of anything setting torch's rendezvous variables)."""
    return "WORLD_SIZE" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ


def init_from_env(device: torch.device | str = "auto") -> Ranks:
    """Join the process group that torchrun described in the environment; one process if there is none.

    NCCL on CUDA (each rank on GPU ``LOCAL_RANK``), gloo on the CPU. Waits at most
    ``$LOWPREC_DIST_TIMEOUT`` seconds (default 600) for the other ranks.

    Raises:
        ValueError: when the environment names a world of several processes but not where they meet.
    """
    from .._device import resolve_device

    if dist.is_available() and dist.is_initialized():
        return current_ranks(resolve_device(device))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    missing = [v for v in _RENDEZVOUS_VARS if not os.environ.get(v)]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={world} says this is one of {world} processes, but {', '.join(missing)} "
            "(the rendezvous) is not set; start the run with `torchrun --nproc-per-node N -m lowprec "
            "train ...` or `lowprec train ... --nproc N`, or unset WORLD_SIZE to train in one process."
        )
    device = resolve_device(device)
    if device.type == "cuda" and device.index is not None:
        raise ValueError(
            f"device {str(device)!r} would put all {world} processes on one GPU; give device 'cuda' "
            "or 'auto' (each process takes GPU LOCAL_RANK), and choose the GPUs with "
            "CUDA_VISIBLE_DEVICES."
        )
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    timeout = datetime.timedelta(seconds=_seconds("LOWPREC_DIST_TIMEOUT", 600))
    dist.init_process_group(backend, timeout=timeout, **_attempt_store(world, timeout))
    ranks = current_ranks(device)
    log.debug("rank %d of %d joined the process group (%s)", ranks.rank, ranks.world_size, backend)
    return ranks


def _attempt_store(world: int, timeout: datetime.timedelta) -> dict:
    """A key space of its own for this restart attempt, where torchrun's agent shares its store with the workers.

    The agent keeps one TCP store for all the attempts of a run, and ``init_process_group`` writes its keys
    (each rank's gloo address) without an attempt prefix; the workers of a restarted attempt could then read
    the dead workers' addresses and fail to connect. Elsewhere: torch's own env:// rendezvous (empty dict).
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return {}
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False, timeout=timeout
    )
    prefix = (
        f"lowprec/{os.environ.get('TORCHELASTIC_RUN_ID', 'run')}/attempt_"
        f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    )
    return {"store": dist.PrefixStore(prefix, store), "rank": int(os.environ["RANK"]), "world_size": world}


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # no rank tears down its connections while another still uses them
        dist.destroy_process_group()


def elastic_restart() -> bool:
    """Whether torchrun's elastic agent restarted this worker after another one failed."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def without_flags(argv: Sequence[str], flags: Sequence[str]) -> list[str]:
    """``argv`` without the given ``--flag VALUE`` / ``--flag=VALUE`` options."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        elif not any(arg.startswith(f + "=") for f in flags):
            out.append(arg)
    return out


def launch(argv: Sequence[str], nproc: int, max_restarts: int = 0) -> int:
    """Run ``lowprec <argv>`` in ``nproc`` worker processes on this machine under torchrun's elastic agent.

    The agent runs in this process with torchrun's ``--standalone`` rendezvous (a free local port; for
    several machines, run ``torchrun`` itself with ``--rdzv-endpoint``). With ``max_restarts`` > 0 it
    restarts every worker when one fails, and the restarted workers resume from the last checkpoint in
    ``--out-dir``.
    Returns the exit status (0 when every worker succeeded).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if nproc < 1:
        raise ValueError(f"--nproc {nproc}: give a number of processes of at least 1.")
    args = get_args_parser().parse_args(
        [f"--nproc-per-node={nproc}", f"--max-restarts={max_restarts}", "--standalone", "-m", "lowprec", *argv]
    )
    try:
        run(args)
    except ChildFailedError as err:
        log.error(
            "a training process failed (after %d restart(s) allowed):\n%s",
            max_restarts,
            err.format_msg() if hasattr(err, "format_msg") else err,
        )
        return 1
    return 0


def rank_zero_first(ranks: Ranks, work):
    """``work()`` on rank 0, then on the other ranks: rank 0 fills a cache (generated data) that the others read."""
    if ranks.is_writer:
        out = work()
        ranks.barrier()
        return out
    ranks.barrier()
    return work()


def previous_world_size(history: Sequence[dict]) -> int | None:
    """The world size of the last epoch recorded in a run's history (1 for runs from before it was recorded)."""
    return history[-1].get("world_size", 1) if history else None
