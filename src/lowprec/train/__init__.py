"""Training: the loop, losses, metrics and atomic checkpoints."""

from .checkpoint import CheckpointError, atomic_write, load_checkpoint, load_latest, save_checkpoint, save_rotating
from .losses import RelativeH1Loss, RelativeL2Loss, make_loss, relative_h1, relative_l2
from .metrics import SavedTensorMeter
from .trainer import TrainConfig, Trainer, as_schedule, evaluate, format_record, read_metrics

__all__ = [
    "TrainConfig", "Trainer", "as_schedule", "evaluate", "format_record", "read_metrics", "RelativeL2Loss",
    "RelativeH1Loss", "make_loss", "relative_l2", "relative_h1", "SavedTensorMeter", "atomic_write",
    "load_checkpoint", "save_checkpoint", "CheckpointError", "load_latest", "save_rotating",
]
