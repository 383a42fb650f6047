"""1D viscous Burgers' equation on the periodic unit interval, in the FNO and the PDEBench settings.

    ∂u/∂t + ∂(u²/2)/∂x = ν ∂²u/∂x²,      x in [0, 1) periodic

Two settings, two solvers, one exact reference:

* FNO paper (``"burgers"``): u0 a periodic Gaussian random field with covariance
  625 (-Δ + 25 I)^(-2) (σ = 25, τ = 5, α = 2, see :mod:`lowprec.data.grf`),
  ν = 0.1, the operator u0 -> u(·, 1). Its data were made by a spectral solver
  (chebfun) on 8192 points and subsampled. At ν = 0.1 the solution is smooth, so
  :func:`solve_burgers_spectral` is pseudo-spectral too: real FFT on the grid
  x_i = i/s, u² formed on the grid with the 2/3 rule, Crank-Nicolson for the
  diffusion and second-order Adams-Bashforth for the flux (as in
  :mod:`lowprec.data.navier_stokes`). Its error against the exact solution is
  second order in dt, spectral in s (tests). The recorded u0 is the random field
  restricted to the modes the solver keeps (|k| <= s/3), so x = u0 is exactly the
  initial condition y evolved from.
* PDEBench (``"burgers_pdebench"``): the diffusion coefficient is Nu/π with
  Nu = 0.001 (PDEBench's file attribute ``Nu``), t in [0, 2] recorded every
  0.01 (201 snapshots) on 1024 cells; u0 a sum of sines with random wave numbers,
  amplitudes and phases, sometimes rectified or windowed (:func:`pdebench_initial`).
  Shocks are then thinner than a cell, where a spectral method rings, so
  :func:`solve_burgers_fv` uses finite volumes like PDEBench's solver: MUSCL
  reconstruction with the monotonized-central limiter (PDEBench's), the exact
  Godunov flux of u²/2 (PDEBench uses a Roe-type upwind flux without entropy fix),
  central viscous flux, SSP-RK2 in time, dt from the CFL condition per sample.
  Second order where the solution is smooth (tests).
* :func:`burgers_cole_hopf`: the exact solution of the periodic problem by the
  Cole-Hopf transform, u = -2ν ∂x log φ with φ solving the heat equation, computed
  spectrally (exact to rounding when φ is resolved by the grid).

Array convention: u[..., i] = u(x_i), x_i = i/s (``"burgers"``) or the cell centre
(i + ½)/s (``"burgers_pdebench"``; the grid is periodic either way).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from .._device import resolve_device
from .._progress import progress_bar
from .base import PathLike, ProblemParams, cpu_threads_for, load_or_generate, solver_dtype
from .dataset import PDEDataset
from .grf import sample_periodic_grf
from .timeseries import SnapshotTimes, Trajectories, cut, whole_ratio

# ------------------------------------------------------------------------------- exact solution


def burgers_cole_hopf(u0: np.ndarray | torch.Tensor, viscosity: float, times: float | Sequence[float]) -> torch.Tensor:
    """Exact periodic solution at ``times`` from u0 on the grid x_i = i/s, by Cole-Hopf.

    u = c + v(x - ct, t) where c is the mean of u0 (Galilean invariance) and
    v = -2ν φ_x / φ, φ_t = ν φ_xx, φ(x, 0) = exp(-(1/2ν) ∫_0^x (u0 - c)). The
    antiderivative, the heat flow, φ_x and the shift are all exact in Fourier space, so
    the result is exact to rounding when u0 and φ(·, 0) are resolved on the grid (use a
    fine grid: φ varies on the scale ν / max|u0|).

    Args:
        u0: (..., s) initial values, float64 recommended.
        viscosity: ν > 0.
        times: a time or a sequence of times >= 0.
    Returns:
        (..., len(times), s) float64 tensor (the time axis is there even for one time).
    """
    u0 = torch.as_tensor(u0, dtype=torch.float64)
    times = [float(times)] if np.isscalar(times) else [float(t) for t in times]
    s = u0.shape[-1]
    k = 2 * math.pi * torch.fft.fftfreq(s, 1.0 / s, dtype=torch.float64)  # angular wavenumbers
    c = u0.mean(-1, keepdim=True)
    v_h = torch.fft.fft(u0 - c)
    ik = 1j * k
    ik_safe = ik.clone()
    ik_safe[0] = 1.0
    antiderivative = torch.fft.ifft(torch.where(k == 0, 0, v_h / ik_safe)).real
    # Shift the exponent so its largest value is 0: φ <= 1, no overflow; u is unchanged.
    exponent = -antiderivative / (2 * viscosity)
    phi_h = torch.fft.fft(torch.exp(exponent - exponent.amax(-1, keepdim=True)))
    out = []
    for t in times:
        heat = phi_h * torch.exp(-viscosity * k**2 * t)
        phi = torch.fft.ifft(heat).real
        phi_x = torch.fft.ifft(ik * heat).real
        v = -2 * viscosity * phi_x / phi
        shifted = torch.fft.ifft(torch.fft.fft(v) * torch.exp(-ik * c * t)).real  # v(x - ct)
        out.append(c + shifted)
    return torch.stack(out, dim=-2)


# ------------------------------------------------------------------------------- spectral solver


def solve_burgers_spectral(
    u0: torch.Tensor, viscosity: float, t_final: float, record_dt: float, dt: float = 1e-3, progress: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pseudo-spectral CN/AB2 solution of periodic viscous Burgers from u0, recorded every record_dt.

    Args:
        u0: (B, s) initial values at x_i = i/s (its dtype and device are used).
        viscosity: ν.
        t_final: end time, a multiple of record_dt; record_dt: a multiple of dt.
    Returns:
        u: (B, T, s) at t = 0, record_dt, ..., t_final; t: (T,) float64.
    """
    if u0.ndim != 2:
        raise ValueError(f"u0 must be (B, s), got {tuple(u0.shape)}.")
    steps_per_record = whole_ratio(record_dt, dt, "record_dt", "dt")
    n_records = whole_ratio(t_final, record_dt, "t_final", "record_dt")
    B, s = u0.shape
    k_int = torch.fft.rfftfreq(s, 1.0 / s, device=u0.device, dtype=u0.dtype)
    k = 2 * math.pi * k_int
    mask = (k_int <= s / 3).to(u0.dtype)  # 2/3 rule: u² of the kept modes does not alias
    implicit = 1 + 0.5 * dt * viscosity * k**2
    explicit = 1 - 0.5 * dt * viscosity * k**2

    def flux_term(u_h: torch.Tensor) -> torch.Tensor:
        """-(∂x u²/2)^, de-aliased."""
        u = torch.fft.irfft(u_h, n=s)
        return -0.5j * k * mask * torch.fft.rfft(u * u)

    u_h = mask * torch.fft.rfft(u0)
    out = torch.empty((B, n_records + 1, s), dtype=u0.dtype, device=u0.device)
    out[:, 0] = torch.fft.irfft(u_h, n=s)
    n_prev = None
    for r in progress_bar(
        range(1, n_records + 1), desc=f"burgers {s}", unit="record", disable=not progress, leave=False
    ):
        for _ in range(steps_per_record):
            n_now = flux_term(u_h)
            n_ab = n_now if n_prev is None else 1.5 * n_now - 0.5 * n_prev
            u_h = (explicit * u_h + dt * n_ab) / implicit
            n_prev = n_now
        out[:, r] = torch.fft.irfft(u_h, n=s)
        if not torch.isfinite(out[:, r]).all():
            raise FloatingPointError(
                f"Burgers solution became non-finite by t={r * record_dt:g} (s={s}, viscosity="
                f"{viscosity:g}, dt={dt:g}); use a smaller dt (keep max|u| dt s below ~0.3), or the "
                f"finite-volume solver for shocks thinner than the grid."
            )
    return out, torch.arange(n_records + 1, dtype=torch.float64) * record_dt


