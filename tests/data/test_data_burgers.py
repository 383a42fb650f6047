import math

import numpy as np
import pytest
import torch

from lowprec.data import (
    BurgersParams,
    BurgersPDEBenchParams,
    burgers_cole_hopf,
    burgers_dataset,
    burgers_pdebench_dataset,
    burgers_pdebench_trajectories,
    burgers_trajectories,
    pdebench_initial,
    solve_burgers_fv,
    solve_burgers_spectral,
)


def smooth_u0(x, mean=0.0):
    return mean + np.sin(2 * np.pi * x) + 0.5 * np.cos(4 * np.pi * x + 1)


def test_cole_hopf_starts_at_u0_and_solves_burgers():
    s, nu = 256, 0.05
    x = np.arange(s) / s
    u0 = torch.from_numpy(smooth_u0(x, mean=0.3))
    t = [0.0, 0.2 - 1e-4, 0.2, 0.2 + 1e-4]
    u = burgers_cole_hopf(u0, nu, t)
    torch.testing.assert_close(u[0], u0, atol=1e-12, rtol=0)
    # Residual of u_t + u u_x - ν u_xx at t = 0.2: time by central differences, space spectrally.
    k = 2 * math.pi * torch.fft.fftfreq(s, 1 / s, dtype=torch.float64)
    uh = torch.fft.fft(u[2])
    u_x, u_xx = torch.fft.ifft(1j * k * uh).real, torch.fft.ifft(-(k**2) * uh).real
    u_t = (u[3] - u[1]) / 2e-4
    residual = u_t + u[2] * u_x - nu * u_xx
    assert residual.abs().max() < 1e-5 * u_xx.abs().max()


def test_spectral_solver_converges_to_cole_hopf_at_second_order_in_dt():
    s = 128
    x = np.arange(s) / s
    u0 = torch.from_numpy(np.stack([smooth_u0(x), smooth_u0(x, mean=0.3)]))
    exact = burgers_cole_hopf(u0, 0.1, 0.5)[:, 0]
    errors = []
    for dt in (0.02, 0.01, 0.005):
        u, t = solve_burgers_spectral(u0, 0.1, 0.5, 0.5, dt)
        errors.append((u[:, -1] - exact).abs().max().item())
    assert t.tolist() == [0.0, 0.5]
    assert errors[-1] < 5e-5
    assert all(3.8 < errors[i] / errors[i + 1] < 4.3 for i in range(2)), errors


def test_finite_volumes_converge_to_cole_hopf_at_second_order_in_space():
    nu, T = 0.02, 0.3
    errors = []
    for N in (64, 128, 256):
        xc = (np.arange(N) + 0.5) / N
        # The exact solution at the cell centres: Cole-Hopf on a grid 16x finer, centres every 16th.
        fine = (np.arange(16 * N)) / (16 * N)
        exact = burgers_cole_hopf(0.5 * np.sin(2 * np.pi * fine) + 0.2 * np.cos(6 * np.pi * fine), nu, T)[0, 8::16]
        u0 = torch.from_numpy(0.5 * np.sin(2 * np.pi * xc) + 0.2 * np.cos(6 * np.pi * xc))[None]
        u, _ = solve_burgers_fv(u0, nu, T, T)
        errors.append((u[0, -1] - exact).abs().mean().item())
    assert errors[-1] < 3e-5
    assert all(3.3 < errors[i] / errors[i + 1] < 4.5 for i in range(2)), errors


def test_finite_volumes_conserve_and_keep_the_maximum_principle_through_shocks():
    p = BurgersPDEBenchParams(resolution=128, n=4, t_final=0.5, record_dt=0.05)
    u0 = torch.from_numpy(np.stack([p.initial(i) for i in range(4)]))
    u, _ = solve_burgers_fv(u0, p.viscosity, p.t_final, p.record_dt)
    torch.testing.assert_close(u.sum(-1), u0.sum(-1)[:, None].expand(-1, u.shape[1]), atol=1e-10, rtol=0)
    assert (u.abs().amax(-1) <= u0.abs().amax(-1, keepdim=True) + 1e-12).all()
    # A sample's result does not depend on the other samples in its batch (own time step).
    alone, _ = solve_burgers_fv(u0[2:3], p.viscosity, p.t_final, p.record_dt)
    assert torch.equal(alone[0], u[2])


