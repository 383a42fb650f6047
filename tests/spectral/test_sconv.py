"""The spherical layer against an fp64 reference built from scipy's harmonics, under every policy."""

import numpy as np
import pytest
import torch
from scipy.special import sph_harm_y

from lowprec.precision import PRESETS, get_policy
from lowprec.spectral.sconv import SphericalConv
from lowprec.spectral.sht import grid_points, quadrature

# (grid, nlat, nlon, n_modes)
CASES = [("equiangular", 13, 16, (6, 6)), ("legendre-gauss", 8, 15, (8, 5)), ("legendre-gauss", 10, 20, (5, 5))]
TOL = {torch.float32: 1e-5, torch.float16: 3e-3, torch.bfloat16: 3e-2}


def harmonics(grid, nlat, nlon, n_l, n_m):
    """Y[l, m, j, k] = Y_lm(theta_j, phi_k) for m < n_m (zero where m > l), complex128."""
    theta, phi = grid_points(nlat, nlon, grid)
    t, p = np.meshgrid(theta.numpy(), phi.numpy(), indexing="ij")
    y = np.zeros((n_l, n_m, nlat, nlon), dtype=complex)
    for l in range(n_l):
        for m in range(min(l, n_m - 1) + 1):
            y[l, m] = sph_harm_y(l, m, t, p)
    return y


def spherical_conv_reference(x, weight, grid, n_modes):
    """fp64: a_lm = sum w_j (2 pi / nlon) x conj(Y_lm); b = W a; y = Re sum_lm c_m b_lm Y_lm (c_0 = 1, else 2)."""
    nlat, nlon = x.shape[-2:]
    y = harmonics(grid, nlat, nlon, *n_modes)
    _, w = quadrature(grid, nlat)
    a = np.einsum("bijk,lmjk,j->bilm", x.numpy(), y.conj(), w * 2 * np.pi / nlon)
    w_dense = weight.numpy()
    b = np.einsum("iol,bilm->bolm" if w_dense.ndim == 3 else "iolm,bilm->bolm", w_dense, a)
    c = np.full(n_modes[1], 2.0)
    c[0] = 1.0
    return torch.from_numpy(np.einsum("bolm,lmjk,m->bojk", b, y, c).real)


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("grid,nlat,nlon,n_modes", CASES)
@pytest.mark.parametrize("sharing", ["degree", "none"])
@pytest.mark.parametrize("factorization", ["dense", "tucker", "cp"])
def test_fp64_equals_reference(grid, nlat, nlon, n_modes, sharing, factorization):
    layer = SphericalConv(
        3, 4, n_modes, factorization=factorization, rank=0.5, grid=grid, weight_sharing=sharing
    ).double()
    x = torch.randn(2, 3, nlat, nlon, dtype=torch.float64)
    ref = spherical_conv_reference(x, layer.weight.to_dense().detach(), grid, n_modes)
    assert rel(layer(x), ref) < 1e-12


SPECTRAL_PATHS = list(
    {
        (p.transform_dtype, p.contract_dtype, p.stabilizer, p.backend): name for name, p in reversed(PRESETS.items())
    }.values()
)


def lowest(policy):
    for dt in (torch.bfloat16, torch.float16):
        if dt in (policy.transform_dtype, policy.contract_dtype):
            return dt
    return torch.float32


@pytest.mark.parametrize("policy", SPECTRAL_PATHS)
@pytest.mark.parametrize("grid,nlat,nlon,n_modes", CASES)
@pytest.mark.parametrize("factorization", ["dense", "tucker"])
def test_every_policy_matches_reference_within_its_dtype(policy, grid, nlat, nlon, n_modes, factorization):
    policy = get_policy(policy)
    layer = SphericalConv(3, 4, n_modes, factorization=factorization, rank=0.5, grid=grid)
    x = torch.randn(2, 3, nlat, nlon)
    with policy:
        y = layer(x)
    assert y.dtype == torch.float32 and y.shape == (2, 4, nlat, nlon)
    h = x.double() if policy.stabilizer is None else torch.tanh(x.double())
    ref = spherical_conv_reference(h, layer.weight.to_dense().detach().cdouble(), grid, n_modes)
    assert rel(y, ref) < TOL[lowest(policy)]


def test_half_input_is_returned_in_its_dtype_and_gradients_flow():
    layer = SphericalConv(2, 2, (6, 6), grid="legendre-gauss")
    x = torch.randn(1, 2, 8, 16, dtype=torch.bfloat16, requires_grad=True)
    with get_policy("bf16"):
        y = layer(x)
    y.float().square().sum().backward()
    assert y.dtype == torch.bfloat16 and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_degree_weights_commute_with_rotation_about_the_axis():
    # Shifting longitude by one grid step is a rotation; a degree-shared layer commutes with it.
    layer = SphericalConv(2, 3, (6, 6), grid="legendre-gauss").double()
    x = torch.randn(1, 2, 8, 16, dtype=torch.float64)
    assert (layer(x.roll(3, -1)) - layer(x).roll(3, -1)).abs().max() < 1e-12


def test_weight_shapes():
    assert SphericalConv(2, 3, (6, 4)).weight.shape == (2, 3, 6)
    assert SphericalConv(2, 3, (6, 4), weight_sharing="none").weight.shape == (2, 3, 6, 4)


def test_bad_input_names_the_fix():
    layer = SphericalConv(2, 2, (8, 8), grid="equiangular")
    with pytest.raises(ValueError, match=r"n_modes=\(8, 8\).*too coarse for lmax=7.*nlat >= 15"):
        layer(torch.zeros(1, 2, 10, 20))
    with pytest.raises(ValueError, match=r"expects input \(batch, 2, nlat, nlon\)"):
        layer(torch.zeros(1, 3, 15, 20))
    with pytest.raises(ValueError, match="1 <= n_m <= n_l"):
        SphericalConv(2, 2, (4, 6))
    with pytest.raises(ValueError, match="unknown weight_sharing"):
        SphericalConv(2, 2, 4, weight_sharing="order")
