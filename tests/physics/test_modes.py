"""The training modes keep the weights, the optimizer and the compute in the dtypes they claim (checked by dtype)."""

from collections import defaultdict

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lowprec.physics import (
    Burgers,
    BurgersInverse,
    Compute,
    PhysicsTrainConfig,
    WeightCopies,
    get_mode,
    stalled_update_share,
    train,
)

F16, F32, BF16 = torch.float16, torch.float32, torch.bfloat16
SMALL = dict(n_domain=64, n_boundary=16, n_initial=16, nx_ref=32, nt_ref=10)


class OpDtypes(TorchDispatchMode):
    """Record the dtype of every floating tensor each aten op returns."""

    def __init__(self):
        super().__init__()
        self.seen = defaultdict(set)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                self.seen[func.overloadpacket.__name__].add(t.dtype)
        return out


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown training mode 'fp8'.*fp32, fp16, mixed, bf16"):
        get_mode("fp8")
    with pytest.raises(ValueError, match="Did you mean 'mixed'"):
        get_mode("mixd")


@pytest.mark.parametrize(
    "name, master, compute", [("fp32", F32, F32), ("fp16", F16, F16), ("mixed", F32, F16), ("bf16", F32, BF16)]
)
def test_weights_optimizer_and_gradients_dtypes_after_training(name, master, compute):
    r = train(Burgers(**SMALL), name, PhysicsTrainConfig(steps=3, measure_memory=False))
    assert {p.dtype for p in r.master.parameters()} == {master}
    assert {p.dtype for p in r.working.parameters()} == {compute}
    assert (r.working is r.master) == (master == compute)
    moments = {v.dtype for s in r.optimizer.state.values() for k, v in s.items() if k.startswith("exp_avg")}
    assert moments == {master}  # Adam's moments live with the master weights
    assert {p.grad.dtype for p in r.master.parameters()} == {master}
    assert {p.grad.dtype for p in r.working.parameters()} == {compute}  # the backward pass ran in compute dtype


def test_mixed_mode_computes_forward_derivatives_and_backward_in_fp16():
    prob = Burgers(**SMALL)
    weights = WeightCopies(prob.build_model(0), get_mode("mixed"))
    batch = prob.training_data(0)
    weights.sync()
    with OpDtypes() as rec:
        terms = prob.loss_terms(Compute(weights.working, F16), batch)
        sum(terms.values()).backward()
    # tanh and its derivatives (first, second and the backward of both) run in fp32 (activation_dtype),
    # their results are rounded back to fp16
    for op in ("tanh", "tanh_backward"):
        assert rec.seen[op] == {F32}, (op, rec.seen[op])
    # the elementwise residual arithmetic runs in fp16
    assert F16 in rec.seen["mul"] and F16 in rec.seen["add"]
    # the loss terms are summed in fp32; the gradients of the working copy are fp16
    assert all(v.dtype == F32 for v in terms.values())
    assert {p.grad.dtype for p in weights.working.parameters()} == {F16}


def test_fp32_activations_keep_the_derivative_of_a_saturated_unit():
    """u = tanh(4 x): u'(1) = 4 (1 - tanh(4)^2) = 5.37e-3. With tanh in fp16, 1 - t^2 is formed from an
    output rounded to 4.9e-4 near 1, and the derivative is off by tens of percent; in fp32 it is right
    to the fp16 rounding of the result."""
    from lowprec.models.pinn import MLP

    exact = 4 * (1 - torch.tanh(torch.tensor(4.0, dtype=torch.float64)) ** 2)
    errors = {}
    for name in ("fp16", "mixed"):
        net = MLP((1, 1, 1))
        with torch.no_grad():
            net.layers[0].weight.fill_(4.0), net.layers[1].weight.fill_(1.0)
        weights = WeightCopies(net, get_mode(name))
        weights.sync()
        x = torch.ones(1, 1, dtype=F16, requires_grad=True)
        (du,) = torch.autograd.grad(weights.working(x).sum(), x)
        errors[name] = abs(du.double().item() - exact.item()) / exact.item()
    assert errors["mixed"] < 1e-3 < 0.1 < errors["fp16"], errors


@pytest.mark.parametrize("name, compute", [("mixed", F16), ("bf16", BF16)])
def test_scalar_coefficient_keeps_fp32_in_the_working_copy(name, compute):
    """An inverse problem's coefficient is one number: a half-precision copy would put the recovered
    value on a grid (fp16: 0.25 % for the viscosity, bf16: 4 %) while the layers still compute in half."""
    prob = BurgersInverse(**SMALL, n_observations=16, nu_init=0.0123)
    weights = WeightCopies(prob.build_model(0), get_mode(name))
    weights.sync()
    assert weights.working.a.dtype == F32 and weights.working.a.ndim == 0
    assert float(weights.working.coefficient().detach()) == pytest.approx(0.0123, rel=1e-6)
    assert {p.dtype for p in weights.working.parameters() if p.ndim > 0} == {compute}
    with OpDtypes() as rec:
        terms = prob.loss_terms(Compute(weights.working, compute), prob.training_data(0))
        sum(terms.values()).backward()
    assert rec.seen["tanh"] == {get_mode(name).activation_dtype or compute}
    assert weights.working.a.grad.dtype == F32 and torch.isfinite(weights.working.a.grad)
    weights.grads_to_master()
    assert weights.master.a.grad is not None


