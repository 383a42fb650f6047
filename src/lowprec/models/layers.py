"""Pointwise building blocks of neural operators: channel MLPs, grid embedding, domain padding.

All act on fields shaped (batch, channels, *grid) with 1 to 3 spatial axes,
and none depends on the grid size, so a model built from them runs at any
resolution.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


class GridModel(Protocol):
    dim: int  # spatial axes
    in_channels: int


def check_grid_input(model: GridModel, x: torch.Tensor) -> None:
    """Raise unless x is (batch, model.in_channels, N1, ..., N_dim), naming the fix."""
    axes = ", ".join(f"N{k + 1}" for k in range(model.dim))
    if x.ndim != model.dim + 2 or x.shape[1] != model.in_channels:
        raise ValueError(f"{type(model).__name__}(dim={model.dim}) expects input (batch, {model.in_channels}, "
                         f"{axes}), got shape {tuple(x.shape)}. Build the model with dim={x.ndim - 2} "
                         f"and in_channels={x.shape[1] if x.ndim > 1 else '?'}, or add a channel axis with "
                         "x.unsqueeze(1).")


def pointwise(in_channels: int, out_channels: int, dim: int, bias: bool = True) -> nn.Module:
    """A 1x1 convolution over ``dim`` spatial axes: a Linear applied at every grid point."""
    return _CONV[dim](in_channels, out_channels, kernel_size=1, bias=bias)


def mark_coordinate_input(layer: nn.Module, n_coordinates: int) -> nn.Module:
    """Record that the last ``n_coordinates`` input channels of ``layer`` are :class:`GridEmbedding` coordinates.

    Coordinates depend on the grid, not on the sample, so the layer's product with them is
    a per-position constant, like its bias. :mod:`lowprec.quant` reads the mark: it quantizes
    only the data channels and counts the coordinate product as computed once per grid.
    Without it the coordinates (0..1) would share one activation scale with the field
    (e.g. +-4): at 8 bits, 32 levels across the domain; the Transformer on Burgers had 1.22x
    its float test MSE under w8a8 that way, 1.07x with the mark. Returns ``layer``.
    """
    # nn.Module.__setattr__ is typed for tensors and modules; any value is stored.
    layer.coordinate_channels = n_coordinates  # type: ignore[assignment]
    return layer


class ChannelMLP(nn.Module):
    """Two pointwise layers with a GELU between: (B, in, *grid) -> (B, out, *grid)."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, dim: int):
        super().__init__()
        self.fc1 = pointwise(in_channels, hidden_channels, dim)
        self.fc2 = pointwise(hidden_channels, out_channels, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class GridEmbedding(nn.Module):
    """Append the coordinates of each grid point as extra channels: (B, C, *grid) -> (B, C + d, *grid).

    Coordinates run over [0, 1] along each axis, end points included (node
    grids with boundary points, as the Darcy data); with ``endpoint=False``
    they are i / N (periodic grids). Either way the same physical point gets
    the same coordinate at every resolution.
    """

    def __init__(self, dim: int, endpoint: bool = True):
        super().__init__()
        self.dim, self.endpoint = dim, endpoint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = x.shape[2:]
        axes = [torch.linspace(0, 1, n + (not self.endpoint), device=x.device, dtype=x.dtype)[:n] for n in grid]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij"))  # (d, *grid)
        return torch.cat([x, coords.expand(x.shape[0], *coords.shape)], dim=1)


class DomainPadding(nn.Module):
    """Zero-pad the end of every spatial axis by a fraction of its size, and crop it back.

    The Fourier layer treats the domain as periodic; padding a non-periodic
    field (Darcy) gives the field room to leave the boundary without wrapping
    round. The pad is a fraction of the grid, so it scales with resolution.
    """

    def __init__(self, fraction: float):
        super().__init__()
        if not 0 <= fraction < 1:
            raise ValueError(f"domain padding fraction must lie in [0, 1), got {fraction}.")
        self.fraction = fraction

    def pads(self, grid: Sequence[int]) -> list[int]:
        return [round(n * self.fraction) for n in grid]

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.pads(x.shape[2:])
        if not any(pads):
            return x
        spec = []
        for p in reversed(pads):  # F.pad lists the last axis first
            spec += [0, p]
        return F.pad(x, spec)

    def unpad(self, x: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        return x[(slice(None), slice(None)) + tuple(slice(0, n) for n in grid)]
