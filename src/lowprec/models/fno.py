"""Fourier Neural Operators (Li et al. 2021) and Tensorized FNOs (Kossaifi et al. 2023).

The architecture follows neuraloperator's FNO, so users can move models
across and compare like for like:

    x -> [grid embedding] -> lifting MLP -> [pad] -> n_layers x FNOBlock -> [crop] -> projection MLP

    FNOBlock(v) = act( MLP( act(SpectralConv(v) + W v) ) + v )   (no act after the last block)

Blocks hand each other the pre-activation and each block applies the GELU
of the one before, which saves a full-size activation per pointwise layer in
training (see :class:`FNOBlock`).

Every spectral layer reads the active precision policy (``with policy:``), so
the same model runs in fp32, amp, half, mixed or bf16 without rebuilding.
Under the ``bf16`` and ``fp16`` policies every activation between layers stays
in that dtype (autocast's 1x1 convolutions emit it, the spectral layers take
and return it); the parameters stay fp32.
Nothing depends on the grid size: a model trained at 64x64 evaluates at
128x128 (zero-shot super-resolution), as long as the grid holds the modes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..spectral import SpectralConv
from ..spectral.weights import Rank
from .layers import (
    ChannelMLP,
    DomainPadding,
    GridEmbedding,
    gelu_pointwise,
    mark_coordinate_input,
    pointwise,
    recomputed,
)
from .registry import register_model


class FNOBlock(nn.Module):
    """One Fourier layer with its linear skip and channel MLP; (B, C, *grid) -> (B, C, *grid).

    Blocks pass pre-activations: ``forward(v, activate_input=True)`` applies the GELU that
    ends the previous block, so the block's 1x1 convolutions can keep ``v`` rather than both
    ``v`` and ``gelu(v)`` for the backward pass (see :func:`~lowprec.models.layers.gelu_pointwise`).

    ``conv_module`` builds the spectral layer as ``conv_module(channels, channels, n_modes,
    factorization=..., rank=...)`` (neuraloperator's name for this seam); it must map
    (B, C, *grid) to (B, C, *grid). To be quantized and counted by :mod:`lowprec.quant`, it
    also implements :class:`lowprec.spectral.SpectralLayer`.
    """

    def __init__(
        self,
        channels: int,
        n_modes: Sequence[int],
        channel_mlp_expansion: float,
        factorization: str,
        rank: Rank,
        conv_module: Callable[..., nn.Module] = SpectralConv,
    ):
        super().__init__()
        dim = len(n_modes)
        self.spectral = conv_module(channels, channels, n_modes, factorization=factorization, rank=rank)
        self.skip = pointwise(channels, channels, dim, bias=False)
        hidden = max(1, round(channels * channel_mlp_expansion))
        self.mlp = ChannelMLP(channels, channels, hidden, dim) if channel_mlp_expansion > 0 else None

    def forward(self, v: torch.Tensor, activate_input: bool = False) -> torch.Tensor:
        """``v``: the block input, or the previous block's pre-activation with ``activate_input``.

        Returns this block's pre-activation: ``gelu`` of it is the next block's input.
        """
        if activate_input:
            x = F.gelu(v)
            y = self.spectral(x) + gelu_pointwise(v, self.skip)
        else:
            x = v
            y = self.spectral(x) + self.skip(x)
        if self.mlp is not None:
            y = self.mlp(y, activate_input=True) + x
        return y


@register_model("fno")
class FNO(nn.Module):
    """Fourier Neural Operator on 1, 2 or 3 spatial axes.

    Args:
        n_modes: Fourier modes kept per spatial axis; its length sets the dimension.
        in_channels, out_channels: channels of the input and output fields.
        hidden_channels: width of the Fourier layers.
        n_layers: number of Fourier blocks.
        lifting_ratio, projection_ratio: hidden width of the lifting / projection MLPs,
            as a multiple of ``hidden_channels``.
        channel_mlp_expansion: hidden width of each block's channel MLP as a multiple of
            ``hidden_channels`` (0: no channel MLP).
        positional_embedding: append the grid coordinates as input channels.
        grid_endpoint: whether those coordinates include 1 (node grids with boundaries)
            or stop at (N-1)/N (periodic grids).
        domain_padding: pad each axis by this fraction before the Fourier layers
            (non-periodic problems; 0 for periodic ones).
        factorization, rank: spectral weights: ``"dense"``, ``"tucker"`` or ``"cp"`` and
            the factorization's rank (fraction of the dense size, or explicit).
        conv_module: the spectral layer's class (see :class:`FNOBlock`), e.g. a spherical
            convolution in place of the Fourier one.
        recompute: keep only each stage's input (lifting, every block, projection) for the
            backward pass and recompute the rest there: saved activations fall to about one
            field per block, for about one more forward pass per training step. An attribute,
            so it can be switched on an existing model.

    Shapes:
        (batch, in_channels, *grid) -> (batch, out_channels, *grid), any grid with
        grid[k] >= n_modes[k] (after padding).
    """

    def __init__(
        self,
        n_modes: int | Sequence[int],
        in_channels: int = 1,
        out_channels: int = 1,
        hidden_channels: int = 32,
        n_layers: int = 4,
        lifting_ratio: float = 2.0,
        projection_ratio: float = 2.0,
        channel_mlp_expansion: float = 0.5,
        positional_embedding: bool = True,
        grid_endpoint: bool = True,
        domain_padding: float = 0.0,
        factorization: str = "dense",
        rank: Rank = 1.0,
        conv_module: Callable[..., nn.Module] = SpectralConv,
        recompute: bool = False,
    ):
        super().__init__()
        self.recompute = recompute
        n_modes = (n_modes,) if isinstance(n_modes, int) else tuple(n_modes)
        self.n_modes, self.dim = n_modes, len(n_modes)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.embedding: nn.Module | None = GridEmbedding(self.dim, grid_endpoint) if positional_embedding else None
        lifted_in = in_channels + (self.dim if positional_embedding else 0)
        self.lifting = ChannelMLP(lifted_in, hidden_channels, round(hidden_channels * lifting_ratio), self.dim)
        if positional_embedding:
            mark_coordinate_input(self.lifting.fc1, self.dim)
        self.padding = DomainPadding(domain_padding)
        self.blocks = nn.ModuleList(
            [
                FNOBlock(hidden_channels, n_modes, channel_mlp_expansion, factorization, rank, conv_module)
                for _ in range(n_layers)
            ]
        )
        self.projection = ChannelMLP(hidden_channels, out_channels, round(hidden_channels * projection_ratio), self.dim)

    def check_input(self, x: torch.Tensor) -> None:
        axes = ", ".join(f"N{k + 1}" for k in range(self.dim))
        if x.ndim != self.dim + 2:
            raise ValueError(
                f"{type(self).__name__} with {self.dim}D modes {self.n_modes} expects input "
                f"(batch, {self.in_channels}, {axes}), got shape {tuple(x.shape)} "
                f"({x.ndim - 2} spatial axes). Add a channel axis with x.unsqueeze(1) or "
                f"build the model with {x.ndim - 2} entries in n_modes."
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects {self.in_channels} input channel(s), got "
                f"{x.shape[1]} (shape {tuple(x.shape)}). Build the model with "
                f"in_channels={x.shape[1]}, or pass (batch, channels, {axes})."
            )
        if not x.is_floating_point():
            raise TypeError(
                f"{type(self).__name__} needs a floating-point input, got {x.dtype}; convert with x.float()."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        if self.embedding is not None:
            x = self.embedding(x)
        x = self._stage(self.lifting, x)
        grid = x.shape[2:]
        x = self.padding.pad(x)
        for k, block in enumerate(self.blocks):
            x = self._stage(block, x, k > 0)
        x = self.padding.unpad(x, grid)
        return self._stage(self.projection, x)

    def _stage(self, module: nn.Module, *args: Any) -> torch.Tensor:
        return recomputed(module, *args) if self.recompute else module(*args)


@register_model("tfno")
class TFNO(FNO):
    """FNO with factorized spectral weights (Tucker by default; CP with ``factorization="cp"``).

    ``rank`` is the fraction of the dense weights' parameter count kept (0.05 as in the
    mixed-precision paper's Navier-Stokes runs), or explicit ranks. Every argument after
    ``n_modes`` is keyword-only, with :class:`FNO`'s names.
    """

    def __init__(
        self, n_modes: int | Sequence[int], *, factorization: str = "tucker", rank: Rank = 0.05, **kwargs: Any
    ):
        if factorization == "dense":
            raise ValueError("TFNO has factorized weights; use factorization='tucker' or 'cp', or FNO for dense.")
        super().__init__(n_modes, factorization=factorization, rank=rank, **kwargs)
