"""SFNO: shapes, policies, bad input, and zero-shot evaluation on a finer grid."""

import pytest
import torch

from lowprec.models import SFNO
from lowprec.precision import get_policy
from lowprec.spectral.sconv import SphericalConv
from lowprec.spectral.sht import isht


def band_limited(batch, lmax, seed):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, 1, lmax + 1, lmax + 1, 2, generator=gen) / (1 + torch.arange(lmax + 1.0))[:, None, None]
    a = a * torch.ones(lmax + 1, lmax + 1).tril()[..., None]
    a[..., 0, 1] = 0
    return a


def diffuse(a):
    """The target operator on coefficients: heat flow for a while, exp(-l(l+1) / 30)."""
    l = torch.arange(a.shape[-3], dtype=a.dtype)
    return a * torch.exp(-l * (l + 1) / 30)[:, None, None]


def test_shapes_and_policies():
    model = SFNO((8, 8), in_channels=2, out_channels=3, hidden_channels=8, n_layers=2, grid="legendre-gauss")
    x = torch.randn(2, 2, 12, 24)
    assert model(x).shape == (2, 3, 12, 24)
    assert all(isinstance(b.spectral, SphericalConv) for b in model.blocks)
    for name in ("mixed", "bf16", "fp16"):
        with get_policy(name):
            y = model(x)
        assert torch.isfinite(y).all(), name


def test_grid_too_coarse_names_the_model_and_fix():
    model = SFNO((16, 16), hidden_channels=4, n_layers=1, grid="equiangular")
    assert model.min_grid() == (31, 31)
    with pytest.raises(ValueError, match=r"SFNO with n_modes=\(16, 16\).*nlat >= 31"):
        model(torch.zeros(1, 1, 16, 32))


def test_trained_at_32x64_evaluates_at_64x128():
    torch.manual_seed(0)
    grid, lmax = "legendre-gauss", 12
    model = SFNO((16, 16), hidden_channels=16, n_layers=2, grid=grid, channel_mlp_expansion=0.5)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)

    def pair(batch, seed, nlat, nlon):
        a = band_limited(batch, lmax, seed)
        return isht(a, nlat, nlon, grid), isht(diffuse(a), nlat, nlon, grid)

    def error(x, y):
        with torch.no_grad():
            return ((model(x) - y).norm() / y.norm()).item()

    x_test, y_test = pair(16, 999, 32, 64)
    x_fine, y_fine = pair(16, 999, 64, 128)
    before = error(x_test, y_test)
    for step in range(60):
        x, y = pair(8, step, 32, 64)
        loss = (model(x) - y).square().mean() / y.square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    coarse, fine = error(x_test, y_test), error(x_fine, y_fine)
    assert coarse < 0.3 * before
    # The same functions sampled twice as finely: the operator carries over.
    assert fine < 1.5 * coarse + 0.02, (coarse, fine)
