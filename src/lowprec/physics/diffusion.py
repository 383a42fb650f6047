"""Diffusion-equation PINN with an exact solution (DeepXDE's ``diffusion_1d`` example).

    u_t = u_xx - e^{-t} (sin(pi x) - pi^2 sin(pi x)),   x in [-1, 1], t in [0, 1],
    u(x, 0) = sin(pi x),   u(-1, t) = u(1, t) = 0,

whose solution is u = e^{-t} sin(pi x). Hayford et al. (2024) check their
bound on how far fp16 rounding keeps training from the optimum on this kind of
problem; :mod:`lowprec.analysis.pinn_bound` does the same here. The solution is
smooth and O(1), and so are its derivatives (|u_xx| <= pi^2), so no residual
comes near fp16's range: what fp16 changes is rounding alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from lowprec.models.pinn import PINN

from ..train.losses import relative_l2_error
from .base import Box, Compute, PhysicsProblem, predict


def diffusion_exact(points: torch.Tensor) -> torch.Tensor:
    """u = e^{-t} sin(pi x) at points (N, 2) = (x, t), float64 (N,)."""
    p = points.double()
    return torch.exp(-p[:, 1]) * torch.sin(math.pi * p[:, 0])


def diffusion_residual(c: Compute, X: torch.Tensor, term: str = "pde"):
    """(s * residual, s) of u_t - u_xx + e^{-t}(sin pi x - pi^2 sin pi x) at points leaf X (N, 2)."""
    s = c.scale(term)
    u = c.net(X)
    du = c.grad(u, X, seed=s)  # s * (u_x, u_t)
    d2 = c.grad(du[:, :1], X)  # s * (u_xx, u_xt)
    x, t = X[:, :1].double(), X[:, 1:].double()
    source = (torch.exp(-t) * (torch.sin(math.pi * x) - math.pi**2 * torch.sin(math.pi * x)) * s).to(u.dtype)
    return du[:, 1:] - d2[:, :1] + source, s


@dataclass(frozen=True)
class Diffusion(PhysicsProblem):
    """Diffusion PINN (network [2, 32, 32, 32, 1] by default).

    Args:
        width / depth / activation: the PINN.
        n_domain / n_boundary / n_initial: collocation points (DeepXDE's example: 40 / 20 / 10;
            more here, so that the loss is not fit on a handful of points).
        n_test: evaluation points (a uniform grid of about this many).
    """

    name: ClassVar[str] = "diffusion"
    kind: ClassVar[str] = "pinn"
    title: ClassVar[str] = "Diffusion PINN"
    default_steps: ClassVar[int] = 10000

    width: int = 32
    depth: int = 3
    activation: str = "tanh"
    n_domain: int = 400
    n_boundary: int = 80
    n_initial: int = 80
    n_test: int = 2500

    @property
    def domain(self) -> Box:
        return Box(("x", "t"), (-1.0, 0.0), (1.0, 1.0))

    def build_model(self, seed: int) -> nn.Module:
        return PINN(2, 1, self.width, self.depth, self.activation, bounds=self.domain.bounds, seed=seed)

    def training_data(self, seed: int, collocation: torch.Tensor | None = None) -> dict:
        dom = self.domain
        if collocation is None:
            collocation = dom.hammersley(self.n_domain)
        dom.check(collocation, "collocation points", self.title)
        tb = Box(("t",), (0.0,), (1.0,)).sample(self.n_boundary, seed + 1)
        side = torch.where(torch.arange(self.n_boundary) % 2 == 0, -1.0, 1.0).unsqueeze(1)
        xi = Box(("x",), (-1.0,), (1.0,)).sample(self.n_initial, seed + 2)
        return {
            "interior": collocation,
            "boundary": torch.cat([side, tb], 1),
            "initial": torch.cat([xi, torch.zeros_like(xi)], 1),
        }

    def loss_terms(self, c: Compute, batch: dict) -> dict[str, torch.Tensor]:
        r, s = diffusion_residual(c, c.points(batch["interior"]))
        xi = c.cast(batch["initial"])
        return {
            "pde": c.mean_square(r, s),
            "ic": c.mse(c(xi), torch.sin(math.pi * xi[:, :1].double())),
            "bc": c.mean_square(c(batch["boundary"])),
        }

    def test_points(self) -> torch.Tensor:
        n = int(math.sqrt(self.n_test))
        X, T = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(0, 1, n), indexing="ij")
        return torch.stack([X.ravel(), T.ravel()], 1)

    def evaluate(self, net: nn.Module, dtype: torch.dtype, data: dict) -> dict[str, float]:
        pts = self.test_points()
        return {"error": relative_l2_error(predict(net, dtype, pts, chunk=8192)[:, 0], diffusion_exact(pts))}
