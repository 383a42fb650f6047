import math

import numpy as np
import pytest
import torch

from lowprec.data import (
    CacheMismatchError,
    NavierStokesParams,
    fno_forcing,
    navier_stokes_dataset,
    navier_stokes_trajectories,
    solve_navier_stokes,
    spectral_divergence,
    velocity_from_vorticity,
)
from lowprec.data.grf import sample_periodic_grf


def grid(s):
    x = torch.arange(s, dtype=torch.float64) / s
    return x[:, None], x[None, :]


def energy(w):
    """E = ½ ∫|u|² over the unit torus, per snapshot."""
    u, v = velocity_from_vorticity(w)
    return 0.5 * (u**2 + v**2).mean(dim=(-2, -1))


def grf_vorticity(s, n=2, seed=0, modes=8):
    return torch.from_numpy(
        np.stack(
            [
                sample_periodic_grf(np.random.default_rng([seed, i]), s, modes, 2.5, 7.0, math.sqrt(2) * 7**1.5, 2)
                for i in range(n)
            ]
        )
    )


def test_single_mode_decays_at_the_viscous_rate():
    # ω = cos 2π(x + 2y) is an eigenfunction of Δ, so u·∇ω = 0 and ω decays as exp(-ν|2πk|² t).
    X, Y = grid(16)
    w0 = torch.cos(2 * math.pi * (X + 2 * Y))[None]
    nu, rate = 0.005, 0.005 * 4 * math.pi**2 * 5
    w, t = solve_navier_stokes(w0, nu, t_final=1.0, record_dt=0.25, dt=0.01)
    exact = w0[:, None] * torch.exp(-rate * t)[None, :, None, None]
    assert (w - exact).abs().max() < 1e-5 * w0.abs().max()
    E = energy(w)[0]
    # Crank-Nicolson's error: (a³/12 per step, a = rate dt) x 100 steps x 2 (energy) = 1.6e-5.
    torch.testing.assert_close(E / E[0], torch.exp(-2 * rate * t), rtol=2.5e-5, atol=0)


def test_energy_decays_at_minus_viscosity_times_enstrophy_without_forcing():
    # dE/dt = -ν ∫ ω² for the unforced equations: the nonlinear term moves energy, never makes it.
    nu = 0.01
    w, t = solve_navier_stokes(grf_vorticity(32), nu, t_final=0.5, record_dt=0.01, dt=0.002)
    E = energy(w)
    dE_dt = (E[:, 2:] - E[:, :-2]) / (t[2:] - t[:-2])
    dissipation = -nu * (w[:, 1:-1] ** 2).mean(dim=(-2, -1))
    assert (E[:, 1:] < E[:, :-1]).all()
    torch.testing.assert_close(dE_dt, dissipation, rtol=2e-3, atol=0)


def test_velocity_of_the_generated_data_is_divergence_free_and_has_curl_w():
    traj = navier_stokes_trajectories(32, 2, seed=0, t_final=2.0, dt=0.02, progress=False)
    w = traj.u.double()
    u, v = velocity_from_vorticity(w)
    div = spectral_divergence(u, v)
    assert div.abs().max() < 1e-10 * u.abs().max()
    s = w.shape[-1]
    kx = torch.fft.fftfreq(s, 1 / s, dtype=torch.float64)[:, None]
    ky = torch.fft.rfftfreq(s, 1 / s, dtype=torch.float64)[None, :]
    curl = torch.fft.irfft2(2j * math.pi * (kx * torch.fft.rfft2(v) - ky * torch.fft.rfft2(u)), s=(s, s))
    torch.testing.assert_close(curl, w - w.mean(dim=(-2, -1), keepdim=True), atol=1e-6, rtol=0)


def test_second_order_in_time():
    w0, f = grf_vorticity(32, modes=6), fno_forcing(32)
    ref, _ = solve_navier_stokes(w0, 1e-3, 2.0, 2.0, dt=0.0025, forcing=f)
    errors = []
    for dt in (0.04, 0.02, 0.01):
        w, _ = solve_navier_stokes(w0, 1e-3, 2.0, 2.0, dt=dt, forcing=f)
        errors.append(((w[:, -1] - ref[:, -1]).norm() / ref[:, -1].norm()).item())
    ratios = [errors[i] / errors[i + 1] for i in range(2)]
    assert all(3.5 < r < 4.6 for r in ratios), (errors, ratios)


