"""Fake quantization: the grid, straight-through gradients, LSQ scale gradients, observers, configs."""

import pytest
import torch

from lowprec.quant import FakeQuantizer, NotCalibratedError, QuantConfig, QuantSpec, calibrate, fake_quantize, quantize_
from lowprec.quant.config import get_config


def test_rounds_to_the_grid_of_its_scale_as_torch_core_does():
    x = torch.randn(1000) * 3
    scale, zero = torch.tensor(0.05), torch.tensor(7.0)
    out = fake_quantize(x, scale, zero, -128, 127)
    levels = out / scale + zero
    assert torch.allclose(levels, levels.round(), atol=1e-4)  # on the grid
    assert levels.min() >= -128 - 1e-4 and levels.max() <= 127 + 1e-4  # inside the range
    assert ((out - x).abs() <= scale / 2 + 1e-6)[(x > (-128 - 7) * 0.05) & (x < (127 - 7) * 0.05)].all()
    core = torch.fake_quantize_per_tensor_affine(x, scale, zero.to(torch.int32), -128, 127)
    assert torch.allclose(out, core, atol=1e-6)


def test_per_channel_matches_torch_core():
    w = torch.randn(6, 10) * torch.linspace(0.1, 3, 6)[:, None]
    scale = w.abs().amax(1) / 127
    out = fake_quantize(w, scale[:, None], torch.zeros(6, 1), -127, 127)
    core = torch.fake_quantize_per_channel_affine(w, scale, torch.zeros(6, dtype=torch.int32), 0, -127, 127)
    assert torch.allclose(out, core, atol=1e-6)


def test_straight_through_inside_the_range_zero_outside():
    x = torch.tensor([-10.0, -0.33, 0.0, 0.41, 0.9, 10.0], requires_grad=True)
    fake_quantize(x, torch.tensor(0.1), torch.tensor(0.0), -8, 7).sum().backward()
    # range [-0.8, 0.7]: -10, 0.9 and 10 lie outside
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_scale_gets_lsq_gradient():
    x = torch.tensor([0.26, 5.0, -5.0])
    scale = torch.tensor(0.1, requires_grad=True)
    fake_quantize(x[:1], scale, torch.tensor(0.0), -8, 7).sum().backward()
    assert scale.grad.item() == pytest.approx(3.0 - 2.6, abs=1e-5)  # round(x/s) - x/s inside
    scale.grad = None
    fake_quantize(x[1:], scale, torch.tensor(0.0), -8, 7).sum().backward()
    assert scale.grad.item() == pytest.approx(7 + (-8), abs=1e-6)  # qmax - z and qmin - z outside


def test_per_channel_scales_are_per_channel():
    w = torch.randn(4, 16) * torch.tensor([0.01, 0.1, 1.0, 10.0])[:, None]
    q = FakeQuantizer(QuantSpec(8, symmetric=True, per_channel=True), w.shape, (0,), is_weight=True)
    q.observe(w)
    q.set_range()
    assert q.scale.shape == (4, 1)
    assert torch.allclose(q.scale.flatten(), w.abs().amax(1) / 127, rtol=1e-5)
    levels = q(w) / q.scale
    assert torch.allclose(levels, levels.round(), atol=1e-3)
    assert levels.abs().amax(1).tolist() == pytest.approx([127.0] * 4)  # every row uses its full range


def test_observers_minmax_and_moving_average():
    mm = FakeQuantizer(QuantSpec(8, symmetric=False, observer="minmax"))
    ema = FakeQuantizer(QuantSpec(8, symmetric=False, observer="moving_average"))
    for batch in (torch.tensor([-1.0, 2.0]), torch.tensor([-3.0, 1.0])):
        mm.observe(batch), ema.observe(batch)
    assert (mm.min_val.item(), mm.max_val.item()) == (-3.0, 2.0)
    assert ema.min_val.item() == pytest.approx(-1.2) and ema.max_val.item() == pytest.approx(1.9)
    mm.set_range()
    # affine: the range [-3, 2] spans the 255 steps, and 0 is a level
    assert mm.scale.item() == pytest.approx(5 / 255)
    assert mm(torch.tensor([0.0])).item() == 0.0


def test_learned_scales_receive_gradients_after_calibration():
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 2))
    quantize_(model, "w4a4")
    x = torch.randn(32, 8)
    calibrate(model, x, n_batches=2, batch_size=16)
    model(x).pow(2).sum().backward()
    scales = {n: p for n, p in model.named_parameters() if n.endswith("log_scale")}
    assert len(scales) == 4 and all(p.grad is not None and p.grad.abs().sum() > 0 for p in scales.values())
    weights = [p for n, p in model.named_parameters() if n.endswith("layer.weight")]
    assert all(p.grad is not None for p in weights)


