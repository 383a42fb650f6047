"""Activation memory: the fused GELU + pointwise layer, per-stage recomputation, the saved-tensor report.

References: the plain expressions the fused code replaces (``layer(F.gelu(y))`` and the
FNO written out without fusion), and the model without recomputation. Memory is
counted by :class:`SavedTensorMeter`, never timed.
"""

import pytest
import torch
import torch.nn.functional as F

from lowprec.bench.memory import saved_tensor_report
from lowprec.models import FNO, TFNO
from lowprec.models.layers import gelu_pointwise, pointwise
from lowprec.precision import get_policy
from lowprec.train.metrics import SavedTensorMeter

POLICIES = ["full", "amp", "half", "mixed", "bf16", "fp16"]


def _grads(module, *inputs):
    return [p.grad.clone() for p in module.parameters()] + [x.grad.clone() for x in inputs]


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("policy", ["full", "bf16", "mixed"])
def test_gelu_pointwise_equals_plain_expression(dim, bias, policy):
    torch.manual_seed(0)
    layer = pointwise(6, 5, dim, bias=bias)
    y = torch.randn(3, 6, *(7,) * dim, requires_grad=True)
    grad = torch.randn(3, 5, *(7,) * dim)
    outs, grads = [], []
    for fused in (False, True):
        layer.zero_grad()
        y.grad = None
        with get_policy(policy):
            out = gelu_pointwise(y, layer) if fused else layer(F.gelu(y))
        out.backward(grad.to(out.dtype))
        outs.append(out)
        grads.append(_grads(layer, y))
    assert outs[0].dtype == outs[1].dtype
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=0)
    for fused_grad, plain_grad in zip(grads[1], grads[0]):
        torch.testing.assert_close(fused_grad, plain_grad, rtol=1e-6, atol=1e-7)


def test_gelu_pointwise_keeps_only_its_input():
    layer = pointwise(8, 8, 2)
    y = torch.randn(2, 8, 16, 16, requires_grad=True)
    with SavedTensorMeter() as fused:
        gelu_pointwise(y, layer)
    with SavedTensorMeter() as plain:
        layer(F.gelu(y))
    weights = sum(p.numel() * 4 for p in layer.parameters() if p.ndim > 1)
    assert fused.bytes == y.numel() * 4 + weights
    assert plain.bytes == 2 * y.numel() * 4 + weights


def test_gelu_pointwise_calls_observed_layers():
    # bops, the overflow search and int8 calibration hook layers: they must see the call.
    layer = pointwise(4, 4, 1)
    seen = []
    layer.register_forward_hook(lambda m, a, o: seen.append(o.shape))
    gelu_pointwise(torch.randn(2, 4, 5, requires_grad=True), layer)
    assert seen == [torch.Size([2, 4, 5])]


def _plain_fno_forward(model, x):
    """The FNO as written before the fusion: every GELU a separate op, blocks return activations."""
    x = model.lifting.fc2(F.gelu(model.lifting.fc1(model.embedding(x))))
    grid = x.shape[2:]
    x = model.padding.pad(x)
    for k, block in enumerate(model.blocks):
        y = block.spectral(x) + block.skip(x)
        y = block.mlp.fc2(F.gelu(block.mlp.fc1(F.gelu(y)))) + x
        x = F.gelu(y) if k < len(model.blocks) - 1 else y
    x = model.padding.unpad(x, grid)
    return model.projection.fc2(F.gelu(model.projection.fc1(x)))


@pytest.mark.parametrize("policy", ["full", "mixed", "bf16"])
def test_fno_equals_its_unfused_form(policy):
    torch.manual_seed(0)
    model = FNO((6, 6), hidden_channels=8, n_layers=3, domain_padding=0.1)
    x = torch.randn(2, 1, 16, 16)
    results = []
    for forward in (_plain_fno_forward, lambda m, v: m(v)):
        model.zero_grad()
        with get_policy(policy):
            out = forward(model, x)
        out.float().square().mean().backward()
        results.append((out, _grads(model)))
    (plain, plain_grads), (fused, fused_grads) = results
    torch.testing.assert_close(fused, plain, rtol=0, atol=0)
    # The fused backward adds a block input's two gradients after GELU's derivative rather
    # than before: the same sum in another order, so equal to the compute dtype's rounding.
    eps = {"full": 1e-6, "mixed": 2e-3, "bf16": 1e-2}[policy]
    for a, b in zip(fused_grads, plain_grads):
        torch.testing.assert_close(a, b, rtol=0, atol=eps * b.abs().max().item())


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("model_cls", [FNO, TFNO])
def test_recompute_gives_the_same_gradients_with_less_memory(policy, model_cls):
    x = torch.randn(2, 1, 24, 24)
    saved, grads = [], []
    for recompute in (False, True):
        torch.manual_seed(0)
        model = model_cls((8, 8), hidden_channels=16, n_layers=3, recompute=recompute)
        with get_policy(policy), SavedTensorMeter() as meter:
            loss = model(x).float().square().mean()
        loss.backward()  # outside the policy: the recomputation must re-enter it
        saved.append(meter.bytes)
        grads.append(_grads(model))
    for a, b in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert saved[1] < 0.4 * saved[0]


def test_recompute_without_grad_is_a_plain_call():
    torch.manual_seed(0)
    model = FNO((4, 4), hidden_channels=8, n_layers=2, recompute=True)
    x = torch.randn(1, 1, 12, 12)
    with torch.no_grad():
        out = model(x)
    model.recompute = False
    with torch.no_grad():
        torch.testing.assert_close(model(x), out, rtol=0, atol=0)


@pytest.mark.parametrize("recompute", [False, True])
def test_report_total_equals_the_meter(recompute):
    torch.manual_seed(0)
    model = FNO((6, 6), hidden_channels=8, n_layers=2, recompute=recompute)
    x = torch.randn(2, 1, 16, 16)
    policy = get_policy("bf16")

    def forward():
        return model(x).float().square().mean()

    report = saved_tensor_report(forward, model, policy)
    with policy, SavedTensorMeter() as meter:
        forward()
    assert report.total_bytes == meter.bytes > 0
    assert sum(report.by_module().values()) == report.total_bytes
    if not recompute:
        assert {"lifting", "projection", "blocks.0.mlp", "blocks.1.spectral"} <= set(report.by_module())
    assert "total" in report.table()


@pytest.mark.parametrize("policy", ["half", "mixed", "bf16", "fp16", "mixed_bf16"])
def test_low_precision_policies_store_every_activation_in_two_bytes(policy):
    # Store low: under a reduced policy the only 4-byte activation autograd keeps is the
    # fp32 loss's input; 4-byte parameters and transform matrices exist anyway.
    torch.manual_seed(0)
    model = FNO((6, 6), hidden_channels=8, n_layers=2)
    x = torch.randn(2, 1, 32, 32)
    report = saved_tensor_report(lambda: model(x).float().square().mean(), model, get_policy(policy))
    wide = [r for r in report.rows if r["dtype"] == "float32" and r["kind"] == "activation"]
    assert [r["module"] for r in wide] == ["<outside>"], wide
    assert any(r["kind"] == "parameter" for r in report.rows)
