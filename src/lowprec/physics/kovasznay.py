"""Kovasznay flow: steady incompressible Navier-Stokes with an analytic solution.

    u u_x + v u_y + p_x - (u_xx + u_yy) / Re = 0
    u v_x + v v_y + p_y - (v_xx + v_yy) / Re = 0
    u_x + v_y = 0,        (x, y) in [-0.5, 1] x [-0.5, 1.5], Re = 20,

    u = 1 - e^{lam x} cos(2 pi y),  v = lam / (2 pi) e^{lam x} sin(2 pi y),
    p = (1 - e^{2 lam x}) / 2,      lam = Re / 2 - sqrt(Re^2 / 4 + 4 pi^2).

Boundary conditions as in DeepXDE's example: u and v on the whole boundary,
p on the outflow x = 1. The network has 5 hidden layers of 100 and outputs
(u, v, p). The inverse variant learns 1 / Re from sparse velocity observations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from lowprec.models.pinn import PINN

from ..train.losses import relative_l2_error
from .base import Box, Compute, LearnedCoefficient, PhysicsProblem, predict


def kovasznay_lambda(re: float) -> float:
    return re / 2 - math.sqrt(re**2 / 4 + 4 * math.pi**2)


def kovasznay_exact(X: torch.Tensor, re: float = 20.0) -> torch.Tensor:
    """(u, v, p) at points X (N, 2) -> (N, 3), differentiable, in X's dtype."""
    lam = kovasznay_lambda(re)
    x, y = X[:, :1], X[:, 1:2]
    e = torch.exp(lam * x)
    u = 1 - e * torch.cos(2 * math.pi * y)
    v = lam / (2 * math.pi) * e * torch.sin(2 * math.pi * y)
    p = 0.5 * (1 - torch.exp(2 * lam * x))
    return torch.cat([u, v, p], dim=1)


def kovasznay_residual(c: Compute, X: torch.Tensor, inv_re, key: str = "pde"):
    """(s * (momentum x, momentum y, continuity), s) at the points leaf X (N, 2).

    ``inv_re``: 1/Re, a number or a 0-d tensor (learnable), folded into the seeds
    of the second derivatives.
    """
    s = c.scale(key)
    out = c.net(X)
    u, v, p = out[:, 0:1], out[:, 1:2], out[:, 2:3]
    du, dv, dp = c.grad(u, X, s), c.grad(v, X, s), c.grad(p, X, s)  # s * (d/dx, d/dy)
    seed = inv_re * torch.ones_like(u) if torch.is_tensor(inv_re) else inv_re
    lap_u = c.grad(du[:, 0:1], X, seed)[:, 0:1] + c.grad(du[:, 1:2], X, seed)[:, 1:2]
    lap_v = c.grad(dv[:, 0:1], X, seed)[:, 0:1] + c.grad(dv[:, 1:2], X, seed)[:, 1:2]
    mom_x = u * du[:, 0:1] + v * du[:, 1:2] + dp[:, 0:1] - lap_u
    mom_y = u * dv[:, 0:1] + v * dv[:, 1:2] + dp[:, 1:2] - lap_v
    div = du[:, 0:1] + dv[:, 1:2]
    return (mom_x, mom_y, div), s


