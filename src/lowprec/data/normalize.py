"""Per-channel normalizers as nn.Modules, so they move with ``.to(device)`` and live in state_dicts.

Statistics are reduced over the batch and all grid axes, one value per channel.
That makes them resolution-invariant: a normalizer fitted on 32² data encodes 64²
data of the same problem the same way, which zero-shot super-resolution needs.
(neuraloperator's pointwise normalizer stores a mean per grid point and so only
works at the resolution it was fitted at.)

Buffers are float32 and the arithmetic follows torch's type promotion, so fp16 or
bf16 inputs come back as float32: normalize data before casting it down, and
decode low-precision predictions into float32 for the loss.
"""

from __future__ import annotations

import torch
from torch import nn


def _per_channel(stat: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(C,) -> (1, C, 1, ..., 1) to broadcast against (N, C, *grid)."""
    return stat.view(1, -1, *([1] * (like.ndim - 2)))


def _sync_fitted_flag(module: _ChannelNormalizer, incompatible_keys) -> None:
    module._is_fitted = bool(module.fitted)


class _ChannelNormalizer(nn.Module):
    def __init__(self, n_channels: int):
        super().__init__()
        self.n_channels = n_channels
        # The buffer carries "fitted" through state_dicts; the Python flag is what encode
        # reads, so a CUDA normalizer does not synchronize the device on every call.
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self._is_fitted = False
        self.register_load_state_dict_post_hook(_sync_fitted_flag)

    def _check(self, x: torch.Tensor, what: str) -> None:
        if not self._is_fitted:
            raise RuntimeError(
                f"{type(self).__name__}.{what} called before fit(); call "
                f"normalizer.fit(train.x) first, or load a fitted state_dict."
            )
        if x.ndim < 2 or x.shape[1] != self.n_channels:
            raise ValueError(
                f"{type(self).__name__} was built for {self.n_channels} channels "
                f"(axis 1), got a tensor of shape {tuple(x.shape)}."
            )

    @staticmethod
    def _reduce_dims(x: torch.Tensor) -> list[int]:
        return [0] + list(range(2, x.ndim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)


class UnitGaussianNormalizer(_ChannelNormalizer):
    """x -> (x - mean_c) / (std_c + eps), per channel c.

    Args:
        n_channels: C of the (N, C, *grid) tensors it will see.
        eps: added to std so constant channels do not divide by zero.

    Usage: ``norm = UnitGaussianNormalizer(1).fit(train.x); x = norm.encode(x);
    y_pred = norm.decode(z)``.
    """

    def __init__(self, n_channels: int, eps: float = 1e-6):
        super().__init__(n_channels)
        self.eps = eps
        self.register_buffer("mean", torch.zeros(n_channels))
        self.register_buffer("std", torch.ones(n_channels))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> UnitGaussianNormalizer:
        """Set mean and std per channel from x (N, C, *grid); accumulated in float64."""
        if x.ndim < 2 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected (N, {self.n_channels}, *grid), got {tuple(x.shape)}.")
        x64 = x.detach().to(torch.float64)
        dims = self._reduce_dims(x)
        self.mean.copy_(x64.mean(dim=dims))
        self.std.copy_(x64.std(dim=dims, unbiased=False))
        self.fitted.fill_(True)
        self._is_fitted = True
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, "encode")
        return (x - _per_channel(self.mean, x)) / (_per_channel(self.std, x) + self.eps)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        self._check(z, "decode")
        return z * (_per_channel(self.std, z) + self.eps) + _per_channel(self.mean, z)

    def extra_repr(self) -> str:
        return f"n_channels={self.n_channels}, eps={self.eps}"


class RangeNormalizer(_ChannelNormalizer):
    """x -> low + (high - low) (x - min_c) / (max_c - min_c + eps), per channel c.

    Bounded outputs suit fp16 (max 65504) and tanh-stabilized layers; a binary
    coefficient such as Darcy's maps onto {low, high} (to within eps).
    """

    def __init__(self, n_channels: int, low: float = 0.0, high: float = 1.0, eps: float = 1e-6):
        super().__init__(n_channels)
        if not high > low:
            raise ValueError(f"need high > low, got low={low}, high={high}.")
        self.low, self.high, self.eps = low, high, eps
        self.register_buffer("min", torch.zeros(n_channels))
        self.register_buffer("max", torch.ones(n_channels))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> RangeNormalizer:
        if x.ndim < 2 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected (N, {self.n_channels}, *grid), got {tuple(x.shape)}.")
        flat = x.detach().transpose(0, 1).reshape(self.n_channels, -1)
        self.min.copy_(flat.min(dim=1).values)
        self.max.copy_(flat.max(dim=1).values)
        self.fitted.fill_(True)
        self._is_fitted = True
        return self

    def _scale(self, like: torch.Tensor) -> torch.Tensor:
        return (self.high - self.low) / (_per_channel(self.max - self.min, like) + self.eps)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, "encode")
        return self.low + (x - _per_channel(self.min, x)) * self._scale(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        self._check(z, "decode")
        return (z - self.low) / self._scale(z) + _per_channel(self.min, z)

    def extra_repr(self) -> str:
        return f"n_channels={self.n_channels}, low={self.low}, high={self.high}, eps={self.eps}"
