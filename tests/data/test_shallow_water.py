"""The shallow-water solver against Williamson et al. (1992) test cases 2 and 6, and its data set.

Measured (fp64, RK4): test case 2 keeps h to 9e-15 (relative L2) over 5 days without
hyperdiffusion at 32x64 (lmax 21); with the default del^8 hyperdiffusion (2 h at lmax) to 5e-7.
Test case 6 at 32x64 and 64x128: mass to 2e-16, total energy drifts 1e-9 and potential enstrophy 2e-7
over 2 days; the wave's phase speed is 0.945 of the nondivergent formula at Williamson's
h0 = 8000 m and 0.9992 at h0 = 800 km, where the flow becomes nondivergent.
"""

import math

import numpy as np
import pytest
import torch

from lowprec.data import PROBLEMS, load_or_generate
from lowprec.data.shallow_water import (
    GRAVITY,
    OMEGA,
    ShallowWaterParams,
    ShallowWaterSolver,
    shallow_water_dataset,
    shallow_water_trajectories,
    sphere_grf,
)

GH0 = 2.94e4  # Williamson case 2's g h0


def height_error(solver, x0, x):
    h0, h1 = solver.fields(x0)[0, 0] + solver.H, solver.fields(x)[0, 0] + solver.H
    return ((h1 - h0).norm() / h0.norm()).item()


def run(solver, x, seconds):
    for _ in range(round(seconds / solver.dt)):
        x = solver.step(x)
    return x


def rh_speed(R=4, K=7.848e-6):
    """The Rossby-Haurwitz wave's angular phase speed in a nondivergent fluid (rad/s)."""
    return (R * (3 + R) * K - 2 * OMEGA) / ((1 + R) * (2 + R))


def test_velocity_divergence_and_curl_invert_each_other():
    solver = ShallowWaterSolver(16)
    gen = np.random.default_rng(0)
    zeta = torch.from_numpy(gen.standard_normal((2, 11, 11)) + 1j * gen.standard_normal((2, 11, 11))) * solver.mask
    zeta[:, :, 0] = zeta[:, :, 0].real
    zeta[:, 0] = 0
    delta = zeta.roll(1, 0)
    u, v = solver.velocity(zeta, delta)
    div, curl = solver.div_curl(u, v)
    assert (div - delta).abs().max() < 1e-12 * delta.abs().max()
    assert (curl - zeta).abs().max() < 1e-12 * zeta.abs().max()


@pytest.mark.parametrize("alpha", [0.0, math.pi / 4])
def test_williamson_2_stays_steady_for_5_days(alpha):
    solver = ShallowWaterSolver(24, mean_depth=GH0 / GRAVITY, dt=1800.0, hyperdiffusion_hours=0, alpha=alpha)
    x0 = solver.williamson2(alpha=alpha)
    x = run(solver, x0, 5 * 86400)
    assert height_error(solver, x0, x) < 1e-12


def test_williamson_6_conserves_mass_and_nearly_energy_and_enstrophy():
    solver = ShallowWaterSolver(24, mean_depth=8000.0, dt=1200.0, hyperdiffusion_hours=0)
    x0 = solver.williamson6()
    x = run(solver, x0, 86400)
    before, after = solver.invariants(x0), solver.invariants(x)
    drift = {k: abs((after[k] / before[k]).item() - 1) for k in before}
    assert drift["mass"] < 1e-14
    assert drift["energy"] < 1e-7 and drift["enstrophy"] < 1e-5, drift


@pytest.mark.parametrize("h0,dt,tol", [(8000.0, 1200.0, 0.07), (8.0e5, 200.0, 2e-3)])
def test_williamson_6_moves_at_the_rossby_haurwitz_speed(h0, dt, tol):
    # The analytic speed is the nondivergent one; the shallow-water wave is slower by the
    # divergence, so it is approached as the mean depth grows (measured 0.945, 0.9992).
    solver = ShallowWaterSolver(24, mean_depth=h0, dt=dt, hyperdiffusion_hours=0)
    x0 = solver.williamson6(h0=h0)
    seconds = 43200.0
    x = run(solver, x0, seconds)
    # zeta's (l=5, m=4) coefficient turns as exp(-i m nu t) while the wave moves east at nu.
    nu = -torch.angle(x[0, 0, 5, 4] / x0[0, 0, 5, 4]).item() / 4 / seconds
    assert abs(nu / rh_speed() - 1) < tol


