"""DeepONet and POD-DeepONet for 1D periodic advection.

    u_t + a u_x = 0,   x in [0, 1) periodic,   t in [0, 1],   u(x, 0) = u0(x).

The operator maps u0 to u(x, t) = u0(x - a t): exact by translation. Input
functions are random Fourier series (a periodic Gaussian random field with a
squared-exponential spectrum)::

    u0(x) = sum_{k=1}^{K} sigma_k (alpha_k cos 2 pi k x + beta_k sin 2 pi k x),
    sigma_k = exp(-(pi k l)^2 / 2) / norm,  alpha, beta ~ N(0, 1),

normalized to unit variance, so the exact solution is available at any point.
Each u0 is seen through its values at ``n_sensors`` uniform points; outputs
are compared on an ``nx x nt`` grid shared by all functions (the cartesian
DeepONet form).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from lowprec.models.deeponet import DeepONet, PODDeepONet

from ..train.losses import mean_relative_l2_error
from .base import Box, Compute, PhysicsProblem, power_of_two_below, predict


def fourier_sigma(n_modes: int, length_scale: float) -> torch.Tensor:
    k = torch.arange(1, n_modes + 1, dtype=torch.float64)
    sigma = torch.exp(-0.5 * (math.pi * k * length_scale) ** 2)
    return sigma / sigma.square().sum().sqrt()  # unit variance of u0


def fourier_eval(coeffs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Periodic Fourier series at points: coeffs (N, K, 2) [cos, sin], x (..., ) -> (N, ...).

    Differentiable in x (used by the residual test on the exact solution).
    """
    k = torch.arange(1, coeffs.shape[1] + 1, dtype=x.dtype)
    phase = 2 * math.pi * x.unsqueeze(-1) * k  # (..., K)
    cos, sin = torch.cos(phase), torch.sin(phase)
    flat_c, flat_s = cos.reshape(-1, len(k)), sin.reshape(-1, len(k))
    out = coeffs[..., 0].to(x.dtype) @ flat_c.T + coeffs[..., 1].to(x.dtype) @ flat_s.T
    return out.reshape(coeffs.shape[0], *x.shape)


def advection_residual(c: Compute, u_sensors: torch.Tensor, Y: torch.Tensor, speed, key: str = "pde"):
    """(s * (u_t + a u_x), s) of a pointwise DeepONet at the points leaf Y (B, P, 2)."""
    s = c.scale(key)
    out = c(u_sensors, Y)  # (B, P)
    d = c.grad(out, Y, s)  # (B, P, 2) = s * (u_x, u_t)
    return d[..., 1] + speed * d[..., 0], s


@functools.lru_cache(maxsize=8)
def _advection_data(n_modes, length_scale, speed, n_sensors, nx, nt, n_train, n_test, seed):
    gen = torch.Generator().manual_seed(seed)
    sigma = fourier_sigma(n_modes, length_scale)
    coeffs = torch.randn(n_train + n_test, n_modes, 2, generator=gen, dtype=torch.float64) * sigma[:, None]
    sensors = torch.arange(n_sensors, dtype=torch.float64) / n_sensors
    x = torch.arange(nx, dtype=torch.float64) / nx
    t = torch.linspace(0, 1, nt, dtype=torch.float64)
    X, T = torch.meshgrid(x, t, indexing="ij")
    y = torch.stack([X.ravel(), T.ravel()], 1)  # (P, 2)
    u = fourier_eval(coeffs, sensors)  # (N, m)
    s = fourier_eval(coeffs, torch.remainder(y[:, 0] - speed * y[:, 1], 1.0))  # (N, P), exact
    split = lambda a: (a[:n_train].float(), a[n_train:].float())  # noqa: E731
    (u_tr, u_te), (s_tr, s_te) = split(u), split(s)
    return {
        "u": u_tr,
        "s": s_tr,
        "y": y.float(),
        "u_test": u_te,
        "s_test": s_te,
        "coeffs": coeffs[:n_train],
        "coeffs_test": coeffs[n_train:],
    }


