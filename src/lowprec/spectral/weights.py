"""Spectral weights: dense, Tucker and CP, complex-valued but stored as real tensors.

Every parameter here is a real tensor whose last dimension (size 2) holds the
real and imaginary parts. Optimizers, ``torch.amp.GradScaler``, DDP and fused
kernels all handle real tensors; several of them fail on complex ones.

A weight describes itself as a list of *factors* for the contraction: pairs of
(einsum subscripts, real tensor of shape (..., 2)). The subscripts use
``i`` (input channel), ``o`` (output channel), ``x``, ``y``, ``z`` (modes
along each spatial axis) and upper-case letters for factorization ranks; the
product of all factors, summed over the ranks, is the dense weight
W[i, o, x, y, ...]. :mod:`lowprec.spectral.contract` multiplies them with the
input in the cheapest order.

Shapes (d spatial axes, ``kept`` = modes kept per axis, see
:func:`lowprec.spectral.transforms.kept_modes`):

* dense:  W (in, out, *kept, 2)
* Tucker: core (r_in, r_out, *r_kept, 2), factors U_in (in, r_in, 2),
  U_out (out, r_out, 2), U_k (kept_k, r_k, 2)
* CP:     factors (in, R, 2), (out, R, 2), (kept_k, R, 2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

SPATIAL = "xyz"
Rank = int | float | Sequence[int]


def _complex_normal(shape: Sequence[int], std: float) -> nn.Parameter:
    # A complex normal of variance std**2: real and imaginary parts each std**2 / 2.
    return nn.Parameter(torch.randn(*shape, 2) * (std / math.sqrt(2.0)))


def _to_complex(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_complex(t.contiguous())


class DenseSpectralWeight(nn.Module):
    """A full weight tensor, one (in x out) complex matrix per kept mode."""

    def __init__(self, in_channels: int, out_channels: int, kept: Sequence[int], std: float):
        super().__init__()
        self.shape = (in_channels, out_channels, *kept)
        self.weight = _complex_normal(self.shape, std)

    def factors(self) -> list[tuple[str, torch.Tensor]]:
        return [("io" + SPATIAL[: len(self.shape) - 2], self.weight)]

    def to_dense(self) -> torch.Tensor:
        """The complex weight (in, out, *kept)."""
        return _to_complex(self.weight)


def tucker_ranks(shape: Sequence[int], rank: Rank) -> tuple[int, ...]:
    """Tucker ranks for ``shape``: given per axis, or as a fraction of the dense parameter count.

    For a fraction f, every axis keeps the same share s of its size
    (at least 1), with s chosen by bisection so that core plus factors hold
    about f times the dense tensor's entries.
    """
    if isinstance(rank, Sequence):
        if len(rank) != len(shape) or any(int(r) < 1 for r in rank):
            raise ValueError(
                f"Tucker ranks {tuple(rank)} must be {len(shape)} positive integers for shape {tuple(shape)}."
            )
        return tuple(min(int(r), n) for r, n in zip(rank, shape))
    if not 0 < float(rank) <= 1:
        raise ValueError(
            f"a Tucker rank given as a fraction must lie in (0, 1], got {rank}; "
            "pass a list of integers for explicit ranks."
        )
    target = float(rank) * math.prod(shape)

    def ranks_for(s):
        return tuple(max(1, min(n, round(s * n))) for n in shape)

    def count(r):
        return math.prod(r) + sum(n * k for n, k in zip(shape, r))

    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if count(ranks_for(mid)) <= target else (lo, mid)
    return ranks_for(lo)


def cp_rank(shape: Sequence[int], rank: Rank) -> int:
    """CP rank for ``shape``: an integer, or a fraction of the dense parameter count."""
    if isinstance(rank, int) and not isinstance(rank, bool):
        if rank < 1:
            raise ValueError(f"CP rank must be >= 1, got {rank}.")
        return rank
    if isinstance(rank, Sequence):
        raise ValueError(
            f"CP takes one rank (an integer, or a fraction of the dense size), got {tuple(rank)}; "
            "per-axis ranks are for factorization='tucker'."
        )
    if not 0 < float(rank) <= 1:
        raise ValueError(
            f"a CP rank given as a fraction must lie in (0, 1], got {rank}; pass an integer for an explicit rank."
        )
    return max(1, round(float(rank) * math.prod(shape) / sum(shape)))


class TuckerSpectralWeight(nn.Module):
    """W = core x_1 U_in x_2 U_out x_3 U_1 ... (a complex Tucker decomposition)."""

    def __init__(self, in_channels: int, out_channels: int, kept: Sequence[int], std: float, rank: Rank = 0.05):
        super().__init__()
        self.shape = (in_channels, out_channels, *kept)
        self.ranks = tucker_ranks(self.shape, rank)
        # Each entry of W sums prod(ranks) products of len(shape)+1 factors; spread the
        # variance evenly so W's entries have about std**2.
        n = len(self.shape) + 1
        factor_std = (std**2 / math.prod(self.ranks)) ** (1 / (2 * n))
        self.core = _complex_normal(self.ranks, factor_std)
        self.factor_list = nn.ParameterList(
            [_complex_normal((size, r), factor_std) for size, r in zip(self.shape, self.ranks)]
        )

    def _letters(self) -> tuple[str, str]:
        d = len(self.shape) - 2
        return "io" + SPATIAL[:d], "ABCDE"[: d + 2]

    def factors(self) -> list[tuple[str, torch.Tensor]]:
        modes, ranks = self._letters()
        return [(ranks, self.core)] + [(m + r, f) for m, r, f in zip(modes, ranks, self.factor_list)]

    def to_dense(self) -> torch.Tensor:
        modes, ranks = self._letters()
        ops = [_to_complex(t) for _, t in self.factors()]
        eq = ",".join(s for s, _ in self.factors()) + "->" + modes
        return torch.einsum(eq, *ops)


class CPSpectralWeight(nn.Module):
    """W = sum_r U_in[:, r] (x) U_out[:, r] (x) U_1[:, r] ... (a complex CP decomposition)."""

    def __init__(self, in_channels: int, out_channels: int, kept: Sequence[int], std: float, rank: Rank = 0.05):
        super().__init__()
        self.shape = (in_channels, out_channels, *kept)
        self.rank = cp_rank(self.shape, rank)
        n = len(self.shape)
        factor_std = (std**2 / self.rank) ** (1 / (2 * n))
        self.factor_list = nn.ParameterList([_complex_normal((size, self.rank), factor_std) for size in self.shape])

    def factors(self) -> list[tuple[str, torch.Tensor]]:
        modes = "io" + SPATIAL[: len(self.shape) - 2]
        return [(m + "R", f) for m, f in zip(modes, self.factor_list)]

    def to_dense(self) -> torch.Tensor:
        modes = "io" + SPATIAL[: len(self.shape) - 2]
        eq = ",".join(s for s, _ in self.factors()) + "->" + modes
        return torch.einsum(eq, *[_to_complex(t) for _, t in self.factors()])


SpectralWeight = DenseSpectralWeight | TuckerSpectralWeight | CPSpectralWeight
FACTORIZATIONS = {"dense": DenseSpectralWeight, "tucker": TuckerSpectralWeight, "cp": CPSpectralWeight}


def make_weight(
    factorization: str, in_channels: int, out_channels: int, kept: Sequence[int], rank: Rank = 0.05
) -> SpectralWeight:
    """Build a spectral weight. ``factorization``: ``"dense"``, ``"tucker"`` or ``"cp"``."""
    key = (factorization or "dense").lower()
    if key not in FACTORIZATIONS:
        raise ValueError(f"unknown factorization {factorization!r}; choose one of {sorted(FACTORIZATIONS)}.")
    # neuraloperator's initialisation, so models train alike: std = sqrt(2 / (in + out)).
    std = (2.0 / (in_channels + out_channels)) ** 0.5
    if key == "dense":
        return DenseSpectralWeight(in_channels, out_channels, kept, std)
    return FACTORIZATIONS[key](in_channels, out_channels, kept, std, rank)
