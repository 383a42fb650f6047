"""Real spherical harmonic transforms (SHT) in any real dtype, as an FFT and a batched GEMM.

A real field f(theta, phi) on an (nlat, nlon) grid of colatitudes theta (0 at the north
pole, ascending) and longitudes phi_k = 2 pi k / nlon is expanded in orthonormal spherical
harmonics with the Condon-Shortley phase (scipy's ``sph_harm_y``)::

    f = sum_{l <= lmax} sum_{|m| <= min(l, mmax)} a_lm Y_lm,   Y_lm = Pbar_l^m(cos theta) e^{i m phi},

    int_sphere Y_lm conj(Y_l'm') dOmega = delta_ll' delta_mm'.

f is real, so a_{l,-m} = (-1)^m conj(a_lm) and only m >= 0 is stored: a spectrum is a real
view (..., lmax + 1, mmax + 1, 2) of a_lm, zero where m > l.

* Forward: along longitude the truncated real DFT (``norm="forward"``) of
  :mod:`lowprec.spectral.transforms`, by the FFT or the DFT-as-GEMM backend
  (:func:`lowprec.spectral.backend.resolve_backend`); along latitude, for every m, the
  quadrature a_lm = sum_j 2 pi w_j Pbar_l^m(x_j) F_m(theta_j): one batched GEMM over m with
  the (mmax + 1, nlat, lmax + 1) tensor of quadrature-weighted Legendre functions,
  zero-padded where l < m.
* Inverse: the same two steps the other way, with the unweighted Legendre functions.

Grids (``grid=``):

* ``"equiangular"``: theta_j = pi j / (nlat - 1), both poles included, Clenshaw-Curtis
  weights. Exact for degree <= nlat - 1 in cos theta, so the forward transform of a field
  band-limited to lmax is exact when nlat >= 2 lmax + 1.
* ``"legendre-gauss"``: Gauss-Legendre nodes (numpy's ``leggauss``), exact for degree
  <= 2 nlat - 1: nlat >= lmax + 1.

Along longitude nlon >= 2 mmax + 1 (odd or even): at nlon = 2 mmax the order mmax would
fall on the Nyquist frequency, whose sine part a grid cannot hold. The inverse transform
only evaluates the expansion, so any grid holds it; the forward one checks these limits.

Legendre functions are computed once in fp64 by the stable three-term recurrence on
orthonormal functions and cached per (grid, nlat, lmax, mmax, dtype, device). Both GEMMs run
in the requested dtype (fp32 accumulation on tensor cores and in oneDNN), autograd saves only
the constant matrices, and gradients are exact adjoints (``torch.autograd.gradcheck`` in fp64).

Written here rather than taken from torch-harmonics: its wheels pin one torch version and
it has no reduced-precision path (its Legendre step runs in the input's dtype as a complex
einsum, which has no fp16/bf16 kernels), while here every step is a real product in the
policy's dtype, with the longitude step shared with the planar layers.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from .transforms import forward_transform, inverse_transform

GRIDS = ("equiangular", "legendre-gauss")
_ALIASES = {
    "gauss": "legendre-gauss",
    "legendre_gauss": "legendre-gauss",
    "equiangular": "equiangular",
    "legendre-gauss": "legendre-gauss",
}


def check_grid(grid: str) -> str:
    """The canonical grid name, or a ValueError naming the choices."""
    key = _ALIASES.get(str(grid).lower())
    if key is None:
        raise ValueError(
            f"unknown spherical grid {grid!r}; use one of {GRIDS} ('gauss' is accepted for 'legendre-gauss')."
        )
    return key


def min_nlat(grid: str, lmax: int) -> int:
    """Fewest latitudes on which the forward transform to degree ``lmax`` is exact."""
    return 2 * lmax + 1 if check_grid(grid) == "equiangular" else lmax + 1


def check_sizes(nlat: int, nlon: int, lmax: int, mmax: int, grid: str) -> None:
    """Raise unless an (nlat, nlon) ``grid`` holds the forward transform to (lmax, mmax)."""
    grid = check_grid(grid)
    if lmax < 0 or not 0 <= mmax <= lmax:
        raise ValueError(f"need 0 <= mmax <= lmax, got lmax={lmax}, mmax={mmax}.")
    if nlat < min_nlat(grid, lmax):
        other = "legendre-gauss" if grid == "equiangular" else "equiangular"
        fit = (nlat - 1) // 2 if grid == "equiangular" else nlat - 1
        raise ValueError(
            f"an {grid} grid of {nlat} latitudes is too coarse for lmax={lmax}: its quadrature is "
            f"exact only for nlat >= {min_nlat(grid, lmax)}. Use nlat >= {min_nlat(grid, lmax)}, "
            f"lmax <= {fit}" + (f", or the {other} grid (nlat >= lmax + 1)." if grid == "equiangular" else ".")
        )
    if nlon < 2 * mmax + 1:
        raise ValueError(
            f"{nlon} longitudes are too few for mmax={mmax}: orders up to mmax need "
            f"nlon >= 2 mmax + 1 = {2 * mmax + 1} (at nlon = 2 mmax the highest order falls on "
            f"the Nyquist frequency and loses its sine part). Use nlon >= {2 * mmax + 1} or "
            f"mmax <= {(nlon - 1) // 2}."
        )


def clenshaw_curtis_weights(n: int) -> np.ndarray:
    """Weights of int_{-1}^{1} g(x) dx at x_j = cos(pi j / (n - 1)), j = 0..n-1 (Waldvogel 2006).

    Exact for polynomials of degree <= n - 1.
    """
    if n < 2:
        raise ValueError(f"an equiangular grid needs at least 2 latitudes (both poles), got {n}.")
    N = n - 1
    theta = np.pi * np.arange(n) / N
    v = np.ones(n)
    for k in range(1, N // 2 + 1):
        b = 1.0 if 2 * k == N else 2.0
        v -= b * np.cos(2 * k * theta) / (4 * k * k - 1)
    c = np.full(n, 2.0)
    c[0] = c[-1] = 1.0
    return c * v / N


def quadrature(grid: str, nlat: int) -> tuple[np.ndarray, np.ndarray]:
    """(colatitudes theta_j ascending from the north pole, weights w_j of int_{-1}^{1} dx), fp64, read-only."""
    return _quadrature(check_grid(grid), nlat)


@lru_cache(maxsize=64)
def _quadrature(grid: str, nlat: int) -> tuple[np.ndarray, np.ndarray]:
    # Cached: position embeddings ask for the grid on every forward pass.
    if grid == "equiangular":
        theta, w = np.pi * np.arange(nlat) / max(nlat - 1, 1), clenshaw_curtis_weights(nlat)
    else:
        x, w = np.polynomial.legendre.leggauss(nlat)
        theta, w = np.arccos(x[::-1]), w[::-1].copy()
    theta.setflags(write=False)
    w.setflags(write=False)
    return theta, w


def grid_points(nlat: int, nlon: int, grid: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Colatitudes (nlat,) and longitudes (nlon,) in radians, fp64."""
    theta, _ = quadrature(grid, nlat)
    return torch.from_numpy(theta.copy()), 2 * math.pi * torch.arange(nlon, dtype=torch.float64) / nlon


