"""Physics-informed DeepONet for a diffusion-reaction equation (Wang, Wang & Perdikaris 2021).

    s_t = D s_xx + k s^2 + f(x),   x in [0, 1], t in [0, 1],
    s(x, 0) = 0,   s(0, t) = s(1, t) = 0,   D = k = 0.01.

The operator maps the source f to the solution s. It is trained on the PDE
residual, the initial and the boundary conditions alone: no solution data.
Sources are random series ``f(x) = sum_k sigma_k (a_k cos k pi x + b_k sin k pi x)``
(a smooth Gaussian random field with a squared-exponential spectrum, unit
variance), so f is exact at every residual point. The reference is a
Crank-Nicolson finite-difference solve (:func:`diffusion_reaction_fd`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from scipy.linalg import solve_banded
from torch import nn

from lowprec.models.deeponet import DeepONet

from ..train.losses import mean_relative_l2_error
from .base import Box, Compute, PhysicsProblem, predict


def source_sigma(n_terms: int, length_scale: float) -> torch.Tensor:
    k = torch.arange(n_terms, dtype=torch.float64)
    sigma = torch.exp(-0.5 * (math.pi * k * length_scale) ** 2)
    return sigma / (2 * sigma.square().sum()).sqrt()  # unit variance (cos and sin parts)


def source_eval(coeffs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """f at points: coeffs (N, K, 2) [cos, sin]; x (P,) shared or (N, Q) per function -> (N, P) / (N, Q)."""
    k = torch.arange(coeffs.shape[1], dtype=torch.float64)
    phase = math.pi * x.double().unsqueeze(-1) * k  # (..., K)
    c, s = coeffs[..., 0].double(), coeffs[..., 1].double()
    if x.ndim == 1:
        return c @ torch.cos(phase).T + s @ torch.sin(phase).T
    return (c.unsqueeze(1) * torch.cos(phase)).sum(-1) + (s.unsqueeze(1) * torch.sin(phase)).sum(-1)


def diffusion_reaction_fd(
    source: np.ndarray | Callable,
    D: float = 0.01,
    k: float = 0.01,
    nx: int = 101,
    nt: int = 101,
    T: float = 1.0,
    substeps: int = 4,
):
    """Crank-Nicolson solve with zero initial and boundary values.

    Args:
        source: (N, nx) time-independent sources on the grid, or a callable
            ``f(x (nx,), t) -> (N, nx)`` (time-dependent, e.g. for a manufactured solution).
        D, k: diffusion and reaction coefficients.
        nx, nt: grid nodes in x (including both boundaries) and output times (t = 0 and T included).
        substeps: time steps per output interval.

    Returns (x (nx,), t (nt,), s (N, nt, nx)) in float64. Diffusion is
    Crank-Nicolson, the reaction k s^2 second-order Adams-Bashforth, the source
    taken at mid-step: second order in dx and dt.
    """
    x = np.linspace(0.0, 1.0, nx)
    t = np.linspace(0.0, T, nt)
    dx, dt = x[1] - x[0], (t[1] - t[0]) / substeps
    constant = None if callable(source) else np.atleast_2d(source)
    f = source if callable(source) else (lambda xx, tt: constant)
    n_fun = f(x, 0.0).shape[0]
    m = nx - 2
    r = D * dt / (2 * dx**2)
    ab = np.zeros((3, m))  # (I - dt/2 D L) in banded form
    ab[0, 1:], ab[1, :], ab[2, :-1] = -r, 1 + 2 * r, -r
    s = np.zeros((m, n_fun))
    react_prev = np.zeros_like(s)
    out = np.zeros((n_fun, nt, nx))
    time = 0.0
    for j in range(1, nt):
        for _ in range(substeps):
            lap = np.zeros_like(s)
            lap[1:-1] = s[2:] - 2 * s[1:-1] + s[:-2]
            lap[0], lap[-1] = s[1] - 2 * s[0], s[-2] - 2 * s[-1]
            react = k * s**2
            rhs = s + r * lap + dt * (1.5 * react - 0.5 * react_prev) + dt * f(x, time + dt / 2)[:, 1:-1].T
            s, react_prev = solve_banded((1, 1), ab, rhs), react
            time += dt
        out[:, j, 1:-1] = s.T
    return x, t, out


def dr_residual(
    c: Compute,
    u_sensors: torch.Tensor,
    Y: torch.Tensor,
    f_at_points: torch.Tensor,
    D: float,
    k: float,
    key: str = "pde",
):
    """(s * (s_t - D s_xx - k s^2 - f), scale) of a pointwise DeepONet at the points leaf Y (B, Q, 2)."""
    sc = c.scale(key)
    out = c(u_sensors, Y)  # (B, Q)
    d = c.grad(out, Y, sc)  # sc * (s_x, s_t)
    dxx = c.grad(d[..., 0], Y, D)[..., 0]  # sc * D * s_xx
    return d[..., 1] - dxx - (sc * k) * out * out - sc * c.cast(f_at_points), sc


@functools.lru_cache(maxsize=4)
def _dr_data(n_terms, length_scale, n_sensors, D, k, n_train, n_test, nx_ref, nt_ref, seed):
    gen = torch.Generator().manual_seed(seed)
    sigma = source_sigma(n_terms, length_scale)
    coeffs = torch.randn(n_train + n_test, n_terms, 2, generator=gen, dtype=torch.float64) * sigma[:, None]
    sensors = torch.linspace(0, 1, n_sensors, dtype=torch.float64)
    u = source_eval(coeffs, sensors).float()
    x, t, s = diffusion_reaction_fd(
        source_eval(coeffs[n_train:], torch.from_numpy(np.linspace(0, 1, nx_ref))).numpy(), D, k, nx_ref, nt_ref
    )
    X, T = np.meshgrid(x, t, indexing="ij")
    y = torch.from_numpy(np.stack([X.ravel(), T.ravel()], 1)).float()  # (P, 2), x-major
    s_test = torch.from_numpy(s.transpose(0, 2, 1).reshape(n_test, -1)).float()  # (N, P) in y's order
    return {"u": u[:n_train], "coeffs": coeffs[:n_train], "u_test": u[n_train:], "y": y, "s_test": s_test}


@dataclass(frozen=True)
class DiffusionReaction(PhysicsProblem):
    """Physics-informed DeepONet: source f -> solution s, trained on the residual only.

    Args:
        D / k: diffusion and reaction coefficients.
        n_terms / length_scale: the random source series.
        n_sensors: m, sensor values of f on a uniform grid of [0, 1].
        n_train / n_test / batch_size: sources in the training set, the test set and a step.
        n_residual / n_initial / n_boundary: points per function and step.
        p / width / depth / activation: the DeepONet.
        nx_ref / nt_ref: finite-difference reference grid (error measured on all its nodes).
    """

    name: ClassVar[str] = "diffusion_reaction"
    kind: ClassVar[str] = "deeponet"
    title: ClassVar[str] = "PI-DeepONet, diffusion-reaction"
    default_steps: ClassVar[int] = 10000
    default_eval_every: ClassVar[int] = 250

    D: float = 0.01
    k: float = 0.01
    n_terms: int = 8
    length_scale: float = 0.2
    n_sensors: int = 100
    n_train: int = 1000
    n_test: int = 100
    batch_size: int = 32
    n_residual: int = 64
    n_initial: int = 16
    n_boundary: int = 16
    p: int = 64
    width: int = 64
    depth: int = 3
    activation: str = "tanh"
    nx_ref: int = 51
    nt_ref: int = 51

    @property
    def domain(self) -> Box:
        return Box(("x", "t"), (0.0, 0.0), (1.0, 1.0))

    def build_model(self, seed: int) -> nn.Module:
        return DeepONet(
            self.n_sensors,
            2,
            self.p,
            self.width,
            self.depth,
            self.width,
            self.depth,
            self.activation,
            bounds=self.domain.bounds,
            seed=seed,
        )

    def training_data(self, seed: int) -> dict:
        return _dr_data(
            self.n_terms,
            self.length_scale,
            self.n_sensors,
            self.D,
            self.k,
            self.n_train,
            self.n_test,
            self.nx_ref,
            self.nt_ref,
            seed,
        )

    def batch(self, data: dict, step: int, generator: torch.Generator) -> dict:
        B = self.batch_size
        idx = torch.randperm(len(data["u"]), generator=generator)[:B]
        y_res = torch.rand(B, self.n_residual, 2, generator=generator)
        x_ic = torch.rand(B, self.n_initial, 1, generator=generator)
        t_bc = torch.rand(B, self.n_boundary, 1, generator=generator)
        side = (torch.arange(self.n_boundary) % 2).float().view(1, -1, 1).expand(B, -1, 1)
        return {
            "u": data["u"][idx],
            "y_res": y_res,
            "f_res": source_eval(data["coeffs"][idx], y_res[..., 0]).float(),
            "y_ic": torch.cat([x_ic, torch.zeros_like(x_ic)], -1),
            "y_bc": torch.cat([side, t_bc], -1),
        }

    def loss_terms(self, c: Compute, batch: dict) -> dict[str, torch.Tensor]:
        u = c.cast(batch["u"])
        r, s = dr_residual(c, u, c.points(batch["y_res"]), batch["f_res"], self.D, self.k)
        return {
            "pde": c.mean_square(r, s),
            "ic": c.mean_square(c(u, batch["y_ic"])),
            "bc": c.mean_square(c(u, batch["y_bc"])),
        }

    def evaluate(self, net: nn.Module, dtype: torch.dtype, data: dict) -> dict[str, float]:
        pred = torch.cat([predict(net, dtype, u, data["y"]) for u in data["u_test"].split(50)])
        return {"error": mean_relative_l2_error(pred, data["s_test"])}

    def plot_solution(self, fig, net, dtype, label, data):
        pred = predict(net, dtype, data["u_test"][:1], data["y"])[0].reshape(self.nx_ref, self.nt_ref)
        ref = data["s_test"][0].reshape(self.nx_ref, self.nt_ref)
        axes = fig.subplots(1, 3)
        for ax, img, title in zip(
            axes, (ref, pred, (pred - ref).abs()), ("s, finite differences", f"s, {label}", "|error|")
        ):
            im = ax.imshow(img.T.numpy(), origin="lower", extent=(0, 1, 0, 1), aspect="auto")
            ax.set_title(title, fontsize=8)
            ax.set_xlabel("x")
            fig.colorbar(im, ax=ax)
        axes[0].set_ylabel("t")
