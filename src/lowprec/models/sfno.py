"""Spherical Fourier Neural Operators (Bonev et al., ICML 2023) under lowprec's precision policies.

An FNO whose spectral layers are :class:`lowprec.spectral.sconv.SphericalConv`:

    x -> [sphere embedding] -> lifting MLP -> n_layers x block -> projection MLP

    block(v) = act( MLP( act(SphericalConv(v) + W v) ) + v )   (no act after the last block)

Fields are (batch, channels, nlat, nlon) on an equiangular or Gauss-Legendre grid (colatitude
ascending from the north pole, longitude from 0). Nothing depends on the resolution: a model
trained at 32x64 evaluates at 64x128, as long as the grid holds its degrees
(:func:`lowprec.spectral.sht.check_sizes`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import nn

from ..spectral.sconv import SphericalConv
from ..spectral.sht import check_grid, check_sizes, grid_points
from ..spectral.weights import Rank
from .fno import FNO
from .layers import mark_coordinate_input
from .registry import register_model


class SphereEmbedding(nn.Module):
    """Append the unit-sphere position (sin t cos p, sin t sin p, cos t) of each point: (B, C, ...) -> (B, C + 3, ...).

    Continuous across the date line and at the poles, and the same point gets the same
    values at every resolution.
    """

    def __init__(self, grid: str):
        super().__init__()
        self.grid = check_grid(grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta, phi = grid_points(x.shape[-2], x.shape[-1], self.grid)
        t, p = torch.meshgrid(theta, phi, indexing="ij")
        xyz = torch.stack((t.sin() * p.cos(), t.sin() * p.sin(), t.cos())).to(device=x.device, dtype=x.dtype)
        return torch.cat([x, xyz.expand(x.shape[0], *xyz.shape)], dim=1)


class SFNO(FNO):
    """Spherical FNO.

    Args:
        n_modes: degrees and orders kept, ``(n_l, n_m)`` or one int (see :class:`SphericalConv`).
        in_channels, out_channels, hidden_channels, n_layers, lifting_ratio, projection_ratio,
            channel_mlp_expansion, factorization, rank: as :class:`lowprec.models.FNO`.
        grid: ``"equiangular"`` or ``"legendre-gauss"``, the grid of the input fields.
        weight_sharing: ``"degree"`` (SFNO's, weights per l) or ``"none"`` (per (l, m)).
        positional_embedding: append the 3D position on the unit sphere as input channels.

    Shapes:
        (batch, in_channels, nlat, nlon) -> (batch, out_channels, nlat, nlon).
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
        factorization: str = "dense",
        rank: Rank = 1.0,
        grid: str = "equiangular",
        weight_sharing: str = "degree",
        recompute: bool = False,
    ):
        n_modes = (n_modes, n_modes) if isinstance(n_modes, int) else tuple(n_modes)
        extra = 3 if positional_embedding else 0
        super().__init__(
            n_modes,
            in_channels + extra,
            out_channels,
            hidden_channels,
            n_layers,
            lifting_ratio,
            projection_ratio,
            channel_mlp_expansion,
            positional_embedding=False,
            factorization=factorization,
            rank=rank,
            conv_module=functools.partial(SphericalConv, grid=grid, weight_sharing=weight_sharing),
            recompute=recompute,
        )
        self.in_channels, self.grid = in_channels, check_grid(grid)
        if positional_embedding:
            self.embedding = SphereEmbedding(grid)
            mark_coordinate_input(self.lifting.fc1, 3)

    def check_input(self, x: torch.Tensor) -> None:
        super().check_input(x)
        try:
            check_sizes(x.shape[2], x.shape[3], self.lmax, self.n_modes[1] - 1, self.grid)
        except ValueError as err:
            raise ValueError(f"{type(self).__name__} with n_modes={self.n_modes}: {err}") from None

    @property
    def lmax(self) -> int:
        return self.n_modes[0] - 1

    def min_grid(self) -> tuple[int, int]:
        """The coarsest (nlat, nlon) this model runs on."""
        nlat = 2 * self.lmax + 1 if self.grid == "equiangular" else self.lmax + 1
        return nlat, 2 * (self.n_modes[1] - 1) + 1


@register_model("sfno")
def sfno_from_settings(
    n_modes: Sequence[int],
    in_channels: int = 1,
    out_channels: int = 1,
    hidden_channels: int = 32,
    n_layers: int = 4,
    factorization: str = "dense",
    rank: Rank = 1.0,
    positional_embedding: bool = True,
    channel_mlp_expansion: float = 0.5,
    recompute: bool = False,
    sphere_grid: str = "equiangular",
) -> SFNO:
    """An :class:`SFNO` in the config's words; ``sphere_grid`` is the data's grid type (its ``meta``)."""
    return SFNO(
        n_modes,
        in_channels=in_channels,
        out_channels=out_channels,
        hidden_channels=hidden_channels,
        n_layers=n_layers,
        factorization=factorization,
        rank=rank,
        positional_embedding=positional_embedding,
        channel_mlp_expansion=channel_mlp_expansion,
        recompute=recompute,
        grid=sphere_grid,
    )
