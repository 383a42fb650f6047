"""How to train: :class:`TrainConfig`, importable without torch so that the command line's parser builds fast."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..precision import PrecisionPolicy, PrecisionSchedule

    Precision = str | PrecisionPolicy | PrecisionSchedule
else:
    # What a configuration file or flag holds: a name or schedule string (lowprec.train.trainer.as_schedule
    # reads it). lowprec.config types its keys from this annotation.
    Precision = str

LOSSES = ("l2", "h1")
#: How several processes share the model (lowprec.train.distributed): DDP replicas or FSDP2 shards.
PARALLEL = ("ddp", "fsdp")
#: The dtype gradients travel in between processes.
GRAD_COMPRESSION = ("none", "bf16")


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{key}={value!r}; choose {' or '.join(repr(c) for c in choices)}.")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Every field has a default that suits a small FNO.

    ``precision`` is a policy name (``"mixed"``), a policy object, a schedule
    string (``"half:0.25,mixed:0.5,full:0.25"``, or ``"paper"`` for Tu et al.'s)
    or a :class:`PrecisionSchedule`. ``on_overflow`` overrides the policies' own
    choice (``"skip"`` or ``"raise"``). ``scheduler_t_max`` is the cosine schedule's length in
    epochs (its ``T_max``; None: ``epochs``): a run shorter than the schedule stops part-way down it,
    as the first epochs of a longer run would. ``parallel`` (``"ddp"`` or ``"fsdp"``) and ``grad_compression``
    (``"none"`` or ``"bf16"``) say how several processes share the model and its gradients
    (:mod:`lowprec.train.distributed`); one process ignores them.
    """

    epochs: int = 20
    batch_size: int = 16
    eval_batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    adam_eps: float = 1e-8
    scheduler: str = "cosine"
    scheduler_t_max: int | None = None
    step_size: int = 100
    gamma: float = 0.5
    loss: str = "l2"
    precision: Precision = "full"
    on_overflow: str | None = None
    init_loss_scale: float = 2.0**16
    max_skipped_steps: int = 25
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    parallel: str = "ddp"
    grad_compression: str = "none"

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("epochs, batch_size and eval_batch_size must be positive.")
        if not self.lr > 0 or self.weight_decay < 0 or not self.adam_eps > 0 or not self.init_loss_scale > 0:
            raise ValueError(
                f"lr={self.lr}, adam_eps={self.adam_eps} and init_loss_scale={self.init_loss_scale} "
                f"must be positive, weight_decay={self.weight_decay} non-negative."
            )
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose 'adam' or 'adamw'.")
        if self.scheduler not in ("cosine", "step", "none"):
            raise ValueError(f"unknown scheduler {self.scheduler!r}; choose 'cosine', 'step' or 'none'.")
        if self.scheduler_t_max is not None and self.scheduler_t_max < 1:
            raise ValueError(
                f"scheduler_t_max={self.scheduler_t_max}: the cosine schedule's length in epochs "
                "must be >= 1 (unset: the number of epochs)."
            )
        if self.on_overflow not in (None, "skip", "raise"):
            raise ValueError(f"on_overflow={self.on_overflow!r}; choose 'skip' or 'raise'.")
        if self.loss not in LOSSES:  # the names lowprec.train.make_loss builds
            raise ValueError(f"unknown loss {self.loss!r}; choose 'l2' (relative L2) or 'h1' (relative H1).")
        check_choice("parallel", self.parallel, PARALLEL)
        check_choice("grad_compression", self.grad_compression, GRAD_COMPRESSION)