def test_generated_fno_data_match_cole_hopf():
    ds = burgers_dataset(128, 2, seed=0, progress=False)
    assert ds.x.shape == ds.y.shape == (2, 1, 128) and ds.grid == "periodic"
    assert ds.meta["problem"] == "burgers" and ds.meta["params"]["viscosity"] == 0.1
    assert ds.meta["t_x"] == [0.0] and ds.meta["t_y"] == [1.0]
    # x is the GRF restricted to the modes the solver keeps (|k| <= s/3): what y evolved from.
    grf = torch.from_numpy(np.stack([BurgersParams(resolution=128).initial(i) for i in range(2)]))
    assert (ds.x[:, 0] - grf).abs().max() < 0.01 * grf.abs().max()
    exact = burgers_cole_hopf(ds.x[:, 0].double(), 0.1, 1.0)[:, 0]
    assert (ds.y[:, 0].double() - exact).abs().max() < 1e-5 * exact.abs().max()


def test_same_problems_at_every_resolution():
    coarse = burgers_trajectories(64, 2, seed=5, progress=False)
    fine = burgers_trajectories(256, 2, seed=5, progress=False)
    # u0 differs by the modes the coarse grid cannot hold (the GRF decays as k^-2) ...
    assert (fine.u[:, 0, ::4] - coarse.u[:, 0]).abs().max() < 0.02 * fine.u.abs().max()
    # ... and u(1), smoothed by ν = 0.1, agrees to the coarse grid's resolution.
    assert (fine.u[:, 1, ::4] - coarse.u[:, 1]).abs().max() < 1e-3 * fine.u.abs().max()


def test_pdebench_setting_time_series():
    traj = burgers_pdebench_trajectories(64, 3, seed=0, t_final=0.2, progress=False)
    assert traj.u.shape == (3, 21, 64) and traj.grid == "periodic"
    assert traj.meta["Nu"] == 0.001 and traj.meta["cell_centred"]
    torch.testing.assert_close(traj.t, torch.arange(21, dtype=torch.float64) * 0.01)
    ds = burgers_pdebench_dataset(64, 3, seed=0, t_final=0.2, progress=False)
    assert ds.x.shape == (3, 10, 64) and ds.y.shape == (3, 11, 64)
    steps = burgers_pdebench_dataset(64, 3, seed=0, t_final=0.2, t_in=1, t_out=1, window_stride=1, progress=False)
    assert steps.x.shape == (3 * 20, 1, 64) and torch.equal(steps.y[21], traj.u[1, 2:3])


def test_pdebench_initial_condition():
    x = (np.arange(256) + 0.5) / 256
    a = pdebench_initial(np.random.default_rng([0, 1]), x)
    b = pdebench_initial(np.random.default_rng([0, 1]), x)
    assert np.array_equal(a, b) and np.abs(a).max() <= 4
    # whole wave numbers: the field is periodic (a shift by one period changes nothing)
    shifted = pdebench_initial(np.random.default_rng([0, 1]), x + 1.0)
    np.testing.assert_allclose(shifted, a, atol=1e-9)
    windowed = [pdebench_initial(np.random.default_rng([0, i]), x, p_window=1.0) for i in range(5)]
    assert all(abs(w[0]) < 1e-6 and abs(w[-1]) < 1e-6 for w in windowed)


def test_bad_input():
    with pytest.raises(ValueError, match="record_dt=0.25 must be a positive whole multiple of dt=0.1"):
        BurgersParams(record_dt=0.25, dt=0.1)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) 'Nu' \(did you mean 'nu'\?\)"):
        burgers_pdebench_dataset(64, 1, Nu=0.01)
    with pytest.raises(FloatingPointError, match=r"non-finite.*smaller dt.*finite-volume"):
        x = np.arange(64) / 64
        solve_burgers_spectral(torch.from_numpy(50 * np.sin(2 * np.pi * x))[None], 1e-4, 1.0, 0.5, dt=0.05)
    with pytest.raises(ValueError, match="cfl must be in"):
        solve_burgers_fv(torch.zeros(1, 8, dtype=torch.float64), 0.1, 1.0, 1.0, cfl=2.0)