@dataclass(frozen=True)
class Advection(PhysicsProblem):
    """DeepONet for periodic advection (branch [m, w x d, p], trunk [2, w x d, p]).

    Args:
        speed: advection speed a.
        n_modes / length_scale: the random Fourier series of u0.
        n_sensors: m, sensor values per input function.
        nx / nt: output grid (x uniform in [0, 1), t in [0, 1] inclusive).
        n_train / n_test / batch_size: functions in the training set, the test set and a step.
        p / width / depth / activation: the DeepONet (same hidden sizes for branch and trunk).
        physics_weight: weight of an optional residual loss u_t + a u_x on ``n_residual``
            random points per function (0: data only, the default).
    """

    name: ClassVar[str] = "advection"
    kind: ClassVar[str] = "deeponet"
    title: ClassVar[str] = "DeepONet, 1D advection"
    default_steps: ClassVar[int] = 10000
    default_eval_every: ClassVar[int] = 250

    speed: float = 1.0
    n_modes: int = 8
    length_scale: float = 0.1
    n_sensors: int = 64
    nx: int = 40
    nt: int = 21
    n_train: int = 1000
    n_test: int = 200
    batch_size: int = 100
    p: int = 64
    width: int = 128
    depth: int = 2
    activation: str = "tanh"
    physics_weight: float = 0.0
    n_residual: int = 64

    @property
    def domain(self) -> Box:
        return Box(("x", "t"), (0.0, 0.0), (1.0, 1.0))

    def data(self, seed: int) -> dict:
        return _advection_data(
            self.n_modes,
            self.length_scale,
            self.speed,
            self.n_sensors,
            self.nx,
            self.nt,
            self.n_train,
            self.n_test,
            seed,
        )

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
        return self.data(seed)

    def batch(self, data: dict, step: int, generator: torch.Generator) -> dict:
        idx = torch.randperm(len(data["u"]), generator=generator)[: self.batch_size]
        out = {"u": data["u"][idx], "s": data["s"][idx], "y": data["y"]}
        if self.physics_weight > 0:
            out["y_res"] = torch.rand(len(idx), self.n_residual, 2, generator=generator)
        return out

    def loss_terms(self, c: Compute, batch: dict) -> dict[str, torch.Tensor]:
        u = c.cast(batch["u"])
        terms = {"data": c.mse(c(u, batch["y"]), batch["s"])}
        if self.physics_weight > 0:
            r, s = advection_residual(c, u, c.points(batch["y_res"]), self.speed)
            terms["pde"] = c.mean_square(r, s)
        return terms

    def loss_weights(self) -> dict[str, float]:
        return {"pde": self.physics_weight}

    def evaluate(self, net: nn.Module, dtype: torch.dtype, data: dict) -> dict[str, float]:
        return {"error": mean_relative_l2_error(self._predict_test(net, dtype, data), data["s_test"])}

    def _predict_test(self, net, dtype, d):
        return torch.cat([predict(net, dtype, u, d["y"]) for u in d["u_test"].split(100)])

    def plot_solution(self, fig, net, dtype, label, data):
        d = data
        pred = self._predict_test(net, dtype, {"u_test": d["u_test"][:1], "y": d["y"]})[0]
        ref = d["s_test"][0]
        x = np.arange(self.nx) / self.nx
        axes = fig.subplots(1, 3)
        for ax, j in zip(axes, (0, self.nt // 2, self.nt - 1)):
            sl = slice(j, None, self.nt)  # y is ordered x-major: point (i, j) at i * nt + j
            ax.plot(x, ref[sl].numpy(), "k-", lw=2, label="exact")
            ax.plot(x, pred[sl].numpy(), "r--", label=label)
            ax.set_title(f"test function 0, t = {j / (self.nt - 1):.2f}", fontsize=8)
            ax.set_xlabel("x")
        axes[0].legend(fontsize=7)


@dataclass(frozen=True)
class PODAdvection(Advection):
    """POD-DeepONet for periodic advection: the trunk is the leading POD modes of the training outputs.

    Args (besides Advection's; ``p`` is unused, the branch predicts ``n_pod`` coefficients):
        n_pod: POD modes kept.
        residual_scale: the data residual (prediction - target) is multiplied by
            this power of two in the compute dtype before it is squared and the
            square is divided back in fp32 (0: automatic, the largest power of
            two <= 1 / max |training output|, so the fp16 residual is O(1)).
    """

    name: ClassVar[str] = "pod_advection"
    title: ClassVar[str] = "POD-DeepONet, 1D advection"

    n_pod: int = 32
    residual_scale: float = 0.0

    def __post_init__(self):
        if self.physics_weight:
            raise ValueError(
                "pod_advection: the POD-DeepONet predicts on a fixed grid and has no derivative in "
                "(x, t) to form a residual with; use advection with physics_weight instead."
            )
        if not 1 <= self.n_pod <= min(self.n_train, self.nx * self.nt):
            raise ValueError(f"pod_advection: n_pod={self.n_pod} must lie in [1, min(n_train, nx*nt)].")

    def build_model(self, seed: int) -> nn.Module:
        return PODDeepONet.from_outputs(
            self.n_sensors,
            self.data(seed)["s"],
            self.n_pod,
            branch_width=self.width,
            branch_depth=self.depth,
            activation=self.activation,
            seed=seed,
        )

    def _scale(self, data) -> float:
        if self.residual_scale:
            return self.residual_scale
        return power_of_two_below(1.0 / float(data["s"].abs().max()))

    def batch(self, data: dict, step: int, generator: torch.Generator) -> dict:
        idx = torch.randperm(len(data["u"]), generator=generator)[: self.batch_size]
        return {"u": data["u"][idx], "s": data["s"][idx], "k": self._scale(data)}

    def loss_terms(self, c: Compute, batch: dict) -> dict[str, torch.Tensor]:
        # Residual rescaling (Hayford et al.'s POD-DeepONet recipe): scale the fp16 residual before
        # squaring. We also square and sum in fp32, which alone prevents overflow of the square; the
        # scale keeps the fp16 residual itself in the well-resolved range near 1.
        k = batch["k"]
        r = (c(c.cast(batch["u"])) - c.cast(batch["s"])) * k
        return {"data": c.mean_square(r, k)}

    def _predict_test(self, net, dtype, d):
        return torch.cat([predict(net, dtype, u) for u in d["u_test"].split(100)])
