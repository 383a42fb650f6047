"""The spectral-layer protocol: a toy layer that implements it is quantized and counted, no quant code changed."""

import torch
from torch import nn

from lowprec.models import FNO
from lowprec.quant import (
    QuantSpectralConv,
    bops,
    bypass,
    calibrate,
    quantize_,
    quantizers,
)
from lowprec.spectral import SpectralConv, SpectralLayer, is_spectral_layer


class ToyCosineLayer(nn.Module):
    """1D spectral layer on torch.fft with a dense weight (in, out, modes, 2); nothing from lowprec.spectral.

    Its transform cost is a naive DFT's, N x modes x 2 real MACs per field, labelled "naive".
    """

    def __init__(self, in_channels, out_channels, n_modes, factorization="dense", rank=1.0):
        super().__init__()
        self.in_channels, self.out_channels, self.modes = in_channels, out_channels, n_modes[0]
        self.weight = nn.Parameter(torch.randn(in_channels, out_channels, self.modes, 2) / in_channels)
        self.seen_factors = None

    @property
    def spectrum_shape(self):
        return (self.modes,)

    def weight_factors(self):
        return [("iox", self.weight)]

    def forward(self, x, factors=None, tap=None):
        tap = tap or (lambda stage, t: t)
        factors = factors or self.weight_factors()
        self.seen_factors = [t.detach().clone() for _, t in factors]
        h = tap("input", x)
        spectrum = tap("spectrum", torch.view_as_real(torch.fft.rfft(h)[..., : self.modes]))
        w = torch.view_as_complex(factors[0][1].contiguous())
        mixed = torch.einsum("bix,iox->box", torch.view_as_complex(spectrum.contiguous()), w)
        mixed = tap("mixed", torch.view_as_real(mixed))
        return tap("output", torch.fft.irfft(torch.view_as_complex(mixed.contiguous()), n=x.shape[-1]))

    def transform_macs(self, grid, inverse, policy, dtype, device):
        return grid[-1] * self.modes * 2, "naive"

    def mixing_macs(self, batch):
        return 4 * batch * self.in_channels * self.out_channels * self.modes, "toy"


def test_spectral_conv_and_the_toy_satisfy_the_protocol():
    assert isinstance(SpectralConv(2, 3, (4, 4)), SpectralLayer)
    assert is_spectral_layer(ToyCosineLayer(2, 3, (4,)))
    assert not is_spectral_layer(nn.Conv1d(2, 3, 1))


def test_a_toy_spectral_layer_is_quantized_by_quantize_():
    torch.manual_seed(0)
    model = nn.Sequential(ToyCosineLayer(3, 4, (6,)))
    x = torch.randn(16, 3, 32)
    reference = model(x)
    quantize_(model, "w8a8")
    wrapper = model[0]
    assert isinstance(wrapper, QuantSpectralConv) and isinstance(wrapper.layer, ToyCosineLayer)
    labels = sorted(q.label for q in quantizers(model))
    assert labels == ["0 input", "0 mixed spectrum", "0 output", "0 spectrum", "0 weight factor 0 (iox)"]
    # one scale per kept mode for the spectra, per output channel and [re, im] for the weight
    assert wrapper.spectrum_quant.log_scale.shape == (1, 1, 6, 1)
    assert wrapper.weight_quants[0].log_scale.shape == (1, 4, 1, 2)
    calibrate(model, x, n_batches=1, batch_size=16)
    with bypass(model):
        torch.testing.assert_close(model(x), reference)  # quantizers off: the toy's own output
    out = model(x)
    err = (out - reference).norm() / reference.norm()
    assert 0 < err < 0.05
    # The weight the toy received lies on 8-bit grids: at most 255 levels per (output channel, re/im).
    w = wrapper.layer.seen_factors[0]
    for o in range(4):
        for part in range(2):
            assert w[:, o, :, part].unique().numel() <= 255
    scale = wrapper.weight_quants[0].scale[0, :, 0, :]  # (out, 2)
    levels = w / scale[None, :, None, :]
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-3)


def test_a_toy_spectral_layer_is_counted_by_bops():
    model = nn.Sequential(ToyCosineLayer(3, 4, (6,)))
    report = bops(model, (2, 3, 32), "w8a8")
    rows = {r.name: r for r in report.layers}
    assert list(rows) == ["0.forward_naive", "0.mixing", "0.inverse_naive"]
    assert rows["0.forward_naive"].macs == 2 * 3 * (32 * 6 * 2)  # batch x in fields x the toy's count
    assert rows["0.inverse_naive"].macs == 2 * 4 * (32 * 6 * 2)
    assert (rows["0.mixing"].macs, rows["0.mixing"].note) == (4 * 2 * 3 * 4 * 6, "toy")
    assert (rows["0.mixing"].bits_a, rows["0.mixing"].bits_b) == (8, 8)
    assert (rows["0.forward_naive"].bits_a, rows["0.forward_naive"].bits_b) == (8, 16)
    quantize_(model, "w4a8")
    assert bops(model, (2, 3, 32)).bops == bops(nn.Sequential(ToyCosineLayer(3, 4, (6,))), (2, 3, 32), "w4a8").bops


def test_the_toy_plugs_into_fno_and_the_whole_model_quantizes():
    torch.manual_seed(0)
    model = FNO((6,), hidden_channels=4, n_layers=2, conv_module=ToyCosineLayer)
    x = torch.randn(8, 1, 32)
    quantize_(model, "w8a8")
    assert [type(b.spectral) for b in model.blocks] == [QuantSpectralConv, QuantSpectralConv]
    calibrate(model, x, n_batches=1, batch_size=8)
    assert torch.isfinite(model(x)).all()
    kinds = {r.kind for r in bops(model, (1, 1, 32)).layers}
    assert kinds == {"conv", "transform", "spectral"}