def test_uncalibrated_model_refuses_to_run():
    model = quantize_(torch.nn.Sequential(torch.nn.Linear(4, 4)), "w8a8")
    with pytest.raises(NotCalibratedError, match=r"'0 input'.*calibrate\(model"):
        model(torch.randn(2, 4))


@pytest.mark.parametrize("bits", [1, 17, 0, 3.5, True])
def test_bit_widths_outside_2_to_16_are_refused(bits):
    with pytest.raises(ValueError, match=r"2\.\.16"):
        QuantSpec(bits)


def test_config_errors_name_the_fix():
    with pytest.raises(ValueError, match=r"'lstm'.*cannot quantize.*linear, conv, spectral, matmul"):
        QuantConfig(layers=("linear", "lstm"))
    with pytest.raises(ValueError, match="Did you mean 'w8a8'"):
        get_config("w8a9")
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="skip pattern 'head.*' matches no quantizable layer.*Quantizable layers: 0"):
        quantize_(model, get_config("w8a8").replace(skip=("head.*",)))
    quantize_(model, "w8a8")
    with pytest.raises(ValueError, match="already quantized"):
        quantize_(model, "w8a8")


def test_skip_and_layer_selection():
    model = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3), torch.nn.Flatten(), torch.nn.Linear(8, 3))
    quantize_(model, get_config("w8a8").replace(layers=("conv",)))
    assert type(model[0]).__name__ == "QuantConv" and isinstance(model[2], torch.nn.Linear)
    model = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3), torch.nn.Flatten(), torch.nn.Linear(8, 3))
    quantize_(model, get_config("w8a8").replace(skip=("2",)))
    assert type(model[0]).__name__ == "QuantConv" and isinstance(model[2], torch.nn.Linear)


def test_fixed_scales_follow_the_weights():
    layer = torch.nn.Linear(4, 3)
    model = quantize_(torch.nn.Sequential(layer), get_config("w8a32").replace(learn_scales=False))
    calibrate(model, torch.randn(4, 4), n_batches=1)
    with torch.no_grad():
        layer.weight.mul_(10)
    model(torch.randn(2, 4))
    assert torch.allclose(model[0].weight_quant.scale.flatten(), layer.weight.abs().amax(1) / 127, rtol=1e-5)
    assert not model[0].weight_quant.log_scale.requires_grad


def test_coordinate_channels_stay_float_and_out_of_the_input_scale():
    from torch import nn

    from lowprec.models import FNO, Transformer, mark_coordinate_input

    assert FNO((4,), hidden_channels=8).lifting.fc1.coordinate_channels == 1
    assert Transformer(dim=2, patch_size=2, embed_dim=8, depth=1, heads=2).patch_embed.coordinate_channels == 2
    torch.manual_seed(0)
    for layer, x in [
        (nn.Conv1d(3, 4, 2, stride=2), torch.cat([100 * torch.randn(5, 1, 8), torch.rand(5, 2, 8)], 1)),
        (nn.Linear(3, 4), torch.cat([100 * torch.randn(5, 7, 1), torch.rand(5, 7, 2)], -1)),
    ]:
        model = quantize_(nn.Sequential(mark_coordinate_input(layer, 2)), "w8a8")
        calibrate(model, x, n_batches=1, batch_size=5)
        wrapper = model[0]
        axis = 1 if isinstance(layer, nn.Conv1d) else -1
        data, coords = x.narrow(axis, 0, 1), x.narrow(axis, 1, 2)
        # the input grid spans the data only, and the coordinates' product is exact (float weights, float inputs)
        assert wrapper.input_quant.max_val.item() == pytest.approx(data.max().item())
        fq_data, fq_w = wrapper.input_quant(data), wrapper.weight_quant(wrapper.data_weight())
        if isinstance(layer, nn.Linear):
            expected = torch.nn.functional.linear(fq_data, fq_w, layer.bias) + coords @ layer.weight[:, 1:].T
        else:
            expected = torch.nn.functional.conv1d(fq_data, fq_w, layer.bias, stride=2) + torch.nn.functional.conv1d(
                coords, layer.weight[:, 1:], stride=2
            )
        torch.testing.assert_close(model(x), expected)
