import pytest
import torch
from torch import nn

from lowprec.models import FNO
from lowprec.precision import LossScaler, PrecisionOverflowError, first_nonfinite_module, get_policy


def small_fno():
    return FNO((4, 4), hidden_channels=8, n_layers=2)


def test_unscale_restores_the_true_gradients_of_spectral_weights():
    model = small_fno()
    x, y = torch.randn(2, 1, 12, 12), torch.randn(2, 1, 12, 12)
    (model(x) - y).pow(2).mean().backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    scaler = LossScaler(init_scale=1024.0)
    scaler.scale((model(x) - y).pow(2).mean()).backward()
    assert scaler.unscale_(model) == []
    for n, p in model.named_parameters():
        assert torch.allclose(p.grad, reference[n], rtol=1e-5, atol=1e-8), n
    spectral = [n for n, _ in model.named_parameters() if "spectral" in n]
    assert spectral  # the spectral weights were among them


def test_torch_gradscaler_also_works_because_weights_are_real():
    model = small_fno()
    opt = torch.optim.Adam(model.parameters())
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    before = [p.detach().clone() for p in model.parameters()]
    scaler.scale(model(torch.randn(2, 1, 12, 12)).pow(2).mean()).backward()
    scaler.step(opt)
    scaler.update()
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_nonfinite_gradients_are_named_and_the_scale_backs_off():
    model = small_fno()
    scaler = LossScaler(init_scale=8.0, growth_interval=2)
    model(torch.randn(1, 1, 12, 12)).sum().backward()
    target = "blocks.1.spectral.weight.weight"
    dict(model.named_parameters())[target].grad[0, 0, 0, 0, 0] = float("inf")
    assert scaler.unscale_(model) == [target]
    scaler.update(overflow=True)
    assert scaler.scale_value == 4.0
    scaler.update(overflow=False)
    scaler.update(overflow=False)
    assert scaler.scale_value == 8.0  # grows back after growth_interval clean steps


def test_scale_too_small_raises():
    scaler = LossScaler(init_scale=2.0**-14)
    with pytest.raises(PrecisionOverflowError, match="loss scale fell below"):
        scaler.update(overflow=True)


def test_disabled_scaler_is_the_identity_but_still_checks():
    scaler = LossScaler(enabled=False)
    loss = torch.tensor(3.0)
    assert scaler.scale(loss) is loss
    p = nn.Linear(2, 2)
    p.weight.grad = torch.full_like(p.weight, float("nan"))
    assert scaler.unscale_(p) == ["weight"]


def test_state_round_trips():
    a = LossScaler(init_scale=64.0)
    a.update(True)
    b = LossScaler()
    b.load_state_dict(a.state_dict())
    assert b.scale_value == 32.0


def test_first_nonfinite_module_names_the_layer():
    model = small_fno()
    with torch.no_grad():
        model.blocks[1].skip.weight.fill_(1e4)  # fp16 overflows in this 1x1 convolution
    x = torch.randn(2, 1, 12, 12) * 10
    with get_policy("amp"):
        found = first_nonfinite_module(model, x)
    assert found is not None and found[0].startswith("blocks.1"), found
    with get_policy("full"):
        assert first_nonfinite_module(model, x) is None
