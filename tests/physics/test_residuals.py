"""Each residual is zero (to rounding) on an exact solution, computed in fp64 through the problem's own code."""

import math

import pytest
import torch
from torch import nn

from lowprec.physics import Compute, ResidualGuard, burgers_residual, kovasznay_exact, kovasznay_residual
from lowprec.physics.advection import advection_residual, fourier_eval, fourier_sigma
from lowprec.physics.diffusion_reaction import dr_residual

F64 = torch.float64


class Fn(nn.Module):
    """Wrap a function as a 'network' so the problem's residual code can call it."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.dummy = nn.Parameter(torch.zeros((), dtype=F64))

    def forward(self, *args):
        return self.fn(*args)


def travelling_wave(X, nu, c=0.3, a=0.7):
    """u = c - a tanh(a (x - c t) / (2 nu)) solves u_t + u u_x = nu u_xx exactly."""
    return c - a * torch.tanh(a * (X[:, :1] - c * X[:, 1:2]) / (2 * nu))


@pytest.mark.parametrize("nu", [0.01 / math.pi, 0.05])
def test_burgers_residual_vanishes_on_exact_solution(nu):
    X = torch.rand(500, 2, dtype=F64) * torch.tensor([2.0, 1.0], dtype=F64) - torch.tensor([1.0, 0.0], dtype=F64)
    c = Compute(Fn(lambda x: travelling_wave(x, nu)), F64)
    r, s = burgers_residual(c, c.points(X), nu)
    assert s == 1.0 and r.dtype == F64
    assert r.abs().max() < 1e-9 * (1 / nu) ** 2  # u_xx ~ 1/nu^2 sets the rounding scale


def test_burgers_residual_with_learnable_viscosity_vanishes_and_is_differentiable():
    nu = torch.tensor(0.02, dtype=F64, requires_grad=True)
    X = torch.rand(200, 2, dtype=F64)
    c = Compute(Fn(lambda x: travelling_wave(x, 0.02)), F64)
    r, _ = burgers_residual(c, c.points(X), nu)
    assert r.abs().max() < 1e-10
    (g,) = torch.autograd.grad(r.square().sum() + r.sum(), nu)
    assert torch.isfinite(g) and g != 0  # the viscosity receives a gradient through the seed


def test_residual_scale_gives_the_same_loss():
    """A guard scale s changes where the numbers sit, not the loss: mean((s r)^2) / s^2 is the same."""
    X = torch.rand(300, 2, dtype=F64)
    net = Fn(lambda x: torch.sin(3 * x[:, :1]) * torch.exp(-x[:, 1:2]))
    guard = ResidualGuard()
    c = Compute(net, F64, guard)
    r1, s1 = burgers_residual(c, c.points(X), 0.01)
    guard.scales["pde"] = 2.0**-6
    r2, s2 = burgers_residual(c, c.points(X), 0.01)
    assert (s1, s2) == (1.0, 2.0**-6)
    torch.testing.assert_close(c.mean_square(r1, s1), c.mean_square(r2, s2), rtol=1e-12, atol=0)


@pytest.mark.parametrize("re", [20.0, 40.0])
def test_kovasznay_residual_vanishes_on_exact_solution(re):
    X = torch.rand(400, 2, dtype=F64) * torch.tensor([1.5, 2.0], dtype=F64) - 0.5
    c = Compute(Fn(lambda x: kovasznay_exact(x, re)), F64)
    (mx, my, div), _ = kovasznay_residual(c, c.points(X), 1.0 / re)
    for r in (mx, my, div):
        assert r.abs().max() < 1e-12


def test_advection_residual_vanishes_on_exact_solution():
    coeffs = torch.randn(3, 8, 2, dtype=F64) * fourier_sigma(8, 0.1)[:, None]
    speed = 0.7

    def exact(u_sensors, Y):  # (B, P, 2) -> (B, P): u0_b(x - a t)
        return torch.stack([fourier_eval(coeffs[b : b + 1], Y[b, :, 0] - speed * Y[b, :, 1])[0] for b in range(3)])

    c = Compute(Fn(exact), F64)
    r, _ = advection_residual(c, torch.zeros(3, 4, dtype=F64), c.points(torch.rand(3, 50, 2, dtype=F64)), speed)
    assert r.abs().max() < 1e-10


def test_diffusion_reaction_residual_vanishes_on_manufactured_solution():
    D, k = 0.01, 0.01
    Y = torch.rand(2, 64, 2, dtype=F64)
    x, t = Y[..., 0], Y[..., 1]

    def exact(u_sensors, Yl):
        xl, tl = Yl[..., 0], Yl[..., 1]
        return torch.sin(math.pi * xl) * (1 - torch.exp(-tl)) * (1 + xl)

    g = torch.sin(math.pi * x) * (1 + x)
    gxx = -(math.pi**2) * torch.sin(math.pi * x) * (1 + x) + 2 * math.pi * torch.cos(math.pi * x)
    a = 1 - torch.exp(-t)
    f = g * torch.exp(-t) - D * gxx * a - k * (g * a) ** 2
    c = Compute(Fn(exact), F64)
    r, _ = dr_residual(c, torch.zeros(2, 5, dtype=F64), c.points(Y), f, D, k)
    assert r.abs().max() < 1e-12


def test_derivatives_come_out_in_the_compute_dtype():
    """fp16 compute: the network output, both derivatives and the residual are fp16 tensors."""
    from lowprec.models.pinn import PINN

    net = PINN(2, 1, 16, 2, bounds=((-1, 0), (1, 1)), seed=0).half()
    c = Compute(net, torch.float16)
    X = c.points(torch.rand(64, 2))
    u = net(X)
    du = c.grad(u, X, 1.0)
    d2 = c.grad(du[:, :1], X, 0.01)
    r, _ = burgers_residual(c, X, 0.01)
    assert {u.dtype, du.dtype, d2.dtype, r.dtype} == {torch.float16}
    assert c.mean_square(r).dtype == torch.float32


def test_max_second_derivative_reports_fp16_overflow():
    """u = a x^2 has u_xx = 2a: fine in fp32, beyond fp16's 65504 for a = 4e4 (the hazard the guard handles)."""
    from lowprec.physics.burgers import max_second_derivative

    class Quad(nn.Module):
        def __init__(self, a):
            super().__init__()
            self.a = nn.Parameter(torch.tensor(a))

        def forward(self, x):
            return self.a * x[:, :1] ** 2

    pts = torch.rand(32, 2)
    assert max_second_derivative(Quad(1e3), torch.float32, pts) == pytest.approx(2e3)
    assert max_second_derivative(Quad(4e4), torch.float32, pts) == pytest.approx(8e4)
    assert max_second_derivative(Quad(4e4).half(), torch.float16, pts) == math.inf  # a itself fits: 40000
