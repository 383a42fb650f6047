"""The training loop: plain code, one epoch after another, under a precision schedule.

Per step: pick the epoch's policy, run forward inside ``with policy:``,
compute the loss in fp32, backward through the loss scaler, check every
gradient, then step or (on inf/NaN) skip or stop as the policy says, naming
the layer. Per epoch: evaluate every test set (several resolutions give
zero-shot super-resolution for free), write a line of metrics, save an atomic
checkpoint. A resumed run draws the same batches and random numbers as an
uninterrupted one and ends with the same weights, bit for bit.

Datasets are anything with tensors ``x`` (N, C_in, *grid) and ``y``
(N, C_out, *grid) (e.g. :class:`lowprec.data.PDEDataset`), or with a
``batch(index)`` method returning a dict of named tensors whose ``"y"`` is
the target (e.g. :class:`lowprec.data.DictDataset`, for point clouds): the
model gets the other entries by name, ``model(**inputs)``, and the loss and
metrics read ``y``. Batches are indexed from the data set directly, so batch
order depends only on (seed, epoch).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._device import resolve_device
from ..precision import LossScaler, PrecisionOverflowError, PrecisionPolicy, PrecisionSchedule, get_policy
from ..precision.scaling import module_of
from .distributed import current_ranks, previous_world_size
from .engine import Callback, Engine, OptimizerFactory
from .losses import make_loss, relative_h1, relative_l2
from .metrics import SavedTensorMeter, peak_memory_mib, reset_peak_memory, write_jsonl
from .settings import TrainConfig

log = logging.getLogger("lowprec")

Precision = str | PrecisionPolicy | PrecisionSchedule


def as_schedule(precision: Precision) -> PrecisionSchedule:
    """A policy name, policy, schedule string or schedule, as a schedule."""
    if isinstance(precision, PrecisionSchedule):
        return precision
    if isinstance(precision, str) and ("," in precision or ":" in precision or precision == "paper"):
        return PrecisionSchedule.parse(precision)
    return PrecisionSchedule([(1.0, get_policy(precision))])


# -- batches -------------------------------------------------------------------------------------


def take(dataset, index) -> tuple[torch.Tensor, torch.Tensor] | dict[str, torch.Tensor]:
    """Samples ``index`` (slice or index tensor) of a data set: ``dataset.batch(index)`` where it has one
    (a dict of named tensors), else the tensors ``(x[index], y[index])``."""
    if hasattr(dataset, "batch"):
        return dataset.batch(index)
    return dataset.x[index], dataset.y[index]


def unpack(batch, device: torch.device) -> tuple[tuple, dict[str, Any], torch.Tensor]:
    """(positional inputs, named inputs, target) on ``device``: ``(x, y)`` -> ``((x,), {}, y)``,
    ``{"y": y, **named}`` -> ``((), named, y)``; the model is called as ``model(*args, **named)``."""
    if isinstance(batch, Mapping):
        named = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k != "y"}
        return (), named, batch["y"].to(device, non_blocking=True)
    x, y = batch
    return (x.to(device, non_blocking=True),), {}, y.to(device, non_blocking=True)


def on_grid(dataset) -> bool:
    """Whether a data set's targets lie on a grid (H1 defined): PDEDatasets do; a DictDataset with grid=None not."""
    return getattr(dataset, "grid", "nodes") is not None


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset,
    policy: str | PrecisionPolicy = "full",
    batch_size: int = 64,
    device: torch.device | None = None,
) -> dict:
    """Mean relative L2 and (for targets on a grid) H1 errors of ``model`` on ``dataset`` under ``policy``.

    The H1 derivatives wrap round when ``dataset.grid == "periodic"``.
    """
    policy = get_policy(policy)
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    dim = dataset.y.ndim - 2
    periodic, gridded = is_periodic(dataset), on_grid(dataset)
    l2, h1 = [], []
    try:
        for start in range(0, len(dataset.y), batch_size):
            args, named, y = unpack(take(dataset, slice(start, start + batch_size)), device)
            with policy:
                out = model(*args, **named)
            l2.append(relative_l2(out, y))
            if gridded:
                h1.append(relative_h1(out, y, dim, periodic=periodic))
    finally:
        model.train(was_training)
    scores = {"l2": torch.cat(l2).mean().item()}
    return {**scores, "h1": torch.cat(h1).mean().item()} if gridded else scores


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weights decay; quantization scales (``*log_scale``, learned in QAT) do not: decay would
    pull them towards a scale of 1 whatever the data's range."""
    named = list(model.named_parameters())
    scales = [p for n, p in named if n.endswith("log_scale")]
    groups = [{"params": [p for n, p in named if not n.endswith("log_scale")], "weight_decay": weight_decay}]
    return groups + ([{"params": scales, "weight_decay": 0.0}] if scales else [])


