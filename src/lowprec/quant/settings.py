"""What a quantization study runs: :class:`StudyConfig`, importable without torch so that its parser builds fast."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from .._hints import did_you_mean, problem_key
from .config import PRESETS, get_config

# Fields that may differ between runs of one sweep file: what is swept, not how each point is made.
_SWEPT = {"presets", "factors"}


@dataclass(frozen=True)
class StudyConfig:
    """One sweep: data, model, float training, QAT, and the grid of (preset, factor) points.

    Attributes:
        model: a registered model (:func:`lowprec.models.available_models`): ``"fno"``, ``"unet"``,
            ``"transformer"``...
        dataset: a generator in ``lowprec.data.GENERATORS`` (``"darcy"``, ``"burgers"``...).
        problem_params: the generator's parameters, as (key, value) pairs.
        resolution: full grid points per axis; every factor must divide it (node grids:
            resolution - 1), e.g. 65 (Darcy) or 256 (periodic 1D).
        n_train, n_test: samples. data_seed: the generator's seed (test sets: data_seed + 1).
        width: FNO hidden channels / UNet first-level features / Transformer embedding width.
        depth: FNO layers / UNet down-sampling steps / Transformer blocks.
        n_modes: FNO modes per axis (at most the coarsest grid). patch_size: Transformer patches.
        epochs, lr: float training. qat_epochs, qat_lr: fine-tuning of every point.
        batch_size: both. calib_batches: batches observed by calibration. seed: weights and batches.
        presets: quantization presets. factors: resolution reduction factors.
    """

    model: str = "fno"
    dataset: str = "darcy"
    problem_params: tuple = ()
    resolution: int = 65
    n_train: int = 400
    n_test: int = 100
    data_seed: int = 0
    width: int = 32
    depth: int = 4
    n_modes: int = 8
    patch_size: int = 4
    epochs: int = 30
    lr: float = 3e-3
    qat_epochs: int = 5
    qat_lr: float = 5e-4
    batch_size: int = 16
    calib_batches: int = 16
    seed: int = 0
    presets: tuple = tuple(PRESETS)
    factors: tuple = (1, 2, 4, 8)

    def __post_init__(self):
        from ..data import GENERATORS
        from ..models.registry import resolve_model

        resolve_model(self.model)  # an unknown name raises, listing the registered ones
        object.__setattr__(self, "dataset", problem_key(self.dataset))
        if self.dataset not in GENERATORS:
            raise ValueError(
                f"unknown dataset {self.dataset!r}.{did_you_mean(self.dataset, GENERATORS)} "
                f"Generators: {', '.join(GENERATORS)}."
            )
        for preset in self.presets:
            get_config(preset)
        if not self.factors or any(int(f) < 1 for f in self.factors):
            raise ValueError(f"resolution factors must be positive integers, got {self.factors}.")
        if self.epochs < 1 or self.qat_epochs < 0:
            raise ValueError("epochs must be >= 1 and qat_epochs >= 0.")

    def identity(self) -> dict:
        """What fixes the result of every point: the configuration without the swept lists, as JSON reads it back
        (tuples as lists, nested ones too), so that a saved identity compares equal to the current one."""
        return json.loads(json.dumps({k: v for k, v in dataclasses.asdict(self).items() if k not in _SWEPT}))