@pytest.mark.slow
def test_williamson_2_with_hyperdiffusion_at_64x128():
    solver = ShallowWaterSolver(64, mean_depth=GH0 / GRAVITY, dt=900.0, hyperdiffusion_hours=2.0, alpha=0.05)
    x0 = solver.williamson2(alpha=0.05)
    assert height_error(solver, x0, run(solver, x0, 5 * 86400)) < 1e-6


def test_too_long_time_step_and_too_coarse_grid_are_refused():
    with pytest.raises(ValueError, match=r"dt=5000 s is too long for lmax=21.*Use dt <= \d+ s"):
        ShallowWaterSolver(32, mean_depth=1e4, dt=5000.0)
    with pytest.raises(ValueError, match=r"dt=5000 s is too long"):
        ShallowWaterParams(resolution=32, dt=5000.0, record_dt=5000.0, t_final=10000.0)
    with pytest.raises(ValueError, match="lmax=20 on 16 Gauss latitudes"):
        ShallowWaterSolver(16, lmax=20)


def test_sphere_grf_has_unit_variance_and_does_not_depend_on_the_grid():
    a = sphere_grf(np.random.default_rng(3), 20, 2.0, 3.0)
    b = sphere_grf(np.random.default_rng(3), 20, 2.0, 3.0)
    assert torch.equal(a, b) and a.shape == (21, 21)
    power = (a[:, 0].abs() ** 2).sum() + 2 * (a[:, 1:].abs() ** 2).sum()
    assert abs(power.item() / (4 * math.pi) - 1) < 1e-12


def test_generated_trajectories_are_cached_and_cut_into_one_step_pairs(tmp_path):
    params = {"t_final": 7200.0, "record_dt": 3600.0, "dt": 900.0}
    traj = shallow_water_trajectories(16, 3, seed=1, cache_dir=tmp_path, progress=False, **params)
    assert traj.u.shape == (3, 3, 3, 16, 32) and torch.isfinite(traj.u).all()
    assert traj.meta["variables"] == ["height", "vorticity", "divergence"]
    # height and vorticity are about one unit (km, 1e-5 / s) in size
    assert 0.1 < traj.u[:, 0, 0].std() < 10 and 0.1 < traj.u[:, 0, 1].std() < 10
    again = load_or_generate(ShallowWaterParams(resolution=16, n=2, seed=1, **params), tmp_path)
    assert torch.equal(again.u, traj.u[:2])
    pairs = shallow_water_dataset(16, 3, seed=1, cache_dir=tmp_path, progress=False, window_stride=1, **params)
    assert pairs.x.shape == (6, 3, 16, 32) and pairs.y.shape == (6, 3, 16, 32)
    assert torch.equal(pairs.y[0], traj.u[0, 1]) and torch.equal(pairs.x[1], traj.u[0, 1])
    assert "shallow_water" in PROBLEMS


def test_cli_generates_and_plots_maps(tmp_path, capsys):
    from lowprec.cli import main

    out, png = tmp_path / "swe.h5", tmp_path / "swe.png"
    argv = [
        "data",
        "generate",
        "shallow_water",
        "--res",
        "16",
        "--n",
        "2",
        "--t-final",
        "7200",
        "--dt",
        "900",
        "--out",
        out,
        "--no-progress",
    ]
    assert main(list(map(str, argv))) == 0
    assert "u (2, 3, 3, 16, 32)" in capsys.readouterr().out
    assert main(["data", "plot", str(out), "--out", str(png)]) == 0
    assert png.stat().st_size > 10_000
