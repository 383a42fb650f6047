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
* ``model_state``/``optimizer_state`` and their ``load_*``: whole, rank-independent checkpoint states.

``batch_size`` is per rank (PyTorch's convention); the global batch is ``batch_size * world_size``.

Two settings of :class:`~lowprec.train.TrainConfig` choose how the ranks share the model:

* ``parallel``: ``"ddp"`` (every rank holds the whole model; DDP all-reduces the gradients) or ``"fsdp"``
  (FSDP2, :func:`fully_shard_model`: each rank holds ~1/W of the parameters, gradients and Adam moments,
  and gathers a block's weights just before it runs). Checkpoints are the same whole state dicts in both.
* ``grad_compression``: ``"none"`` or ``"bf16"``: the gradients travel in bf16 (DDP's
  ``bf16_compress_hook``; FSDP2's ``reduce_dtype``), halving the bytes on the wire for about 2^-8
  relative rounding of each averaged gradient. The parameters, the optimizer and the update stay fp32.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import os
import time
import types
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

from .settings import GRAD_COMPRESSION, PARALLEL, check_choice

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
    def wrap(self, model: nn.Module, parallel: str = "ddp", grad_compression: str = "none") -> nn.Module:
        """The module to train: ``model`` itself for one process, else a DDP wrapper that shares its parameters,
        or (``parallel="fsdp"``) ``model`` sharded in place by :func:`fully_shard_model`.

        Under DDP, buffers (the normalizers' statistics) are not broadcast on every forward: every rank computes
        them from the same data, and a forward pass without collectives lets one rank alone re-run the model to
        find the layer that overflowed. ``grad_compression="bf16"`` all-reduces (DDP) or reduce-scatters (FSDP2)
        the gradients in bf16. Build the optimizer after this call: FSDP2 replaces the parameters.
        """
        check_choice("parallel", parallel, PARALLEL)
        check_choice("grad_compression", grad_compression, GRAD_COMPRESSION)
        if not self.distributed:
            if grad_compression != "none" or parallel != "ddp":
                log.debug("one process: parallel=%s, grad_compression=%s change nothing", parallel, grad_compression)
            return model
        if parallel == "fsdp":
            if grad_compression == "bf16":
                from torch.distributed.fsdp import MixedPrecisionPolicy

                return fully_shard_model(model, mp_policy=MixedPrecisionPolicy(reduce_dtype=torch.bfloat16))
            return fully_shard_model(model)
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
        wrapped = ddp(model, device_ids=ids, **quiet)
        if grad_compression == "bf16":
            from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

            # DDP refuses torch's hook by its name unless NCCL >= 2.10 (or XCCL) carries it, but gloo sums bf16
            # too: there the same hook goes in under another name.
            hook = default_hooks.bf16_compress_hook if dist.get_backend() != "gloo" else _bf16_compress_gloo
            wrapped.register_comm_hook(None, hook)
        return wrapped

    # -- checkpoint states ----------------------------------------------------------------------------
    def model_state(self, model: nn.Module) -> dict:
        """``model``'s whole state dict (the unwrapped model's; plain tensors under FSDP2 too).

        Under FSDP2 the weights are gathered from all ranks, so every rank must call this together; rank 0
        gets them on the CPU, the other ranks an empty dict (only rank 0 writes checkpoints).
        """
        if not is_sharded(model):
            return model.state_dict()
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return get_model_state_dict(model, options=_whole(cpu_offload=True))

    def load_model_state(self, model: nn.Module, state: dict) -> None:
        """Load a whole state dict (from :meth:`model_state`, any world size, DDP or FSDP2) into ``model``."""
        if not is_sharded(model):
            model.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        set_model_state_dict(model, state, options=_whole())

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
        """``optimizer.state_dict()``, whole: under FSDP2 gathered like :meth:`model_state` (every rank calls it).

        The format is the single-process one (parameters numbered in the optimizer's order), so a checkpoint
        written under FSDP2 loads into one process or DDP and the other way round.
        """
        if not is_sharded(model):
            return optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        state = get_optimizer_state_dict(model, optimizer, options=_whole(cpu_offload=True))
        if not state:  # not rank 0
            return {}
        index = {name: i for i, name in enumerate(_optimizer_names(model, optimizer))}
        return {
            "state": {index[name]: s for name, s in state["state"].items()},
            "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in state["param_groups"]],
        }

    def load_optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
        """Load a whole optimizer state (:meth:`optimizer_state`'s format) into ``optimizer`` of ``model``."""
        if not is_sharded(model):
            optimizer.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        names = _optimizer_names(model, optimizer)
        named = {
            "state": {names[i]: s for i, s in state["state"].items()},
            "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in state["param_groups"]],
        }
        set_optimizer_state_dict(model, optimizer, named, options=_whole())

    def first_nonfinite_module(self, model: nn.Module, *args, **named) -> tuple[str, str] | None:
        """:func:`lowprec.precision.scaling.first_nonfinite_module`, run by this rank alone after its overflow.

        A sharded model cannot re-run one rank's forward pass (each layer would wait for the other ranks'
        shards), so there the search is not run and the answer says how to get it.
        """
        if is_sharded(model):
            return (
                "a layer not searched",
                "parallel 'fsdp' shards the weights, so one rank cannot re-run its forward pass; rerun with "
                "parallel 'ddp' or one process to name the layer",
            )
        from ..precision.scaling import first_nonfinite_module

        return first_nonfinite_module(model, *args, **named)

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
        if not self.distributed or is_sharded(model):
            # FSDP2 gathers each block's weights in its forward pass, a collective: the ranks must run the same
            # batches, so each scores the whole test set (exact means, W times the compute).
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
    shards its model with this under ``parallel: fsdp`` (:meth:`Ranks.wrap`).
    """
    from torch.distributed.fsdp import fully_shard

    for name, module in model.named_modules():
        if name.rpartition(".")[2] == "blocks" and isinstance(module, nn.ModuleList):
            for block in module:
                fully_shard(block, **fsdp)
    return fully_shard(model, **fsdp)


def is_sharded(model: nn.Module) -> bool:
    """Whether ``model`` was sharded by FSDP2 (``fully_shard``): its parameters are DTensors."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # torch without FSDP2
        return False
    return isinstance(model, FSDPModule)


def _bf16_compress_gloo(process_group, bucket):
    """torch's ``bf16_compress_hook``: each rank's gradient bucket divided by the world size in bf16, summed."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    return default_hooks.bf16_compress_hook(process_group, bucket)


def _whole(cpu_offload: bool = False):
    """Options for torch.distributed.checkpoint.state_dict: whole (unsharded) tensors, gathered on rank 0's CPU."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=cpu_offload)


def _optimizer_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The parameter names in the order ``optimizer.state_dict()`` numbers them (group by group)."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]


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
        # gloo's worker threads free each finished collective after it completes, and a collective that
        # holds tensors made in Python (the bf16 hook's, Ranks.sum's) needs the GIL to be freed. A rank that
        # returns at once frees its DDP model, and with it the process group, which joins those threads
        # while holding the GIL: both wait forever (seen about once in ten `--grad-compression bf16` runs
        # on gloo). Sleeping releases the GIL for the threads to finish.
        time.sleep(0.2)
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
