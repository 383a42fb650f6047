"""SFNO through the library's seams: the model registry, quantize_ and bops (the spectral-layer protocol)."""

import torch

from lowprec.models import SFNO, build_model
from lowprec.models.registry import model_kwargs
from lowprec.quant import bops, calibrate, quantize_
from lowprec.quant.modules import QuantSpectralConv
from lowprec.spectral import SphericalConv, is_spectral_layer


def test_sfno_is_built_by_name_with_the_datas_grid():
    kwargs = model_kwargs(
        "sfno",
        {
            "n_modes": (8, 8),
            "in_channels": 3,
            "out_channels": 3,
            "hidden_channels": 8,
            "n_layers": 2,
            "sphere_grid": "legendre-gauss",
            "grid_endpoint": True,
        },
    )
    model = build_model("sfno", **kwargs)
    assert isinstance(model, SFNO) and model.grid == "legendre-gauss"
    assert all(isinstance(b.spectral, SphericalConv) for b in model.blocks)
    assert model(torch.randn(2, 3, 16, 32)).shape == (2, 3, 16, 32)


def test_quantize_wraps_the_spherical_layers_and_stays_close_to_float():
    torch.manual_seed(0)
    model = SFNO((8, 8), in_channels=1, out_channels=1, hidden_channels=8, n_layers=2, grid="legendre-gauss")
    assert is_spectral_layer(model.blocks[0].spectral)
    x = torch.randn(4, 1, 16, 32)
    with torch.no_grad():
        reference = model(x)
    quantize_(model, "w8a8")
    assert all(isinstance(b.spectral, QuantSpectralConv) for b in model.blocks)
    calibrate(model, x, n_batches=1, batch_size=4)
    with torch.no_grad():
        error = (model(x) - reference).norm() / reference.norm()
    assert 0 < error < 0.1


def test_bops_counts_the_sht_and_the_per_degree_mixing():
    model = SFNO((8, 6), in_channels=1, out_channels=1, hidden_channels=8, n_layers=1, grid="legendre-gauss")
    rows = {r.name: r for r in bops(model, (1, 1, 16, 32)).layers}
    forward = next(r for name, r in rows.items() if name.startswith("blocks.0.spectral.forward_sht"))
    mixing = rows["blocks.0.spectral.mixing"]
    assert forward.macs > 2 * 16 * 8 * 6  # the Legendre GEMM alone: 2 nlat (lmax + 1) (mmax + 1) per field
    assert mixing.macs == 4 * 8 * 8 * 8 * 6  # 4 real MACs per complex one, in x out per (l, m)