def is_periodic(dataset) -> bool:
    """Whether a data set lives on a periodic grid (``PDEDataset.grid``; node grids otherwise)."""
    return getattr(dataset, "grid", "nodes") == "periodic"


def _label(config: TrainConfig) -> dict:
    out = dataclasses.asdict(config)
    out["precision"] = str(as_schedule(config.precision))
    return out


# Fields a resumed run may change without changing the result.
_RESUMABLE_CHANGES = {"device", "progress", "eval_batch_size"}


def default_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """The config's per-epoch learning-rate schedule: cosine, step, or None."""
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.scheduler_t_max or config.epochs)
    if config.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    return None


class Trainer:
    """Train ``model`` on ``train_set``, evaluating on each of ``test_sets`` every epoch.

    A :class:`~lowprec.train.engine.Task` whose rounds are epochs: :meth:`fit` runs it through the
    shared :class:`~lowprec.train.engine.Engine` (the PINN loop runs through the same one).

    Args:
        model: maps (B, C_in, *grid) to (B, C_out, *grid), or named inputs to a prediction of ``y``.
        train_set: has tensors ``x`` and ``y``, or ``batch(index)`` giving dicts with ``"y"`` (module docstring).
        test_sets: name -> dataset (e.g. ``{"test_32": ..., "test_64": ...}``).
        config: a :class:`TrainConfig`.
        out_dir: where ``metrics.jsonl`` and the checkpoints go (None: keep nothing on disk).
        keep_checkpoints: how many of the latest epochs' checkpoints ``out_dir`` keeps
            (``checkpoint.pt``, ``checkpoint.1.pt``, ...; see :mod:`lowprec.train.checkpoint`).
        callbacks: each called with a :class:`~lowprec.train.engine.StepEvent` after every step.
        optimizer_factory: ``(parameter groups, lr, eps) -> optimizer`` (default: ``config.optimizer``,
            Adam or AdamW); the groups are :func:`parameter_groups`, weight decay already set.
        scheduler_factory: ``(optimizer, config) -> scheduler or None``, stepped once per epoch
            (default :func:`default_scheduler`).
    """

    def __init__(
        self,
        model: nn.Module,
        train_set,
        test_sets: Mapping[str, object] = None,
        config: TrainConfig = TrainConfig(),
        out_dir: str | Path | None = None,
        keep_checkpoints: int = 2,
        callbacks: Sequence[Callback] = (),
        optimizer_factory: OptimizerFactory | None = None,
        scheduler_factory: Callable[[torch.optim.Optimizer, TrainConfig], Any] = default_scheduler,
    ):
        self.config = config
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        # One process, or this rank of a torchrun job (lowprec.train.distributed): the model it trains
        # (DDP-wrapped when there are several ranks), its batches, and who writes.
        self.ranks = current_ranks(self.device)
        self.ranks.check_dataset(len(train_set.y))
        self.train_model = self.ranks.wrap(self.model, config.parallel, config.grad_compression)
        self.train_set, self.test_sets = train_set, dict(test_sets or {})
        self.schedule = as_schedule(config.precision)
        if config.loss == "h1" and not on_grid(train_set):
            raise ValueError(
                "loss 'h1' needs targets on a grid, and this data set has grid=None (points); use "
                "loss 'l2', or give the data set its grid ('nodes' or 'periodic')."
            )
        self.loss_fn = make_loss(config.loss, train_set.y.ndim - 2, periodic=is_periodic(train_set))
        if optimizer_factory is None:
            adam = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
            optimizer_factory = lambda groups, lr, eps: adam(groups, lr=lr, eps=eps)  # noqa: E731
        self.optimizer = optimizer_factory(parameter_groups(model, config.weight_decay), config.lr, config.adam_eps)
        self.scheduler = scheduler_factory(self.optimizer, config)
        self.scaler = LossScaler(init_scale=config.init_loss_scale)
        self.rounds = config.epochs
        self.steps_per_epoch = -(-(len(train_set.y) // self.ranks.world_size) // config.batch_size)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.engine = Engine(
            self,
            out_dir=self.out_dir,
            keep_checkpoints=keep_checkpoints,
            callbacks=callbacks,
            progress=config.progress,
            is_writer=self.ranks.is_writer,
            log_record=format_record,
            steps_per_round=lambda epoch: self.steps_per_epoch,
            round_label=lambda epoch: f"epoch {epoch + 1}/{config.epochs} [{self.policy_at(epoch).name}]",
        )
        self._consecutive_skips = 0
        torch.manual_seed(config.seed)

    @property
    def epoch(self) -> int:
        """Epochs completed."""
        return self.engine.round

    @property
    def history(self) -> list[dict]:
        """One metrics record per completed epoch."""
        return self.engine.history

    def policy_at(self, epoch: int) -> PrecisionPolicy:
        policy = self.schedule.policy_at(epoch, self.config.epochs)
        return policy.replace(on_overflow=self.config.on_overflow) if self.config.on_overflow else policy

    # -- the engine's task: an epoch's steps, one step, the epoch's record ---------------------------
    def start_round(self, epoch: int) -> None:
        self._policy = self.policy_at(epoch)
        self.model.train()
        reset_peak_memory(self.device)
        self._skipped, self._losses, self._seen = 0, [], 0
        self._meter = SavedTensorMeter()
        self._start = time.perf_counter()

    def steps(self, epoch: int) -> Iterable[tuple[int, torch.Tensor]]:
        """The epoch's batches (index tensors), a function of (seed, epoch) and this process's rank."""
        return enumerate(self.ranks.batches(len(self.train_set.y), self.config.batch_size, self.config.seed, epoch))

    def step(self, item: tuple[int, torch.Tensor]) -> tuple[float | None, None]:
        """One optimizer step on batch ``idx``; the loss, or None when the step was skipped."""
        self._step_in_epoch, idx = item
        args, named, y = unpack(take(self.train_set, idx), self.device)
        meter = self._meter if self._step_in_epoch == 0 else contextlib.nullcontext()
        loss = self._step(args, named, y, self._policy, meter)
        if loss is not None:
            self._losses.append(loss * len(idx))
            self._seen += len(idx)
        return loss, None

    def _step(self, args: tuple, named: dict, y, policy: PrecisionPolicy, meter) -> float | None:
        """One optimizer step on ``model(*args, **named)`` against ``y``; returns the loss, or None when skipped."""
        self.scaler.enabled = policy.loss_scaling
        self.optimizer.zero_grad(set_to_none=True)
        with meter, policy:
            out = self.train_model(*args, **named)
        loss = self.loss_fn(out, y)
        self.scaler.scale(loss).backward()
        bad_params = self.scaler.unscale_(self.model)
        loss_value = loss.item()
        forward = not torch.isfinite(loss)
        # All ranks skip together, and back off the loss scale together: no rank may step or move its
        # scale alone. The scale backs off when some rank's overflow was in the gradients only.
        if self.ranks.any(bool(bad_params) or forward):
            gradient_only = self.ranks.any(bool(bad_params) and not forward)
            self._overflow(args, named, policy, bad_params, loss_value)
            self.optimizer.zero_grad(set_to_none=True)
            if gradient_only:
                # Only a gradient overflow is a scaling problem; the scale cannot fix the forward pass.
                self.scaler.update(overflow=True)
            return None
        self.optimizer.step()
        self.scaler.update(overflow=False)
        self._consecutive_skips = 0
        return loss_value

    def _overflow(
        self, args: tuple, named: dict, policy: PrecisionPolicy, bad_params: list[str], loss_value: float
    ) -> None:
        """Name the layer, the cause (forward or backward pass) and the remedies that fit it; skip or raise."""
        where = f"epoch {self.epoch + 1} step {self._step_in_epoch + 1}"
        scaling = self.scaler.enabled
        state = f"at loss scale {self.scaler.scale_value:g}" if scaling else "without loss scaling"
        if not bad_params and math.isfinite(loss_value):
            message = f"{where}: under policy '{policy.name}' ({state}), the step overflowed on another rank."
            remedy = " See that rank's log for the layer and the remedies."
            action = "every rank skips it"
        elif not math.isfinite(loss_value):
            with policy:
                found = self.ranks.first_nonfinite_module(self.model, *args, **named)
            layer = f"{found[0]} ({found[1]})" if found else "the loss"
            message = f"{where}: under policy '{policy.name}' ({state}), the forward pass produced inf/NaN in {layer}."
            remedy = (
                " Loss scaling cannot fix a forward overflow. Remedies: normalize the input (data.normalize:"
                " true, or a UnitGaussianNormalizer), a stabilizer (policy.replace(stabilizer='tanh')), or a"
                " wider dtype (a bf16 policy such as 'mixed_bf16', or 'full')."
            )
            action = f"keeping the loss scale at {self.scaler.scale_value:g}" if scaling else "nothing to rescale"
        else:
            modules = list(dict.fromkeys(module_of(n) for n in bad_params))
            listed = f"{', '.join(modules[:4])}{'...' if len(modules) > 4 else ''}"
            message = (
                f"{where}: under policy '{policy.name}' ({state}), the backward pass produced inf/NaN "
                f"gradients in {modules[-1]} (first reached by the backward pass; {len(modules)} module(s) "
                f"affected: {listed})."
            )
            if scaling:
                remedy = (
                    " Remedies: a lower init_loss_scale or learning rate, a stabilizer "
                    "(policy.replace(stabilizer='tanh')), or a bf16 policy."
                )
                action = f"lowering the loss scale to {self.scaler.scale_value * self.scaler.backoff_factor:g}"
            else:
                remedy = (
                    " Remedies: loss scaling (policy.replace(loss_scaling=True), or the 'mixed'/'amp' "
                    "policies), a lower learning rate, or a bf16 policy."
                )
                action = "loss scaling is off"
        self._consecutive_skips += 1
        self._skipped += 1
        if policy.on_overflow == "raise" or self._consecutive_skips > self.config.max_skipped_steps:
            if policy.on_overflow != "raise":
                message += f" {self._consecutive_skips} steps in a row overflowed."
            raise PrecisionOverflowError(message + remedy)
        log.warning("%s Skipping the step (%s).%s", message, action, remedy)

    def end_round(self, epoch: int) -> dict:
        """Step the scheduler, evaluate every test set, and return the epoch's metrics record."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - self._start
        policy, n = self._policy, len(self.train_set.y)
        loss_sum, seen = self.ranks.sum([sum(self._losses), self._seen])
        record = {
            "epoch": epoch + 1,
            "policy": policy.name,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum / seen if seen else float("nan"),
            "seconds": seconds,
            "samples_per_s": n / seconds,
            "activation_mib": self._meter.mib,
            "peak_memory_mib": peak_memory_mib(self.device),
            "loss_scale": self.scaler.scale_value if policy.loss_scaling else None,
            "skipped_steps": self._skipped,
            "world_size": self.ranks.world_size,
        }
        if self.scheduler is not None:
            with warnings.catch_warnings():
                # An epoch whose steps all overflowed never called optimizer.step(); torch warns.
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                self.scheduler.step()
        for name, test_set in self.test_sets.items():
            scores = self.ranks.evaluate(self.model, test_set, policy, self.config.eval_batch_size, self.device)
            record.update({f"{name}_{k}": v for k, v in scores.items()})
        return record

    def finish(self) -> None:
        pass

    def fit(self, max_epochs: int | None = None) -> list[dict]:
        """Train until ``config.epochs`` (or for at most ``max_epochs`` more); returns the metrics history."""
        self._consecutive_skips = 0
        return self.engine.run(max_epochs)

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Model, optimizer, scheduler and scaler states with the configuration (the engine adds the rest)."""
        return {
            "config": _label(self.config),
            "model": self.ranks.model_state(self.model),
            "optimizer": self.ranks.optimizer_state(self.model, self.optimizer),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved; a checkpoint of another configuration is refused."""
        # A setting added since the checkpoint was written had its default then.
        saved, current = {**_label(TrainConfig()), **state["config"]}, _label(self.config)
        changed = {k for k in current if k not in _RESUMABLE_CHANGES and saved.get(k) != current[k]}
        if changed:
            diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in sorted(changed))
            raise ValueError(
                f"checkpoint {state.get('_path', '')} was written with a different configuration ({diffs}); "
                "resume with the original settings, or start a new run in another directory."
            )
        self.ranks.load_model_state(self.model, state["model"])
        self.ranks.load_optimizer_state(self.model, self.optimizer, state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])

    def save(self, path: str | Path) -> None:
        """Write a checkpoint atomically (temporary file, fsync, rename).

        A run directory, or its ``checkpoint.pt``, gets what :meth:`fit` writes: the newest of the
        kept checkpoints, with the manifest updated; any other path gets one file. With several processes
        every rank calls this (FSDP2 gathers the weights from all of them) and rank 0 writes.
        """
        self.engine.save(path)

    def resume(self, path: str | Path) -> Trainer:
        """Load a checkpoint file written by :meth:`save`, or a run directory's newest good checkpoint.

        Loading runs no code (weights only). In a run directory a damaged newest checkpoint is
        named in a warning and the previous one is used; :class:`~lowprec.train.checkpoint.CheckpointError`
        when none is usable.
        """
        _, path = self.engine.resume(path, map_location=self.device)
        before = previous_world_size(self.history)
        if before not in (None, self.ranks.world_size):
            # The model and optimizer states are whole on every rank, so any world size can resume; only the
            # global batch (batch_size per rank times the world size) changes, and with it the result.
            log.warning(
                "resuming %s, trained on %d process(es), on %d: the global batch changes from %d to %d "
                "samples, so the run will not match an uninterrupted one.",
                path,
                before,
                self.ranks.world_size,
                before * self.config.batch_size,
                self.ranks.world_size * self.config.batch_size,
            )
        if self.out_dir is not None and self.ranks.is_writer:
            write_jsonl(self.out_dir / "metrics.jsonl", self.history)
        return self


def format_record(record: dict) -> str:
    """One line per epoch for the console."""
    tests = " ".join(f"{k}={v:.4f}" for k, v in record.items() if k.endswith("_l2") or k.endswith("_h1"))
    skipped = f" skipped={record['skipped_steps']}" if record.get("skipped_steps") else ""
    return (
        f"epoch {record['epoch']:>3} [{record['policy']}] loss={record['train_loss']:.4f} {tests} "
        f"{record['seconds']:.1f}s{skipped}"
    )


def read_metrics(path: str | Path) -> list[dict]:
    """Read a ``metrics.jsonl`` file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