# ------------------------------------------------------------------------------- finite volumes


def _mc_slope(u: torch.Tensor) -> torch.Tensor:
    """Monotonized-central limited slope per cell (periodic): minmod(2 Δ-, 2 Δ+, (Δ- + Δ+)/2)."""
    d_minus = u - u.roll(1, -1)
    d_plus = u.roll(-1, -1) - u
    centred = 0.5 * (d_minus + d_plus)
    bound = 2 * torch.minimum(d_minus.abs(), d_plus.abs())
    return torch.where(d_minus * d_plus > 0, centred.sign() * torch.minimum(centred.abs(), bound), torch.zeros_like(u))


def _fv_rate(u: torch.Tensor, viscosity: float, dx: float) -> torch.Tensor:
    """du/dt of the semi-discrete scheme: -(F_{i+½} - F_{i-½}) / dx, periodic, (B, N)."""
    slope = _mc_slope(u)
    left = u + 0.5 * slope  # state just left of face i+½
    right = (u - 0.5 * slope).roll(-1, -1)  # state just right of face i+½
    # Exact Riemann (Godunov) flux of the convex flux u²/2.
    flux = 0.5 * torch.maximum(left.clamp(min=0) ** 2, right.clamp(max=0) ** 2)
    flux = flux - viscosity * (u.roll(-1, -1) - u) / dx
    return -(flux - flux.roll(1, -1)) / dx


