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

from ..models import FNO, SFNO
from ..precision import LossScaler, PrecisionPolicy
from ..spectral import SpectralConv, SphericalConv

NEURALOP_PRECISIONS = ("full", "amp", "half", "mixed")


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


def our_layer(shape: Shape) -> nn.Module:
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
    grad = torch.randn_like(x)

    def step() -> torch.Tensor:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        with context():
            out = layer(x)
        out.backward(grad.to(out.dtype))
        return out.detach().float().square().mean()

    return step
