"""Low precision end to end: activations stay bf16/fp16 between layers, large grids stay finite, compile works."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from lowprec.models import FNO, TFNO
from lowprec.precision import LossScaler, get_policy


class CastCounter(TorchDispatchMode):
    """Records every dtype conversion (aten._to_copy) with the number of elements it copied."""

    def __init__(self):
        super().__init__()
        self.casts = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten._to_copy.default and args[0].dtype != out.dtype:
            self.casts.append((args[0].dtype, out.dtype, args[0].numel()))
        return out


@pytest.mark.parametrize("policy,build", [("bf16", FNO), ("fp16", TFNO), ("half", FNO)])
def test_no_activation_is_cast_between_layers(policy, build):
    policy = get_policy(policy)
    width, batch, grid = 8, 2, (24, 20)  # 24 x 20: no power of two on one axis
    model = build((4, 4), hidden_channels=width, n_layers=3)
    outputs = {}

    def record(name):
        def hook(module, args, out):
            outputs[name] = out.dtype

        return hook

    for name, module in model.blocks.named_modules():
        module.register_forward_hook(record(name))
    x = torch.randn(batch, 1, *grid)
    with CastCounter() as counter:
        with policy:
            y = model(x)
        F.mse_loss(y.float(), torch.zeros_like(x)).backward()
    assert set(outputs.values()) == {policy.autocast_dtype}, outputs
    # The smallest activation inside the blocks is the channel MLP's hidden layer (width/2
    # channels). Nothing that size is ever converted: only weights (small), the input on
    # its way into the lifting layer, and the output on its way into the fp32 loss.
    activation = batch * (width // 2) * grid[0] * grid[1]
    big = [c for c in counter.casts if c[2] >= activation]
    assert not big, big
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())  # fp32 master weights


@pytest.mark.parametrize("policy", ["bf16", "fp16"])
@pytest.mark.parametrize("n", [512, pytest.param(1024, marks=pytest.mark.slow)])
def test_low_precision_policies_train_without_nan_at_large_grids(policy, n):
    # Large grids, where an unnormalized fp16 FFT overflows: the end-to-end low precision policies must stay finite.
    policy = get_policy(policy)
    torch.manual_seed(0)
    model = FNO((8, 8), hidden_channels=4, n_layers=1, lifting_ratio=1, projection_ratio=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = LossScaler(enabled=policy.loss_scaling)
    x = torch.randn(1, 1, n, n)
    y = torch.sin(x)
    for _ in range(2):
        opt.zero_grad()
        with policy:
            out = model(x)
        loss = F.mse_loss(out.float(), y)
        scaler.scale(loss).backward()
        assert torch.isfinite(loss) and scaler.unscale_(model) == []
        opt.step()
        scaler.update(False)


def test_dft_model_traces_into_one_graph_that_follows_the_policy():
    # fullgraph=True fails on any graph break; the "eager" backend stops at Dynamo's trace,
    # so this checks traceability in seconds (Inductor's code generation is the slow test).
    # Dynamo guards on the active policy: switching it recompiles rather than reusing dtypes.
    torch._dynamo.reset()
    model = TFNO((4, 4), hidden_channels=4, n_layers=1, rank=0.5)
    compiled = torch.compile(model, backend="eager", fullgraph=True, dynamic=False)
    x = torch.randn(2, 1, 12, 12)
    for name in ("full_dft", "bf16"):
        with get_policy(name):
            expected = model(x)
            for _ in range(2):  # the second call reads the DFT matrices from the cache
                assert torch.equal(compiled(x), expected)


@pytest.mark.slow
def test_inductor_compiles_the_dft_model_and_matches_eager():
    torch._dynamo.reset()
    model = FNO((4, 4), hidden_channels=8, n_layers=2)
    compiled = torch.compile(model, fullgraph=True, dynamic=False)
    x = torch.randn(2, 1, 16, 16)
    for name in ("full_dft", "bf16"):
        with get_policy(name):
            expected = model(x)
            got = compiled(x)
        tol = 1e-5 if name == "full_dft" else 2e-2
        assert ((got.float() - expected.float()).norm() / expected.float().norm()) < tol
        got.float().sum().backward()
