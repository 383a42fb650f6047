"""bops(): hand counts for Linear, Conv and spectral layers, bits per operand, backends."""

import pytest
import torch
from torch import nn

from lowprec.precision import get_policy
from lowprec.quant import bops, cost_vs_resolution, dft_macs, fft_macs, quantize_
from lowprec.spectral import SpectralConv

HAS_BACKEND = "backend" in get_policy("full").to_dict()


def test_linear_hand_count():
    model = nn.Sequential(nn.Linear(10, 20))
    macs = 3 * 7 * 10 * 20
    assert bops(model, (3, 7, 10)).bops == macs * 32 * 32
    report = bops(model, (3, 7, 10), "w8a8")
    assert (report.macs, report.bops) == (macs, macs * 8 * 8)
    assert bops(model, (3, 7, 10), "w4a8").bops == macs * 4 * 8
    assert bops(model, (3, 7, 10), "w8a32").bops == macs * 8 * 32


def test_conv_and_transposed_conv_hand_counts():
    conv = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1))
    assert bops(conv, (2, 3, 8, 8), "w8a8").macs == 2 * 5 * 8 * 8 * (3 * 3 * 3)
    strided = nn.Sequential(nn.Conv1d(4, 6, 5, stride=2))  # 20 -> 8 outputs
    assert bops(strided, (1, 4, 20)).macs == 6 * 8 * 4 * 5
    up = nn.Sequential(nn.ConvTranspose2d(4, 6, 2, stride=2))  # every input point feeds 6 x 2 x 2 outputs
    assert bops(up, (1, 4, 5, 5)).macs == 5 * 5 * 4 * 6 * 4


def test_quantized_model_reports_its_own_bits_and_matches_the_config_count():
    model = nn.Sequential(nn.Conv1d(2, 8, 3), nn.GELU(), nn.Conv1d(8, 1, 1))
    planned = bops(model, (1, 2, 32), "w4a8")
    quantize_(model, "w4a8")
    own = bops(model, (1, 2, 32))  # uncalibrated is fine: counting bypasses the quantizers
    assert own.bops == planned.bops and own.config == "w4a8"
    assert [(r.bits_a, r.bits_b) for r in own.layers] == [(4, 8), (4, 8)]


def test_fft_hand_count():
    assert fft_macs((16, 16)) == 1.25 * 256 * 8
    assert fft_macs((64,)) == 1.25 * 64 * 6


def test_dft_hand_count_and_flop_counter():
    # 16x16 grid, 4x4 modes: last axis (16 rows, 16 points) @ (16, 2K=6); then axis 0: K=3 rows, (3, 32) @ (32, 8)
    assert dft_macs((16, 16), (4, 4)) == 16 * 16 * 6 + 3 * 32 * 8
    assert dft_macs((20,), (6,)) == 20 * 2 * 4
    from torch.utils.flop_counter import FlopCounterMode

    from lowprec.spectral import dft_irfft, dft_rfft

    for grid, modes in [((16, 16), (4, 4)), ((15, 12, 9), (4, 6, 5)), ((33,), (7,))]:
        x = torch.randn(1, 1, *grid)
        with FlopCounterMode(display=False) as counter:
            spectrum = dft_rfft(x, modes, torch.float32)
        assert counter.get_total_flops() == 2 * dft_macs(grid, modes)
        with FlopCounterMode(display=False) as counter:
            dft_irfft(spectrum, grid, modes, torch.float32)
        assert counter.get_total_flops() == 2 * dft_macs(grid, modes, inverse=True)


@pytest.mark.parametrize("backend", ["fft", "dft"] if HAS_BACKEND else ["fft"])
def test_spectral_hand_count_by_backend(backend):
    layer = nn.Sequential(SpectralConv(4, 6, (4, 4)))
    policy = get_policy("full").replace(backend=backend) if HAS_BACKEND else get_policy("full")
    report = bops(layer, (2, 4, 16, 16), "w8a8", policy=policy)
    per_field = fft_macs((16, 16)) if backend == "fft" else dft_macs((16, 16), (4, 4))
    rows = {r.name.split(".")[-1]: r for r in report.layers}
    assert rows[f"forward_{backend}"].macs == 2 * 4 * per_field
    assert rows["mixing"].macs == 4 * 2 * 4 * 6 * (4 * 3)  # 4 real MACs per complex, kept modes 4 x (4//2+1)
    assert rows[f"inverse_{backend}"].macs == 2 * 6 * per_field
    assert (rows["mixing"].bits_a, rows["mixing"].bits_b) == (8, 8)
    assert (rows[f"forward_{backend}"].bits_a, rows[f"forward_{backend}"].bits_b) == (8, 16)  # transform constants
    float_report = bops(layer, (2, 4, 16, 16), policy=policy)
    assert float_report.bops == report.macs * 1024


def test_factorized_mixing_counts_the_planned_order_and_cost_grows_with_resolution():
    from lowprec.models import FNO
    from lowprec.spectral import plan_info

    tucker = SpectralConv(16, 16, (8, 8), factorization="tucker", rank=0.05)
    row = next(r for r in bops(nn.Sequential(tucker), (3, 16, 32, 32)).layers if r.kind == "spectral")
    info = plan_info((3, 16, 8, 5, 2), "bixy", [(s, tuple(t.shape[:-1])) for s, t in tucker.weight.factors()], "boxy")
    assert row.macs == info.opt_cost // 2 and "factorized" in row.note
    model = FNO((6, 6), hidden_channels=8, n_layers=2)
    rows = cost_vs_resolution(model, 1, [(16, 16), (32, 32), (64, 64)], ["float", "w8a8"])
    float_rows = [r for r in rows if r["config"] == "float"]
    assert float_rows[1]["macs"] > 3.4 * float_rows[0]["macs"] and float_rows[2]["bops"] > float_rows[1]["bops"]
    assert all(r["bops"] < f["bops"] / 10 for r, f in zip(rows[1::2], float_rows))
    assert all(0 < r["transform_share"] < 1 for r in rows)


def test_attention_products_are_counted():
    from lowprec.models.transformer import Transformer

    model = Transformer(2, 1, 1, patch_size=4, embed_dim=16, depth=1, heads=2)
    report = bops(model, (1, 1, 16, 16), "w8a8")
    tokens = 16
    scores = next(r for r in report.layers if r.name.endswith("scores"))
    assert scores.macs == 2 * tokens * tokens * 8 and scores.kind == "matmul"  # heads x L x L x head_dim
    assert report.table().splitlines()[-1].startswith("total")


def test_coordinate_channels_are_counted_once_per_grid_not_per_sample():
    from lowprec.models import FNO

    model = FNO((4,), hidden_channels=8, lifting_ratio=2.0)
    row = next(r for r in bops(model, (3, 1, 32), "w8a8").layers if r.name == "lifting.fc1")
    assert row.macs == 3 * 32 * 1 * 16 and "coordinate" in row.note  # the data channel only
