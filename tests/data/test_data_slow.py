"""The generators at their papers' full settings (minutes on 2 CPU cores): pytest -m slow tests/data."""

import pytest
import torch

from lowprec.data import (
    BurgersPDEBenchParams,
    burgers_pdebench_trajectories,
    diffusion_sorption_trajectories,
    navier_stokes_trajectories,
    solve_diffusion_sorption,
    velocity_from_vorticity,
)

pytestmark = pytest.mark.slow


def test_navier_stokes_fno_setting_is_stable_and_within_its_cfl_bound():
    traj = navier_stokes_trajectories(64, 2, seed=0, progress=False)  # ν = 1e-3, T = 50, dt = 0.01
    assert traj.u.shape == (2, 51, 64, 64) and torch.isfinite(traj.u).all()
    u, v = velocity_from_vorticity(traj.u.double())
    cfl = (u**2 + v**2).sqrt().max() * 0.01 * 64
    assert cfl < 0.3, cfl  # the bound the module docstring states for dt = 0.01 at 64²
    # Forced and dissipated, the flow settles: vorticity stays of order one.
    assert traj.u.abs().max() < 5


def test_burgers_pdebench_setting_shocks_conserve_and_stay_bounded():
    traj = burgers_pdebench_trajectories(1024, 3, seed=0, progress=False)  # Nu = 0.001, T = 2
    p = BurgersPDEBenchParams(resolution=1024, n=3)
    u0 = torch.stack([torch.from_numpy(p.initial(i)) for i in range(3)]).float()
    assert traj.u.shape == (3, 201, 1024)
    torch.testing.assert_close(
        traj.u.double().sum(-1), u0.double().sum(-1, keepdim=True).expand(-1, 201), atol=1e-3, rtol=0
    )
    assert (traj.u.abs().amax(-1) <= u0.abs().amax(-1, keepdim=True) + 1e-5).all()


def test_diffusion_sorption_pdebench_setting_mass_and_time_step():
    traj = diffusion_sorption_trajectories(1024, 2, seed=0, progress=False)  # T = 500, dt = 0.5
    assert traj.u.shape == (2, 101, 1024) and traj.u.min() >= 0 and traj.u.max() <= 1
    u0 = traj.u[:, 0].double()
    rec = solve_diffusion_sorption(u0, 500.0, 5.0, dt=0.25)
    torch.testing.assert_close(rec["mass"] - rec["mass"][:, :1], rec["inflow"] - rec["outflow"], atol=1e-11, rtol=0)
    # dt = 0.5 (the default) against 0.25: close from the second snapshot on.
    later = (traj.u[:, 2:].double() - rec["u"][:, 2:]).norm(dim=-1) / rec["u"][:, 2:].norm(dim=-1)
    assert later.max() < 1e-3, later.max()
