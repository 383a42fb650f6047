"""A model with its data normalizers attached, so that it maps physical inputs to physical outputs.

Keeping the normalizers inside the model means checkpoints, evaluation at
other resolutions and inference need nothing else, and the loss is measured
in physical units. The decode runs in the normalizer's fp32 buffers, so a
model emitting fp16 under autocast still returns fp32.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class Normalizer(Protocol):
    """What :class:`Normalized` needs of a normalizer, e.g. :class:`lowprec.data.UnitGaussianNormalizer`."""

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


class Normalized(nn.Module):
    """``y = y_normalizer.decode(model(x_normalizer.encode(x)))``; either normalizer may be None."""

    def __init__(
        self, model: nn.Module, x_normalizer: Normalizer | None = None, y_normalizer: Normalizer | None = None
    ):
        super().__init__()
        self.model, self.x_normalizer, self.y_normalizer = model, x_normalizer, y_normalizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input = getattr(self.model, "check_input", None)
        if check_input is not None:
            check_input(x)  # its message names the model's expectations, not the normalizer's
        if self.x_normalizer is not None:
            x = self.x_normalizer.encode(x)
        out = self.model(x)
        return self.y_normalizer.decode(out) if self.y_normalizer is not None else out
