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

Periodic fields (the torus [0, 1)^d: Navier-Stokes, Burgers)
-------------------------------------------------------------
The eigenfunctions of -Δ on the torus are Fourier modes e^{2πik·x} with
eigenvalues 4π²|k|², so the field with covariance σ² (-Δ + τ² I)^(-α) is

    g(x) = Σ_{k != 0} ĝ_k e^{2πik·x},   ĝ_{-k} = conj(ĝ_k),
    E|ĝ_k|² = σ² (4π²|k|² + τ²)^(-α)                  (mean zero: ĝ_0 = 0)

i.e. each real orthonormal mode √2 cos(2πk·x), √2 sin(2πk·x) has standard deviation
σ (4π²|k|² + τ²)^(-α/2). :func:`periodic_grf_coefficients` draws ĝ_k for
k in [-K, K]^d, (2K+1)^d complex numbers whatever the grid, and
:func:`periodic_field` evaluates the series at x_i = i/s, i = 0..s-1, keeping the
modes the grid can hold (|k_j| < s/2): again, the same random numbers give the
same continuous field at every resolution.

Normalisations of the papers: the FNO paper's Burgers generator (MATLAB ``GRF1.m``)
is exactly this with σ = 25, τ = 5, α = 2 (its "625(-Δ + 25I)^(-2)"); its Python
``GaussianRF`` (used for Navier-Stokes, α = 2.5, τ = 7, σ = τ^(α - d/2) = 7^1.5)
sums independent complex coefficients over all k and takes the real part, which
is √2 times the field above: use σ = √2 · 7^1.5 to match its data.
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
        raise ValueError(f"resolution must be at least 2 (the grid includes both boundaries), got {resolution}.")
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


def sample_grf(
    rng: np.random.Generator, resolution: int, n_modes: int = 64, alpha: float = 2.0, tau: float = 3.0, ndim: int = 2
) -> np.ndarray:
    """One mean-zero GRF sample on the (resolution,)*ndim node grid, float64.

    Draws exactly n_modes**ndim standard normals from ``rng`` whatever the resolution,
    so a generator seeded the same way gives the same field at every resolution.
    """
    xi = rng.standard_normal((n_modes,) * ndim)
    return evaluate_cosine_series(grf_scales(n_modes, alpha, tau, ndim) * xi, resolution)


def periodic_grf_scales(n_modes: int, alpha: float, tau: float, sigma: float, ndim: int) -> np.ndarray:
    """σ (4π²|k|² + τ²)^(-α/2) for k in [-K, K]^ndim (index k + K), 0 at k = 0; shape (2K+1,)*ndim."""
    if n_modes < 1:
        raise ValueError(f"n_modes must be at least 1, got {n_modes}.")
    if alpha <= 0 or tau < 0 or sigma <= 0:
        raise ValueError(f"need alpha > 0, tau >= 0, sigma > 0; got alpha={alpha}, tau={tau}, sigma={sigma}.")
    k = np.arange(-n_modes, n_modes + 1, dtype=np.float64)
    k2 = sum(np.meshgrid(*([k**2] * ndim), indexing="ij"))
    with np.errstate(divide="ignore"):  # k = 0 with tau = 0; set to 0 just below
        scales = sigma * (4 * math.pi**2 * k2 + tau**2) ** (-alpha / 2)
    scales[(n_modes,) * ndim] = 0.0
    return scales


def periodic_grf_coefficients(
    rng: np.random.Generator, n_modes: int, alpha: float, tau: float, sigma: float, ndim: int
) -> np.ndarray:
    """Fourier coefficients ĝ_k, k in [-K, K]^ndim, of one periodic GRF (see the module docstring).

    Draws exactly 2 (2K+1)^ndim standard normals from ``rng``. Returns complex128 of
    shape (2K+1,)*ndim, index k + K, Hermitian (ĝ_{-k} = conj ĝ_k) with ĝ_0 = 0.
    """
    scales = periodic_grf_scales(n_modes, alpha, tau, sigma, ndim)
    xi = rng.standard_normal(scales.shape + (2,))
    c = scales * (xi[..., 0] + 1j * xi[..., 1]) / math.sqrt(2)
    # (c_k + conj c_{-k}) / √2 is Hermitian and keeps E|ĝ_k|² = scale_k².
    c_minus = c[(slice(None, None, -1),) * ndim]
    return (c + np.conj(c_minus)) / math.sqrt(2)


def periodic_field(coefficients: np.ndarray, resolution: int) -> np.ndarray:
    """Evaluate Σ ĝ_k e^{2πik·x} at x_i = i / resolution: (2K+1,)*d -> (resolution,)*d, float64.

    Modes with |k_j| >= resolution / 2 on some axis are dropped (the grid cannot hold
    them; the Nyquist mode of an even grid is ambiguous), so coarser grids see a
    low-pass version of the same field.
    """
    ndim = coefficients.ndim
    K = (coefficients.shape[0] - 1) // 2
    keep = min(K, (resolution - 1) // 2)
    sub = coefficients[(slice(K - keep, K + keep + 1),) * ndim]
    idx = np.arange(-keep, keep + 1) % resolution
    spectrum = np.zeros((resolution,) * ndim, dtype=np.complex128)
    spectrum[np.ix_(*([idx] * ndim))] = sub * resolution**ndim  # numpy's ifftn divides by s^d
    return np.fft.ifftn(spectrum).real


def sample_periodic_grf(
    rng: np.random.Generator, resolution: int, n_modes: int, alpha: float, tau: float, sigma: float, ndim: int
) -> np.ndarray:
    """One mean-zero periodic GRF on the (resolution,)*ndim grid x_i = i / resolution, float64."""
    return periodic_field(periodic_grf_coefficients(rng, n_modes, alpha, tau, sigma, ndim), resolution)