def test_dataset_is_the_fno_setting_periodic_with_parameters():
    ds = navier_stokes_dataset(16, 3, seed=0, t_final=12.0, dt=0.05, progress=False)
    assert ds.x.shape == (3, 10, 16, 16) and ds.y.shape == (3, 2, 16, 16)
    assert ds.grid == "periodic" and ds.x.dtype == torch.float32
    assert ds.meta["t_x"] == list(range(1, 11)) and ds.meta["t_y"] == [11.0, 12.0]
    assert ds.meta["problem"] == "navier_stokes" and ds.meta["params"]["viscosity"] == 1e-3
    traj = navier_stokes_trajectories(16, 3, seed=0, t_final=12.0, dt=0.05, progress=False)
    assert torch.equal(ds.x, traj.u[:, 1:11]) and traj.t.tolist() == list(range(13))
    auto = navier_stokes_dataset(
        16, 3, seed=0, t_final=12.0, dt=0.05, t_in=2, t_out=1, window_stride=3, t_start=0, progress=False
    )
    assert auto.x.shape == (3 * 4, 2, 16, 16) and torch.equal(auto.y[1], traj.u[0, 5:6])


def test_forcing_drives_the_flow_toward_its_mode():
    X, Y = grid(16)
    f = fno_forcing(16)
    torch.testing.assert_close(f, 0.1 * (torch.sin(2 * math.pi * (X + Y)) + torch.cos(2 * math.pi * (X + Y))))
    # From rest the steady Stokes response to f is f / (ν |2πk|²) with |k|² = 2.
    w, _ = solve_navier_stokes(torch.zeros(1, 16, 16, dtype=torch.float64), 0.5, 2.0, 2.0, 0.01, f)
    torch.testing.assert_close(w[0, -1], f / (0.5 * 8 * math.pi**2), rtol=1e-4, atol=1e-7)


def test_deterministic_prefix_oversample_and_resolutions():
    kw = dict(t_final=2.0, dt=0.02, n_grf_modes=4, progress=False)
    big = navier_stokes_trajectories(16, 4, seed=3, **kw)
    small = navier_stokes_trajectories(16, 2, seed=3, cache=False, **kw)
    torch.testing.assert_close(small.u, big.u[:2], atol=1e-6, rtol=0)
    fine = navier_stokes_trajectories(32, 2, seed=3, cache=False, **kw)
    over = navier_stokes_trajectories(16, 2, seed=3, cache=False, oversample=2, **kw)
    torch.testing.assert_close(over.u, fine.u[..., ::2, ::2], atol=1e-6, rtol=0)
    # Same initial field at both resolutions (the GRF's 4 modes fit on both grids) ...
    torch.testing.assert_close(fine.u[:, 0, ::2, ::2], small.u[:, 0], atol=1e-6, rtol=0)
    # ... and close solutions later (they differ by the coarse grid's truncation).
    rel = (fine.u[:, -1, ::2, ::2] - small.u[:, -1]).norm() / fine.u[:, -1].norm()
    assert rel < 0.02


def test_bad_input():
    with pytest.raises(ValueError, match=r"record_dt=1 must be a positive whole multiple of dt=0.3"):
        NavierStokesParams(dt=0.3)
    with pytest.raises(ValueError, match=r"t_final=5 must be a positive whole multiple of record_dt=2"):
        NavierStokesParams(t_final=5.0, record_dt=2.0)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) 'viscosty' \(did you mean 'viscosity'\?\)"):
        navier_stokes_dataset(16, 1, viscosty=1e-4)
    with pytest.raises(ValueError, match="viscosity must be positive"):
        NavierStokesParams(viscosity=0.0)
    with pytest.raises(FloatingPointError, match=r"non-finite.*dt=0.1.*smaller dt"):
        solve_navier_stokes(100 * grf_vorticity(32), 1e-4, 5.0, 1.0, dt=0.1)


def test_cache_mismatch_names_the_parameter():
    p = NavierStokesParams(resolution=16, n=1, t_final=2.0, dt=0.05)
    navier_stokes_trajectories(16, 1, t_final=2.0, dt=0.05, progress=False)
    import h5py

    with h5py.File(p.cache_path(), "r+") as f:
        f.attrs["viscosity"] = 1e-4
    with pytest.raises(CacheMismatchError, match=r"viscosity=0.0001.*viscosity=0.001 was requested"):
        navier_stokes_trajectories(16, 1, t_final=2.0, dt=0.05, progress=False)
