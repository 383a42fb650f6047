"""Darcy flow on the unit square, the FNO paper's benchmark, generated on demand.

    -∇·(a(x) ∇u(x)) = f      on (0, 1)²,      u = 0 on the boundary,

with a piecewise-constant coefficient and a constant forcing f, in two settings:

* FNO paper (``"darcy"``, :class:`DarcyParams`): a = values[0] (12) where a Gaussian
  random field g >= 0 and values[1] (3) elsewhere, g ~ N(0, (-Δ + τ²I)^(-α)) with
  α = 2, τ = 3 (see :mod:`lowprec.data.grf`), f = 1.
* PDEBench (``"darcy_pdebench"``, :class:`DarcyPDEBenchParams`): a = 1 where a sum of
  five random Gaussian bumps exceeds its mean, 0.1 elsewhere, f = β (PDEBench's
  files: β in {0.01, 0.1, 1, 10, 100}, 128² cells). PDEBench thresholds at the mean
  over its whole batch and marches a diffusion equation to its steady state; we
  threshold each sample at its own mean (samples stay independent) and solve the
  steady problem directly, on our node grid.

Discretization: second-order finite differences on the s × s node grid
x_i = i h, h = 1/(s-1), in flux form. For each interior node (i, j)

    [ a_{i+½,j}(u_ij - u_{i+1,j}) + a_{i-½,j}(u_ij - u_{i-1,j})
    + a_{i,j+½}(u_ij - u_{i,j+1}) + a_{i,j-½}(u_ij - u_{i,j-1}) ] / h² = f_ij

with the coefficient on a face the arithmetic mean of its two nodes,
a_{i+½,j} = (a_ij + a_{i+1,j}) / 2. Why arithmetic: it is the scheme of the FNO
paper's generator (``solve_gwf.m``), so our data have the same distribution as
the published sets; it is second order for smooth a; and the matrix is symmetric
positive definite for any positive a. (The harmonic mean is the exact 1D flux
across a jump, but a jump mid-cell limits either scheme to first order.)

The (s-2)² interior unknowns form one scipy.sparse matrix per sample, solved by
SuperLU with a symmetric minimum-degree ordering (the matrix is symmetric, and this
ordering is faster than the default COLAMD on it). Samples are independent, so a thread pool solves several
at once (SuperLU releases the GIL).

Why scipy and not torch: a sparse direct solve is exact, needs no tuning and takes
about a millisecond per sample at 64² on one CPU core (1000 samples in seconds), so a
GPU would save little; torch has no batched sparse direct solver, and an iterative
one would need a preconditioner for the 4:1 (FNO) or 10:1 (PDEBench) coefficient
jumps and would stop at a tolerance instead of rounding.

Array convention: ``u[i, j] = u(x_i, y_j)``: axis -2 is x, axis -1 is y.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from .._progress import progress_bar
from .base import PathLike, ProblemParams, load_or_generate
from .dataset import PDEDataset
from .grf import sample_grf


def darcy_matrix(a: np.ndarray) -> sp.csc_matrix:
    """Flux-form FD matrix of -∇·(a∇·) on the interior nodes, scaled by h², shape (m², m²).

    Args:
        a: (s, s) coefficient at all nodes (boundary nodes too: they set the face values
           next to the boundary), positive.
    Returns:
        CSC matrix with m = s - 2; unknown p = (i-1) m + (j-1) for interior node (i, j).
        The boundary values u = 0 drop out of the right-hand side.
    """
    s = a.shape[0]
    m = s - 2
    ax = 0.5 * (a[1:, :] + a[:-1, :])  # (s-1, s): face between nodes (i, j) and (i+1, j)
    ay = 0.5 * (a[:, 1:] + a[:, :-1])  # (s, s-1): face between nodes (i, j) and (i, j+1)
    diag = (ax[:-1, 1:-1] + ax[1:, 1:-1] + ay[1:-1, :-1] + ay[1:-1, 1:]).ravel()
    # Coupling to the neighbour in y (offset 1): none across the end of a row of unknowns.
    off_y = np.zeros((m, m))
    off_y[:, :-1] = -ay[1:-1, 1:-1]
    off_y = off_y.ravel()[:-1]
    off_x = -ax[1:-1, 1:-1].ravel()  # neighbour in x (offset m)
    return sp.diags([diag, off_y, off_y, off_x, off_x], [0, 1, -1, m, -m], format="csc")


def solve_darcy(a: np.ndarray, forcing: float | np.ndarray = 1.0) -> np.ndarray:
    """Solve -∇·(a∇u) = f, u = 0 on the boundary, on the s × s node grid of the unit square.

    Args:
        a: (s, s) positive coefficient at the nodes.
        forcing: constant f, or an (s, s) array of f at the nodes (boundary entries unused).
    Returns:
        u: (s, s) float64, zero on the boundary rows and columns.
    """
    a = np.asarray(a, dtype=np.float64)
    s = a.shape[0]
    if a.ndim != 2 or a.shape[1] != s or s < 3:
        raise ValueError(f"a must be a square (s, s) array with s >= 3, got shape {a.shape}.")
    if not (a > 0).all():
        raise ValueError(
            "the coefficient a must be positive everywhere for the problem to be "
            "elliptic; check values=(inside, outside)."
        )
    h2 = 1.0 / (s - 1) ** 2
    f = np.broadcast_to(np.asarray(forcing, dtype=np.float64), (s, s))
    rhs = h2 * f[1:-1, 1:-1].ravel()
    # SymmetricMode + MMD on A^T+A: the pivots stay on the diagonal of this SPD matrix.
    lu = spla.splu(darcy_matrix(a), permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})
    u = np.zeros((s, s))
    u[1:-1, 1:-1] = lu.solve(rhs).reshape(s - 2, s - 2)
    return u


@dataclasses.dataclass(frozen=True)
class DarcyParams(ProblemParams):
    """One Darcy data set: n samples on the resolution × resolution node grid.

    Attributes:
        resolution: nodes per axis s, boundaries included (h = 1/(s-1)). Use 2^k + 1
            (33, 65, 129) so that strides of 2 map grids onto each other.
        n: number of samples.
        seed: sample i uses numpy's generator seeded with (seed, i), so sample i is the
            same whatever n and, through the GRF, whatever the resolution.
        forcing: constant right-hand side f.
        values: coefficient (where GRF >= 0, where GRF < 0).
        alpha, tau: GRF covariance (-Δ + τ²)^(-α).
        n_grf_modes: cosine modes per axis K in the GRF; resolution-independent.
    """

    problem: ClassVar[str] = "darcy"
    version: ClassVar[int] = 1

    resolution: int = 65
    n: int = 1000
    seed: int = 0
    forcing: float = 1.0
    values: tuple[float, float] = (12.0, 3.0)
    alpha: float = 2.0
    tau: float = 3.0
    n_grf_modes: int = 64

    def __post_init__(self):
        super().__post_init__()
        if self.resolution < 3:
            raise ValueError(f"resolution must be at least 3 (one interior node), got {self.resolution}.")
        if len(self.values) != 2 or min(self.values) <= 0:
            raise ValueError(
                f"values must be two positive coefficients (where GRF >= 0, where GRF < 0), got {self.values}."
            )

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample i: coefficient a and solution u, each (resolution, resolution) float64."""
        rng = np.random.default_rng([self.seed, i])
        g = sample_grf(rng, self.resolution, self.n_grf_modes, self.alpha, self.tau, ndim=2)
        a = np.where(g >= 0, self.values[0], self.values[1])
        return a, solve_darcy(a, self.forcing)

    def generate(
        self, progress: bool = True, workers: int | None = None, **unused
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All n samples: x = a, y = u, each (n, 1, s, s) float32.

        ``workers`` threads (default: min(4, CPU count)) solve samples concurrently; the
        result does not depend on it. (``device`` and ``batch_size``, which the torch
        generators take, are accepted and ignored: this solver runs on the CPU.)
        """
        return _solve_all(
            self.sample,
            self.n,
            self.resolution,
            f"{self.problem} {self.resolution}x{self.resolution}",
            progress,
            workers,
        )


def _solve_all(
    sample, n: int, s: int, desc: str, progress: bool, workers: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run sample(i) -> (a, u) for i < n on a thread pool; stack into two (n, 1, s, s) float32."""
    x = np.empty((n, 1, s, s), dtype=np.float32)
    y = np.empty((n, 1, s, s), dtype=np.float32)
    workers = workers or min(4, os.cpu_count() or 1)
    bar = progress_bar(total=n, desc=desc, unit="sample", disable=not progress)
    pool = ThreadPoolExecutor(workers)
    try:
        for i, (a, u) in enumerate(pool.map(sample, range(n))):
            x[i, 0], y[i, 0] = a, u
            bar.update()
    finally:
        # On Ctrl-C drop the queued samples instead of waiting for all of them.
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return torch.from_numpy(x), torch.from_numpy(y)


@dataclasses.dataclass(frozen=True)
class DarcyPDEBenchParams(ProblemParams):
    """PDEBench-style Darcy data: n samples on the resolution × resolution node grid.

    Attributes:
        resolution: nodes per axis s, boundaries included (h = 1/(s-1)); PDEBench: 128 cells.
        n: number of samples.
        seed: sample i uses numpy's generator seeded with (seed, i); the bumps are
            continuous functions, so sample i is the same problem at every resolution.
        beta: constant forcing f = β (PDEBench: 0.01, 0.1, 1, 10, 100).
        values: coefficient (inside the bumps, outside) (PDEBench: 1, 0.1).
        n_bumps: Gaussian bumps exp(-|x - c|² / w), c ~ U([0, 1]²), w ~ U(0, 0.5) (PDEBench: 5).
    """

    problem: ClassVar[str] = "darcy_pdebench"
    version: ClassVar[int] = 1

    resolution: int = 129
    n: int = 1000
    seed: int = 0
    beta: float = 1.0
    values: tuple[float, float] = (1.0, 0.1)
    n_bumps: int = 5

    def __post_init__(self):
        super().__post_init__()
        if self.resolution < 3:
            raise ValueError(f"resolution must be at least 3 (one interior node), got {self.resolution}.")
        if len(self.values) != 2 or min(self.values) <= 0:
            raise ValueError(
                f"values must be two positive coefficients (inside, outside the bumps), got {self.values}."
            )
        if self.n_bumps < 1:
            raise ValueError(f"n_bumps must be at least 1, got {self.n_bumps}.")

    def coefficient(self, i: int) -> np.ndarray:
        """Sample i's coefficient a on the node grid, (s, s) float64."""
        rng = np.random.default_rng([self.seed, i])
        centres = rng.uniform(0, 1, size=(self.n_bumps, 2))
        widths = 0.5 * rng.uniform(0, 1, size=self.n_bumps)
        x = np.linspace(0, 1, self.resolution)
        bumps = sum(
            np.exp(-((x[:, None] - cx) ** 2 + (x[None, :] - cy) ** 2) / w) for (cx, cy), w in zip(centres, widths)
        )
        return np.where(bumps > bumps.mean(), self.values[0], self.values[1])

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a = self.coefficient(i)
        return a, solve_darcy(a, self.beta)

    def generate(
        self, progress: bool = True, workers: int | None = None, **unused
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All n samples: x = a, y = u, each (n, 1, s, s) float32 (see DarcyParams.generate)."""
        return _solve_all(
            self.sample,
            self.n,
            self.resolution,
            f"{self.problem} {self.resolution}x{self.resolution}",
            progress,
            workers,
        )

    def meta(self):
        return {**super().meta(), "beta": self.beta}


def darcy_dataset(
    resolution: int = 65,
    n: int = 1000,
    seed: int = 0,
    *,
    cache_dir: PathLike | None = None,
    cache: bool = True,
    progress: bool = True,
    workers: int | None = None,
    device=None,
    batch_size=None,
    **params,
) -> PDEDataset:
    """Darcy data set x = a (n, 1, s, s), y = u (n, 1, s, s), cached on disk.

    Shorthand for ``load_or_generate(DarcyParams(resolution, n, seed, **params), ...)``;
    ``params`` are the other DarcyParams fields (forcing, values, alpha, tau, n_grf_modes).
    ``device`` and ``batch_size`` are accepted for symmetry with the torch generators and
    ignored (scipy solver on the CPU); ``workers`` threads solve samples concurrently.

    For super-resolution tests use one seed for training and another for testing, e.g.
    train = darcy_dataset(33, 400, seed=0), test = darcy_dataset(33, 100, seed=1),
    test_hi = darcy_dataset(65, 100, seed=1): test_hi holds the same 100 problems as
    test, solved on the finer grid.
    """
    return load_or_generate(
        DarcyParams.from_kwargs(resolution=resolution, n=n, seed=seed, **params),
        cache_dir,
        cache=cache,
        progress=progress,
        workers=workers,
    )


def darcy_pdebench_dataset(
    resolution: int = 129,
    n: int = 1000,
    seed: int = 0,
    *,
    cache_dir: PathLike | None = None,
    cache: bool = True,
    progress: bool = True,
    workers: int | None = None,
    device=None,
    batch_size=None,
    **params,
) -> PDEDataset:
    """PDEBench-style Darcy data set x = a (n, 1, s, s), y = u (n, 1, s, s), cached on disk.

    ``params``: DarcyPDEBenchParams fields (beta, values, n_bumps).
    """
    return load_or_generate(
        DarcyPDEBenchParams.from_kwargs(resolution=resolution, n=n, seed=seed, **params),
        cache_dir,
        cache=cache,
        progress=progress,
        workers=workers,
    )
