"""What the benchmark runs: a training step of an FNO, or one spectral layer, ours or neuraloperator's.

Every case is built from the same :class:`Shape` (dimension, width, layers,
modes, grid, batch) so the two libraries run the same configuration. Their
FNOs match: lifting and projection ratio 2, channel MLP expansion 0.5, grid
positional embedding, a linear skip beside every spectral layer; only the
skip around the channel MLP differs (neuraloperator's soft gating, our
identity: one elementwise product more for theirs).

Training step: forward under the precision, an fp32 MSE loss, backward,
Adam. Ours goes through :class:`lowprec.precision.LossScaler` when the policy
scales the loss, as the trainer does (the unscale checks every gradient,
which costs one device sync a step, as in training). neuraloperator's runs
under ``torch.autocast`` fp16 for every precision but ``full``, with its
``fno_block_precision`` set and, for ``half`` and ``mixed``, its tanh
stabilizer, without loss scaling: ``torch.amp.GradScaler`` cannot unscale its
complex weights.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..geometry import GNOLayer, radius_neighbors
from ..models import FNO, GINO, SFNO
from ..precision import LossScaler, PrecisionPolicy
from ..spectral import SpectralConv, SphericalConv


@dataclass(frozen=True)
class Shape:
    dim: int
    width: int
    layers: int
    modes: int
    grid: int
    batch: int
    factorization: str = "dense"
    rank: float = 0.05
    model: str = "fno"
    recompute: bool = False

    @property
    def n_modes(self) -> tuple[int, ...]:
        return (self.modes,) * self.dim

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """FNO: grid points per axis; SFNO: a Gauss-Legendre grid of ``grid`` latitudes, 2 ``grid`` longitudes."""
        return (self.grid, 2 * self.grid) if self.model == "sfno" else (self.grid,) * self.dim

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Axes after the channels of the model's output: the input grid, or GINO's surface points."""
        return (surface_points(self.grid).shape[0],) if self.model == "gino" else self.grid_shape

    @property
    def transform_axes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(grid, modes) of the FFT-or-DFT step: every axis (FNO), longitude only (SFNO, orders 0..modes-1)."""
        if self.model == "sfno":
            return (2 * self.grid,), (2 * (self.modes - 1),)
        return self.grid_shape, self.n_modes


def neuralop_version() -> str | None:
    """neuraloperator's version, or None when it is not installed (``pip install lowprec[compare]``).

    Read from the package metadata: importing neuralop takes seconds (it pulls in wandb).
    """
    try:
        return importlib.metadata.version("neuraloperator")
    except importlib.metadata.PackageNotFoundError:
        return None


# -- models -------------------------------------------------------------------------------------
def our_fno(shape: Shape) -> nn.Module:
    if shape.model == "gino":
        return GinoOnSurface(shape)
    if shape.model == "sfno":
        return SFNO(
            shape.n_modes,
            in_channels=1,
            out_channels=1,
            hidden_channels=shape.width,
            n_layers=shape.layers,
            factorization=shape.factorization,
            rank=1.0 if shape.factorization == "dense" else shape.rank,
            grid="legendre-gauss",
            recompute=shape.recompute,
        )
    return FNO(
        shape.n_modes,
        in_channels=1,
        out_channels=1,
        hidden_channels=shape.width,
        n_layers=shape.layers,
        factorization=shape.factorization,
        rank=1.0 if shape.factorization == "dense" else shape.rank,
        recompute=shape.recompute,
    )


def neuralop_fno(shape: Shape, precision: str) -> nn.Module:
    from neuralop.models import FNO as NeuralopFNO

    return NeuralopFNO(
        n_modes=shape.n_modes,
        in_channels=1,
        out_channels=1,
        hidden_channels=shape.width,
        n_layers=shape.layers,
        fno_block_precision="full" if precision == "amp" else precision,
        stabilizer="tanh" if precision in ("half", "mixed") else None,
        factorization=None if shape.factorization == "dense" else shape.factorization,
        rank=shape.rank,
    )


def surface_points(resolution: int) -> torch.Tensor:
    """14 R^2 points spread over an ellipsoid (semi-axes 0.8, 0.45, 0.35) in GINO's latent cube [-1, 1]^3: about
    3.6k at R = 16, the size of the paper's car meshes. (n, 3) float32."""
    n = 14 * resolution**2
    k = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1 - 2 * k / n
    phi = torch.pi * (1 + 5**0.5) * k
    rho = (1 - z * z).sqrt()
    unit = torch.stack([rho * torch.cos(phi), rho * torch.sin(phi), z], -1)
    return (unit * torch.tensor([0.8, 0.45, 0.35], dtype=torch.float64)).float()


