"""A Transformer neural PDE solver: patches of the field are tokens, attention runs over patches (1D and 2D).

    x -> append grid coordinates -> [pad to a multiple of the patch] -> patch embedding
      -> depth x TransformerBlock -> LayerNorm -> Linear to patch values -> un-patch -> [crop]

    TransformerBlock(t) = t + MLP(LN(t')),  t' = t + Attention(LN(t))         (pre-norm, as ViT)

A token is one patch of ``patch_size`` points per axis (``patch_size``^d points),
embedded by a convolution whose kernel and stride are the patch. Position enters
through the coordinate channels appended to the input (as FNO's grid embedding),
so any number of patches works: no table of learned positions to interpolate.

The two matrix products of attention (Q K^T and A V) are :class:`MatMul` modules
rather than inline ``@``: that makes them visible to :func:`lowprec.quant.quantize_`
(which fake-quantizes both operands) and to :func:`lowprec.quant.bops` (which
counts their multiply-accumulates). The cost is not using the fused
``scaled_dot_product_attention`` kernel, which hides both products.

Shapes: (batch, in_channels, *grid) -> (batch, out_channels, *grid), 1 or 2 spatial axes.
Attention over L = prod(ceil(N_k / patch)) tokens costs L^2 * embed_dim per layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers import GridEmbedding, check_grid_input, mark_coordinate_input
from .registry import register_model

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}


class MatMul(nn.Module):
    """``a @ b`` as a module, so quantization and cost counting can see it. (..., n, k) x (..., k, m) -> (..., n, m)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


class Attention(nn.Module):
    """Multi-head self-attention; (B, L, D) -> (B, L, D)."""

    def __init__(self, embed_dim: int, heads: int):
        super().__init__()
        if embed_dim % heads:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by heads={heads}.")
        self.heads, self.head_dim = heads, embed_dim // heads
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.scores = MatMul()  # Q K^T
        self.mix = MatMul()  # softmax(.) V
        self.out = nn.Linear(embed_dim, embed_dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        b, n, d = t.shape
        q, k, v = self.qkv(t).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # each (B, H, L, hd)
        # Scale q before the product, not the scores after: the product's operands are then
        # what a fixed-point kernel would see, and the scores stay O(1).
        scores = self.scores(q * self.head_dim**-0.5, k.transpose(-2, -1))  # (B, H, L, L)
        mixed = self.mix(scores.softmax(dim=-1), v)  # (B, H, L, hd)
        return self.out(mixed.transpose(1, 2).reshape(b, n, d))


class TransformerBlock(nn.Module):
    def __init__(self, embed_dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        hidden = max(1, round(embed_dim * mlp_ratio))
        self.norm1, self.norm2 = nn.LayerNorm(embed_dim), nn.LayerNorm(embed_dim)
        self.attention = Attention(embed_dim, heads)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = t + self.attention(self.norm1(t))
        return t + self.mlp(self.norm2(t))


class Transformer(nn.Module):
    """Patch-based Transformer neural PDE solver on 1 or 2 spatial axes.

    Args:
        dim: number of spatial axes (1 or 2).
        in_channels, out_channels: channels of the input and output fields.
        patch_size: points per patch along every axis.
        embed_dim: token width.
        depth: number of Transformer blocks.
        heads: attention heads.
        mlp_ratio: hidden width of each block's MLP as a multiple of ``embed_dim``.
        grid_endpoint: coordinates include 1 (node grids) or stop at (N-1)/N (periodic grids).

    Shapes:
        (batch, in_channels, *grid) -> (batch, out_channels, *grid), any grid size (the end
        of each axis is padded, replicating the edge, to a multiple of ``patch_size``).
    """

    def __init__(
        self,
        dim: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        patch_size: int = 4,
        embed_dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        grid_endpoint: bool = True,
    ):
        super().__init__()
        if dim not in _CONV:
            raise ValueError(f"Transformer supports 1 or 2 spatial axes, got dim={dim}.")
        if patch_size < 1 or depth < 1:
            raise ValueError(f"patch_size and depth must be positive, got {patch_size}, {depth}.")
        self.dim, self.patch_size = dim, patch_size
        self.in_channels, self.out_channels = in_channels, out_channels
        self.embedding = GridEmbedding(dim, grid_endpoint)
        self.patch_embed = mark_coordinate_input(
            _CONV[dim](in_channels + dim, embed_dim, kernel_size=patch_size, stride=patch_size), dim
        )
        self.blocks = nn.ModuleList([TransformerBlock(embed_dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, out_channels * patch_size**dim)

    check_input = check_grid_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        grid = x.shape[2:]
        p = self.patch_size
        x = self.embedding(x)  # coordinates first, so padded points repeat the edge's coordinates too
        pads = [(-n) % p for n in grid]
        if any(pads):
            x = F.pad(x, [v for q in reversed(pads) for v in (0, q)], mode="replicate")
        tokens = self.patch_embed(x)  # (B, D, *patches)
        patches = tokens.shape[2:]
        t = tokens.flatten(2).transpose(1, 2)  # (B, L, D)
        for block in self.blocks:
            t = block(t)
        t = self.head(self.norm(t))  # (B, L, C_out * p^d)
        b = t.shape[0]
        # Un-patch: (B, *patches, C, *(p,)*d) -> (B, C, *(patches_k * p))
        t = t.view(b, *patches, self.out_channels, *([p] * self.dim))
        if self.dim == 1:
            out = t.permute(0, 2, 1, 3).reshape(b, self.out_channels, patches[0] * p)
        else:
            out = t.permute(0, 3, 1, 4, 2, 5).reshape(b, self.out_channels, patches[0] * p, patches[1] * p)
        return out[(slice(None), slice(None)) + tuple(slice(0, n) for n in grid)]

    @staticmethod
    def tokens(grid: Sequence[int], patch_size: int) -> int:
        """Number of tokens for a grid: prod(ceil(N_k / patch_size))."""
        return math.prod(-(-n // patch_size) for n in grid)


@register_model("transformer")
def transformer_from_settings(
    dim: int,
    in_channels: int,
    out_channels: int,
    hidden_channels: int = 64,
    n_layers: int = 4,
    patch_size: int = 4,
    grid_endpoint: bool = True,
) -> Transformer:
    """A :class:`Transformer` in the config's words: ``hidden_channels`` is its token width, ``n_layers`` its depth."""
    return Transformer(
        dim,
        in_channels,
        out_channels,
        patch_size=patch_size,
        embed_dim=hidden_channels,
        depth=n_layers,
        grid_endpoint=grid_endpoint,
    )
