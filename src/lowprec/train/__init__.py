"""Training: the engine and the operator trainer, losses, metrics and atomic checkpoints."""

from typing import TYPE_CHECKING

from .._lazy import lazy_package

if TYPE_CHECKING:
    from .checkpoint import CheckpointError, load_checkpoint, load_latest, save_checkpoint, save_rotating
    from .engine import Engine, StepEvent, StopTraining
    from .losses import RelativeH1Loss, RelativeL2Loss, make_loss, relative_h1, relative_l2
    from .metrics import SavedTensorMeter
    from .settings import TrainConfig
    from .trainer import Trainer, evaluate, read_metrics

lazy_package(__name__)

__all__ = [
    "Engine",
    "StepEvent",
    "StopTraining",
    "TrainConfig",
    "Trainer",
    "evaluate",
    "read_metrics",
    "RelativeL2Loss",
    "RelativeH1Loss",
    "make_loss",
    "relative_l2",
    "relative_h1",
    "SavedTensorMeter",
    "load_checkpoint",
    "save_checkpoint",
    "CheckpointError",
    "load_latest",
    "save_rotating",
]
