"""Physics-informed neural network: a plain MLP on coordinates.

The network is deliberately ordinary (Raissi et al. 2019; DeepXDE's FNN):
tanh by default, Glorot-normal weights, zero biases. Two optional input
transforms sit in front of it:

* normalization of each coordinate from its domain ``[lo, hi]`` to
  ``[-1, 1]``, so that tanh units start in their linear range whatever the
  units of the problem (and fp16 sees O(1) numbers);
* random Fourier features ``[cos(2 pi z B), sin(2 pi z B)]`` (Tancik et al.
  2020) for solutions with fine scales.

Both live inside the module as buffers, so derivatives taken with
``torch.autograd.grad`` with respect to the *physical* coordinates include
them, and a cast of the module (``.half()``) casts them too.

Half-precision matrix products on CPU
-------------------------------------
CPU PyTorch has no fast fp16 GEMM kernel: it emulates one in software, an order
of magnitude slower than fp32. A tensor-core fp16 GEMM
multiplies fp16 operands, accumulates in fp32 and rounds the result to fp16.
:func:`linear` does exactly that on CPU (fp32 product of the fp16 operands,
result rounded to fp16), which gives the GPU's arithmetic at fp32 speed. The
CPU's own fp16 kernel also accumulates in fp32: the two agree to one fp16
rounding (tests/physics/test_models.py). Everything outside the product (bias add
included in the rounding, derivatives) stays fp16 tensors; the activations too,
unless ``MLP.activation_dtype`` says otherwise (the ``mixed`` mode sets fp32).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from lowprec.precision.emulation import log_once

Bounds = tuple[Sequence[float], Sequence[float]]  # (lo, hi) of a domain box, one number per coordinate

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "sin": torch.sin,
    "gelu": F.gelu,
    "silu": F.silu,
    "relu": torch.relu,
}

#: How fp16 GEMMs run on CPU: "fp32_accumulate" (default, see module docstring) or
#: "native" (PyTorch's software fp16 kernel: same numbers, much slower).
CPU_HALF_GEMM = "fp32_accumulate"


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight.T + bias``; fp16 on CPU runs as a tensor core would (fp32 accumulation)."""
    if x.dtype == torch.float16 and x.device.type == "cpu" and CPU_HALF_GEMM == "fp32_accumulate":
        log_once(
            "cpu_half_gemm",
            "fp16 matrix products on CPU run as fp32 products of fp16 operands, "
            "rounded to fp16 (tensor-core arithmetic); CPU fp16 timings are not representative "
            "of a GPU.",
        )
        b = None if bias is None else bias.float()
        return F.linear(x.float(), weight.float(), b).to(torch.float16)
    return F.linear(x, weight, bias)