def legendre(lmax: int, mmax: int, theta: np.ndarray) -> np.ndarray:
    """Orthonormal associated Legendre functions Pbar_l^m(cos theta), Condon-Shortley phase, (mmax+1, nlat, lmax+1).

    Zero where l < m. 2 pi int_0^pi Pbar_l^m Pbar_l'^m sin theta dtheta = delta_ll'. Recurrences in l
    at fixed m, each starting from the sectoral Pbar_m^m = -sqrt((2m+1)/(2m)) sin theta Pbar_{m-1}^{m-1};
    all orthonormal, so no factorial ever overflows.
    """
    x, s = np.cos(theta), np.sin(theta)
    out = np.zeros((mmax + 1, len(theta), lmax + 1))
    pmm = np.full(len(theta), 1.0 / math.sqrt(4 * math.pi))
    for m in range(mmax + 1):
        if m > 0:
            pmm = -math.sqrt((2 * m + 1) / (2 * m)) * s * pmm
        out[m, :, m] = pmm
        if m + 1 > lmax:
            continue
        prev, cur = pmm, math.sqrt(2 * m + 3) * x * pmm
        out[m, :, m + 1] = cur
        for l in range(m + 2, lmax + 1):
            a = math.sqrt((4 * l * l - 1) / (l * l - m * m))
            b = math.sqrt(((l - 1) ** 2 - m * m) / (4 * (l - 1) ** 2 - 1))
            prev, cur = cur, a * (x * cur - b * prev)
            out[m, :, l] = cur
    return out


_MATRICES: dict = {}


def legendre_matrix(
    kind: str, grid: str, nlat: int, lmax: int, mmax: int, dtype: torch.dtype, device: torch.device | str
) -> torch.Tensor:
    """The (mmax+1, nlat, lmax+1) Legendre tensor of one transform, cached.

    kind ``"forward"``: 2 pi w_j Pbar_l^m(x_j) (quadrature weights and the longitude integral's
    2 pi folded in); ``"inverse"``: Pbar_l^m(x_j). Built in fp64, cast once per dtype and device, and
    kept in a plain dict, as :func:`lowprec.spectral.dft.dft_matrix` is (``torch.compile`` reads it
    as a graph input).
    """
    grid = check_grid(grid)
    key = (kind, grid, nlat, lmax, mmax, dtype, torch.device(device))
    if key not in _MATRICES:
        theta, w = quadrature(grid, nlat)
        p = legendre(lmax, mmax, theta)
        if kind == "forward":
            p = p * (2 * math.pi * w)[None, :, None]
        elif kind != "inverse":
            raise ValueError(f"unknown Legendre matrix kind {kind!r}; 'forward' or 'inverse'.")
        _MATRICES[key] = torch.from_numpy(p).to(device=device, dtype=dtype)
    return _MATRICES[key]