def test_master_weights_accumulate_updates_fp16_weights_would_lose():
    """The point of fp32 masters: a run of small updates moves mixed's fp32 master (and, after sync, its
    fp16 working copy), while pure fp16's weights lose every one (each is below half an fp16 ulp of 1.0)."""

    def run(name):
        net = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.ones_(net.weight)
        copies = WeightCopies(net, get_mode(name))
        opt = torch.optim.SGD(copies.master.parameters(), lr=1e-4)
        for _ in range(100):
            copies.sync()
            copies.zero_grad()
            x = torch.ones(1, 1, dtype=copies.mode.compute_dtype)
            (-copies.working(x)).sum().backward()  # gradient -1: each step adds lr to the weight
            copies.grads_to_master()
            before = [p.detach().clone() for p in copies.master.parameters()]
            opt.step()
        copies.sync()
        return copies, stalled_update_share(before, list(copies.master.parameters()))

    (mixed, mixed_stalled), (fp16, fp16_stalled) = run("mixed"), run("fp16")
    assert mixed.master.weight.dtype == torch.float32 and mixed.master.weight.item() == pytest.approx(1.01, abs=1e-5)
    assert mixed.working.weight.dtype == F16 and mixed.working.weight.item() != 1.0
    assert fp16.master.weight.dtype == F16 and fp16.master.weight.item() == 1.0
    # Both steps are below an fp16 weight's resolution: the diagnostic says so for mixed too.
    assert mixed_stalled == fp16_stalled == 1.0


def test_mixed_and_fp32_agree_closely_at_the_start():
    """Same seed, same data: after a few steps mixed tracks fp32 (fp16 rounding only)."""
    cfg = PhysicsTrainConfig(steps=5, measure_memory=False)
    a = train(Burgers(**SMALL), "fp32", cfg)
    b = train(Burgers(**SMALL), "mixed", cfg)
    for pa, pb in zip(a.master.parameters(), b.master.parameters()):
        assert (pa - pb).abs().max() < 5e-3


def _spy_regression(record):
    """The regression problem, calling ``record(compute)`` each time the training loss is computed
    (not when the evaluation's ``residual_rounding`` probe computes it)."""
    from dataclasses import dataclass
    from typing import ClassVar

    from lowprec.physics import Regression

    @dataclass(frozen=True)
    class Spy(Regression):
        name: ClassVar[str] = "spy"

        def loss_terms(self, c, batch):
            if c.residuals is None:
                record(c)
            return super().loss_terms(c, batch)

    return Spy()


def test_loss_is_computed_inside_the_modes_precision_policy():
    """The mode enters a lowprec PrecisionPolicy (autocast off: the working copy already has the dtype)."""
    from lowprec.precision import current_policy

    seen = []
    spy = _spy_regression(lambda c: seen.append((current_policy(), torch.is_autocast_enabled("cpu"))))
    train(spy, "mixed", PhysicsTrainConfig(steps=1, measure_memory=False))
    policy, autocast = seen[0]
    assert policy == get_mode("mixed").policy and policy.contract_dtype == F16
    assert policy.autocast_dtype is None and autocast is False


def test_fp32_finish_switches_the_compute_and_keeps_master_weights_and_adam_state():
    """mixed_then_fp32: fp16 compute, then fp32 for the last steps on the same weights and optimizer."""
    seen = []
    spy = _spy_regression(lambda c: seen.append((c.dtype, {p.dtype for p in c.net.parameters() if p.ndim})))
    mode = get_mode("mixed_then_fp32").replace(fp32_finish=0.25)
    assert mode.finish_step(20) == 15 and get_mode("mixed_then_fp32").finish_step(20000) == 18000
    r = train(spy, mode, PhysicsTrainConfig(steps=20, measure_memory=False))
    assert seen[:15] == [(F16, {F16})] * 15 and seen[15:] == [(F32, {F32})] * 5
    assert r.working is r.master and {p.dtype for p in r.master.parameters()} == {F32}
    steps = {int(s["step"]) for s in r.optimizer.state.values()}
    assert steps == {20}  # one Adam state from the first step to the last
    assert [h.loss_scale for h in r.history[15:]] == [1.0] * 5  # no loss scaling in fp32
    assert r.mode.name == "mixed_then_fp32" and "last 25% of steps" in r.mode.describe()
    from lowprec.physics.compare import comparison_table

    assert "mixed_then_fp32 runs its last 25% of steps in fp32" in comparison_table([r])
    assert r.error < r.evals[0]["error"]


def test_fp32_finish_needs_fp32_master_weights_and_a_lower_compute_dtype():
    assert get_mode("mixed").finish_step(100) is None
    with pytest.raises(ValueError, match="fp32 finish needs fp32 master weights"):
        get_mode("fp16").replace(fp32_finish=0.1)
    with pytest.raises(ValueError, match="fp32 finish needs fp32 master weights"):
        get_mode("fp32").replace(fp32_finish=0.1)
    with pytest.raises(ValueError, match=r"fraction of the steps in \[0, 1\)"):
        get_mode("mixed").replace(fp32_finish=1.0)
    assert get_mode("bf16").replace(fp32_finish=0.1).finish().compute_dtype == F32


def test_bad_train_config_is_rejected():
    with pytest.raises(ValueError, match="lr_decay must lie in"):
        PhysicsTrainConfig(lr_decay=0.0)
    with pytest.raises(ValueError, match="on_nonfinite='ignore'"):
        PhysicsTrainConfig(on_nonfinite="ignore")
