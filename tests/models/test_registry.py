"""The model registry and FNOBlock's conv_module seam, each shown with a toy that plugs in."""

import pytest
import torch
from torch import nn

from lowprec.config import build_model as build_from_config
from lowprec.config import load_config, make_config
from lowprec.data import PDEDataset
from lowprec.models import (
    FNO,
    TFNO,
    FNOBlock,
    Normalized,
    available_models,
    build_model,
    register_model,
    registry,
)
from lowprec.spectral import SpectralConv


@pytest.fixture
def clean_registry():
    """Registrations made by a test are undone after it."""
    builders, aliases = dict(registry._BUILDERS), dict(registry._ALIASES)
    yield
    registry._BUILDERS.clear(), registry._BUILDERS.update(builders)
    registry._ALIASES.clear(), registry._ALIASES.update(aliases)


def test_builtin_models_are_registered():
    assert {"fno", "tfno", "unet", "transformer"} <= set(available_models())
    model = build_model("fno", n_modes=(4,), hidden_channels=8, n_layers=1)
    assert isinstance(model, FNO) and model(torch.randn(2, 1, 16)).shape == (2, 1, 16)
    assert isinstance(build_model("TFNO", n_modes=(4, 4)), TFNO)


def test_unknown_name_raises_one_error_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'fnoo'\. Did you mean 'fno'\? Registered models: fno, "):
        build_model("fnoo")
    with pytest.raises(ValueError, match="unknown model 'resnet'.*tfno, transformer, unet"):
        make_config({"model": "resnet"})


class ToyPointwise(nn.Module):
    """A model that names only the config settings it uses."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 4):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden_channels, 1), nn.GELU(), nn.Conv2d(hidden_channels, out_channels, 1)
        )
        self.hidden_channels = hidden_channels

    def forward(self, x):
        return self.net(x)


def test_a_registered_toy_builds_through_the_config_path(tmp_path, clean_registry):
    register_model("toy-pointwise", "toy_alias")(ToyPointwise)
    assert "toy_pointwise" in available_models()
    path = tmp_path / "run.yaml"
    # Hyphen in the registered name, underscore in the file: the same model.
    path.write_text("model:\n  model: toy_pointwise\n  hidden_channels: 6\n  n_modes: [99]\n")
    cfg = load_config(str(path))
    data = PDEDataset(torch.randn(4, 2, 8, 8), torch.randn(4, 3, 8, 8))
    model = build_from_config(cfg.model, data)
    assert isinstance(model, Normalized) and isinstance(model.model, ToyPointwise)
    assert model.model.hidden_channels == 6  # n_modes, dim... are not the toy's: not passed
    assert model(data.x).shape == (4, 3, 8, 8)
    assert isinstance(build_from_config(make_config({"model": "Toy-Alias"}).model, data, normalize=False), ToyPointwise)


def test_registering_a_taken_name_raises(clean_registry):
    with pytest.raises(ValueError, match="'fno' is already registered"):
        register_model("FNO")(ToyPointwise)
    register_model("toy")(ToyPointwise)
    register_model("toy")(ToyPointwise)  # the same builder again: a no-op


class ToySpectral(nn.Module):
    """SpectralConv's constructor signature; a real channel mixing of the whole spectrum (identity at start)."""

    def __init__(self, in_channels, out_channels, n_modes, factorization="dense", rank=1.0):
        super().__init__()
        self.n_modes = tuple(n_modes)
        self.scale = nn.Parameter(torch.eye(out_channels, in_channels))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        spectrum = torch.fft.rfftn(x, dim=tuple(range(2, x.ndim)))
        mixed = torch.einsum("oi,bi...->bo...", self.scale.to(spectrum.dtype), spectrum)
        return torch.fft.irfftn(mixed, s=x.shape[2:], dim=tuple(range(2, x.ndim)))


def test_fno_takes_its_spectral_layer():
    block = FNOBlock(4, (3, 3), 0.5, "dense", 1.0, conv_module=ToySpectral)
    assert isinstance(block.spectral, ToySpectral)
    torch.manual_seed(0)
    model = FNO((3, 3), hidden_channels=4, n_layers=2, conv_module=ToySpectral)
    x = torch.randn(2, 1, 8, 8)
    assert model(x).shape == (2, 1, 8, 8)
    assert [b.spectral.calls for b in model.blocks] == [1, 1]
    plain = FNO((3, 3), hidden_channels=4, n_layers=2)
    assert all(isinstance(b.spectral, SpectralConv) for b in plain.blocks)
    # The toy starts as the identity, so the block computes MLP(gelu(v + W v)) + v.
    v = torch.randn(2, 4, 8, 8)
    b = model.blocks[0]
    expected = b.mlp(torch.nn.functional.gelu(v + b.skip(v))) + v
    torch.testing.assert_close(b(v), expected, rtol=1e-5, atol=1e-5)