def _sht(x: torch.Tensor, lmax: int, mmax: int, grid: str, dtype: torch.dtype, backend: str) -> torch.Tensor:
    """:func:`sht` without the input checks (the spherical layer's path: overflow is the loss scaler's)."""
    *batch, nlat, nlon = x.shape
    # Longitude: K = mmax + 1 coefficients 0..mmax, as the planar last axis with 2 mmax modes.
    f = forward_transform(x.reshape(-1, nlat, nlon), (2 * mmax,), dtype, backend).to(dtype)  # (B, nlat, M, 2)
    # Latitude: for each m, (B * 2, nlat) @ (nlat, L); the [re, im] pair shares the real matrix.
    f = f.permute(2, 0, 3, 1).reshape(mmax + 1, -1, nlat)  # (M, B * 2, nlat)
    a = torch.bmm(f, legendre_matrix("forward", grid, nlat, lmax, mmax, dtype, x.device))  # (M, B * 2, L)
    return a.reshape(mmax + 1, -1, 2, lmax + 1).permute(1, 3, 0, 2).reshape(*batch, lmax + 1, mmax + 1, 2)


def sht(
    x: torch.Tensor,
    lmax: int,
    mmax: int | None = None,
    grid: str = "equiangular",
    dtype: torch.dtype | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Forward real SHT: spherical harmonic coefficients a_lm of a real field, in ``dtype``.

    Args:
        x: real field (..., nlat, nlon) on ``grid`` (colatitude ascending from the north pole,
            longitude 2 pi k / nlon).
        lmax, mmax: largest degree and order kept (mmax defaults to lmax).
        grid: ``"equiangular"`` or ``"legendre-gauss"``.
        dtype: dtype of both steps (default: x's).
        backend: longitude transform, ``"auto"``, ``"fft"`` or ``"dft"`` (as a policy's).

    Returns:
        Real view (..., lmax + 1, mmax + 1, 2) of a_lm (m >= 0), zero where m > l.
    """
    mmax = lmax if mmax is None else mmax
    if x.ndim < 2 or not x.is_floating_point():
        raise ValueError(
            f"sht expects a real floating-point field (..., nlat, nlon), got shape {tuple(x.shape)} of {x.dtype}."
        )
    check_sizes(x.shape[-2], x.shape[-1], lmax, mmax, grid)
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).sum().item()
        raise ValueError(
            f"sht: the field holds {bad} non-finite value(s) (NaN or inf); a spherical harmonic "
            "transform spreads them over every coefficient. Fix the field first (e.g. "
            "torch.nan_to_num, or find where it overflowed)."
        )
    return _sht(x, lmax, mmax, check_grid(grid), dtype or x.dtype, backend)


def _isht(coeffs: torch.Tensor, nlat: int, nlon: int, grid: str, dtype: torch.dtype, backend: str) -> torch.Tensor:
    *batch, L, M, _ = coeffs.shape
    a = coeffs.to(dtype).reshape(-1, L, M, 2).permute(2, 0, 3, 1).reshape(M, -1, L)  # (M, B * 2, L)
    p = legendre_matrix("inverse", grid, nlat, L - 1, M - 1, dtype, coeffs.device)  # (M, nlat, L)
    f = torch.bmm(a, p.transpose(1, 2))  # (M, B * 2, nlat)
    f = f.reshape(M, -1, 2, nlat).permute(1, 3, 0, 2)  # (B, nlat, M, 2)
    return inverse_transform(f, (nlon,), (2 * (M - 1),), dtype, backend).reshape(*batch, nlat, nlon)


def isht(
    coeffs: torch.Tensor,
    nlat: int,
    nlon: int,
    grid: str = "equiangular",
    dtype: torch.dtype | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Inverse real SHT: the real field (..., nlat, nlon) of coefficients (..., lmax + 1, mmax + 1, 2).

    Any grid evaluates the expansion (no quadrature is involved), e.g. a finer one than the
    coefficients came from; only nlon >= 2 mmax + 1 is needed. Entries with m > l are ignored.
    Imaginary parts at m = 0 are dropped, as irfft drops them.
    """
    if coeffs.ndim < 3 or coeffs.shape[-1] != 2:
        raise ValueError(
            f"isht expects a real view (..., lmax + 1, mmax + 1, 2), got shape {tuple(coeffs.shape)}; "
            "convert complex coefficients with torch.view_as_real."
        )
    L, M = coeffs.shape[-3], coeffs.shape[-2]
    check_grid(grid)
    if M > L:
        raise ValueError(f"isht: mmax + 1 = {M} orders exceed lmax + 1 = {L} degrees; need mmax <= lmax.")
    if nlon < 2 * M - 1:
        raise ValueError(f"{nlon} longitudes are too few for mmax={M - 1}: need nlon >= 2 mmax + 1 = {2 * M - 1}.")
    return _isht(coeffs, nlat, nlon, check_grid(grid), dtype or coeffs.dtype, backend)
