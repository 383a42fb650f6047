import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from lowprec.data import (
    DiffusionSorptionParams,
    diffusion_sorption_dataset,
    diffusion_sorption_trajectories,
    solve_diffusion_sorption,
    solve_tridiagonal,
)


def linear_diffusion_exact(D, c, x, t, n_terms=400):
    """u_t = D u_xx, u(0) = 1, -D u_x(1) = u(1), u(x, 0) = c: steady line plus a sine series."""
    lam = np.array(
        [
            brentq(lambda s: np.sin(s) + D * s * np.cos(s), (k - 0.5) * np.pi + 1e-12, k * np.pi)
            for k in range(1, n_terms + 1)
        ]
    )  # tan λ = -D λ
    # Coefficients of v0 = u0 - (1 - x/(1+D)) = c - 1 + x/(1+D) in sin(λ x), projected exactly.
    i1 = (1 - np.cos(lam)) / lam
    ix = (np.sin(lam) - lam * np.cos(lam)) / lam**2
    i2 = 0.5 - np.sin(2 * lam) / (4 * lam)
    b = ((c - 1) * i1 + ix / (1 + D)) / i2
    return 1 - x / (1 + D) + (b[:, None] * np.exp(-D * lam[:, None] ** 2 * t) * np.sin(lam[:, None] * x)).sum(0)


def test_tridiagonal_solver_matches_dense():
    g = torch.Generator().manual_seed(0)
    lo, up, r = (torch.rand(3, 37, generator=g, dtype=torch.float64) for _ in range(3))
    di = 3 + torch.rand(3, 37, generator=g, dtype=torch.float64)
    x = solve_tridiagonal(lo, di, up, r)
    A = torch.diag_embed(di) + torch.diag_embed(lo[:, 1:], -1) + torch.diag_embed(up[:, :-1], 1)
    torch.testing.assert_close(A @ x[..., None], r[..., None], atol=1e-13, rtol=0)


def test_without_sorption_converges_to_linear_diffusion_at_second_order():
    D, c, T = 0.1, 0.3, 0.2
    errors = []
    for N in (16, 32, 64):
        x = (np.arange(N) + 0.5) / N
        rec = solve_diffusion_sorption(torch.full((1, N), c, dtype=torch.float64), T, T, dt=T / (4 * N), D=D, k_f=0.0)
        errors.append(np.abs(rec["u"][0, -1].numpy() - linear_diffusion_exact(D, c, x, T)).max())
    assert errors[-1] < 5e-4
    assert all(3.7 < errors[i] / errors[i + 1] < 4.3 for i in range(2)), errors


def test_mass_balances_the_boundary_fluxes():
    u0 = torch.tensor([[0.0] * 256, [0.1] * 256, [0.2] * 256], dtype=torch.float64)
    rec = solve_diffusion_sorption(u0, t_final=50.0, record_dt=0.5, dt=0.25)
    change = rec["mass"] - rec["mass"][:, :1]
    # Exactly what the scheme's fluxes carried in and out (to rounding) ...
    torch.testing.assert_close(change, rec["inflow"] - rec["outflow"], atol=1e-12, rtol=0)
    assert (change[:, -1] > 0.05).all()  # the contaminant does come in
    # ... and those agree with the time integral of the fluxes computed from the snapshots.
    N, D = 256, 5e-4
    h, kappa = 1 / N, (2 * D * N) / (1 + 2 * D * N)
    flux = 2 * D / h * (1 - rec["u"][..., 0]) - kappa * rec["u"][..., -1]
    dt = rec["t"][1] - rec["t"][0]
    later = rec["t"] >= 5  # from t = 5 on, past the steep start from the jump at x = 0
    f = flux[:, later]
    integral = torch.cumsum(0.5 * dt * (f[:, 1:] + f[:, :-1]), dim=1)
    gained = change[:, later][:, 1:] - change[:, later][:, :1]
    rel = (integral - gained).abs().max() / gained.abs().max()
    assert rel < 1e-4, rel


def test_solution_stays_between_its_bounds_and_time_converges_at_second_order():
    u0 = torch.full((1, 64), 0.1, dtype=torch.float64)
    ref = solve_diffusion_sorption(u0, 50.0, 50.0, dt=0.125)["u"][0, -1]
    errors = []
    for dt in (2.0, 1.0, 0.5):
        u = solve_diffusion_sorption(u0, 50.0, 50.0, dt=dt)["u"]
        assert u.min() >= 0 and u.max() <= 1
        errors.append(((u[0, -1] - ref).norm() / ref.norm()).item())
    assert all(3.0 < errors[i] / errors[i + 1] < 5.0 for i in range(2)), errors


def test_generator_pdebench_setting():
    traj = diffusion_sorption_trajectories(64, 3, seed=0, t_final=100.0, progress=False)
    assert traj.u.shape == (3, 21, 64) and traj.grid == "nodes"
    torch.testing.assert_close(traj.t, torch.arange(21, dtype=torch.float64) * 5)
    u0 = traj.u[:, 0]
    assert (u0 == u0[:, :1]).all() and (u0 >= 0).all() and (u0 <= 0.2).all()  # constant U(0, 0.2)
    assert traj.meta["params"]["n_f"] == 0.874 and traj.meta["params"]["D"] == 5e-4
    ds = diffusion_sorption_dataset(64, 3, seed=0, t_final=100.0, progress=False)
    assert ds.x.shape == (3, 10, 64) and ds.y.shape == (3, 11, 64)


def test_bad_input():
    with pytest.raises(ValueError, match="0 < porosity < 1"):
        DiffusionSorptionParams(porosity=1.5)
    with pytest.raises(ValueError, match="record_dt=5 must be a positive whole multiple of dt=2"):
        DiffusionSorptionParams(dt=2.0)
    with pytest.raises(ValueError, match=r"u0 must be \(B, N\)"):
        solve_diffusion_sorption(torch.zeros(8))
