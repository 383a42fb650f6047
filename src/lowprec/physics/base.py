"""What every physics problem shares: its domain, the per-step compute context, the residual guard.

A problem (Burgers, Kovasznay, ...) is a frozen dataclass of its parameters
with four jobs: build its model, generate its training data, turn a batch
into named loss terms, and measure the error of a model against its
reference solution. It never casts or scales anything itself: it asks the
:class:`Compute` context it is handed, which the training loop builds for
the active training mode. So one problem definition runs in fp64 (tests),
fp32, fp16 and bf16.

Overflow of residuals in fp16
-----------------------------
A PINN residual contains second derivatives, which in fp16 can exceed 65504
long before the loss does (Burgers at nu = 0.01/pi: |u_xx| reaches 1.4e4 at
the exact solution, a network on the way there can overshoot, and a smaller
nu or a finer shock multiplies it; a loss scale applied to them would
overflow at once). Loss scaling cannot help anyway:
``autograd.grad`` derivatives are part of the forward computation of the
loss, which a gradient scaler never sees. The fix is to compute each residual
times a power of two ``s`` by seeding the first ``autograd.grad`` with ``s``
(derivatives are linear in the seed, and so is every intermediate of the
derivative graph) and folding PDE coefficients into the seed of the second
derivative (``nu * u_xx`` instead of ``u_xx``). The loss divides by ``s`` in
fp32, so neither its value nor its gradient depends on ``s``; only where the
fp16 numbers sit does. :class:`ResidualGuard` starts every ``s`` at 1, shrinks
it by 8x when that residual goes inf/NaN (the step is recomputed), and lets
it grow back after a clean stretch.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from lowprec.precision import PrecisionOverflowError

Seed = float | torch.Tensor


class NonFiniteLossError(PrecisionOverflowError):
    """A loss term (or the gradients) went inf/NaN and nothing could rescue the step.

    Attributes: ``step`` (0-based), ``terms`` (names of the non-finite loss
    terms, or ``["gradients"]``), ``mode`` (training mode name).
    """

    def __init__(self, message: str, step: int, terms: Sequence[str], mode: str):
        super().__init__(message)
        self.step, self.terms, self.mode = step, list(terms), mode


class LearnedCoefficient(nn.Module):
    """A PINN plus one learnable positive PDE coefficient c = exp(speed * a), a the stored parameter.

    The inverse problems' unknown (Burgers' viscosity, Kovasznay's 1/Re). The log keeps c
    positive; ``speed`` multiplies the step Adam takes in log(c) (Adam's step in ``a`` is
    about lr whatever the gradient), so that c can travel from a guess an order of magnitude
    off in a few hundred steps instead of thousands, while the network weights keep their lr.
    """

    def __init__(self, net: nn.Module, init: float, speed: float = 10.0):
        super().__init__()
        self.net = net
        self.speed = speed
        self.a = nn.Parameter(torch.tensor(math.log(init) / speed))

    def coefficient(self) -> torch.Tensor:
        return (self.speed * self.a).exp()

    def forward(self, x):
        return self.net(x)


@dataclass(frozen=True)
class Box:
    """An axis-aligned domain, e.g. ``Box(("x", "t"), (-1, 0), (1, 1))``."""

    names: tuple[str, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]

    def __post_init__(self):
        if not len(self.names) == len(self.lo) == len(self.hi):
            raise ValueError(
                f"Box names {self.names}, lo {self.lo} and hi {self.hi} must have one entry per coordinate."
            )
        if any(hi <= lo for lo, hi in zip(self.lo, self.hi)):
            raise ValueError(f"Box needs hi > lo in every coordinate, got lo={self.lo}, hi={self.hi}.")

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self.lo, self.hi

    def __str__(self) -> str:
        return ", ".join(f"{n} in [{lo:g}, {hi:g}]" for n, lo, hi in zip(self.names, self.lo, self.hi))

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """n scrambled-Sobol points inside the box, (n, dim) float32 (even coverage, reproducible)."""
        engine = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=seed)
        unit = engine.draw(n, dtype=torch.float64)
        lo, hi = torch.tensor(self.lo, dtype=torch.float64), torch.tensor(self.hi, dtype=torch.float64)
        return (lo + unit * (hi - lo)).float()

    def hammersley(self, n: int) -> torch.Tensor:
        """n Hammersley points inside the box, (n, dim) float32, deterministic.

        Point k = 1..n has last coordinate k / (n + 1) and the others the radical inverses of
        k in bases 2, 3, 5, ...: DeepXDE's default training distribution (its points, value
        for value, in 2D), which the Burgers PINN uses so that its setup matches DeepXDE's. Twenty lines, not scipy's
        ``qmc``, which has Halton but no Hammersley.
        """
        k = torch.arange(1, n + 1, dtype=torch.float64)
        columns = []
        for base in (2, 3, 5, 7, 11)[: self.dim - 1]:
            value, scale, rest = torch.zeros(n, dtype=torch.float64), 1.0 / base, k.clone()
            while bool((rest > 0).any()):
                value += scale * torch.remainder(rest, base)
                rest, scale = torch.div(rest, base, rounding_mode="floor"), scale / base
            columns.append(value)
        unit = torch.stack(columns + [k / (n + 1)], dim=1)
        lo, hi = torch.tensor(self.lo, dtype=torch.float64), torch.tensor(self.hi, dtype=torch.float64)
        return (lo + unit * (hi - lo)).float()

    def check(self, points: torch.Tensor, what: str, problem: str, tol: float = 1e-6) -> None:
        """Raise ValueError naming the points that lie outside the box."""
        if points.ndim != 2 or points.shape[1] != self.dim:
            raise ValueError(
                f"{problem}: {what} must be an (N, {self.dim}) tensor of ({', '.join(self.names)}) "
                f"points, got shape {tuple(points.shape)}."
            )
        if not bool(torch.isfinite(points).all()):
            raise ValueError(f"{problem}: {what} contain inf/NaN coordinates.")
        lo = torch.tensor(self.lo, dtype=points.dtype) - tol
        hi = torch.tensor(self.hi, dtype=points.dtype) + tol
        outside = ((points < lo) | (points > hi)).any(dim=1)
        if bool(outside.any()):
            idx = int(outside.nonzero()[0])
            example = ", ".join(f"{n}={v:.4g}" for n, v in zip(self.names, points[idx].tolist()))
            raise ValueError(
                f"{problem}: {int(outside.sum())} of {len(points)} {what} lie outside the domain "
                f"({self}), e.g. point {idx}: ({example}). Sample them inside the domain "
                f"(Box.sample), or clip them with points.clamp(lo, hi)."
            )


class ResidualGuard:
    """Per-term power-of-two residual scales that keep fp16 residuals finite (see module docstring).

    Args:
        enabled: when False every scale is 1 and nothing is retried.
        backoff: factor applied to a term's scale when it overflows.
        growth_interval: clean steps after which every scale below 1 doubles.
        min_scale: below this the overflow is not a range problem: give up.
        max_retries: recomputations of one step's loss before giving up.
    """

    def __init__(
        self,
        enabled: bool = True,
        backoff: float = 0.125,
        growth_interval: int = 1000,
        min_scale: float = 2.0**-24,
        max_retries: int = 8,
    ):
        self.enabled = enabled
        self.backoff, self.growth_interval = backoff, growth_interval
        self.min_scale, self.max_retries = min_scale, max_retries
        self.scales: dict[str, float] = {}
        self.backoffs = 0
        self._clean = 0

    def scale(self, term: str) -> float:
        if not self.enabled:
            return 1.0
        return self.scales.setdefault(term, 1.0)

    def key_of(self, term: str) -> str | None:
        """The scale that loss term ``term`` uses: a key equal to it or a prefix ``key + "_"``."""
        for key in self.scales:
            if term == key or term.startswith(key + "_"):
                return key
        return None

    def back_off(self, terms: Sequence[str]) -> list[str]:
        """Shrink the scales of overflowed loss ``terms``; return those it cannot help.

        A term is helped when it was computed with a scale (:meth:`key_of`) that
        is still above ``min_scale``; a data term or one at the floor is not.
        """
        if not self.enabled:
            return list(terms)
        keys, hopeless = set(), []
        for term in terms:
            key = self.key_of(term)
            if key is None or self.scales[key] * self.backoff < self.min_scale:
                hopeless.append(term)
            else:
                keys.add(key)
        if hopeless:
            return hopeless
        for key in keys:
            self.scales[key] *= self.backoff
        self.backoffs += 1
        self._clean = 0
        return []

    def update(self) -> None:
        """Call after a clean step: scales creep back to 1 so small residuals do not underflow."""
        if not self.enabled:
            return
        self._clean += 1
        if self._clean >= self.growth_interval:
            self._clean = 0
            for term, s in self.scales.items():
                self.scales[term] = min(1.0, 2 * s)

    def state_dict(self) -> dict:
        return {"scales": dict(self.scales), "backoffs": self.backoffs, "clean": self._clean}


class Compute:
    """The per-step view a problem computes its loss through.

    Args:
        net: the working network (its parameters are in ``dtype``).
        dtype: compute dtype: inputs are cast to it, derivatives come out in it.
        guard: residual guard (``None``: every residual scale is 1).
    """

    def __init__(self, net: nn.Module, dtype: torch.dtype, guard: ResidualGuard | None = None):
        self.net, self.dtype, self.guard = net, dtype, guard
        #: When a list, every residual a loss term squares is appended to it (detached, fp64, in
        #: call order): :func:`lowprec.physics.diagnostics.residual_rounding` compares two passes.
        self.residuals: list | None = None

    def _record(self, r: torch.Tensor) -> torch.Tensor:
        if self.residuals is not None:
            self.residuals.append(r.detach().double())
        return r

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Run the network on ``inputs`` cast to the compute dtype."""
        return self.net(*[x if x.dtype == self.dtype else x.to(self.dtype) for x in inputs])

    def points(self, x: torch.Tensor) -> torch.Tensor:
        """A leaf copy of points ``x`` in the compute dtype that derivatives can be taken against."""
        return x.detach().to(self.dtype).requires_grad_(True)

    def cast(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.dtype)

    def grad(self, y: torch.Tensor, x: torch.Tensor, seed: Seed = 1.0) -> torch.Tensor:
        """``seed * dy/dx`` per point, in the compute dtype, differentiable again.

        y: (N,) or (N, 1) or (B, P) values that depend on x point by point;
        x: the points leaf, same leading shape as y plus a coordinate dim.
        seed: a number or a tensor broadcastable to y (a learnable coefficient
            stays in the graph, e.g. the viscosity of an inverse problem).
        """
        if not y.requires_grad:  # y does not depend on anything trainable: its derivative is 0
            return torch.zeros_like(x)
        if torch.is_tensor(seed):
            go = seed.to(y.dtype).expand_as(y)
        else:
            # Built in fp64 and cast, so a seed beyond fp16's range becomes inf (which the guard
            # catches) instead of an error.
            go = torch.full_like(y, seed, dtype=torch.float64).to(y.dtype)
        (g,) = torch.autograd.grad(y, x, grad_outputs=go, create_graph=True, materialize_grads=True)
        return g

    def scale(self, term: str) -> float:
        """The residual scale s for loss term ``term`` (a power of two; 1 without a guard)."""
        return self.guard.scale(term) if self.guard is not None else 1.0

    @property
    def loss_dtype(self) -> torch.dtype:
        """fp32, or fp64 when computing in fp64: squares and sums never run in a half type."""
        return torch.float64 if self.dtype == torch.float64 else torch.float32

    def mean_square(self, r: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """mean((r / scale)**2) in the loss dtype: an fp16 square overflows at |r| > 256, fp32 does not."""
        return self._record(r.to(self.loss_dtype) / scale).square().mean()

    def mse(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """mean((pred - target)**2), the difference and the sum in the loss dtype."""
        return self._record(pred.to(self.loss_dtype) - target.to(self.loss_dtype)).square().mean()


class PhysicsProblem(abc.ABC):
    """A physics problem with a reference solution. Subclasses are frozen dataclasses."""

    name: ClassVar[str]
    kind: ClassVar[str]  # "pinn" or "deeponet"
    title: ClassVar[str]
    default_steps: ClassVar[int] = 10000
    default_lr: ClassVar[float] = 1e-3
    default_lr_decay: ClassVar[float] = 1.0  # final lr / initial lr (exponential decay)
    default_eval_every: ClassVar[int] = 500

    @abc.abstractmethod
    def build_model(self, seed: int) -> nn.Module:
        """The model, in fp32, with weights drawn from ``seed``."""

    @abc.abstractmethod
    def training_data(self, seed: int) -> dict:
        """The fixed training set (collocation points, observations, input functions), fp32."""

    def batch(self, data: dict, step: int, generator: torch.Generator) -> dict:
        """The part of the training set used at ``step`` (default: all of it)."""
        return data

    @abc.abstractmethod
    def loss_terms(self, c: Compute, batch: dict) -> dict[str, torch.Tensor]:
        """Named fp32 scalar loss terms; the loss is their weighted sum (:attr:`loss_weights`)."""

    @abc.abstractmethod
    def evaluate(self, net: nn.Module, dtype: torch.dtype, data: dict) -> dict[str, float]:
        """Error of ``net`` (run in ``dtype``) against the reference; must contain ``"error"``.

        ``data`` is this run's :meth:`training_data` (operator problems keep their test set there).
        """

    def loss_weights(self) -> dict[str, float]:
        return {}

    def plot_solution(self, fig, net: nn.Module, dtype: torch.dtype, label: str, data: dict) -> None:  # noqa: B027
        """Draw the prediction against the reference into ``fig`` (optional)."""

    def params(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        return f"{self.title} ({', '.join(f'{k}={_fmt(v)}' for k, v in self.params().items())})"


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@torch.no_grad()
def predict(net: nn.Module, dtype: torch.dtype, *inputs: torch.Tensor, chunk: int = 0) -> torch.Tensor:
    """Run ``net`` on ``inputs`` cast to ``dtype``; the output comes back fp32.

    ``chunk``: split the first input along dim 0 into pieces of this size (0: whole).
    """
    if chunk and len(inputs) == 1 and inputs[0].shape[0] > chunk:
        return torch.cat([predict(net, dtype, x) for x in inputs[0].split(chunk)])
    device = next(net.parameters()).device
    return net(*[x.to(device=device, dtype=dtype) for x in inputs]).float().cpu()


def power_of_two_below(x: float) -> float:
    """The largest power of two <= x (x > 0)."""
    return 2.0 ** math.floor(math.log2(x))
