"""Graph neural operator layer: a kernel integral over radius neighbourhoods, in reduced precision.

    v(x) = sum over y in B_r(x) of  k(x, y[, f(y)]) [* f(y)] * w(y)        (reduction="sum")
    v(x) = the same sum / |B_r(x)|                                           (reduction="mean")

as neuraloperator's ``IntegralTransform`` (GINO, Li et al. 2023). ``transform`` picks the integrand:

==================== ============================= ===================================
transform            kernel input                  integrand
==================== ============================= ===================================
linear_kernelonly    [y, x]                        k(x, y)
linear               [y, x]                        k(x, y) * f(y)   (channel-wise)
nonlinear_kernelonly [y, x, f(y)]                  k(x, y, f(y))
nonlinear            [y, x, f(y)]                  k(x, y, f(y)) * f(y)
==================== ============================= ===================================

k is an MLP of ``nn.Linear`` layers with GELU between (:class:`KernelMLP`), so
:func:`lowprec.quant.quantize_` wraps its layers and :func:`lowprec.quant.bops` counts one
kernel evaluation per neighbour pair. ``w(y)`` are quadrature weights (e.g. panel areas);
none means 1.

Precision: the kernel MLP runs in whatever the active policy says (under ``with policy:``
autocast runs its Linear layers in fp16/bf16; a model in bf16 end to end runs them in bf16),
and so does the product with f and w. The sum over neighbours is a reduction of up to
hundreds of terms per query, so it accumulates into an fp32 buffer (``scatter_add_``; fp64
when the inputs are fp64) and is rounded to the kernel's dtype once at the end. An fp16
result that would overflow raises :class:`OverflowError` naming the layer and the remedy.

Memory: the neighbour pairs are processed ``chunk_size`` at a time. Without gradients a
chunk's kernel activations are freed before the next is computed. With gradients and more
than one chunk, each chunk runs under ``torch.utils.checkpoint``: autograd keeps only the
layer's inputs and recomputes the chunk's activations in backward, so what is held between
forward and backward does not grow with the number of pairs (the price: the kernel MLP
runs twice per pair in training). The neighbour list itself is two int64 per pair.

Empty neighbourhoods (a query with no point within the radius) contribute zero: a sum over
nothing. That is the normal case for latent-grid nodes far from a body; where every query is
empty the radius is too small for the geometry, and :meth:`GNOLayer.forward` raises.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .neighbors import Neighbors

TRANSFORMS = ("linear_kernelonly", "linear", "nonlinear_kernelonly", "nonlinear")
REDUCTIONS = ("sum", "mean")


class KernelMLP(nn.Module):
    """k: (..., in) -> (..., out) through ``hidden`` widths, GELU between the Linear layers."""

    def __init__(self, in_features: int, out_features: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        widths = [in_features, *hidden, out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for k, layer in enumerate(self.layers):
            z = layer(z)
            if k < len(self.layers) - 1:
                z = F.gelu(z)
        return z


class GNOLayer(nn.Module):
    """Kernel integral from points y carrying features f to query points x (module docstring).

    Args:
        coord_dim: coordinates per point (3 for bodies).
        in_channels: channels of f (0 for the kernel-only transforms without f).
        out_channels: channels of the result; for ``linear`` and ``nonlinear`` it must equal
            ``in_channels`` (the kernel scales f channel by channel). Default: in_channels.
        hidden: widths of the kernel MLP's hidden layers.
        transform: one of :data:`TRANSFORMS`.
        reduction: ``"sum"`` (quadrature with weights w) or ``"mean"`` (divided by the
            neighbour count).
        chunk_size: neighbour pairs per chunk (bounds the activation memory).

    Shapes: ``forward(y (N, d), x (M, d), neighbors, f (N, in) or None, weights (N,) or None)``
    -> (M, out).
    """

    def __init__(
        self,
        coord_dim: int,
        in_channels: int,
        out_channels: int | None = None,
        hidden: Sequence[int] = (64, 64),
        transform: str = "linear",
        reduction: str = "sum",
        chunk_size: int = 1 << 16,
    ):
        super().__init__()
        if transform not in TRANSFORMS:
            raise ValueError(f"unknown GNO transform {transform!r}; choose one of {TRANSFORMS}.")
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown GNO reduction {reduction!r}; choose one of {REDUCTIONS}.")
        out_channels = in_channels if out_channels is None else out_channels
        self.scales_f = transform in ("linear", "nonlinear")
        self.kernel_sees_f = transform.startswith("nonlinear")
        if (self.scales_f or self.kernel_sees_f) and in_channels < 1:
            raise ValueError(
                f"GNO transform {transform!r} integrates features f, so in_channels must be >= 1; "
                "use 'linear_kernelonly' for a geometry-only integral."
            )
        if self.scales_f and out_channels != in_channels:
            raise ValueError(
                f"GNO transform {transform!r} scales f channel by channel, so out_channels "
                f"({out_channels}) must equal in_channels ({in_channels})."
            )
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}.")
        self.coord_dim, self.in_channels, self.out_channels = coord_dim, in_channels, out_channels
        self.transform, self.reduction, self.chunk_size = transform, reduction, int(chunk_size)
        kernel_in = 2 * coord_dim + (in_channels if self.kernel_sees_f else 0)
        self.kernel = KernelMLP(kernel_in, out_channels, hidden)

    def extra_repr(self) -> str:
        return (
            f"coord_dim={self.coord_dim}, in={self.in_channels}, out={self.out_channels}, "
            f"transform={self.transform!r}, reduction={self.reduction!r}, chunk_size={self.chunk_size}"
        )

    def integrand(
        self,
        y: torch.Tensor,
        x: torch.Tensor,
        f: torch.Tensor | None,
        weights: torch.Tensor | None,
        index: torch.Tensor,
        rows: torch.Tensor,
    ) -> torch.Tensor:
        """The integrand at the pairs (index[p], rows[p]): (pairs, out), in the kernel's dtype."""
        z = [y[index], x[rows]]
        if self.kernel_sees_f:
            z.append(f[index].to(y.dtype))
        k = self.kernel(torch.cat(z, dim=-1))
        if self.scales_f:
            k = k * f[index].to(k.dtype)
        if weights is not None:
            k = k * weights[index].to(k.dtype).unsqueeze(-1)
        return k

    def forward(
        self,
        y: torch.Tensor,
        x: torch.Tensor,
        neighbors: Neighbors,
        f: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self._check(y, x, neighbors, f, weights)
        if neighbors.n_pairs == 0 and neighbors.n_queries > 0:
            raise ValueError(
                f"{type(self).__name__}: no query point has a neighbour within the search radius "
                f"({neighbors.n_queries} queries, {y.shape[0]} points): the radius is too small for "
                "this geometry, or the two point sets are in different units. Raise the radius."
            )
        index, rows = neighbors.index, neighbors.rows
        param = next(self.kernel.parameters())
        acc_dtype = torch.float64 if torch.float64 in (y.dtype, x.dtype, param.dtype) else torch.float32
        out = torch.zeros(x.shape[0], self.out_channels, dtype=acc_dtype, device=x.device)
        # Bounded memory in training: recompute each chunk in backward rather than keep its activations.
        recompute = torch.is_grad_enabled() and neighbors.n_pairs > self.chunk_size
        k_dtype = None
        for start in range(0, neighbors.n_pairs, self.chunk_size):
            idx, rws = index[start : start + self.chunk_size], rows[start : start + self.chunk_size]
            if recompute:
                k = checkpoint(self.integrand, y, x, f, weights, idx, rws, use_reentrant=False)
            else:
                k = self.integrand(y, x, f, weights, idx, rws)
            k_dtype = k.dtype
            # scatter_add_ keeps only the index for backward (index_add_ would keep the chunk's values too)
            out.scatter_add_(0, rws.unsqueeze(-1).expand(-1, self.out_channels), k.to(acc_dtype))
        if self.reduction == "mean":
            out = out / neighbors.counts.clamp(min=1).to(acc_dtype).unsqueeze(-1)
        k_dtype = k_dtype or param.dtype
        if k_dtype == torch.float16 and out.abs().amax() > torch.finfo(torch.float16).max:
            raise OverflowError(
                f"{type(self).__name__}({self.extra_repr()}): the kernel integral reaches "
                f"{out.abs().amax().item():.3g}, past fp16's 65504. Use reduction='mean' or "
                "quadrature weights that sum to the domain's measure, or run under a bf16 policy."
            )
        return out.to(k_dtype) if k_dtype in (torch.float16, torch.bfloat16) else out

    def _check(self, y, x, neighbors, f, weights) -> None:
        name = type(self).__name__
        for label, pts in (("y", y), ("x", x)):
            if pts.ndim != 2 or pts.shape[1] != self.coord_dim:
                raise ValueError(f"{name}: {label} must be (n_points, {self.coord_dim}), got {tuple(pts.shape)}.")
        if neighbors.n_queries != x.shape[0]:
            raise ValueError(
                f"{name}: the neighbour lists have {neighbors.n_queries} rows but x has {x.shape[0]} "
                "points; search with radius_neighbors(y, x, r) for these very point sets."
            )
        needs_f = self.scales_f or self.kernel_sees_f
        if needs_f and (f is None or f.shape != (y.shape[0], self.in_channels)):
            got = None if f is None else tuple(f.shape)
            raise ValueError(
                f"{name}: transform {self.transform!r} needs f of shape ({y.shape[0]}, {self.in_channels}), got {got}."
            )
        if weights is not None and weights.shape != (y.shape[0],):
            raise ValueError(f"{name}: weights must be (n_points,) = ({y.shape[0]},), got {tuple(weights.shape)}.")


__all__ = ["REDUCTIONS", "TRANSFORMS", "GNOLayer", "KernelMLP"]
