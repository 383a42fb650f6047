"""Spectral layers: complex weights quantized part by part, activations around the transforms, drift guard."""

import pytest
import torch

from lowprec.precision import get_policy
from lowprec.quant import QuantConfig, QuantSpec, QuantSpectralConv, calibrate, quantize_
from lowprec.spectral import SpectralConv


def _policies():
    out = [get_policy("full")]
    if "backend" in get_policy("full").to_dict():  # the FFT/DFT backend choice, where the tree has it
        out += [get_policy("full").replace(backend="dft"), get_policy("full").replace(backend="fft")]
    return out


@pytest.mark.parametrize("policy", _policies(), ids=lambda p: p.to_dict().get("backend", "fft"))
@pytest.mark.parametrize(
    "factorization,modes", [("dense", (6,)), ("dense", (6, 4)), ("tucker", (6, 4)), ("cp", (4, 4, 4))]
)
def test_unquantized_wrapper_runs_the_layer_exactly(factorization, modes, policy):
    # Guard against drift: the wrapper re-runs SpectralConv's steps; with no quantizers it must agree.
    layer = SpectralConv(3, 5, modes, factorization=factorization, rank=0.5)
    x = torch.randn(2, 3, *[n + 5 for n in modes])
    wrapper = QuantSpectralConv(layer, QuantConfig(weight=None, activation=None))
    with policy:
        assert torch.equal(wrapper(x), layer(x))


def test_complex_weights_are_quantized_part_by_part():
    layer = SpectralConv(3, 4, (6, 6))
    with torch.no_grad():
        layer.weight.weight[..., 1] *= 20  # imaginary parts 20x wider than real parts
    config = QuantConfig(weight=QuantSpec(4, symmetric=True, per_channel=True), activation=None)
    wrapper = QuantSpectralConv(layer, config)
    calibrate(wrapper, torch.randn(2, 3, 16, 16), n_batches=1)
    quant = wrapper.weight_quants[0]
    scale = quant.scale
    assert scale.shape == (1, 4, 1, 1, 2)  # per output channel and per [re, im] part
    assert (scale[..., 1] > 10 * scale[..., 0]).all()
    ((_, w),) = wrapper.quantized_factors()
    for part in (0, 1):
        levels = w[..., part] / scale[..., part]
        assert torch.allclose(levels, levels.round(), atol=1e-4)
        assert levels.abs().max() <= 7 + 1e-4
    # each part uses its whole 4-bit range: a shared scale would leave the real parts near 0
    assert (w[..., 0] / scale[..., 0]).abs().amax().item() == pytest.approx(7.0)


def test_factorized_weights_and_activations_are_quantized():
    layer = SpectralConv(4, 4, (6, 6), factorization="tucker", rank=0.5)
    wrapper = QuantSpectralConv(
        layer, QuantConfig(weight=QuantSpec(8, per_channel=True), activation=QuantSpec(8, symmetric=False))
    )
    x = torch.randn(4, 4, 12, 12)
    calibrate(wrapper, x, n_batches=1)
    # one quantizer per factor; only the factor with the output-channel axis has per-channel scales
    shapes = [tuple(q.scale.shape) for q in wrapper.weight_quants]
    assert len(shapes) == 5 and shapes[2][0] == 4 and all(s[-1] == 2 for s in shapes)
    # every activation point is on its grid: check the output
    y = wrapper(x)
    out_q = wrapper.output_quant
    levels = y / out_q.scale + out_q.zero_point
    assert torch.allclose(levels, levels.round(), atol=1e-3)
    rel = ((y - layer(x)).norm() / layer(x).norm()).item()
    assert 1e-5 < rel < 0.05
    y.sum().backward()
    assert all(q.log_scale.grad is not None for q in wrapper.weight_quants)


def test_fno_quantizes_every_spectral_layer_and_16_bits_is_close():
    from lowprec.models import FNO

    model = FNO((6, 6), hidden_channels=8, n_layers=2)
    x = torch.randn(4, 1, 16, 16)
    ref = model(x)
    quantize_(model, QuantConfig(weight=QuantSpec(16, per_channel=True), activation=QuantSpec(16, symmetric=False)))
    assert sum(isinstance(m, QuantSpectralConv) for m in model.modules()) == 2
    calibrate(model, x, n_batches=1)
    assert ((model(x) - ref).norm() / ref.norm()) < 1e-3


def test_spectra_get_a_scale_per_mode():
    layer = SpectralConv(2, 2, (6, 4))
    wrapper = QuantSpectralConv(layer, QuantConfig(weight=None, activation=QuantSpec(8, symmetric=False)))
    x = torch.randn(4, 2, 16, 16) + 3.0  # a large mean: mode 0 is far bigger than the others
    calibrate(wrapper, x, n_batches=1)
    scale = wrapper.spectrum_quant.scale
    assert scale.shape == (1, 1, 6, 3, 1) and wrapper.mixed_quant.scale.shape == (1, 1, 6, 3, 1)
    assert scale[0, 0, 0, 0, 0] > 10 * scale[0, 0, 1, 1, 0]
    assert wrapper.input_quant.scale.ndim == 0 and wrapper.output_quant.scale.ndim == 0
