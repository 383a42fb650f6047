"""The spherical harmonic transform against scipy's harmonics, its own fp64 result and autograd."""

import numpy as np
import pytest
import torch
from scipy.special import sph_harm_y

from lowprec.spectral.sht import (
    clenshaw_curtis_weights,
    grid_points,
    isht,
    quadrature,
    sht,
)

# (grid, nlat, nlon, lmax): the coarsest grids that hold lmax, and a finer one.
GRIDS = [("equiangular", 17, 17, 8), ("legendre-gauss", 9, 17, 8), ("legendre-gauss", 12, 20, 8)]


def random_coeffs(batch, lmax, mmax=None, seed=0):
    """Random a_lm (batch, lmax+1, mmax+1, 2), zero where m > l and Im a_l0 = 0 (a real field's)."""
    mmax = lmax if mmax is None else mmax
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, lmax + 1, mmax + 1, 2, generator=gen, dtype=torch.float64)
    a = a * torch.ones(lmax + 1, mmax + 1, dtype=torch.float64).tril()[..., None]
    a[..., 0, 1] = 0
    return a


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("n", [2, 3, 8, 9, 33])
def test_clenshaw_curtis_integrates_polynomials_to_degree_n_minus_1(n):
    x, w = np.cos(np.pi * np.arange(n) / (n - 1)), clenshaw_curtis_weights(n)
    for k in range(n):
        assert abs((w * x**k).sum() - (2 / (k + 1) if k % 2 == 0 else 0)) < 1e-14


@pytest.mark.parametrize("grid", ["equiangular", "legendre-gauss"])
def test_quadrature_colatitudes_ascend_from_north(grid):
    theta, w = quadrature(grid, 10)
    assert np.all(np.diff(theta) > 0) and 0 <= theta[0] < 0.3 and abs(w.sum() - 2) < 1e-14


@pytest.mark.parametrize("grid,nlat,nlon,lmax", GRIDS)
def test_every_coefficient_is_the_analytic_harmonic(grid, nlat, nlon, lmax):
    theta, phi = grid_points(nlat, nlon, grid)
    t, p = np.meshgrid(theta.numpy(), phi.numpy(), indexing="ij")
    c = 0.3 - 0.8j
    for l in range(lmax + 1):
        for m in range(l + 1):
            # A real field with a_lm = c (a_l0 = Re c): c Y_lm + its conjugate partner a_{l,-m} Y_{l,-m}.
            y = sph_harm_y(l, m, t, p)
            field = 2 * (c * y).real if m else (c * y).real
            a = torch.view_as_complex(sht(torch.from_numpy(field), lmax, grid=grid).contiguous())
            expected = torch.zeros_like(a)
            expected[l, m] = c if m else c.real
            assert (a - expected).abs().max() < 1e-13, (l, m)
            # and the inverse evaluates the harmonic
            back = isht(torch.view_as_real(expected), nlat, nlon, grid)
            assert np.abs(back.numpy() - field).max() < 1e-13, (l, m)


@pytest.mark.parametrize("grid,nlat,nlon,lmax", GRIDS)
@pytest.mark.parametrize("mmax", [None, 4])
def test_round_trip_of_band_limited_fields(grid, nlat, nlon, lmax, mmax):
    a = random_coeffs(3, lmax, mmax)
    field = isht(a, nlat, nlon, grid)
    assert field.shape == (3, nlat, nlon)
    assert (sht(field, lmax, mmax, grid=grid) - a).abs().max() < 1e-13
    assert (isht(sht(field, lmax, mmax, grid=grid), nlat, nlon, grid) - field).abs().max() < 1e-13


def test_fp32_round_trip_and_leading_axes():
    a = random_coeffs(6, 10).reshape(2, 3, 11, 11, 2)
    field = isht(a, 11, 24, "legendre-gauss").float()
    coeffs = sht(field, 10, grid="legendre-gauss")
    assert coeffs.dtype == torch.float32 and coeffs.shape == (2, 3, 11, 11, 2)
    assert rel(coeffs, a) < 1e-6


def test_inverse_on_a_finer_grid_evaluates_the_same_function():
    a = random_coeffs(2, 8)
    coarse, fine = isht(a, 9, 17, "legendre-gauss"), isht(a, 40, 80, "equiangular")
    assert (sht(fine, 8, grid="equiangular") - sht(coarse, 8, grid="legendre-gauss")).abs().max() < 1e-12


# Relative L2 error against fp64 at lmax 63 (measured on this grid: bf16 ~3e-3, fp16 ~4e-4, fp32 ~2e-7).
TOL = {torch.float32: 1e-6, torch.bfloat16: 1e-2, torch.float16: 2e-3}


@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("backend", ["dft", "fft"])
@pytest.mark.parametrize("grid,nlat", [("legendre-gauss", 64), ("equiangular", 129)])
def test_reduced_precision_error_at_lmax_63(dtype, backend, grid, nlat):
    lmax, nlon = 63, 128 if nlat == 64 else 256
    a = random_coeffs(4, lmax)
    field = isht(a, nlat, nlon, grid)
    coeffs = sht(field.float(), lmax, grid=grid, dtype=dtype, backend=backend)
    values = isht(a.float(), nlat, nlon, grid, dtype=dtype, backend=backend)
    assert rel(coeffs, a) <= TOL[dtype]
    assert rel(values, field) <= TOL[dtype]


@pytest.mark.parametrize("grid,nlat", [("equiangular", 9), ("legendre-gauss", 5)])
def test_gradients_match_finite_differences(grid, nlat):
    x = torch.randn(2, nlat, 10, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: sht(f, 4, grid=grid, backend="dft"), (x,))
    assert torch.autograd.gradcheck(lambda f: sht(f, 4, grid=grid, backend="fft"), (x,))
    a = random_coeffs(2, 4).requires_grad_()
    assert torch.autograd.gradcheck(lambda c: isht(c, nlat, 10, grid, backend="fft"), (a,))


def test_grid_too_coarse_names_the_limit_and_the_fix():
    with pytest.raises(ValueError, match=r"too coarse for lmax=8.*nlat >= 17.*legendre-gauss"):
        sht(torch.zeros(16, 32), 8, grid="equiangular")
    with pytest.raises(ValueError, match=r"too coarse for lmax=8.*nlat >= 9"):
        sht(torch.zeros(8, 32), 8, grid="legendre-gauss")


def test_too_few_longitudes_names_the_nyquist_limit():
    # nlon = 2 mmax would put the highest order on the Nyquist frequency.
    with pytest.raises(ValueError, match=r"nlon >= 2 mmax \+ 1 = 17"):
        sht(torch.zeros(9, 16), 8, grid="legendre-gauss")
    with pytest.raises(ValueError, match=r"nlon >= 2 mmax \+ 1"):
        isht(random_coeffs(1, 8), 9, 16, "legendre-gauss")
    sht(torch.zeros(9, 17), 8, grid="legendre-gauss")  # odd nlon is fine


def test_unknown_grid_and_bad_orders():
    with pytest.raises(ValueError, match="unknown spherical grid 'healpix'"):
        sht(torch.zeros(9, 17), 8, grid="healpix")
    with pytest.raises(ValueError, match="mmax <= lmax"):
        sht(torch.zeros(9, 17), 4, 6, grid="legendre-gauss")


def test_non_finite_field_is_refused():
    x = torch.zeros(9, 17)
    x[3, 4] = float("nan")
    with pytest.raises(ValueError, match="1 non-finite value.*nan_to_num"):
        sht(x, 8, grid="legendre-gauss")