class MLP(nn.Module):
    """Fully connected network ``sizes[0] -> ... -> sizes[-1]``.

    Args:
        sizes: layer widths including input and output, e.g. ``(2, 32, 32, 32, 1)``.
        activation: name in :data:`ACTIVATIONS`, applied after every hidden layer.
        last_activation: also apply it after the output layer (DeepONet trunks do).
    """

    def __init__(self, sizes: Sequence[int], activation: str = "tanh", last_activation: bool = False):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"MLP sizes must list at least input and output widths >= 1, got {sizes}.")
        self.sizes = tuple(sizes)
        self.activation = activation
        self.act = get_activation(activation)
        self.last_activation = last_activation
        # Set on a reduced-precision working copy (physics.TrainingMode.activation_dtype): the
        # activation, and so its derivative, is computed in this dtype; None: the input's.
        self.activation_dtype: torch.dtype | None = None
        linears = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        for layer in linears:
            nn.init.xavier_normal_(layer.weight)  # Glorot normal, as DeepXDE
            nn.init.zeros_(layer.bias)
        self.layers = nn.ModuleList(linears)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., sizes[0]) -> (..., sizes[-1])."""
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            layer = cast(nn.Linear, layer)  # ModuleList items are nn.Module to a type checker
            x = linear(x, layer.weight, layer.bias)
            if i < last or self.last_activation:
                dtype = self.activation_dtype
                x = self.act(x) if dtype is None or dtype == x.dtype else self.act(x.to(dtype)).to(x.dtype)
        return x


class InputTransform(nn.Module):
    """Optional map of physical coordinates to network inputs.

    Args:
        dim: number of coordinates d.
        bounds: ``(lo, hi)``, each a sequence of d numbers: the domain box; each
            coordinate is mapped affinely to [-1, 1]. ``None``: no normalization.
        fourier_features: number m of random frequencies (0: none). The output
            is then ``[cos(2 pi z B), sin(2 pi z B)]`` with B (d, m) ~ N(0, scale^2).
        fourier_scale: standard deviation of the frequencies (cycles per unit of z).
        seed: seed of the frequency draw, so the transform is reproducible.
    """

    def __init__(
        self,
        dim: int,
        bounds: Bounds | None = None,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        seed: int = 0,
    ):
        super().__init__()
        self.dim = dim
        if bounds is not None:
            lo = torch.as_tensor(bounds[0], dtype=torch.float64).reshape(-1)
            hi = torch.as_tensor(bounds[1], dtype=torch.float64).reshape(-1)
            if lo.numel() != dim or hi.numel() != dim or not bool((hi > lo).all()):
                raise ValueError(f"bounds must be (lo, hi) with {dim} numbers each and hi > lo, got {bounds}.")
            # z = x * scale + shift: one multiply-add, exact in fp16 for the usual boxes ([-1,1], [0,1]).
            scale = 2.0 / (hi - lo)
            self.register_buffer("scale", scale.float())
            self.register_buffer("shift", (-1.0 - lo * scale).float())
            self.bounds: tuple[list[float], list[float]] | None = (lo.tolist(), hi.tolist())
        else:
            self.scale = self.shift = None
            self.bounds = None
        self.fourier_features = int(fourier_features)
        if self.fourier_features:
            gen = torch.Generator().manual_seed(seed)
            self.register_buffer("B", fourier_scale * torch.randn(dim, self.fourier_features, generator=gen))
        else:
            self.B = None

    @property
    def out_dim(self) -> int:
        return 2 * self.fourier_features if self.fourier_features else self.dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., d) physical coordinates -> (..., out_dim)."""
        if x.shape[-1] != self.dim:
            raise ValueError(
                f"expected points with {self.dim} coordinates in the last dimension, got shape {tuple(x.shape)}."
            )
        if self.scale is not None:
            x = x * self.scale + self.shift
        if self.B is not None:
            z = 2 * math.pi * linear(x, self.B.T, None)
            x = torch.cat([torch.cos(z), torch.sin(z)], dim=-1)
        return x


class PINN(nn.Module):
    """MLP u(x) for physics-informed training.

    Args:
        in_dim: number of coordinates d (e.g. 2 for (x, t)).
        out_dim: number of fields (e.g. 3 for (u, v, p)).
        width / depth: hidden width and number of hidden layers; ``width=32,
            depth=3`` is the Burgers network [2, 32, 32, 32, 1].
        activation: hidden activation, ``"tanh"`` by default.
        bounds: optional domain box ``(lo, hi)`` for input normalization to [-1, 1].
        fourier_features / fourier_scale: optional random Fourier features.
        seed: seed for the initial weights (and Fourier frequencies); ``None``
            uses the global generator.

    Input (N, in_dim) -> output (N, out_dim), in the dtype of the parameters.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        width: int = 32,
        depth: int = 3,
        activation: str = "tanh",
        bounds: Bounds | None = None,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        seed: int | None = None,
    ):
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"PINN needs depth >= 1 hidden layers and width >= 1, got depth={depth}, width={width}.")
        self.in_dim, self.out_dim = in_dim, out_dim
        self.transform = InputTransform(
            in_dim, bounds, fourier_features, fourier_scale, seed=0 if seed is None else seed
        )
        with _seeded(seed):
            self.mlp = MLP([self.transform.out_dim] + [width] * depth + [out_dim], activation)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return (self.in_dim,) + self.mlp.sizes[1:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.transform(x))


class _seeded:
    """Context: draw from a fixed seed without disturbing the global generator (None: no-op)."""

    def __init__(self, seed: int | None):
        self.seed = seed

    def __enter__(self) -> None:
        if self.seed is not None:
            self._state = torch.random.get_rng_state()
            torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        if self.seed is not None:
            torch.random.set_rng_state(self._state)
