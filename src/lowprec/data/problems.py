"""The registry of generated problems: name -> parameters, data set function, time series function.

``lowprec.data.GENERATORS`` (what ``lowprec train`` and configs use) and the
``lowprec data generate`` command are built from :data:`PROBLEMS`. A new PDE adds
one module (parameters dataclass, solver, ``*_dataset`` and, for time series,
``*_trajectories``) and one entry here, then runs ``python -m lowprec._catalog`` so that
``lowprec data generate --help`` lists it without importing torch.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

from .base import ProblemParams
from .bodies import BodiesParams, bodies_dataset
from .burgers import (
    BurgersParams,
    BurgersPDEBenchParams,
    burgers_dataset,
    burgers_pdebench_dataset,
    burgers_pdebench_trajectories,
    burgers_trajectories,
)
from .darcy import DarcyParams, DarcyPDEBenchParams, darcy_dataset, darcy_pdebench_dataset
from .diffusion_sorption import DiffusionSorptionParams, diffusion_sorption_dataset, diffusion_sorption_trajectories
from .navier_stokes import NavierStokesParams, navier_stokes_dataset, navier_stokes_trajectories
from .shallow_water import ShallowWaterParams, shallow_water_dataset, shallow_water_trajectories

VIEW_KEYS = ("t_in", "t_out", "t_start", "window_stride")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One generated problem.

    Attributes:
        name: the key in GENERATORS.
        summary: one line for --help.
        params: its ProblemParams dataclass (the cached parameters).
        dataset: ``(resolution, n, seed, *, cache_dir, progress, **params) -> PDEDataset``.
        trajectories: same signature, returning Trajectories; None for input/output problems.
    """

    name: str
    summary: str
    params: type[ProblemParams]
    dataset: Callable
    trajectories: Callable | None = None

    def default_view(self) -> dict:
        """The dataset function's defaults for t_in, t_out, t_start, window_stride (time series)."""
        if self.trajectories is None:
            return {}
        sig = inspect.signature(self.dataset).parameters
        return {k: sig[k].default for k in VIEW_KEYS if k in sig}


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem(
            "darcy",
            "Darcy flow 2D, FNO paper: coefficient 12/3 from a thresholded GRF, f = 1, "
            "u = 0 on the boundary; x = a, y = u",
            DarcyParams,
            darcy_dataset,
        ),
        Problem(
            "darcy_pdebench",
            "Darcy flow 2D, PDEBench: coefficient 1/0.1 from random bumps, f = beta; x = a, y = u",
            DarcyPDEBenchParams,
            darcy_pdebench_dataset,
        ),
        Problem(
            "navier_stokes",
            "Navier-Stokes 2D vorticity on the torus, FNO paper (nu = 1e-3, T = 50); x = w(t=1..10), y = w(t=11..50)",
            NavierStokesParams,
            navier_stokes_dataset,
            navier_stokes_trajectories,
        ),
        Problem(
            "burgers",
            "Burgers 1D periodic, FNO paper (nu = 0.1): x = u0, y = u(t=1)",
            BurgersParams,
            burgers_dataset,
            burgers_trajectories,
        ),
        Problem(
            "burgers_pdebench",
            "Burgers 1D periodic, PDEBench (Nu = 0.001, 201 steps to t = 2): x = first 10 snapshots, y = the rest",
            BurgersPDEBenchParams,
            burgers_pdebench_dataset,
            burgers_pdebench_trajectories,
        ),
        Problem(
            "diffusion_sorption",
            "Diffusion-sorption 1D, PDEBench (101 steps to t = 500): x = first 10 snapshots, y = the rest",
            DiffusionSorptionParams,
            diffusion_sorption_dataset,
            diffusion_sorption_trajectories,
        ),
        Problem(
            "shallow_water",
            "Rotating shallow water on the sphere, SFNO paper: (height, vorticity, divergence) on a Gauss grid "
            "res x 2 res, hourly for a day; x = u(t), y = u(t + 1 h)",
            ShallowWaterParams,
            shallow_water_dataset,
            shallow_water_trajectories,
        ),
        Problem(
            "bodies",
            "3D bodies in potential flow (GINO): random ellipsoids (exact Cp) or car-like bodies (panel method); "
            "coords = surface vertices, latent = signed distance on the grid, y = Cp",
            BodiesParams,
            bodies_dataset,
        ),
    )
}

# Problem name -> function(resolution, n, seed, *, cache_dir, progress, **params) -> PDEDataset.
# `lowprec train` and `lowprec demo` find generators here; params are the problem's
# ProblemParams fields plus, for time series, t_in / t_out / t_start / window_stride
# (which snapshots make x and y) and the speed settings device / batch_size.
GENERATORS = {name: problem.dataset for name, problem in PROBLEMS.items()}
# Problem name -> function(...) -> Trajectories (N, T, *grid), for the time-series problems.
TRAJECTORIES = {name: p.trajectories for name, p in PROBLEMS.items() if p.trajectories is not None}