class GinoOnSurface(nn.Module):
    """GINO as a tensor-in, tensor-out model for the bench: the latent geometry feature (B, 1, R, R, R) ->
    pressure (B, 1, V) at :func:`surface_points` (fixed, so every policy sees the same neighbour pairs)."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.gino = GINO(
            n_modes=shape.modes,
            latent_resolution=shape.grid,
            hidden_channels=shape.width,
            n_layers=shape.layers,
            gno_channels=shape.width,
        )
        self.gino.fno.recompute = shape.recompute
        self.register_buffer("coords", surface_points(shape.grid), persistent=False)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        coords = self.get_buffer("coords").to(latent.dtype)
        return self.gino(coords=coords.expand(latent.shape[0], -1, -1), latent=latent)


class GnoToSurface(nn.Module):
    """GINO's decoder GNO layer alone, for the bench: features on the latent grid (B, C, R, R, R) -> (B, C, V)
    at :func:`surface_points`, the neighbour search included (as GINO runs it)."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.layer = GNOLayer(3, shape.width, shape.width, (64, 64), "linear", "mean")
        axis = torch.linspace(-1, 1, shape.grid)
        grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
        self.register_buffer("grid", grid, persistent=False)
        self.register_buffer("coords", surface_points(shape.grid), persistent=False)
        self.radius = 1.5 * 2 / (shape.grid - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid, coords = self.get_buffer("grid").to(x.dtype), self.get_buffer("coords").to(x.dtype)
        near = radius_neighbors(grid, coords, self.radius)
        out = [self.layer(grid, coords, near, f.flatten(1).transpose(0, 1)) for f in x]
        return torch.stack(out).transpose(1, 2)


def our_layer(shape: Shape) -> nn.Module:
    if shape.model == "gino":
        return GnoToSurface(shape)
    if shape.model == "sfno":
        return SphericalConv(
            shape.width,
            shape.width,
            shape.n_modes,
            factorization=shape.factorization,
            rank=shape.rank,
            grid="legendre-gauss",
        )
    return SpectralConv(shape.width, shape.width, shape.n_modes, factorization=shape.factorization, rank=shape.rank)


def neuralop_layer(shape: Shape, precision: str) -> nn.Module:
    from neuralop.layers.spectral_convolution import SpectralConv as NeuralopSpectralConv

    return NeuralopSpectralConv(
        shape.width,
        shape.width,
        shape.n_modes,
        fno_block_precision="full" if precision == "amp" else precision,
        factorization=None if shape.factorization == "dense" else shape.factorization,
        rank=shape.rank,
    )


def neuralop_context(precision: str, device: torch.device):
    """Autocast fp16 for every neuraloperator precision but full, as its trainer runs them."""
    if precision == "full":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16)


def activation_dtype(policy: PrecisionPolicy) -> torch.dtype:
    """The dtype activations have between layers under ``policy``: autocast's, or fp32."""
    return policy.autocast_dtype or torch.float32


# -- steps --------------------------------------------------------------------------------------
def training_step(
    model: nn.Module, context: Callable[[], object], scaler: LossScaler | None, x: torch.Tensor, y: torch.Tensor
) -> tuple[Callable[[], torch.Tensor], dict]:
    """One forward (inside ``context()``), fp32 MSE, backward and Adam step.

    Returns the step (which returns the loss) and a dict counting the steps the loss
    scaler skipped on inf/NaN gradients.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    stats = {"skipped": 0}

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with context():
            out = model(x)
        loss = F.mse_loss(out.float(), y)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            overflow = bool(scaler.unscale_(model))
            if overflow:
                stats["skipped"] += 1
            else:
                optimizer.step()
            scaler.update(overflow)
        return loss

    return step, stats


def layer_step(layer: nn.Module, context: Callable[[], object], x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """One forward and backward of a layer alone; returns the output's mean square (for the NaN check)."""
    x = x.detach().requires_grad_()
    grads: dict[tuple, torch.Tensor] = {}  # one fixed output gradient (the output's shape may differ from x's)

    def step() -> torch.Tensor:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        with context():
            out = layer(x)
        grad = grads.setdefault(tuple(out.shape), torch.randn(out.shape, device=out.device))
        out.backward(grad.to(out.dtype))
        return out.detach().float().square().mean()

    return step
