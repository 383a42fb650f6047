"""Each reference solution is right."""

import math

import numpy as np
import pytest
import torch

from lowprec.physics import Advection, DiffusionReaction, burgers_cole_hopf, burgers_fd, diffusion_reaction_fd
from lowprec.physics.advection import fourier_eval

T_OUT = (0.25, 0.5, 0.75, 1.0)


def test_cole_hopf_matches_initial_and_boundary_conditions():
    x = np.linspace(-1, 1, 101)
    np.testing.assert_allclose(burgers_cole_hopf(x, 0.0), -np.sin(np.pi * x), atol=1e-15)
    np.testing.assert_allclose(burgers_cole_hopf(np.array([-1.0, 1.0]), 0.7), 0.0, atol=1e-12)


def test_cole_hopf_agrees_with_fine_finite_differences():
    """A second-order FD solve converges to the Cole-Hopf solution (error / 4 per grid halving)."""
    errors = []
    for nx in (1025, 2049):
        x, u_fd = burgers_fd(nx=nx, t_out=T_OUT)
        ref = burgers_cole_hopf(x[None, :], np.array(T_OUT)[:, None])
        errors.append(max(np.linalg.norm(u_fd[i] - ref[i]) / np.linalg.norm(ref[i]) for i in range(len(T_OUT))))
    assert errors[1] < 2e-4, errors
    assert errors[0] / errors[1] > 3.5, errors  # second-order convergence towards Cole-Hopf


def test_cole_hopf_quadrature_is_converged():
    x, t = np.linspace(-1, 1, 257), 0.8
    np.testing.assert_allclose(burgers_cole_hopf(x, t, n_quad=120), burgers_cole_hopf(x, t, n_quad=240), atol=1e-12)


def test_burgers_fd_rejects_under_resolved_grid():
    with pytest.raises(ValueError, match="under-resolves"):
        burgers_fd(nx=101)


def test_diffusion_reaction_fd_converges_on_a_manufactured_solution():
    D, k = 0.01, 0.01

    def exact(x, t):
        return np.sin(np.pi * x) * (1 - np.exp(-t)) * (1 + x)

    def source(x, t):  # f = s_t - D s_xx - k s^2 for the exact s
        g = np.sin(np.pi * x) * (1 + x)
        gxx = -(np.pi**2) * np.sin(np.pi * x) * (1 + x) + 2 * np.pi * np.cos(np.pi * x)
        a = 1 - np.exp(-t)
        return (g * np.exp(-t) - D * gxx * a - k * (g * a) ** 2)[None, :]

    errs = []
    for nx in (26, 51):
        x, t, s = diffusion_reaction_fd(source, D, k, nx=nx, nt=11, substeps=nx // 5)
        ref = exact(x[None, :], t[:, None])
        errs.append(np.abs(s[0] - ref).max() / np.abs(ref).max())
    assert errs[1] < 1e-3 and errs[0] / errs[1] > 3.0, errs


def test_advection_reference_is_the_translated_initial_condition():
    prob = Advection(n_train=4, n_test=2, nx=16, nt=5)
    d = prob.training_data(0)
    y, s = d["y"].double(), d["s"].double()
    # at t = 0 the output is u0 itself; at t = 1 (speed 1, period 1) it is u0 again
    for j in (0, prob.nt - 1):
        sl = slice(j, None, prob.nt)
        u0 = fourier_eval(d["coeffs"], y[sl, 0])
        torch.testing.assert_close(s[:, sl], u0, atol=1e-6, rtol=0)
    # at t = 0.25 it is u0 shifted by 0.25
    sl = slice(1, None, prob.nt)
    assert math.isclose(float(y[1, 1]), 0.25)
    torch.testing.assert_close(
        s[:, sl], fourier_eval(d["coeffs"], torch.remainder(y[sl, 0] - 0.25, 1.0)), atol=1e-6, rtol=0
    )


def test_diffusion_reaction_test_set_is_the_fd_solution_of_its_sources():
    prob = DiffusionReaction(n_train=2, n_test=2, nx_ref=21, nt_ref=11)
    d = prob.training_data(0)
    s = d["s_test"].reshape(2, 21, 11)
    assert torch.all(s[:, :, 0] == 0) and torch.all(s[:, 0, :] == 0) and torch.all(s[:, -1, :] == 0)
    assert s.abs().max() > 1e-2  # the sources do drive a solution
