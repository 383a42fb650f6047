"""Rotating shallow-water equations on the sphere, spectral in vorticity-divergence form (SFNO's benchmark).

    dzeta/dt = -div((zeta + f) u)
    ddelta/dt = curl((zeta + f) u) - lap(Phi + |u|^2 / 2)
    dPhi/dt  = -div(Phi u)

with zeta = curl u the relative vorticity, delta = div u the divergence, Phi = g h the geopotential
(h the fluid depth), f = 2 Omega sin(latitude) (about a rotated axis for Williamson's alpha),
and u = k x grad(psi) + grad(chi), lap psi = zeta, lap chi = delta.

Method (the classic spectral transform method, e.g. Hack & Jakob 1992): the state (zeta, delta,
Phi - g H) is held as spherical harmonic coefficients a_lm (triangular truncation l <= lmax) on a
Gauss-Legendre grid of nlat latitudes and nlon = 2 nlat longitudes, using the orthonormal Legendre
functions of :mod:`lowprec.spectral.sht` in fp64. Velocities are formed on the grid as
U = u cos(lat), V = v cos(lat) from psi and chi with H_l^m = (1 - mu^2) dPbar_l^m / dmu
(mu = sin(lat)); products are taken on the grid, and divergence and curl of a flux (A, B)
are projected back by integration by parts, so no derivative of a grid field is ever taken::

    div(A, B)_lm  = 1/a sum_j 2 pi w_j / (1 - mu_j^2) [ i m A_m(mu_j) Pbar_l^m - B_m(mu_j) H_l^m ]
    curl(A, B)_lm = 1/a sum_j 2 pi w_j / (1 - mu_j^2) [ i m B_m(mu_j) Pbar_l^m + A_m(mu_j) H_l^m ]

Every integrand is a polynomial in mu, so with lmax = (nlon - 1) // 3 (alias-free for quadratic
terms: nlon >= 3 lmax + 1, nlat >= (3 lmax + 1) / 2) the Galerkin tendencies are exact. The l = 0
coefficient of Phi has zero tendency identically (mass is conserved to rounding).

Time stepping: classical RK4 (every term explicit) and, after each step, scale-selective
hyperdiffusion applied exactly: a_lm *= exp(-dt / tau (l (l + 1) / (lmax (lmax + 1)))^4), the
e-folding time tau at the truncation limit (``hyperdiffusion_hours``; 0 for none). RK4 is stable
while the fastest gravity wave's frequency times dt stays below 2.8; :func:`check_time_step`
refuses a dt above 2 / that frequency with the largest allowed dt named.

Validation (tests/data/test_shallow_water.py): Williamson et al. (1992) test case 2 (steady zonal
geostrophic flow) stays at its initial state to rounding; test case 6 (Rossby-Haurwitz wave,
R = 4) moves east at close to its analytic phase speed; mass is conserved to rounding, and total
energy and potential enstrophy drift is measured.

Data (``lowprec data generate shallow_water``): initial conditions as in SFNO's experiments, a
balanced flow plus random geopotential perturbations. The vorticity is drawn from a Gaussian
random field on the sphere (angular power (l (l + 1) + tau^2)^-alpha, degrees 1..n_grf_modes,
so the draw does not depend on the grid) and scaled to a peak wind (no divergence); the
geopotential is then set by the nonlinear balance equation (d delta / dt = 0 at delta = 0), and a
second random field of geopotential height (standard deviation ``height_perturbation`` metres)
is added, which radiates gravity waves. Arrays: ``u`` (n, T, 3, nlat, nlon) float32: height
anomaly h - H (in km), relative vorticity (in 1e-5 / s) and divergence (in 1e-6 / s), units
in which each is about one unit in size (see ``UNITS``), on the Gauss-Legendre grid of
:func:`lowprec.spectral.sht.grid_points` (colatitude ascending from the north pole).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import torch

from .._progress import progress_bar
from ..spectral.sht import isht, legendre, quadrature
from .base import PathLike, ProblemParams, load_or_generate
from .dataset import PDEDataset
from .timeseries import SnapshotTimes, Trajectories, whole_ratio

EARTH_RADIUS = 6.37122e6  # m (Williamson et al. 1992)
GRAVITY = 9.80616  # m / s^2
OMEGA = 7.292e-5  # 1 / s
VARIABLES = ("height", "vorticity", "divergence")
# Stored units: each variable's typical size in the data is a few units, so one relative L2 over
# all channels weighs them alike (in SI units height would outweigh vorticity by 1e7).
# Measured standard deviations with the defaults: 0.4 km, 0.9e-5 / s, 1.4e-6 / s.
UNITS = {"height": (1000.0, "km"), "vorticity": (1e-5, "1e-5 / s"), "divergence": (1e-6, "1e-6 / s")}


def alias_free_lmax(nlon: int) -> int:
    """The largest degree whose quadratic products do not alias on nlon longitudes: (nlon - 1) // 3."""
    return (nlon - 1) // 3


