"""GINO: registry, every precision policy against an fp64 copy, training, quantization and BOPs."""

import copy
import math

import pytest
import torch

from lowprec.data import DictDataset
from lowprec.models import GINO, available_models, build_model
from lowprec.precision import PRESETS, get_policy
from lowprec.quant import QuantLinear, bops, calibrate, quantize_
from lowprec.train import TrainConfig, Trainer

R = 8


def _sphere_points(n, radius=0.6):
    k = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1 - 2 * k / n
    phi = math.pi * (1 + 5**0.5) * k
    rho = (1 - z * z).sqrt()
    return radius * torch.stack([rho * torch.cos(phi), rho * torch.sin(phi), z], -1)


def _inputs(b=2, n=200):
    torch.manual_seed(0)
    coords = torch.stack(
        [_sphere_points(n, 0.5 + 0.05 * i) * torch.tensor([1.2, 0.9, 0.8], dtype=torch.float64) for i in range(b)]
    ).float()
    axis = torch.linspace(-1, 1, R)
    g = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"))
    latent = torch.stack([g.norm(dim=0, keepdim=True) - (0.5 + 0.05 * i) for i in range(b)])
    return coords, latent


def _model(**kw):
    torch.manual_seed(0)
    return GINO(n_modes=4, latent_resolution=R, hidden_channels=8, n_layers=2, gno_channels=8, gno_hidden=(16,), **kw)


def test_registered_and_shapes():
    assert "gino" in available_models()
    coords, latent = _inputs()
    model = build_model("gino", n_modes=4, latent_resolution=R, hidden_channels=8, n_layers=2, gno_channels=8)
    assert isinstance(model, GINO)
    assert model(coords, latent).shape == (2, 1, 200)
    queries = torch.rand(2, 50, 3) - 0.5
    assert model(coords, latent, queries=queries).shape == (2, 1, 50)
    with_x = _model(in_channels=3)
    assert with_x(coords, latent, x=torch.randn(2, 3, 200)).shape == (2, 1, 200)


def _reference_policy(policy):
    """The policy's function (stabilizer, backend) computed in fp64 throughout."""
    return policy.replace(
        name=f"{policy.name}_fp64", autocast_dtype=None, transform_dtype=torch.float64, contract_dtype=torch.float64
    )


# Relative L2 error of each policy against the fp64 model computing the same function.
TOLERANCE = {torch.float16: 2e-3, torch.bfloat16: 2e-2, None: 1e-6}


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_policy_against_fp64_copy(name):
    policy = get_policy(name)
    coords, latent = _inputs()
    model = _model()
    reference = copy.deepcopy(model).double()
    with _reference_policy(policy):
        want = reference(coords.double(), latent.double())
    with policy:
        got = model(coords, latent)
    low = policy.autocast_dtype or (policy.contract_dtype if policy.is_reduced else None)
    err = ((got.double() - want).norm() / want.norm()).item()
    print(f"{name}: relative L2 vs fp64 {err:.2e}")
    assert err < TOLERANCE[low], (name, err)
    got.float().square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def _dataset(n=8):
    coords, latent = _inputs(n, 120)
    y = (coords[..., 0] + 0.5 * coords[..., 2] ** 2).unsqueeze(1)  # a smooth field on each body
    return DictDataset({"coords": coords, "latent": latent, "y": y})


@pytest.mark.parametrize("precision", ["full", "bf16", "mixed"])
def test_training_reduces_the_loss(precision):
    data = _dataset()
    model = _model()
    cfg = TrainConfig(
        epochs=10, batch_size=4, lr=1e-2, scheduler="none", precision=precision, progress=False, device="cpu"
    )
    history = Trainer(model, data, {"test": data}, cfg).fit()
    assert history[-1]["test_l2"] < 0.5 * history[0]["test_l2"], history


def test_quantize_wraps_kernel_mlps_and_bops_counts_pairs():
    data = _dataset(4)
    model = _model()
    inputs = {"coords": data.fields["coords"][:1], "latent": data.fields["latent"][:1]}
    float_cost = bops(model, inputs=inputs)
    quantize_(model, "w8a8")
    for gno in (model.encoder, model.decoder):
        assert all(isinstance(layer, QuantLinear) for layer in gno.kernel.layers)
    calibrate(model, data, n_batches=1, batch_size=4)
    assert torch.isfinite(model(**inputs)).all()
    from lowprec.geometry import radius_neighbors

    pairs = radius_neighbors(inputs["coords"][0], model.grid, model.gno_radius).n_pairs
    first = next(r for r in float_cost.layers if r.name == "encoder.kernel.layers.0")
    assert first.macs == pairs * 6 * 16  # one kernel evaluation per pair: [y, x] -> 16
    quant_cost = bops(model, inputs=inputs)
    row = {r.name: r for r in quant_cost.layers}["encoder.kernel.layers.0"]
    assert (row.bits_a, row.bits_b) == (8, 8) and quant_cost.bops < float_cost.bops
    with pytest.raises(ValueError, match="not both or neither"):
        bops(model)


def test_bad_inputs_name_the_fix():
    model = _model()
    coords, latent = _inputs()
    with pytest.raises(ValueError, match="latent must be"):
        model(coords, latent[:, :, :4])
    with pytest.raises(ValueError, match="batch axis"):
        model(coords[0], latent)
    with pytest.raises(ValueError, match="scale the bodies"):
        model(coords * 3, latent)
    with pytest.raises(ValueError, match="in_channels=3"):
        _model(in_channels=3)(coords, latent)
    queries = torch.full((2, 3, 3), 1.9)
    queries[:, 0] = 0.0
    with pytest.warns(RuntimeWarning, match="2 of 3 query points have no latent node"):
        out = model(coords, latent, queries=queries)
    assert torch.isfinite(out).all()


def test_config_builds_gino_from_dict_data():
    from lowprec.config import ModelConfig
    from lowprec.config import build_model as build_from_config

    data = _dataset(2)
    model = build_from_config(ModelConfig(model="gino", n_modes=(4,), hidden_channels=8, n_layers=2), data)
    assert isinstance(model, GINO) and model.latent_resolution == R and model.latent_channels == 1
    assert model(**{k: v for k, v in data.batch(slice(0, 2)).items() if k != "y"}).shape == data.y.shape


@pytest.mark.parametrize("name", ["mixed", "bf16"])
def test_recomputed_chunks_give_the_same_gradients_under_autocast(name):
    coords, latent = _inputs()
    grads = []
    for chunk in (1 << 20, 300):  # one chunk (activations kept) / many (recomputed in backward)
        model = _model(chunk_size=chunk)
        with get_policy(name):
            out = model(coords, latent)
        out.float().square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=1e-3 * grads[0].abs().max().item())
