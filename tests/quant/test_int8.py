"""Integer kernels: each converted layer and whole models match the fake-quantized ones."""

import pytest
import torch
from torch import nn

from lowprec.quant import calibrate, convert_int8, quantize_
from lowprec.quant.int8 import compare_int8, latency_table

LAYERS = [
    (nn.Linear(12, 7), (5, 3, 12)),
    (nn.Conv1d(3, 6, 3, padding=1), (2, 3, 20)),
    (nn.Conv1d(3, 6, 5, stride=2, padding=2, padding_mode="circular"), (2, 3, 21)),
    (nn.Conv2d(4, 5, 3, padding=1), (2, 4, 9, 11)),
    (nn.Conv2d(4, 5, (3, 2), stride=(2, 1), dilation=(1, 2), bias=False), (2, 4, 10, 9)),
    (nn.Conv2d(4, 5, 1), (2, 4, 6, 6)),
    (nn.ConvTranspose2d(6, 3, 2, stride=2), (2, 6, 4, 5)),
    (nn.ConvTranspose1d(6, 3, 3, stride=2, padding=1, output_padding=1), (2, 6, 7)),
]


@pytest.mark.parametrize("preset", ["w8a8", "w4a4"])
@pytest.mark.parametrize("layer,shape", LAYERS, ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else "")
def test_int8_layer_matches_fake_quantized(layer, shape, preset):
    model = quantize_(nn.Sequential(layer), preset)
    x = torch.randn(*shape) + 0.3  # off-centre, so the activation zero point is not 0
    calibrate(model, x, n_batches=1, batch_size=len(x))
    model.eval()
    int8_model, names = convert_int8(model)
    assert names == ["0"] and type(int8_model[0]).__name__.startswith("Int8")
    fake, real = model(x), int8_model(x)
    assert real.shape == fake.shape
    assert ((real - fake).abs().max() / fake.abs().max()) < 1e-5


def test_int8_models_match_fake_quantized_models():
    from lowprec.models import FNO
    from lowprec.models.unet import UNet

    for model, shape in [
        (FNO((4, 4), hidden_channels=8, n_layers=2), (4, 1, 12, 12)),
        (UNet(1, 2, 1, features=4, depth=2), (4, 2, 24)),
    ]:
        quantize_(model, "w8a8")
        x = torch.randn(*shape)
        calibrate(model, x, n_batches=1, batch_size=4)
        model.eval()
        result = compare_int8(model, x, repeats=1)
        # integer and float sums differ by rounding; once in a while a value then rounds to the
        # neighbouring level downstream: a few steps of the 8-bit grid at most
        assert result["max_rel_diff"] < 2e-2
        assert len(result["converted"]) > 3 and set(result["seconds"]) == {"float", "fake", "int8"}
        assert "total (converted layers)" in latency_table(result)


def test_conversion_needs_8_bits_and_calibration():
    model = quantize_(nn.Sequential(nn.Linear(4, 4)), "w8a16")
    calibrate(model, torch.randn(4, 4), n_batches=1)
    with pytest.raises(ValueError, match=r"16-bit inputs do not fit int8.*w8a8"):
        convert_int8(model)
    with pytest.raises(ValueError, match="not calibrated"):
        convert_int8(quantize_(nn.Sequential(nn.Linear(4, 4)), "w8a8"))


def test_int8_coordinate_term_is_cached_per_grid_and_matches_fake():
    from lowprec.models import Transformer

    torch.manual_seed(0)
    model = Transformer(dim=1, patch_size=4, embed_dim=16, depth=1, heads=2)
    quantize_(model, "w8a8")
    x = torch.randn(4, 1, 32)
    calibrate(model, x, n_batches=1, batch_size=4)
    model.eval()
    int8_model, names = convert_int8(model)
    assert "patch_embed" in names
    for n in (32, 64):
        xn = torch.randn(4, 1, n)
        fake, real = model(xn), int8_model(xn)
        assert ((fake - real).abs().max() / fake.abs().max()).item() < 2e-2
    assert len(int8_model.patch_embed.coordinates.cache) == 2