class ShallowWaterSolver:
    """The spectral solver on an nlat x 2 nlat Gauss-Legendre grid; fp64 on the CPU.

    States are complex coefficient tensors (B, 3, L, M) of (zeta, delta, Phi - g H), L = M =
    lmax + 1, zero where m > l.

    Args:
        nlat: Gauss latitudes (nlon = 2 nlat).
        lmax: truncation (default: alias-free, (nlon - 1) // 3).
        radius, gravity, omega, mean_depth: a (m), g (m/s^2), Omega (1/s), H (m).
        dt: time step (s).
        hyperdiffusion_hours: e-folding time at lmax of the del^8 hyperdiffusion (0: none).
        alpha: angle (rad) between the rotation axis and the grid's pole (Williamson's alpha).
    """

    def __init__(
        self,
        nlat: int,
        lmax: int | None = None,
        radius: float = EARTH_RADIUS,
        gravity: float = GRAVITY,
        omega: float = OMEGA,
        mean_depth: float = 1.0e4,
        dt: float = 300.0,
        hyperdiffusion_hours: float = 2.0,
        alpha: float = 0.0,
    ):
        self.nlat, self.nlon = nlat, 2 * nlat
        self.lmax = alias_free_lmax(self.nlon) if lmax is None else lmax
        if self.lmax < 1 or self.nlat < self.lmax + 2:
            raise ValueError(
                f"shallow water: lmax={self.lmax} on {nlat} Gauss latitudes; need 1 <= lmax <= "
                f"nlat - 2 (alias-free: lmax = (2 nlat - 1) // 3). Use a finer grid."
            )
        self.a, self.g, self.omega, self.H, self.dt = radius, gravity, omega, mean_depth, dt
        L = self.lmax + 1
        theta, w = quadrature("legendre-gauss", nlat)
        mu = np.cos(theta)  # sin(latitude)
        p = legendre(L, self.lmax, theta)  # degrees 0..L for the H recurrence
        h = np.zeros((L, nlat, L))
        for m in range(L):
            for l in range(m, L):
                h[m, :, l] = -l * _eps(l + 1, m) * p[m, :, l + 1]
                if l > m:
                    h[m, :, l] += (l + 1) * _eps(l, m) * p[m, :, l - 1]

        def tensor(a):
            return torch.from_numpy(np.ascontiguousarray(a)).to(torch.complex128)

        self.P, self.Hm = tensor(p[:, :, :L]), tensor(h)  # (M, nlat, L)
        quad = 2 * math.pi * w
        # Forward bases: quadrature weights, and for div/curl also the 1 / (1 - mu^2) of U, V.
        weights, weights_cos = quad[None, :, None], (quad / (1 - mu**2))[None, :, None]
        self.Pw, self.Pw_cos, self.Hw_cos = (
            tensor(p[:, :, :L] * weights),
            tensor(p[:, :, :L] * weights_cos),
            tensor(h * weights_cos),
        )
        self.mu, self.cos2 = torch.from_numpy(mu)[:, None], torch.from_numpy(1 - mu**2)[:, None]
        self.weights = torch.from_numpy(quad / self.nlon)[:, None]  # area weights / a^2 per point
        self.im = 1j * torch.arange(L, dtype=torch.float64)  # i m, (M,)
        l = torch.arange(L, dtype=torch.float64)[:, None]
        self.lap = -(l * (l + 1)) / radius**2  # (L, 1) eigenvalues of the Laplacian
        self.inv_lap = torch.where(l > 0, 1 / torch.where(l > 0, self.lap, 1.0), 0.0)
        self.mask = torch.ones(L, L, dtype=torch.float64).tril()
        lon = 2 * math.pi * torch.arange(self.nlon, dtype=torch.float64) / self.nlon
        self.f = (
            2 * omega * (-torch.cos(lon)[None, :] * torch.sqrt(self.cos2) * math.sin(alpha) + self.mu * math.cos(alpha))
        )  # (nlat, nlon)
        rate = (l * (l + 1) / (self.lmax * (self.lmax + 1))) ** 4
        self.hyper = (
            torch.exp(-dt / (3600 * hyperdiffusion_hours) * rate) if hyperdiffusion_hours > 0 else torch.ones_like(rate)
        )
        check_time_step(dt, self.lmax, radius, gravity * mean_depth)

    # -- transforms (m-major Legendre tensors (M, nlat, L), longitude by the FFT) ------------------
    def to_grid(self, s: torch.Tensor, p: torch.Tensor | None = None) -> torch.Tensor:
        """Coefficients (..., L, M) -> grid (..., nlat, nlon), with Pbar (default) or another (M, nlat, L) basis."""
        fm = torch.einsum("...lm,mjl->...jm", s, self.P if p is None else p)
        return torch.fft.irfft(fm, n=self.nlon, norm="forward")

    def _fourier(self, g: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft(g, norm="forward")[..., : self.lmax + 1]

    def to_spec(self, g: torch.Tensor) -> torch.Tensor:
        """Grid (..., nlat, nlon) -> coefficients (..., L, M) by Gauss quadrature."""
        return torch.einsum("...jm,mjl->...lm", self._fourier(g), self.Pw) * self.mask

    def div_curl(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Divergence and curl coefficients of the vector field (a, b) / cos(lat) given a, b on the grid."""
        am, bm = self._fourier(a), self._fourier(b)
        div = torch.einsum("...jm,mjl->...lm", self.im * am, self.Pw_cos) - torch.einsum(
            "...jm,mjl->...lm", bm, self.Hw_cos
        )
        curl = torch.einsum("...jm,mjl->...lm", self.im * bm, self.Pw_cos) + torch.einsum(
            "...jm,mjl->...lm", am, self.Hw_cos
        )
        return div * self.mask / self.a, curl * self.mask / self.a

    def velocity(self, zeta: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """U = u cos(lat), V = v cos(lat) on the grid from vorticity and divergence coefficients."""
        psi, chi = zeta * self.inv_lap, delta * self.inv_lap
        u = (self.to_grid(self.im * chi) - self.to_grid(psi, self.Hm)) / self.a
        v = (self.to_grid(self.im * psi) + self.to_grid(chi, self.Hm)) / self.a
        return u, v

    # -- dynamics ---------------------------------------------------------------------------------
    def tendency(self, state: torch.Tensor) -> torch.Tensor:
        """d/dt of (zeta, delta, Phi') coefficients, (B, 3, L, M)."""
        zeta, delta, phi = state.unbind(1)
        u, v = self.velocity(zeta, delta)
        absolute = self.to_grid(zeta) + self.f
        phi_grid = self.to_grid(phi)
        div_q, curl_q = self.div_curl(absolute * u, absolute * v)
        div_phi, _ = self.div_curl(phi_grid * u, phi_grid * v)
        kinetic = self.to_spec((u**2 + v**2) / (2 * self.cos2))
        return torch.stack((-div_q, curl_q - self.lap * (phi + kinetic), -div_phi - self.g * self.H * delta), 1)

    def step(self, state: torch.Tensor) -> torch.Tensor:
        """One RK4 step of dt, then the hyperdiffusion factor."""
        dt = self.dt
        k1 = self.tendency(state)
        k2 = self.tendency(state + 0.5 * dt * k1)
        k3 = self.tendency(state + 0.5 * dt * k2)
        k4 = self.tendency(state + dt * k3)
        return (state + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)) * self.hyper

    def integrate(self, state: torch.Tensor, t_final: float, record_dt: float, progress: bool = False) -> torch.Tensor:
        """States (B, T, 3, L, M) at t = 0, record_dt, ..., t_final; raises if the run blows up."""
        per_record = whole_ratio(record_dt, self.dt, "record_dt", "dt")
        n_records = whole_ratio(t_final, record_dt, "t_final", "record_dt")
        out = [state]
        for r in progress_bar(
            range(n_records), desc=f"shallow water {self.nlat}x{self.nlon}", disable=not progress, leave=False
        ):
            for _ in range(per_record):
                state = self.step(state)
            if not torch.isfinite(torch.view_as_real(state)).all():
                raise FloatingPointError(
                    f"shallow water: the solution became non-finite by "
                    f"t={(r + 1) * record_dt:g} s (nlat={self.nlat}, dt={self.dt:g} s). "
                    "Use a smaller dt or more "
                    "hyperdiffusion (shorter hyperdiffusion_hours)."
                )
            out.append(state)
        return torch.stack(out, 1)

    # -- initial states and diagnostics -------------------------------------------------------------
    def balanced(self, zeta: torch.Tensor) -> torch.Tensor:
        """The state (B, 3, L, M) with vorticity zeta, no divergence, and Phi' in nonlinear balance."""
        state = torch.stack((zeta, torch.zeros_like(zeta), torch.zeros_like(zeta)), 1)
        ddelta = self.tendency(state)[:, 1]  # = curl - lap(kinetic) at Phi' = 0
        state[:, 2] = ddelta * self.inv_lap  # lap Phi' = ddelta makes d delta / dt = 0
        return state

    def fields(self, state: torch.Tensor) -> torch.Tensor:
        """Grid fields (..., 3, nlat, nlon): height anomaly h - H (m), vorticity, divergence (1/s)."""
        grid = self.to_grid(state)
        return torch.stack((grid[..., 2, :, :] / self.g, grid[..., 0, :, :], grid[..., 1, :, :]), -3)

    def integral(self, g: torch.Tensor) -> torch.Tensor:
        """Integral over the sphere (m^2 times g's unit) by Gauss quadrature, over the last two axes."""
        return (g * self.weights).sum((-2, -1)) * self.a**2

    def invariants(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mass (int h dA), total energy (int h |u|^2 / 2 + g h^2 / 2 dA) and potential enstrophy
        (int (zeta + f)^2 / (2 h) dA) of states (..., 3, L, M); h = H + Phi' / g."""
        zeta, delta, phi = state.unbind(-3)
        u, v = self.velocity(zeta, delta)
        h = self.H + self.to_grid(phi) / self.g
        energy = 0.5 * h * (u**2 + v**2) / self.cos2 + 0.5 * self.g * h**2
        enstrophy = (self.to_grid(zeta) + self.f) ** 2 / (2 * h)
        return {"mass": self.integral(h), "energy": self.integral(energy), "enstrophy": self.integral(enstrophy)}

    def williamson2(
        self, u0: float = 2 * math.pi * EARTH_RADIUS / (12 * 86400), gh0: float = 2.94e4, alpha: float = 0.0
    ) -> torch.Tensor:
        """Williamson test case 2 (steady zonal geostrophic flow), (1, 3, L, M); build the solver with
        mean_depth = gh0 / g and the same alpha."""
        lat, lon = self.latlon()
        cos_lat, sin_lat = torch.cos(lat), torch.sin(lat)
        u = u0 * (cos_lat * math.cos(alpha) + torch.cos(lon) * sin_lat * math.sin(alpha))
        v = -u0 * torch.sin(lon) * math.sin(alpha) + 0 * lat
        # phi' = -(a Omega u0 + u0^2 / 2) s^2 with s the sine of latitude about the rotated axis
        s = -torch.cos(lon) * cos_lat * math.sin(alpha) + sin_lat * math.cos(alpha)
        phi = -(self.a * self.omega * u0 + u0**2 / 2) * s**2 + gh0 - self.g * self.H
        _, zeta = self.div_curl(u * cos_lat, v * cos_lat)
        return torch.stack((zeta, torch.zeros_like(zeta), self.to_spec(phi)), 0)[None]

    def williamson6(self, K: float = 7.848e-6, R: int = 4, h0: float = 8000.0) -> torch.Tensor:
        """Williamson test case 6 (Rossby-Haurwitz wave, wavenumber R), (1, 3, L, M)."""
        lat, lon = self.latlon()
        c, s = torch.cos(lat), torch.sin(lat)
        w, a, om = K, self.a, self.omega
        A = w / 2 * (2 * om + w) * c**2 + K**2 / 4 * c ** (2 * R) * (
            (R + 1) * c**2 + (2 * R**2 - R - 2) - 2 * R**2 * c ** (-2)
        )
        B = 2 * (om + w) * K / ((R + 1) * (R + 2)) * c**R * ((R**2 + 2 * R + 2) - (R + 1) ** 2 * c**2)
        C = K**2 / 4 * c ** (2 * R) * ((R + 1) * c**2 - (R + 2))
        phi = self.g * h0 + a**2 * (A + B * torch.cos(R * lon) + C * torch.cos(2 * R * lon)) - self.g * self.H
        zeta = 2 * w * s - K * s * c**R * (R**2 + 3 * R + 2) * torch.cos(R * lon)
        zeta_s = self.to_spec(zeta)
        return torch.stack((zeta_s, torch.zeros_like(zeta_s), self.to_spec(phi)), 0)[None]

    def latlon(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Latitude (nlat, 1) and longitude (1, nlon) in radians."""
        lon = 2 * math.pi * torch.arange(self.nlon, dtype=torch.float64) / self.nlon
        return torch.asin(self.mu), lon[None, :]


def _eps(l: int, m: int) -> float:
    return math.sqrt((l * l - m * m) / (4 * l * l - 1)) if l > 0 and l >= m else 0.0


def check_time_step(dt: float, lmax: int, radius: float, phi_mean: float) -> None:
    """Refuse a dt at which RK4 is unstable for the fastest resolved gravity wave."""
    frequency = math.sqrt(phi_mean * lmax * (lmax + 1)) / radius
    if dt * frequency > 2.0:
        raise ValueError(
            f"shallow water: dt={dt:g} s is too long for lmax={lmax}: the fastest gravity wave "
            f"(frequency {frequency:.3g} 1/s) makes RK4 unstable. Use dt <= {2.0 / frequency:.0f} s."
        )


def sphere_grf(rng: np.random.Generator, n_modes: int, alpha: float, tau: float) -> torch.Tensor:
    """Coefficients (L, L) complex of a zero-mean Gaussian random field on the unit sphere, L = n_modes + 1.

    a_lm ~ complex normal with variance (l (l + 1) + tau^2)^-alpha (a_l0 real), normalized to unit
    variance over the sphere; the draw depends on n_modes only, not on any grid.
    """
    L = n_modes + 1
    z = rng.standard_normal((L, L, 2)) / math.sqrt(2)
    z[:, 0, 0] *= math.sqrt(2)
    z[:, 0, 1] = 0
    l = np.arange(L)[:, None]
    a = (z[..., 0] + 1j * z[..., 1]) * (l * (l + 1) + tau**2) ** (-alpha / 2) * np.tri(L)
    a[0] = 0
    # Variance over the sphere: sum_l (|a_l0|^2 + 2 sum_m |a_lm|^2) / (4 pi)
    power = (np.abs(a[:, 0]) ** 2).sum() + 2 * (np.abs(a[:, 1:]) ** 2).sum()
    return torch.from_numpy(a / math.sqrt(power / (4 * math.pi)))


@dataclasses.dataclass(frozen=True)
class ShallowWaterParams(SnapshotTimes, ProblemParams):
    """One shallow-water data set: n trajectories of (height anomaly, vorticity, divergence) on the sphere.

    Attributes:
        resolution: Gauss-Legendre latitudes nlat of the stored grid (nlon = 2 nlat).
        n: number of trajectories.
        seed: trajectory i's initial state uses numpy's generator seeded with (seed, i).
        t_final: end time (s).
        record_dt: time between snapshots (s).
        dt: solver time step (s); record_dt must be a multiple of it.
        radius: sphere radius a (m).
        gravity: g (m/s^2).
        omega: rotation rate Omega (1/s).
        mean_depth: mean fluid depth H (m).
        max_wind: peak wind speed of the balanced initial flow (m/s).
        height_perturbation: standard deviation of the random height perturbation (m).
        alpha: GRF exponent of the angular power (l (l + 1) + tau^2)^-alpha (vorticity and height).
        tau: GRF tau.
        n_grf_modes: degrees drawn for the initial fields (truncated to the solver's lmax).
        hyperdiffusion_hours: e-folding time at lmax of the del^8 hyperdiffusion (0: none).
        oversample: solve on resolution * oversample latitudes and store the same expansion on
            the resolution grid.
    """

    problem: ClassVar[str] = "shallow_water"
    version: ClassVar[int] = 1
    grid: ClassVar[str] = "nodes"
    arrays: ClassVar[tuple[str, ...]] = ("u",)
    spatial_dims: ClassVar[int] = 2

    resolution: int = 32
    n: int = 100
    seed: int = 0
    t_final: float = 86400.0
    record_dt: float = 3600.0
    dt: float = 600.0
    radius: float = EARTH_RADIUS
    gravity: float = GRAVITY
    omega: float = OMEGA
    mean_depth: float = 1.0e4
    max_wind: float = 40.0
    height_perturbation: float = 50.0
    alpha: float = 2.0
    tau: float = 3.0
    n_grf_modes: int = 20
    hyperdiffusion_hours: float = 2.0
    oversample: int = 1

    def __post_init__(self):
        super().__post_init__()
        if self.resolution < 4:
            raise ValueError(f"shallow_water: resolution (Gauss latitudes) must be at least 4, got {self.resolution}.")
        if self.oversample < 1:
            raise ValueError(f"shallow_water: oversample must be at least 1, got {self.oversample}.")
        for name in ("radius", "gravity", "mean_depth", "dt"):
            if getattr(self, name) <= 0:
                raise ValueError(f"shallow_water: {name} must be positive, got {getattr(self, name)}.")
        whole_ratio(self.record_dt, self.dt, "record_dt", "dt")
        whole_ratio(self.t_final, self.record_dt, "t_final", "record_dt")
        nlat = self.resolution * self.oversample
        check_time_step(self.dt, alias_free_lmax(2 * nlat), self.radius, self.gravity * self.mean_depth)

    def grid_shape(self) -> tuple[int, int]:
        return self.resolution, 2 * self.resolution

    def solver(self) -> ShallowWaterSolver:
        return ShallowWaterSolver(
            self.resolution * self.oversample,
            None,
            self.radius,
            self.gravity,
            self.omega,
            self.mean_depth,
            self.dt,
            self.hyperdiffusion_hours,
        )

    def initial_state(self, solver: ShallowWaterSolver, i: int) -> torch.Tensor:
        """Trajectory i's initial state (1, 3, L, M): balanced flow plus a random height perturbation."""
        rng = np.random.default_rng([self.seed, i])
        zeta_c, h_c = (
            sphere_grf(rng, self.n_grf_modes, self.alpha, self.tau),
            sphere_grf(rng, self.n_grf_modes, self.alpha, self.tau),
        )
        L = solver.lmax + 1
        zeta = torch.zeros(L, L, dtype=torch.complex128)
        h = torch.zeros_like(zeta)
        k = min(L, zeta_c.shape[0])
        zeta[:k, :k], h[:k, :k] = zeta_c[:k, :k], h_c[:k, :k]
        u, v = solver.velocity(zeta, torch.zeros_like(zeta))
        speed = ((u**2 + v**2) / solver.cos2).sqrt().max()
        state = solver.balanced((zeta * self.max_wind / speed)[None])
        state[:, 2] += self.gravity * self.height_perturbation * h
        return state

    def generate(self, progress: bool = True, batch_size: int = 16, device=None) -> tuple[torch.Tensor]:
        """u: (n, T, 3, nlat, 2 nlat) float32 at t = 0, record_dt, ..., t_final. ``device`` is ignored
        (the solver runs in fp64 on the CPU)."""
        solver = self.solver()
        nlat, nlon = self.grid_shape()
        out = torch.empty((self.n, len(self.times()), 3, nlat, nlon), dtype=torch.float32)
        bar = progress_bar(total=self.n, desc=f"shallow water {nlat}x{nlon}", unit="traj", disable=not progress)
        for lo in range(0, self.n, batch_size):
            hi = min(lo + batch_size, self.n)
            state = torch.cat([self.initial_state(solver, i) for i in range(lo, hi)])
            states = solver.integrate(state, self.t_final, self.record_dt)  # (B, T, 3, L, M)
            grid = isht(torch.view_as_real(states), nlat, nlon, "legendre-gauss")  # (B, T, 3, nlat, nlon)
            out[lo:hi, :, 0] = (grid[:, :, 2] / self.gravity / UNITS["height"][0]).float()
            out[lo:hi, :, 1] = (grid[:, :, 0] / UNITS["vorticity"][0]).float()
            out[lo:hi, :, 2] = (grid[:, :, 1] / UNITS["divergence"][0]).float()
            bar.update(hi - lo)
        bar.close()
        return (out,)

    def to_dataset(self, arrays, meta) -> Trajectories:
        return Trajectories(
            arrays["u"],
            self.times(),
            grid="nodes",
            meta={
                **meta,
                "variables": list(VARIABLES),
                "units": [UNITS[v][1] for v in VARIABLES],
                "sphere_grid": "legendre-gauss",
            },
        )


def shallow_water_trajectories(
    resolution: int = 32,
    n: int = 100,
    seed: int = 0,
    *,
    cache_dir: PathLike | None = None,
    cache: bool = True,
    progress: bool = True,
    device=None,
    batch_size: int = 16,
    **params,
) -> Trajectories:
    """Trajectories u (n, T, 3, nlat, 2 nlat) at t = 0, record_dt, ..., t_final, cached on disk.

    The three per-snapshot variables are height anomaly (km), vorticity (1e-5 / s) and divergence
    (1e-6 / s).
    ``params`` are the other ShallowWaterParams fields.
    """
    p = ShallowWaterParams.from_kwargs(resolution=resolution, n=n, seed=seed, **params)
    return load_or_generate(p, cache_dir, cache=cache, progress=progress, batch_size=batch_size)


def shallow_water_dataset(
    resolution: int = 32,
    n: int = 100,
    seed: int = 0,
    *,
    cache_dir: PathLike | None = None,
    cache: bool = True,
    progress: bool = True,
    device=None,
    batch_size: int = 16,
    t_in: int = 1,
    t_out: int | None = 1,
    t_start: int = 0,
    window_stride: int = 0,
    **params,
) -> PDEDataset:
    """Pairs u(t) -> u(t + record_dt): by default one per trajectory, u(0) -> u(1 h); every one-step
    window of every trajectory with ``window_stride=1`` (SFNO's training set, configs/swe_sfno.yaml).

    x (N, 3 t_in, nlat, nlon) and y (N, 3 t_out, nlat, nlon): the three variables of each snapshot
    are consecutive channels (height, vorticity, divergence, then the next snapshot's).
    """
    from .timeseries import cut

    traj = shallow_water_trajectories(
        resolution, n, seed, cache_dir=cache_dir, cache=cache, progress=progress, batch_size=batch_size, **params
    )
    pairs = cut(traj, t_in, t_out, t_start, window_stride)
    return PDEDataset(pairs.x.flatten(1, 2), pairs.y.flatten(1, 2), meta=pairs.meta, grid=pairs.grid)
