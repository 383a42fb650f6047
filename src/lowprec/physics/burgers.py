"""Viscous Burgers equation: the classic PINN benchmark, forward and inverse.

    u_t + u u_x = nu u_xx,   x in [-1, 1], t in [0, 1],
    u(x, 0) = -sin(pi x),    u(-1, t) = u(1, t) = 0,   nu = 0.01 / pi.

A shock forms at x = 0 around t = 0.3; its width is O(nu), so u_x reaches
~ -150 and |u_xx| 1.4e4 (t ~ 0.7) at the exact solution: a fifth of fp16's
largest number, before a network's overshoot.

Reference: the Cole-Hopf solution, ``u = -2 nu phi_x / phi`` with ``phi`` the
heat-equation solution from ``phi(x, 0) = exp(-cos(pi x) / (2 pi nu))``::

    u(x, t) = - int sin(pi(x - e)) f(x - e) G(e, t) de / int f(x - e) G(e, t) de,
    f(y) = exp(-cos(pi y) / (2 pi nu)),  G = heat kernel of variance 2 nu t,

computed by Gauss-Hermite quadrature (substitute e = sqrt(4 nu t) z). f spans
e^{+-50} at this nu, so the sums run in log space. With 200 nodes the result
agrees with a 20001-point trapezoid rule to 1e-15 on t in (0, 1], and with a
fine finite-difference solve (:func:`burgers_fd`) to the latter's
discretization error (tests/physics/test_references.py).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from lowprec.models.pinn import PINN

from ..train.losses import relative_l2_error
from .base import Box, Compute, LearnedCoefficient, PhysicsProblem, predict

NU = 0.01 / math.pi


def burgers_cole_hopf(x, t, nu: float = NU, n_quad: int = 200) -> np.ndarray:
    """Exact Burgers solution for u0 = -sin(pi x) at points (x, t), float64.

    x, t: broadcastable arrays, x in [-1, 1], t >= 0. ``n_quad``: Gauss-Hermite
    nodes (numpy's ``hermgauss`` overflows beyond about 300).
    """
    if not 2 <= n_quad <= 300:
        raise ValueError(
            f"n_quad={n_quad}: use 2..300 Gauss-Hermite nodes (numpy's hermgauss overflows "
            "beyond ~300; 200 is accurate to 1e-15 at nu=0.01/pi)."
        )
    x, t = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64))
    if (t < 0).any():
        raise ValueError("burgers_cole_hopf: t must be >= 0.")
    out = np.empty(x.shape)
    z, w = np.polynomial.hermite.hermgauss(n_quad)
    with np.errstate(divide="ignore"):
        logw = np.log(w)
    at0 = t == 0
    out[at0] = -np.sin(np.pi * x[at0])
    xs, ts = x[~at0].ravel(), t[~at0].ravel()
    res = np.empty(xs.shape)
    for lo in range(0, xs.size, 4096):  # chunks bound the (points x nodes) temporaries
        xc, tc = xs[lo : lo + 4096, None], ts[lo : lo + 4096, None]
        y = xc - np.sqrt(4 * nu * tc) * z[None, :]
        a = logw[None, :] - np.cos(np.pi * y) / (2 * np.pi * nu)
        a -= a.max(axis=1, keepdims=True)
        e = np.exp(a)
        res[lo : lo + 4096] = -(np.sin(np.pi * y) * e).sum(1) / e.sum(1)
    out[~at0] = res
    return out


def burgers_fd(nu: float = NU, nx: int = 2049, t_out=(0.25, 0.5, 0.75, 1.0), cfl: float = 0.9):
    """Finite-difference Burgers solve on a uniform grid: (x (nx,), u (len(t_out), nx)).

    Conservative central differences (second order; resolved when the cell
    Peclet number dx |u| / nu < 2, i.e. nx > ~300 at nu = 0.01/pi) and
    classical RK4 with the step set by the diffusive and advective limits.
    Dirichlet u = 0 at x = +-1.
    """
    x = np.linspace(-1.0, 1.0, nx)
    dx = x[1] - x[0]
    if dx * 1.0 / nu >= 2:
        raise ValueError(
            f"burgers_fd: nx={nx} under-resolves nu={nu:g} (cell Peclet {dx / nu:.2f} >= 2); "
            f"use nx >= {int(2 / nu) + 2}."
        )
    u = -np.sin(np.pi * x)
    u[0] = u[-1] = 0.0

    def rhs(v):
        r = np.zeros_like(v)
        f = 0.5 * v * v
        r[1:-1] = -(f[2:] - f[:-2]) / (2 * dx) + nu * (v[2:] - 2 * v[1:-1] + v[:-2]) / dx**2
        return r

    # RK4 is stable for |lambda dt| <= 2.78 on the real axis and 2.82 on the imaginary one.
    dt_max = cfl * min(2.78 * dx**2 / (4 * nu), 2.82 * dx / 1.0)
    out, t = [], 0.0
    for target in sorted(t_out):
        n = max(1, math.ceil((target - t) / dt_max))
        dt = (target - t) / n
        for _ in range(n):
            k1 = rhs(u)
            k2 = rhs(u + 0.5 * dt * k1)
            k3 = rhs(u + 0.5 * dt * k2)
            k4 = rhs(u + dt * k3)
            u = u + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t = target
        out.append(u.copy())
    return x, np.stack(out)


@functools.lru_cache(maxsize=4)
def _reference_grid(nu: float, nx: int, nt: int):
    x = np.linspace(-1, 1, nx)
    t = np.linspace(0, 0.99, nt)  # the grid of Raissi et al.'s burgers_shock.mat (256 x 100)
    X, T = np.meshgrid(x, t, indexing="ij")
    u = burgers_cole_hopf(X, T, nu)
    pts = torch.from_numpy(np.stack([X.ravel(), T.ravel()], axis=1)).float()
    return x, t, pts, torch.from_numpy(u.ravel())


def max_second_derivative(net: nn.Module, dtype: torch.dtype, pts: torch.Tensor, chunk: int = 8192) -> float:
    """max |u_xx| of ``net`` over ``pts``, computed in ``dtype`` without any scaling (inf if it overflows).

    The number the residual guard exists for: near the shock it comes within a
    factor of a few of fp16's 65504, which is why the residual folds nu into the
    derivative seed (nu u_xx is ~50 there).
    """
    out = 0.0
    for x in pts.split(chunk):
        c = Compute(net, dtype)
        X = c.points(x.to(next(net.parameters()).device))
        du = c.grad(c.net(X), X)
        uxx = c.grad(du[:, :1], X)[:, 0].detach().float()
        out = max(out, float(uxx.abs().max()) if torch.isfinite(uxx).all() else math.inf)
    return out


def burgers_residual(c: Compute, X: torch.Tensor, nu, term: str = "pde"):
    """(s * residual, s) of u_t + u u_x - nu u_xx at points leaf X (N, 2) in the compute dtype.

    ``nu``: a number or a 0-d tensor (learnable viscosity). It is folded into
    the seed of the second derivative, so ``nu * u_xx`` is formed directly and
    never ``u_xx`` alone, which comes within a few times fp16's range near the shock.
    """
    s = c.scale(term)
    u = c.net(X)  # (N, 1)
    du = c.grad(u, X, seed=s)  # s * (u_x, u_t)
    seed = nu * torch.ones_like(du[:, :1]) if torch.is_tensor(nu) else nu
    d2 = c.grad(du[:, :1], X, seed=seed)  # s * nu * (u_xx, u_xt)
    return du[:, 1:] + u * du[:, :1] - d2[:, :1], s


@dataclass(frozen=True)
class Burgers(PhysicsProblem):
    """Burgers PINN (network [2, 32, 32, 32, 1] by default).

    Args:
        nu: viscosity.
        width / depth / activation: the PINN.
        n_domain / n_boundary / n_initial: collocation points (DeepXDE's example: 2540 / 80 / 160).
        sampler: interior points from ``"hammersley"`` (deterministic; DeepXDE's default) or
            ``"sobol"`` (scrambled, seeded).
        normalize_inputs: map (x, t) to [-1, 1]^2 inside the network.
        residual_everywhere: impose the PDE residual on every training point, boundary and
            initial ones included, as DeepXDE's TimePDE does (False: interior points only).
        fourier_features: random Fourier features of (x, t) (0: none).
        nx_ref / nt_ref: reference grid (256 x 100, as burgers_shock.mat).

    The defaults are DeepXDE's choices (raw inputs, Hammersley points, the residual on every
    point); with them fp32 reaches a lower error than with normalized inputs, Sobol points and
    the residual inside only (the setup ablation is indexed in ``benchmarks/README.md``).
    """

    name: ClassVar[str] = "burgers"
    kind: ClassVar[str] = "pinn"
    title: ClassVar[str] = "Burgers PINN"
    default_steps: ClassVar[int] = 20000
    default_eval_every: ClassVar[int] = 500

    nu: float = NU
    width: int = 32
    depth: int = 3
    activation: str = "tanh"
    n_domain: int = 2540
    n_boundary: int = 80
    n_initial: int = 160
    sampler: str = "hammersley"
    normalize_inputs: bool = False
    residual_everywhere: bool = True
    fourier_features: int = 0
    nx_ref: int = 256
    nt_ref: int = 100

    @property
    def domain(self) -> Box:
        return Box(("x", "t"), (-1.0, 0.0), (1.0, 1.0))

    def build_model(self, seed: int) -> nn.Module:
        return PINN(
            2,
            1,
            self.width,
            self.depth,
            self.activation,
            bounds=self.domain.bounds if self.normalize_inputs else None,
            fourier_features=self.fourier_features,
            seed=seed,
        )

    def training_data(self, seed: int, collocation: torch.Tensor | None = None) -> dict:
        """Interior, boundary and initial points; ``collocation`` (N, 2) replaces the interior sample."""
        dom = self.domain
        if collocation is None:
            if self.sampler not in ("hammersley", "sobol"):
                raise ValueError(f"{self.title}: sampler={self.sampler!r}; use 'hammersley' or 'sobol'.")
            collocation = (
                dom.hammersley(self.n_domain) if self.sampler == "hammersley" else dom.sample(self.n_domain, seed)
            )
        dom.check(collocation, "collocation points", self.title)
        tb = Box(("t",), (0.0,), (1.0,)).sample(self.n_boundary, seed + 1)
        side = torch.where(torch.arange(self.n_boundary) % 2 == 0, -1.0, 1.0).unsqueeze(1)
        xi = Box(("x",), (-1.0,), (1.0,)).sample(self.n_initial, seed + 2)
        return {
            "interior": collocation,
            "boundary": torch.cat([side, tb], 1),
            "initial": torch.cat([xi, torch.zeros_like(xi)], 1),
        }

    def residual_points(self, batch: dict) -> torch.Tensor:
        if not self.residual_everywhere:
            return batch["interior"]
        return torch.cat([batch["interior"], batch["boundary"], batch["initial"]])

    def loss_terms(self, c: Compute, batch: dict) -> dict[str, torch.Tensor]:
        r, s = burgers_residual(c, c.points(self.residual_points(batch)), self.nu)
        # Targets at the points as the compute dtype rounds them: the network is asked for the
        # value at the point it actually sees.
        xi = c.cast(batch["initial"])
        return {
            "pde": c.mean_square(r, s),
            "ic": c.mse(c(xi), -torch.sin(math.pi * xi[:, :1].double())),
            "bc": c.mean_square(c(batch["boundary"])),
        }

    def reference(self):
        """(x (nx,), t (nt,), points (nx*nt, 2) fp32, u (nx*nt,) fp64) on the reference grid."""
        return _reference_grid(self.nu, self.nx_ref, self.nt_ref)

    def evaluate(self, net: nn.Module, dtype: torch.dtype, data: dict) -> dict[str, float]:
        _, _, pts, u = self.reference()
        pred = predict(net, dtype, pts, chunk=8192)[:, 0]
        return {"error": relative_l2_error(pred, u), "max_uxx": max_second_derivative(net, dtype, pts)}

    def plot_solution(self, fig, net, dtype, label, data):
        x, t, pts, u = self.reference()
        pred = predict(net, dtype, pts, chunk=8192)[:, 0].reshape(len(x), len(t)).numpy()
        ref = u.reshape(len(x), len(t)).numpy()
        axes = fig.subplots(1, 3)
        for ax, tk in zip(axes, (0.25, 0.5, 0.75)):
            j = int(np.argmin(np.abs(t - tk)))
            ax.plot(x, ref[:, j], "k-", lw=2, label="Cole-Hopf")
            ax.plot(x, pred[:, j], "r--", label=label)
            ax.set_title(f"t = {t[j]:.2f}")
            ax.set_xlabel("x")
        axes[0].set_ylabel("u")
        axes[0].legend(fontsize=7)


@dataclass(frozen=True)
class BurgersInverse(Burgers):
    """Recover Burgers' viscosity from sparse observations of u.

    The error reported is |nu - nu_true| / nu_true; the field error is also given.
    The true nu defaults to 0.03 (guess 0.1): at 0.01/pi the estimate can only
    fall as fast as the network sharpens the shock (a smeared shock fits a
    larger nu), so after a few thousand Adam steps it is still far from the
    truth, and a comparison there would compare unconverged numbers.

    Args (besides Burgers'):
        n_observations: points where u is observed (exact Cole-Hopf values).
        nu_init: starting guess of the viscosity.
        nu_speed: nu = exp(nu_speed * a) with a trained: the step multiplier in log(nu).

    Unlike the forward problem it keeps normalized inputs, Sobol points and the residual inside
    only: with these fp32 recovers nu more accurately than with DeepXDE's choices.
    """

    name: ClassVar[str] = "burgers_inverse"
    title: ClassVar[str] = "Burgers inverse (viscosity)"
    default_steps: ClassVar[int] = 20000

    nu: float = 0.03
    sampler: str = "sobol"
    normalize_inputs: bool = True
    residual_everywhere: bool = False
    n_observations: int = 500
    nu_init: float = 0.1
    nu_speed: float = 10.0

    def build_model(self, seed: int) -> nn.Module:
        return LearnedCoefficient(super().build_model(seed), self.nu_init, self.nu_speed)

    def training_data(self, seed: int, collocation: torch.Tensor | None = None) -> dict:
        data = super().training_data(seed, collocation)
        obs = self.domain.sample(self.n_observations, seed + 3)
        data["obs_points"] = obs
        data["obs_values"] = torch.from_numpy(
            burgers_cole_hopf(obs[:, 0].double().numpy(), obs[:, 1].double().numpy(), self.nu)
        ).float()
        return data

    def loss_terms(self, c: Compute, batch: dict) -> dict[str, torch.Tensor]:
        nu = c.net.coefficient()
        r, s = burgers_residual(c, c.points(self.residual_points(batch)), nu)
        xi = c.cast(batch["initial"])
        return {
            "pde": c.mean_square(r, s),
            "ic": c.mse(c(xi), -torch.sin(math.pi * xi[:, :1].double())),
            "bc": c.mean_square(c(batch["boundary"])),
            "data": c.mse(c(batch["obs_points"])[:, 0], batch["obs_values"]),
        }

    def evaluate(self, net: nn.Module, dtype: torch.dtype, data: dict) -> dict[str, float]:
        field_err = super().evaluate(net, dtype, data)["error"]
        nu = float(net.coefficient().detach().float())
        return {"error": abs(nu - self.nu) / self.nu, "field_error": field_err, "nu": nu}


__all__ = [
    "Burgers",
    "BurgersInverse",
    "burgers_cole_hopf",
    "burgers_fd",
    "burgers_residual",
    "max_second_derivative",
    "NU",
]
