"""Geometry-Informed Neural Operator (Li et al., NeurIPS 2023), on lowprec's FNO and GNO layers.

    coords (B, N, 3) --GNO encoder--> latent grid (B, C_gno, R, R, R) ++ latent (B, C_lat, R, R, R)
        --FNO (any policy)--> (B, C_gno, R, R, R) --GNO decoder--> queries (B, C_gno, M)
        --projection--> (B, out_channels, M)

The encoder integrates over the input points within ``gno_radius`` of each latent node (a
geometry kernel k(x, y), or k(x, y, f(y)) when the points carry features ``x``); the latent
features (e.g. the body's signed distance on the grid, as in the paper) are concatenated to
it; lowprec's :class:`~lowprec.models.FNO` runs on the grid under the active precision policy
(schedule, stabilizer, spectral backend as for any FNO); the decoder integrates the FNO's
output over the latent nodes within the radius of each query point (the body's surface, by
default the input points themselves): k(x, y) * f(y), then a pointwise projection.

The latent grid is ``latent_resolution`` nodes per axis spanning ``domain`` (a cube, both
ends included), in ``torch.meshgrid(..., indexing="ij")`` order, so ``latent[b, c, i, j, k]``
is the value at (g_i, g_j, g_k). Bodies must lie inside the domain.

Batches: the B samples of a batch are searched and integrated one by one (their geometries
differ) and stacked, so a batch needs the same point count N (and M) in every sample. The
generated bodies (:mod:`lowprec.data.bodies`) share one mesh topology, so any batch size
works; for meshes of different sizes use batch size 1.

Empty neighbourhoods: latent nodes far from the body see no input point and get zero from
the encoder (their signed distance still informs the FNO). A query point with no latent node
within the radius would get only the projection's bias; the model warns (RuntimeWarning)
when that happens, as it means the point lies outside the domain or the radius is below
half a cell diagonal (sqrt(3)/2 * spacing).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..geometry import GNOLayer, radius_neighbors
from ..spectral import SpectralConv
from ..spectral.weights import Rank
from .fno import FNO
from .layers import ChannelMLP
from .registry import register_model


@register_model("gino")
class GINO(nn.Module):
    """GINO: GNO encoder -> FNO on a latent 3D grid -> GNO decoder (module docstring).

    Args:
        n_modes: Fourier modes per latent axis (three entries, or one for all).
        latent_resolution: latent grid nodes per axis (R).
        in_channels: feature channels carried by the input points (0: geometry only).
        latent_channels: channels of the ``latent`` input on the grid (0: none).
        out_channels: channels predicted at the query points.
        hidden_channels, n_layers, channel_mlp_expansion, positional_embedding, domain_padding,
            factorization, rank, conv_module: the FNO's (:class:`lowprec.models.FNO`).
        gno_channels: channels the encoder produces and the decoder integrates.
        gno_radius: neighbourhood radius in domain units; default 1.5 latent cells.
        gno_hidden: hidden widths of each kernel MLP.
        gno_transform: the decoder's integrand (:data:`lowprec.geometry.TRANSFORMS`, with f).
        gno_reduction: ``"mean"`` (average over the neighbourhood, GINO's choice) or ``"sum"``.
        domain: (low, high) of the latent cube.
        chunk_size: neighbour pairs per kernel chunk (bounds the memory).

    Shapes: ``forward(coords (B, N, 3), latent (B, C_lat, R, R, R) = None, x (B, C_in, N) = None,
    queries (B, M, 3) = None)`` -> (B, out_channels, M), M = N without queries.
    """

    def __init__(
        self,
        n_modes: int | Sequence[int] = 8,
        latent_resolution: int = 16,
        in_channels: int = 0,
        latent_channels: int = 1,
        out_channels: int = 1,
        hidden_channels: int = 32,
        n_layers: int = 4,
        gno_channels: int = 16,
        gno_radius: float | None = None,
        gno_hidden: Sequence[int] = (64, 64),
        gno_transform: str = "linear",
        gno_reduction: str = "mean",
        domain: tuple[float, float] = (-1.0, 1.0),
        chunk_size: int = 1 << 16,
        channel_mlp_expansion: float = 0.5,
        positional_embedding: bool = True,
        domain_padding: float = 0.0,
        factorization: str = "dense",
        rank: Rank = 1.0,
        conv_module: Callable[..., nn.Module] = SpectralConv,
    ):
        super().__init__()
        n_modes = (n_modes,) * 3 if isinstance(n_modes, int) else tuple(n_modes)
        if len(n_modes) == 1:
            n_modes = n_modes * 3
        if len(n_modes) != 3:
            raise ValueError(f"GINO's latent grid is 3D: give n_modes one entry or three, got {n_modes}.")
        low, high = float(domain[0]), float(domain[1])
        if not high > low:
            raise ValueError(f"domain must be (low, high) with high > low, got {domain}.")
        if latent_resolution < max(n_modes):
            raise ValueError(
                f"latent_resolution={latent_resolution} cannot hold {max(n_modes)} Fourier modes per "
                "axis; raise latent_resolution or lower n_modes."
            )
        spacing = (high - low) / (latent_resolution - 1)
        self.gno_radius = 1.5 * spacing if gno_radius is None else float(gno_radius)
        if self.gno_radius < math.sqrt(3) / 2 * spacing:
            warnings.warn(
                f"GINO: gno_radius={self.gno_radius:.4g} is below half a latent cell diagonal "
                f"({math.sqrt(3) / 2 * spacing:.4g}); query points between nodes may see no node.",
                RuntimeWarning,
                stacklevel=2,
            )
        self.in_channels, self.latent_channels, self.out_channels = in_channels, latent_channels, out_channels
        self.latent_resolution, self.domain = latent_resolution, (low, high)
        axis = torch.linspace(low, high, latent_resolution)
        grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
        self.register_buffer("grid", grid, persistent=False)
        encoder = "nonlinear_kernelonly" if in_channels else "linear_kernelonly"
        self.encoder = GNOLayer(3, in_channels, gno_channels, gno_hidden, encoder, gno_reduction, chunk_size)
        self.fno = FNO(
            n_modes,
            in_channels=gno_channels + latent_channels,
            out_channels=gno_channels,
            hidden_channels=hidden_channels,
            n_layers=n_layers,
            channel_mlp_expansion=channel_mlp_expansion,
            positional_embedding=positional_embedding,
            grid_endpoint=True,
            domain_padding=domain_padding,
            factorization=factorization,
            rank=rank,
            conv_module=conv_module,
        )
        self.decoder = GNOLayer(3, gno_channels, gno_channels, gno_hidden, gno_transform, gno_reduction, chunk_size)
        self.projection = ChannelMLP(gno_channels, out_channels, hidden_channels, dim=1)

    def check_inputs(
        self,
        coords: torch.Tensor,
        latent: torch.Tensor | None,
        x: torch.Tensor | None,
        queries: torch.Tensor | None,
    ) -> None:
        name, r = type(self).__name__, self.latent_resolution
        if coords.ndim != 3 or coords.shape[-1] != 3 or not coords.is_floating_point():
            raise ValueError(
                f"{name}: coords must be floating (batch, n_points, 3), got {tuple(coords.shape)}; "
                "add a batch axis with coords.unsqueeze(0)."
            )
        b, n = coords.shape[:2]
        if self.latent_channels and (latent is None or tuple(latent.shape) != (b, self.latent_channels, r, r, r)):
            got = None if latent is None else tuple(latent.shape)
            raise ValueError(
                f"{name} was built with latent_channels={self.latent_channels}, latent_resolution={r}: "
                f"latent must be ({b}, {self.latent_channels}, {r}, {r}, {r}), got {got}."
            )
        if not self.latent_channels and latent is not None:
            raise ValueError(
                f"{name} was built with latent_channels=0 but got a latent input; rebuild it with "
                f"latent_channels={latent.shape[1]}."
            )
        if self.in_channels and (x is None or tuple(x.shape) != (b, self.in_channels, n)):
            got = None if x is None else tuple(x.shape)
            raise ValueError(
                f"{name} was built with in_channels={self.in_channels}: x must be ({b}, "
                f"{self.in_channels}, {n}) (features at the input points), got {got}."
            )
        if queries is not None and (queries.ndim != 3 or queries.shape[0] != b or queries.shape[-1] != 3):
            raise ValueError(f"{name}: queries must be ({b}, n_queries, 3), got {tuple(queries.shape)}.")
        low, high = self.domain
        pad = self.gno_radius
        if coords.detach().amin() < low - pad or coords.detach().amax() > high + pad:
            raise ValueError(
                f"{name}: input points span [{coords.amin().item():.3g}, {coords.amax().item():.3g}] "
                f"but the latent domain is [{low}, {high}]; scale the bodies into it (or build the "
                "model with a larger domain)."
            )

    def forward(
        self,
        coords: torch.Tensor,
        latent: torch.Tensor | None = None,
        x: torch.Tensor | None = None,
        queries: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.check_inputs(coords, latent, x, queries)
        queries = coords if queries is None else queries
        grid = self.get_buffer("grid").to(coords.dtype)
        r = self.latent_resolution
        encoded = []
        for b in range(coords.shape[0]):
            near = radius_neighbors(coords[b], grid, self.gno_radius)
            f = x[b].transpose(0, 1) if x is not None else None
            encoded.append(self.encoder(coords[b], grid, near, f))
        z = torch.stack(encoded).transpose(1, 2).reshape(coords.shape[0], -1, r, r, r)
        if latent is not None:
            z = torch.cat([z, latent.to(z.dtype)], dim=1)
        z = self.fno(z).flatten(2)  # (B, C_gno, R^3)
        decoded = []
        for b in range(coords.shape[0]):
            near = radius_neighbors(grid, queries[b], self.gno_radius)
            empty = int((near.counts == 0).sum())
            if empty:
                warnings.warn(
                    f"GINO: {empty} of {near.n_queries} query points have no latent node within "
                    f"gno_radius={self.gno_radius:.4g}; they get no decoded value. Keep queries inside "
                    f"the domain {self.domain} or raise gno_radius.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            decoded.append(self.decoder(grid, queries[b], near, z[b].transpose(0, 1)))
        return self.projection(torch.stack(decoded).transpose(1, 2))


__all__ = ["GINO"]