@dataclass(frozen=True)
class Kovasznay(PhysicsProblem):
    """Kovasznay flow PINN (Re = 20; [2, 100 x 5, 3]).

    Args:
        re: Reynolds number.
        width / depth / activation: the PINN.
        n_domain / n_boundary: collocation points (DeepXDE: 2601 / 400).
        n_test: evaluation points (a uniform grid of about this many).
    """

    name: ClassVar[str] = "kovasznay"
    kind: ClassVar[str] = "pinn"
    title: ClassVar[str] = "Kovasznay flow PINN"
    default_steps: ClassVar[int] = 20000

    re: float = 20.0
    width: int = 100
    depth: int = 5
    activation: str = "tanh"
    n_domain: int = 2601
    n_boundary: int = 400
    n_test: int = 10000

    @property
    def domain(self) -> Box:
        return Box(("x", "y"), (-0.5, -0.5), (1.0, 1.5))

    def build_model(self, seed: int) -> nn.Module:
        return PINN(2, 3, self.width, self.depth, self.activation, bounds=self.domain.bounds, seed=seed)

    def boundary_points(self, seed: int) -> torch.Tensor:
        """``n_boundary`` points spread over the four sides in proportion to their lengths."""
        (x0, y0), (x1, y1) = self.domain.lo, self.domain.hi
        s = Box(("s",), (0.0,), (1.0,)).sample(self.n_boundary, seed)[:, 0].double()
        perim = 2 * ((x1 - x0) + (y1 - y0))
        d = s * perim
        pts = torch.empty(self.n_boundary, 2, dtype=torch.float64)
        w, h = x1 - x0, y1 - y0
        for lo, hi, fn in (
            (0, w, lambda r: (x0 + r, y0)),
            (w, w + h, lambda r: (x1, y0 + r)),
            (w + h, 2 * w + h, lambda r: (x1 - r, y1)),
            (2 * w + h, perim, lambda r: (x0, y1 - r)),
        ):
            m = (d >= lo) & (d < hi)
            px, py = fn(d[m] - lo)
            pts[m, 0], pts[m, 1] = px, py
        return pts.float()

    def training_data(self, seed: int, collocation: torch.Tensor | None = None) -> dict:
        if collocation is None:
            collocation = self.domain.sample(self.n_domain, seed)
        self.domain.check(collocation, "collocation points", self.title)
        bnd = self.boundary_points(seed + 1)
        return {"interior": collocation, "boundary": bnd, "outflow": bnd[bnd[:, 0] >= self.domain.hi[0] - 1e-6]}

    def _residual_terms(self, c: Compute, batch: dict, inv_re) -> dict[str, torch.Tensor]:
        (mx, my, div), s = kovasznay_residual(c, c.points(batch["interior"]), inv_re)
        bnd, out = c.cast(batch["boundary"]), c.cast(batch["outflow"])
        ref_b = kovasznay_exact(bnd.double(), self.re)  # targets at the points as the compute dtype rounds them
        ref_o = kovasznay_exact(out.double(), self.re)
        return {
            "pde_x": c.mean_square(mx, s),
            "pde_y": c.mean_square(my, s),
            "pde_div": c.mean_square(div, s),
            "bc_uv": c.mse(c(bnd)[:, :2], ref_b[:, :2]),
            "bc_p": c.mse(c(out)[:, 2], ref_o[:, 2]),
        }

    def loss_terms(self, c: Compute, batch: dict) -> dict[str, torch.Tensor]:
        return self._residual_terms(c, batch, 1.0 / self.re)

    def test_points(self) -> torch.Tensor:
        n = int(math.sqrt(self.n_test))
        (x0, y0), (x1, y1) = self.domain.lo, self.domain.hi
        X, Y = torch.meshgrid(torch.linspace(x0, x1, n), torch.linspace(y0, y1, n), indexing="ij")
        return torch.stack([X.ravel(), Y.ravel()], 1)

    def evaluate(self, net: nn.Module, dtype: torch.dtype, data: dict) -> dict[str, float]:
        pts = self.test_points()
        pred = predict(net, dtype, pts, chunk=8192)
        ref = kovasznay_exact(pts.double(), self.re)
        # Error of the velocity (u, v) as DeepXDE reports; p is fixed only up to the outflow condition.
        return {
            "error": relative_l2_error(pred[:, :2], ref[:, :2]),
            "p_error": relative_l2_error(pred[:, 2], ref[:, 2]),
        }

    def plot_solution(self, fig, net, dtype, label, data):
        n = int(math.sqrt(self.n_test))
        pts = self.test_points()
        pred = predict(net, dtype, pts, chunk=8192)[:, 0].reshape(n, n)
        ref = kovasznay_exact(pts.double(), self.re)[:, 0].reshape(n, n)
        ext = (self.domain.lo[0], self.domain.hi[0], self.domain.lo[1], self.domain.hi[1])
        axes = fig.subplots(1, 3)
        for ax, img, title in zip(axes, (ref, pred, (pred - ref).abs()), ("u exact", f"u {label}", "|error|")):
            im = ax.imshow(img.T.numpy(), origin="lower", extent=ext, aspect="auto")
            ax.set_title(title, fontsize=8)
            fig.colorbar(im, ax=ax)


@dataclass(frozen=True)
class KovasznayInverse(Kovasznay):
    """Recover Re of Kovasznay flow from ``n_observations`` velocity samples.

    Error: |Re - Re_true| / Re_true (the field error is reported too).
    """

    name: ClassVar[str] = "kovasznay_inverse"
    title: ClassVar[str] = "Kovasznay inverse (Reynolds number)"

    n_observations: int = 200
    re_init: float = 5.0

    def build_model(self, seed: int) -> nn.Module:
        return LearnedCoefficient(super().build_model(seed), 1.0 / self.re_init)

    def training_data(self, seed: int, collocation: torch.Tensor | None = None) -> dict:
        data = super().training_data(seed, collocation)
        obs = self.domain.sample(self.n_observations, seed + 3)
        data["obs_points"], data["obs_values"] = obs, kovasznay_exact(obs.double(), self.re)[:, :2].float()
        return data

    def loss_terms(self, c: Compute, batch: dict) -> dict[str, torch.Tensor]:
        terms = self._residual_terms(c, batch, c.net.coefficient())
        terms["data"] = c.mse(c(batch["obs_points"])[:, :2], batch["obs_values"])
        return terms

    def evaluate(self, net: nn.Module, dtype: torch.dtype, data: dict) -> dict[str, float]:
        field_err = super().evaluate(net, dtype, data)["error"]
        re = 1.0 / float(net.coefficient().detach().float())
        return {"error": abs(re - self.re) / self.re, "field_error": field_err, "re": re}
