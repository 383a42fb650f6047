"""Pointwise building blocks of neural operators: channel MLPs, grid embedding, domain padding.

All act on fields shaped (batch, channels, *grid) with 1 to 3 spatial axes,
and none depends on the grid size, so a model built from them runs at any
resolution.

:func:`gelu_pointwise` computes ``layer(gelu(y))`` for a 1x1 convolution while
keeping only ``y`` for the backward pass: autograd would keep both ``y`` (for
GELU's derivative) and ``gelu(y)`` (for the weight's gradient), two full-size
activations where one suffices, since GELU is recomputed from ``y`` in the
backward pass at the cost of one elementwise op. Written as a custom autograd
function because no torch op fuses an activation into a convolution's saved
state; its backward calls the same ``convolution_backward`` kernel autograd
would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from ..precision.policy import active_policy

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


class GridModel(Protocol):
    dim: int  # spatial axes
    in_channels: int


def check_grid_input(model: GridModel, x: torch.Tensor) -> None:
    """Raise unless x is (batch, model.in_channels, N1, ..., N_dim), naming the fix."""
    axes = ", ".join(f"N{k + 1}" for k in range(model.dim))
    if x.ndim != model.dim + 2 or x.shape[1] != model.in_channels:
        raise ValueError(
            f"{type(model).__name__}(dim={model.dim}) expects input (batch, {model.in_channels}, "
            f"{axes}), got shape {tuple(x.shape)}. Build the model with dim={x.ndim - 2} "
            f"and in_channels={x.shape[1] if x.ndim > 1 else '?'}, or add a channel axis with "
            "x.unsqueeze(1)."
        )


def pointwise(in_channels: int, out_channels: int, dim: int, bias: bool = True) -> nn.Module:
    """A 1x1 convolution over ``dim`` spatial axes: a Linear applied at every grid point."""
    return _CONV[dim](in_channels, out_channels, kernel_size=1, bias=bias)


def mark_coordinate_input(layer: nn.Module, n_coordinates: int) -> nn.Module:
    """Record that the last ``n_coordinates`` input channels of ``layer`` are :class:`GridEmbedding` coordinates.

    Coordinates depend on the grid, not on the sample, so the layer's product with them is
    a per-position constant, like its bias. :mod:`lowprec.quant` reads the mark: it quantizes
    only the data channels and counts the coordinate product as computed once per grid.
    Without it the coordinates (0..1) would share one activation scale with the field
    (e.g. +-4): at 8 bits, only 32 levels across the domain, a resolution error in every
    position the model sees. Returns ``layer``.
    """
    # nn.Module.__setattr__ is typed for tensors and modules; any value is stored.
    layer.coordinate_channels = n_coordinates  # type: ignore[assignment]
    return layer


_PLAIN_CONVS = tuple(_CONV.values())
_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class _GeluPointwise(torch.autograd.Function):
    """conv1x1(gelu(y)) that saves ``y`` and the weight only; GELU is recomputed in backward."""

    @staticmethod
    def forward(ctx, y, weight, bias, dtype):
        with torch.autocast(y.device.type, enabled=False):
            a = F.gelu(y).to(dtype)
            out = _CONV_FN[y.ndim - 2](a, weight.to(dtype), None if bias is None else bias.to(dtype))
        ctx.save_for_backward(y, weight)
        ctx.dtype, ctx.has_bias = dtype, bias is not None
        return out

    @staticmethod
    def backward(ctx, grad_out):
        y, weight = ctx.saved_tensors
        dim = y.ndim - 2
        a = F.gelu(y).to(ctx.dtype)
        w = weight.to(ctx.dtype)
        need_y, need_w, need_b = ctx.needs_input_grad[:3]
        grad_a, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad_out.to(ctx.dtype),
            a,
            w,
            [w.shape[0]] if ctx.has_bias else None,
            [1] * dim,
            [0] * dim,
            [1] * dim,
            False,
            [0] * dim,
            1,
            [need_y, need_w, need_b and ctx.has_bias],
        )
        grad_y = torch.ops.aten.gelu_backward(grad_a.to(y.dtype), y) if need_y else None
        grad_w = grad_w.to(weight.dtype) if need_w else None
        grad_b = grad_b.to(weight.dtype) if need_b and ctx.has_bias else None
        return grad_y, grad_w, grad_b, None


def _observed(layer: nn.Module) -> bool:
    # Hooks (bops counting, overflow search, int8 calibration, a user's own) must see the layer called.
    return bool(
        layer._forward_hooks
        or layer._forward_pre_hooks
        or nn.modules.module._global_forward_hooks
        or nn.modules.module._global_forward_pre_hooks
    )


def gelu_pointwise(y: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """``layer(F.gelu(y))``, keeping only ``y`` for the backward pass where ``layer`` is a plain 1x1 conv.

    The result and its gradients equal the unfused expression (same kernels, same dtypes,
    autocast included). Any other layer (a quantization wrapper, a Linear), a layer with
    hooks, and calls without autograd take the plain expression.
    """
    if (
        not torch.is_grad_enabled()
        or type(layer) not in _PLAIN_CONVS
        or _observed(layer)
        or layer.kernel_size != (1,) * (y.ndim - 2)
    ):
        return layer(F.gelu(y))
    device = y.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else y.dtype
    return _GeluPointwise.apply(y, layer.weight, layer.bias, dtype)


def recomputed(fn: Callable[..., torch.Tensor], *args: Any) -> torch.Tensor:
    """``fn(*args)`` keeping only ``args`` for the backward pass, which runs ``fn`` again.

    torch's non-reentrant activation checkpointing, with the precision policy active in
    the forward pass re-entered for the recomputation: the backward pass may run in
    another thread (CUDA) or outside the ``with policy:`` block, and a recomputation in
    other dtypes would not reproduce the forward pass. Without autograd it is ``fn(*args)``.
    """
    if not torch.is_grad_enabled():
        return fn(*args)
    policy = active_policy()

    def run(*inputs):
        with policy if policy is not None else contextlib.nullcontext():
            return fn(*inputs)

    return torch.utils.checkpoint.checkpoint(run, *args, use_reentrant=False, preserve_rng_state=False)


class ChannelMLP(nn.Module):
    """Two pointwise layers with a GELU between: (B, in, *grid) -> (B, out, *grid)."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, dim: int):
        super().__init__()
        self.fc1 = pointwise(in_channels, hidden_channels, dim)
        self.fc2 = pointwise(hidden_channels, out_channels, dim)

    def forward(self, x: torch.Tensor, activate_input: bool = False) -> torch.Tensor:
        """``activate_input``: apply GELU to ``x`` first, as :func:`gelu_pointwise` (saves ``x`` alone)."""
        h = gelu_pointwise(x, self.fc1) if activate_input else self.fc1(x)
        return gelu_pointwise(h, self.fc2)


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
