"""Deep operator networks: unstacked DeepONet and POD-DeepONet.

DeepONet (Lu et al. 2021) learns an operator G mapping an input function u,
seen through its values at m fixed *sensors*, to an output function
evaluated at any point y::

    G(u)(y) = sum_k b_k(u) t_k(y) + b_0

with a branch MLP ``b: R^m -> R^p`` and a trunk MLP ``t: R^d -> R^p``.
Two evaluation forms, picked by the shape of ``y``:

* **cartesian** (aligned data, every function evaluated at the same P points):
  ``u (B, m)``, ``y (P, d)`` -> ``(B, P)``; the trunk runs once on P points
  and the combination is one (B, p) x (p, P) product;
* **pointwise** (each function has its own points, as physics-informed
  DeepONets need so that ``autograd.grad`` gives per-point derivatives):
  ``u (B, m)``, ``y (B, P, d)`` -> ``(B, P)``.

POD-DeepONet (Lu et al. 2022) replaces the trunk by the leading POD modes of
the training outputs on a fixed grid; only the branch is trained.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .pinn import MLP, Bounds, InputTransform, _seeded, linear


def _check_sensors(u: torch.Tensor, n_sensors: int, model: str) -> None:
    if u.ndim != 2 or u.shape[1] != n_sensors:
        got = u.shape[1] if u.ndim == 2 else f"shape {tuple(u.shape)}"
        raise ValueError(
            f"{model} was built for {n_sensors} sensor values per input function (branch input of shape "
            f"(batch, {n_sensors})), got {got}. Sample every input function at the model's "
            f"{n_sensors} sensor points, or build the model with n_sensors={u.shape[-1]}."
        )


class DeepONet(nn.Module):
    """Unstacked DeepONet with a scalar output bias.

    Args:
        n_sensors: m, number of sensor values of each input function.
        coord_dim: d, dimension of the output coordinates y (2 for (x, t)).
        p: number of basis functions (width of the branch and trunk outputs).
        branch_width / branch_depth: hidden layers of the branch MLP.
        trunk_width / trunk_depth: hidden layers of the trunk MLP.
        activation: hidden activation of both nets. The trunk's output layer is
            activated too (as in DeepXDE), the branch's is linear.
        bounds: optional domain box ``(lo, hi)`` of y, normalized to [-1, 1].
        fourier_features / fourier_scale: optional random Fourier features of y.
        seed: seed of the initial weights.
    """

    def __init__(
        self,
        n_sensors: int,
        coord_dim: int,
        p: int = 64,
        branch_width: int = 128,
        branch_depth: int = 2,
        trunk_width: int = 128,
        trunk_depth: int = 2,
        activation: str = "tanh",
        bounds: Bounds | None = None,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        seed: int | None = None,
    ):
        super().__init__()
        self.n_sensors, self.coord_dim, self.p = int(n_sensors), int(coord_dim), int(p)
        self.transform = InputTransform(
            coord_dim, bounds, fourier_features, fourier_scale, seed=0 if seed is None else seed
        )
        with _seeded(seed):
            self.branch = MLP([n_sensors] + [branch_width] * branch_depth + [p], activation)
            self.trunk = MLP(
                [self.transform.out_dim] + [trunk_width] * trunk_depth + [p], activation, last_activation=True
            )
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """u: (B, m) sensor values; y: (P, d) shared points or (B, P, d) per-function points -> (B, P)."""
        _check_sensors(u, self.n_sensors, "DeepONet")
        if y.shape[-1] != self.coord_dim or y.ndim not in (2, 3):
            raise ValueError(
                f"DeepONet expects points y of shape (P, {self.coord_dim}) or "
                f"(batch, P, {self.coord_dim}), got {tuple(y.shape)}."
            )
        b = self.branch(u)  # (B, p)
        t = self.trunk(self.transform(y))  # (P, p) or (B, P, p)
        if y.ndim == 2:
            out = linear(b, t, None)  # (B, P): one GEMM, fp32 accumulation
        else:
            if y.shape[0] != u.shape[0]:
                raise ValueError(
                    f"per-function points y {tuple(y.shape)} must have one row per input "
                    f"function; got {u.shape[0]} functions."
                )
            out = (b.unsqueeze(1) * t).sum(-1)  # (B, P)
        return out + self.bias


class PODDeepONet(nn.Module):
    """DeepONet whose trunk is a fixed POD basis of training outputs.

    ``G(u) = sum_k b_k(u) phi_k + mean``, evaluated on the P points the basis
    was computed on.

    Args:
        n_sensors: m, sensor values per input function.
        basis: (P, p) POD modes. :meth:`from_outputs` scales them to unit
            root-mean-square over the P points, so the branch predicts O(1)
            coefficients rather than O(sqrt(P)) ones; in fp16 that keeps the
            branch output and its gradients in range.
        mean: (P,) mean training output.
        branch_width / branch_depth / activation / seed: the branch MLP.
    """

    basis: torch.Tensor  # buffers, registered in __init__
    mean: torch.Tensor

    def __init__(
        self,
        n_sensors: int,
        basis: torch.Tensor,
        mean: torch.Tensor,
        branch_width: int = 128,
        branch_depth: int = 2,
        activation: str = "tanh",
        seed: int | None = None,
    ):
        super().__init__()
        if basis.ndim != 2 or mean.shape != basis.shape[:1]:
            raise ValueError(f"basis must be (P, p) and mean (P,), got {tuple(basis.shape)} and {tuple(mean.shape)}.")
        self.n_sensors, self.p = int(n_sensors), basis.shape[1]
        self.register_buffer("basis", basis.float().contiguous())
        self.register_buffer("mean", mean.float().contiguous())
        with _seeded(seed):
            self.branch = MLP([n_sensors] + [branch_width] * branch_depth + [self.p], activation)

    @classmethod
    def from_outputs(cls, n_sensors: int, outputs: torch.Tensor, n_modes: int, **kwargs: Any) -> PODDeepONet:
        """Build from training outputs (N, P): mean and leading ``n_modes`` POD modes (unit RMS)."""
        if outputs.ndim != 2:
            raise ValueError(f"outputs must be (N functions, P points), got {tuple(outputs.shape)}.")
        if not 1 <= n_modes <= min(outputs.shape):
            raise ValueError(f"n_modes={n_modes} must lie in [1, min(N, P) = {min(outputs.shape)}].")
        data = outputs.double()
        mean = data.mean(0)
        _, s, vh = torch.linalg.svd(data - mean, full_matrices=False)
        basis = vh[:n_modes].T * math.sqrt(data.shape[1])
        model = cls(n_sensors, basis, mean, **kwargs)
        model.singular_values = s  # kept for inspection (energy captured by the modes)
        return model

    def forward(self, u: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """u: (B, m) -> (B, P) on the basis points (``y`` is accepted for API symmetry and must be None)."""
        if y is not None:
            raise ValueError(
                "PODDeepONet predicts on the points its basis was built on; it cannot "
                "evaluate other points y. Interpolate the output, or use DeepONet."
            )
        _check_sensors(u, self.n_sensors, "PODDeepONet")
        b = self.branch(u)  # (B, p)
        return linear(b, self.basis, None) + self.mean  # (B, P)