def solve_burgers_fv(
    u0: torch.Tensor, viscosity: float, t_final: float, record_dt: float, cfl: float = 0.4, progress: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Finite-volume (MUSCL-MC, Godunov, SSP-RK2) solution of periodic viscous Burgers.

    Each sample b takes steps dt_b = record_dt / ceil(record_dt / dt_cfl) with
    dt_cfl = cfl / (max|u0_b| / dx + 2ν / dx²); max|u| never exceeds max|u0| (maximum
    principle), so this holds for the whole run. Samples never share a step size, so a
    sample's result does not depend on the others in its batch.

    Args:
        u0: (B, N) cell values (centres x_i = (i + ½)/N).
        viscosity: ν (PDEBench: Nu/π).
        t_final, record_dt: end time and time between snapshots (t_final a multiple).
        cfl: fraction of the stability limit.
    Returns:
        u: (B, T, N) at t = 0, record_dt, ..., t_final; t: (T,) float64.
    """
    if u0.ndim != 2:
        raise ValueError(f"u0 must be (B, N), got {tuple(u0.shape)}.")
    if not 0 < cfl <= 1:
        raise ValueError(f"cfl must be in (0, 1], got {cfl}.")
    n_records = whole_ratio(t_final, record_dt, "t_final", "record_dt")
    B, N = u0.shape
    dx = 1.0 / N
    rate_bound = u0.abs().amax(-1) / dx + 2 * viscosity / dx**2  # (B,)
    substeps = torch.ceil(record_dt * rate_bound / cfl).clamp(min=1)  # per sample
    dt = (record_dt / substeps)[:, None]
    out = torch.empty((B, n_records + 1, N), dtype=u0.dtype, device=u0.device)
    out[:, 0] = u = u0
    max_substeps = int(substeps.max())
    for r in progress_bar(
        range(1, n_records + 1), desc=f"burgers fv {N}", unit="record", disable=not progress, leave=False
    ):
        for j in range(max_substeps):
            # A sample that has finished this interval takes steps of 0 (u + 0 * rate = u).
            h = torch.where((j < substeps)[:, None], dt, torch.zeros_like(dt))
            stage = u + h * _fv_rate(u, viscosity, dx)
            u = 0.5 * (u + stage + h * _fv_rate(stage, viscosity, dx))
        out[:, r] = u
        if not torch.isfinite(u).all():
            raise FloatingPointError(
                f"finite-volume Burgers became non-finite by t={r * record_dt:g}; lower cfl (now {cfl})."
            )
    return out, torch.arange(n_records + 1, dtype=torch.float64) * record_dt


def pdebench_initial(
    rng: np.random.Generator, x: np.ndarray, k_tot: int = 4, n_waves: int = 2, p_abs: float = 0.1, p_window: float = 0.1
) -> np.ndarray:
    """PDEBench's random initial condition for 1D Burgers/advection on the cell centres x.

    u0 = Σ_{k=1..k_tot} A_k sin(2π k c_k x + φ_k), A_k ~ U(0, 1), φ_k ~ U(0, 2π), c_k the
    number of times k is among n_waves draws from {1..k_tot} (so unchosen k give the
    constants A_k sin φ_k, as in PDEBench's ``init_multi``); then |u0| with probability
    p_abs, a random sign, and with probability p_window a smooth window
    ½(tanh((x - x_L)/0.01) - tanh((x - x_R)/0.01)), x_L ~ U(0.1, 0.45), x_R ~ U(0.55, 0.9).
    PDEBench divides by x_N - x_1 = 1 - dx instead of 1, which makes its u0 slightly
    non-periodic; here the wave numbers are whole, so u0 is periodic.
    """
    counts = np.bincount(rng.integers(0, k_tot, size=n_waves), minlength=k_tot)
    amplitude = rng.uniform(0, 1, size=k_tot)
    phase = rng.uniform(0, 2 * math.pi, size=k_tot)
    wave = 2 * math.pi * np.arange(1, k_tot + 1) * counts
    u = (amplitude[:, None] * np.sin(wave[:, None] * x[None, :] + phase[:, None])).sum(0)
    if rng.uniform() < p_abs:
        u = np.abs(u)
    u = u * rng.choice([1.0, -1.0])
    if rng.uniform() < p_window:
        x_left, x_right = rng.uniform(0.1, 0.45), rng.uniform(0.55, 0.9)
        u = u * 0.5 * (np.tanh((x - x_left) / 0.01) - np.tanh((x - x_right) / 0.01))
    return u


# ------------------------------------------------------------------------------- data sets


@dataclasses.dataclass(frozen=True)
class BurgersParams(SnapshotTimes, ProblemParams):
    """FNO-paper Burgers data: n solutions on the periodic grid x_i = i / resolution.

    Attributes:
        resolution: grid points s (FNO paper: 8192 subsampled to 1024 .. 256).
        n: number of samples.
        seed: sample i's u0 uses numpy's generator seeded with (seed, i).
        viscosity: ν (FNO paper: 0.1).
        t_final: end time (FNO paper: 1).
        record_dt: time between snapshots (default t_final: just u0 and u(t_final)).
        dt: solver time step; record_dt must be a multiple of it.
        alpha: GRF exponent α of σ²(-Δ + τ²)^(-α) for u0 (FNO paper: 2).
        tau: GRF τ (FNO paper: 5).
        sigma: GRF σ (FNO paper: 25, i.e. covariance 625 (-Δ + 25 I)^(-2)).
        n_grf_modes: Fourier modes K per sign drawn for u0; resolution-independent.
        oversample: solve on resolution * oversample points, keep every oversample-th.
        dtype: solver arithmetic, "float64" or "float32" (stored as float32).
    """

    problem: ClassVar[str] = "burgers"
    version: ClassVar[int] = 1
    grid: ClassVar[str] = "periodic"
    arrays: ClassVar[tuple[str, ...]] = ("u",)
    spatial_dims: ClassVar[int] = 1

    resolution: int = 1024
    n: int = 1000
    seed: int = 0
    viscosity: float = 0.1
    t_final: float = 1.0
    record_dt: float = 1.0
    dt: float = 1e-3
    alpha: float = 2.0
    tau: float = 5.0
    sigma: float = 25.0
    n_grf_modes: int = 256
    oversample: int = 1
    dtype: str = "float64"

    def __post_init__(self):
        super().__post_init__()
        if self.resolution < 8 or self.viscosity <= 0 or self.oversample < 1:
            raise ValueError(
                f"burgers: need resolution >= 8, viscosity > 0, oversample >= 1; got "
                f"{self.resolution}, {self.viscosity}, {self.oversample}."
            )
        solver_dtype(self.problem, self.dtype)
        whole_ratio(self.record_dt, self.dt, "record_dt", "dt")
        whole_ratio(self.t_final, self.record_dt, "t_final", "record_dt")

    def initial(self, i: int) -> np.ndarray:
        """Sample i's u0 on the solver grid (resolution * oversample points), float64."""
        return sample_periodic_grf(
            np.random.default_rng([self.seed, i]),
            self.resolution * self.oversample,
            self.n_grf_modes,
            self.alpha,
            self.tau,
            self.sigma,
            ndim=1,
        )

    def generate(self, progress: bool = True, device=None, batch_size: int = 500) -> tuple[torch.Tensor]:
        """u: (n, T, s) float32 at t = 0, record_dt, ..., t_final."""
        device, dtype = resolve_device(device), solver_dtype(self.problem, self.dtype)
        k = self.oversample
        out = torch.empty((self.n, len(self.times()), self.resolution), dtype=torch.float32)
        bar = progress_bar(
            total=self.n, desc=f"burgers {self.resolution} nu={self.viscosity:g}", unit="sample", disable=not progress
        )
        for lo in range(0, self.n, batch_size):
            hi = min(lo + batch_size, self.n)
            u0 = torch.from_numpy(np.stack([self.initial(i) for i in range(lo, hi)]))
            with cpu_threads_for(u0.numel() * 4, device):
                u, _ = solve_burgers_spectral(
                    u0.to(device=device, dtype=dtype), self.viscosity, self.t_final, self.record_dt, self.dt
                )
            out[lo:hi] = u[..., ::k].float().cpu()
            bar.update(hi - lo)
        bar.close()
        return (out,)

    def to_dataset(self, arrays, meta) -> Trajectories:
        return Trajectories(arrays["u"], self.times(), grid="periodic", meta=meta)


@dataclasses.dataclass(frozen=True)
class BurgersPDEBenchParams(SnapshotTimes, ProblemParams):
    """PDEBench Burgers data: n trajectories on ``resolution`` periodic cells of [0, 1).

    Attributes:
        resolution: number of cells N (PDEBench: 1024); values at centres (i + ½)/N.
        n: number of trajectories.
        seed: trajectory i's u0 uses numpy's generator seeded with (seed, i).
        nu: PDEBench's Nu; the diffusion coefficient is Nu/π (PDEBench: 0.001 .. 1).
        t_final: end time (PDEBench: 2).
        record_dt: time between snapshots (PDEBench: 0.01, 201 snapshots).
        cfl: fraction of the explicit stability limit per step.
        k_tot: wave numbers 1..k_tot in u0 (PDEBench: 4).
        n_waves: draws among them (PDEBench: 2).
        p_abs: probability of taking |u0| (PDEBench: 0.1).
        p_window: probability of a tanh window on u0 (PDEBench: 0.1).
        dtype: solver arithmetic, "float64" or "float32" (stored as float32).
    """

    problem: ClassVar[str] = "burgers_pdebench"
    version: ClassVar[int] = 1
    grid: ClassVar[str] = "periodic"
    arrays: ClassVar[tuple[str, ...]] = ("u",)
    spatial_dims: ClassVar[int] = 1

    resolution: int = 1024
    n: int = 1000
    seed: int = 0
    nu: float = 0.001
    t_final: float = 2.0
    record_dt: float = 0.01
    cfl: float = 0.4
    k_tot: int = 4
    n_waves: int = 2
    p_abs: float = 0.1
    p_window: float = 0.1
    dtype: str = "float64"

    def __post_init__(self):
        super().__post_init__()
        if self.resolution < 4 or self.nu <= 0 or not 0 < self.cfl <= 1:
            raise ValueError(
                f"burgers_pdebench: need resolution >= 4, nu > 0, 0 < cfl <= 1; got "
                f"{self.resolution}, {self.nu}, {self.cfl}."
            )
        solver_dtype(self.problem, self.dtype)
        whole_ratio(self.t_final, self.record_dt, "t_final", "record_dt")

    @property
    def viscosity(self) -> float:
        return self.nu / math.pi

    def cell_centres(self) -> np.ndarray:
        return (np.arange(self.resolution) + 0.5) / self.resolution

    def initial(self, i: int) -> np.ndarray:
        return pdebench_initial(
            np.random.default_rng([self.seed, i]),
            self.cell_centres(),
            self.k_tot,
            self.n_waves,
            self.p_abs,
            self.p_window,
        )

    def generate(self, progress: bool = True, device=None, batch_size: int = 250) -> tuple[torch.Tensor]:
        """u: (n, T, N) float32 at t = 0, record_dt, ..., t_final."""
        device, dtype = resolve_device(device), solver_dtype(self.problem, self.dtype)
        out = torch.empty((self.n, len(self.times()), self.resolution), dtype=torch.float32)
        bar = progress_bar(
            total=self.n, desc=f"burgers-pdebench {self.resolution} Nu={self.nu:g}", unit="traj", disable=not progress
        )
        for lo in range(0, self.n, batch_size):
            hi = min(lo + batch_size, self.n)
            u0 = torch.from_numpy(np.stack([self.initial(i) for i in range(lo, hi)]))
            with cpu_threads_for(u0.numel() * 4, device):
                u, _ = solve_burgers_fv(
                    u0.to(device=device, dtype=dtype), self.viscosity, self.t_final, self.record_dt, self.cfl
                )
            out[lo:hi] = u.float().cpu()
            bar.update(hi - lo)
        bar.close()
        return (out,)

    def meta(self):
        return {**super().meta(), "cell_centred": True, "Nu": self.nu}

    def to_dataset(self, arrays, meta) -> Trajectories:
        return Trajectories(arrays["u"], self.times(), grid="periodic", meta=meta)


def burgers_trajectories(
    resolution: int = 1024,
    n: int = 1000,
    seed: int = 0,
    *,
    cache_dir: PathLike | None = None,
    cache: bool = True,
    progress: bool = True,
    device=None,
    batch_size: int = 500,
    **params,
) -> Trajectories:
    """FNO-setting Burgers solutions u (n, T, s) at t = 0, record_dt, ..., t_final; cached."""
    p = BurgersParams.from_kwargs(resolution=resolution, n=n, seed=seed, **params)
    return load_or_generate(p, cache_dir, cache=cache, progress=progress, device=device, batch_size=batch_size)


def burgers_dataset(
    resolution: int = 1024,
    n: int = 1000,
    seed: int = 0,
    *,
    cache_dir: PathLike | None = None,
    cache: bool = True,
    progress: bool = True,
    device=None,
    batch_size: int = 500,
    t_in: int = 1,
    t_out: int | None = None,
    t_start: int = 0,
    window_stride: int = 0,
    **params,
) -> PDEDataset:
    """The FNO paper's Burgers operator data: x = u0 (n, 1, s), y = u(·, 1) (n, 1, s), periodic.

    With record_dt < t_final, y holds every later snapshot (t_out of them); t_in, t_out,
    t_start, window_stride cut other pairs or autoregressive windows (see
    :func:`lowprec.data.timeseries.cut`). ``params``: BurgersParams fields.
    """
    traj = burgers_trajectories(
        resolution,
        n,
        seed,
        cache_dir=cache_dir,
        cache=cache,
        progress=progress,
        device=device,
        batch_size=batch_size,
        **params,
    )
    return cut(traj, t_in, t_out, t_start, window_stride)


def burgers_pdebench_trajectories(
    resolution: int = 1024,
    n: int = 1000,
    seed: int = 0,
    *,
    cache_dir: PathLike | None = None,
    cache: bool = True,
    progress: bool = True,
    device=None,
    batch_size: int = 250,
    **params,
) -> Trajectories:
    """PDEBench-setting Burgers trajectories u (n, 201, N) at t = 0, 0.01, ..., 2; cached."""
    p = BurgersPDEBenchParams.from_kwargs(resolution=resolution, n=n, seed=seed, **params)
    return load_or_generate(p, cache_dir, cache=cache, progress=progress, device=device, batch_size=batch_size)


def burgers_pdebench_dataset(
    resolution: int = 1024,
    n: int = 1000,
    seed: int = 0,
    *,
    cache_dir: PathLike | None = None,
    cache: bool = True,
    progress: bool = True,
    device=None,
    batch_size: int = 250,
    t_in: int = 10,
    t_out: int | None = None,
    t_start: int = 0,
    window_stride: int = 0,
    **params,
) -> PDEDataset:
    """PDEBench Burgers pairs: x = the first t_in=10 snapshots, y = the rest (191), periodic.

    PDEBench trains autoregressively on windows of 10 inputs and 1 output: pass
    ``t_out=1, window_stride=1`` (191 windows per trajectory, a copy of that size).
    ``params``: BurgersPDEBenchParams fields (nu, t_final, record_dt, cfl, ...).
    """
    traj = burgers_pdebench_trajectories(
        resolution,
        n,
        seed,
        cache_dir=cache_dir,
        cache=cache,
        progress=progress,
        device=device,
        batch_size=batch_size,
        **params,
    )
    return cut(traj, t_in, t_out, t_start, window_stride)
