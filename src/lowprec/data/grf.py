"""Gaussian random fields on the unit square (or interval, or cube), resolution-consistent.

The FNO paper (Li et al., ICLR 2021) draws the Darcy coefficient from a Gaussian
random field with covariance (-Δ + τ² I)^(-α) on [0, 1]^d with Neumann boundary
conditions. The eigenfunctions of -Δ with Neumann conditions are cosines, so the
field is the cosine series

    g(x) = Σ_k  c_k ξ_k φ_k1(x_1) ... φ_kd(x_d),      k = (k_1..k_d), 0 <= k_i < K,

    φ_0(t) = 1,  φ_k(t) = √2 cos(kπt)                 (orthonormal on [0, 1])
    c_k    = τ^(α-1) (π² |k|² + τ²)^(-α/2),           c_0 = 0 (mean-zero field)
    ξ_k    ~ iid N(0, 1).

We draw the K^d coefficients ξ once and *evaluate* the series at the requested
nodes x_i = i / (s - 1), i = 0..s-1 (both boundaries included), with one matrix
product per axis. Nothing depends on s except the evaluation, so the same
random numbers give the same continuous field at every resolution: the 65²
field subsampled with stride 2 is the 33² field (to rounding). This is what
makes zero-shot super-resolution tests honest -- a model trained at 32² is
evaluated at 64² on the *same* problems, not on new ones. (The FNO paper's
MATLAB generator instead uses an inverse DCT of size s, whose random field
changes with s.)

Shapes: coefficients (K,)*d, basis (s, K), fields (s,)*d, all float64.
"""

from __future__ import annotations

import math

import numpy as np


def grf_scales(n_modes: int, alpha: float = 2.0, tau: float = 3.0, ndim: int = 2) -> np.ndarray:
    """Standard deviations c_k of the cosine coefficients, shape (n_modes,)*ndim.

    c_k = τ^(α-1) (π²|k|² + τ²)^(-α/2) with the constant mode k = 0 set to 0 so
    the field has mean zero (the FNO paper drops it too).
    """
    if n_modes < 2:
        raise ValueError(f"n_modes must be at least 2 (mode 0 is dropped), got {n_modes}.")
    if alpha <= 0 or tau <= 0:
        raise ValueError(f"alpha and tau must be positive, got alpha={alpha}, tau={tau}.")
    k = np.arange(n_modes, dtype=np.float64)
    k2 = sum(np.meshgrid(*([k**2] * ndim), indexing="ij"))
    scales = tau ** (alpha - 1) * (math.pi**2 * k2 + tau**2) ** (-alpha / 2)
    scales[(0,) * ndim] = 0.0
    return scales


def cosine_basis(resolution: int, n_modes: int) -> np.ndarray:
    """Orthonormal Neumann basis evaluated on the node grid, shape (resolution, n_modes).

    Row i is x_i = i / (resolution - 1); column k is φ_k (1 for k = 0, √2 cos(kπx) else).
    """
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2 (the grid includes both boundaries), "
                         f"got {resolution}.")
    # i/(s-1) is exact for the nodes two grids share (e.g. 2j/64 == j/32), which keeps
    # fields at different resolutions equal to rounding where their nodes coincide.
    x = np.arange(resolution, dtype=np.float64) / (resolution - 1)
    basis = np.sqrt(2.0) * np.cos(math.pi * np.outer(x, np.arange(n_modes)))
    basis[:, 0] = 1.0
    return basis


def evaluate_cosine_series(coefficients: np.ndarray, resolution: int) -> np.ndarray:
    """Evaluate Σ_k a_k φ_k(x) on the node grid: (K,)*d coefficients -> (resolution,)*d field.

    One product with the (s, K) basis per axis, so the cost is O(d s K^d) and no FFT
    size constraint applies.
    """
    basis = cosine_basis(resolution, coefficients.shape[0])
    field = coefficients
    for axis in range(coefficients.ndim):
        # contract axis `axis` with the basis and move the new grid axis back into place
        field = np.moveaxis(np.tensordot(basis, field, axes=([1], [axis])), 0, axis)
    return field


def sample_grf(rng: np.random.Generator, resolution: int, n_modes: int = 64, alpha: float = 2.0,
               tau: float = 3.0, ndim: int = 2) -> np.ndarray:
    """One mean-zero GRF sample on the (resolution,)*ndim node grid, float64.

    Draws exactly n_modes**ndim standard normals from ``rng`` whatever the resolution,
    so a generator seeded the same way gives the same field at every resolution.
    """
    xi = rng.standard_normal((n_modes,) * ndim)
    return evaluate_cosine_series(grf_scales(n_modes, alpha, tau, ndim) * xi, resolution)
