"""The gradient-descent rounding bound on problems whose Hessian is known, and the diffusion PINN."""

import math
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import nn

from lowprec.analysis.pinn_bound import run_mode, smoothness_constant, summarize, unit_roundoff
from lowprec.physics import Compute, Diffusion, diffusion_exact, diffusion_residual, get_problem
from lowprec.physics.base import PhysicsProblem


@dataclass(frozen=True)
class LeastSquares(PhysicsProblem):
    """mean((X w - y)^2): Hessian 2 X^T X / N exactly, so L is known."""

    name: ClassVar[str] = "least_squares"
    kind: ClassVar[str] = "pinn"
    title: ClassVar[str] = "least squares"

    def build_model(self, seed):
        torch.manual_seed(seed)
        return nn.Linear(3, 1, bias=False)

    def training_data(self, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(64, 3, generator=g) * torch.tensor([1.0, 2.0, 3.0])
        return {"x": x, "y": x @ torch.tensor([[1.0], [-2.0], [0.5]])}

    def loss_terms(self, c, batch):
        return {"fit": c.mse(c(batch["x"]), batch["y"])}

    def evaluate(self, net, dtype, data):
        return {}


def test_power_iteration_finds_the_largest_hessian_eigenvalue():
    p = LeastSquares()
    batch = p.training_data(0)
    x = batch["x"].double()
    expected = torch.linalg.eigvalsh(2 * x.T @ x / len(x)).max().item()
    assert smoothness_constant(p, p.build_model(0), batch, iters=200) == pytest.approx(expected, rel=1e-6)


def test_descent_inequality_and_rounding_model_hold_every_step():
    p = LeastSquares()
    batch = p.training_data(0)
    net = p.build_model(0)
    L = smoothness_constant(p, net, batch, iters=200)
    for mode in ("fp32", "mixed", "fp16"):
        run, _ = run_mode(p, net, batch, mode, 1 / L, steps=30)
        s = summarize(run, 1 / L, L)
        assert s["descent_inequality_holds"] == s["steps"] == 30
        assert s["rounding_model_holds"] == 30
        assert s["loss_last"] < s["loss_first"]


def test_fp16_weights_stall_inside_their_floor():
    # A step so small that eta |g| is below half an fp16 ulp of every weight: fp16 weights cannot move,
    # fp32 weights can, and the floor (2) says so.
    p = LeastSquares()
    batch = p.training_data(0)
    net = p.build_model(0)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]) + 1e-2)
    eta = 1e-6
    fp16, _ = run_mode(p, net, batch, "fp16", eta, steps=5)
    fp32, _ = run_mode(p, net, batch, "fp32", eta, steps=5)
    s16, s32 = summarize(fp16, eta, 1.0), summarize(fp32, eta, 1.0)
    assert s16["grad_first"] < s16["floor_assumed"]
    assert fp16["steps"][-1]["loss"] == fp16["steps"][0]["loss"]
    assert fp32["steps"][-1]["loss"] < fp32["steps"][0]["loss"]
    assert s16["floor_assumed"] / s32["floor_assumed"] == pytest.approx(
        unit_roundoff(torch.float16) / unit_roundoff(torch.float32), rel=1e-3
    )


class _Exact(nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))  # predict() reads the device off a parameter

    def forward(self, X):
        return diffusion_exact(X).unsqueeze(1).to(X.dtype)


def test_diffusion_exact_solution_has_zero_residual_and_loss():
    p = get_problem("diffusion")
    assert isinstance(p, Diffusion)
    batch = p.training_data(0)
    c = Compute(_Exact(), torch.float64)
    r, _ = diffusion_residual(c, c.points(batch["interior"]))
    assert r.abs().max().item() < 1e-12
    terms = p.loss_terms(Compute(_Exact(), torch.float64), batch)
    assert max(v.item() for v in terms.values()) < 1e-12
    assert p.evaluate(_Exact(), torch.float64, batch)["error"] < 1e-6  # exact up to fp32 test points


def test_diffusion_pinn_error_of_an_untrained_network_is_order_one():
    p = get_problem("diffusion", width=8, depth=2)
    err = p.evaluate(p.build_model(0), torch.float32, p.training_data(0))["error"]
    assert 0.1 < err < 100 and math.isfinite(err)
