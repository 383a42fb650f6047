"""A model with its data normalizers attached, so that it maps physical inputs to physical outputs.

Keeping the normalizers inside the model means checkpoints, evaluation at
other resolutions and inference need nothing else, and the loss is measured
in physical units. The decode runs in the normalizer's fp32 buffers, so a
model emitting fp16 under autocast still returns fp32.
"""

from __future__ import annotations

import torch
from torch import nn


class Normalized(nn.Module):
    """``y = y_normalizer.decode(model(x_normalizer.encode(x)))``; either normalizer may be None."""

    def __init__(self, model: nn.Module, x_normalizer: nn.Module = None, y_normalizer: nn.Module = None):
        super().__init__()
        self.model, self.x_normalizer, self.y_normalizer = model, x_normalizer, y_normalizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self.model, "check_input"):
            self.model.check_input(x)  # its message names the model's expectations, not the normalizer's
        if self.x_normalizer is not None:
            x = self.x_normalizer.encode(x)
        out = self.model(x)
        return self.y_normalizer.decode(out) if self.y_normalizer is not None else out
