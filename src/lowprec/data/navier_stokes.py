"""2D incompressible Navier-Stokes on the unit torus in vorticity form, the FNO paper's benchmark.

    ∂ω/∂t + u·∇ω = ν Δω + f,      u = (∂ψ/∂y, -∂ψ/∂x),   -Δψ = ω,      (x, y) in [0, 1)²

with ω the vorticity, u the (divergence-free) velocity, ψ the stream function.
The FNO-paper setting: ω0 a periodic Gaussian random field with covariance
σ²(-Δ + 49 I)^(-2.5) (σ as in its code, see :mod:`lowprec.data.grf`), forcing
f = 0.1 (sin 2π(x+y) + cos 2π(x+y)), ν = 1e-3 (T = 50), 1e-4 (T = 30) or 1e-5
(T = 20), snapshots every 1 time unit. Its files hold ω at t = 1..T on 64²
(solved on 256² and subsampled); its 2D model maps ω(t=1..10) to ω(t=11..T).

Method: pseudo-spectral. ω is held as its real FFT on the s × s grid
x_i = i/s; derivatives are products with 2πik; the product u·∇ω is formed on the
grid and transformed back with the 2/3 rule (modes with |k_x| or |k_y| > s/3 are
zeroed, as in the FNO code, so the quadratic term does not alias). The initial
vorticity is truncated the same way, so the state stays in the de-aliased band
and the semi-discrete scheme is a Galerkin method: its nonlinear term exchanges
energy between modes without creating or destroying any. The recorded ω(t=0) is
this truncated field, the initial condition the rest of the trajectory evolved from.

Time stepping: Crank-Nicolson for ν Δω (unconditionally stable, second order)
and second-order Adams-Bashforth for -u·∇ω + f (one FFT round trip per step;
the first step is forward Euler, which keeps the global error second order):

    (1 + ½ dt ν |2πk|²) ω̂^{n+1} = (1 - ½ dt ν |2πk|²) ω̂^n + dt (3/2 N̂^n - 1/2 N̂^{n-1} + f̂)

(the FNO code uses forward Euler for N with dt = 1e-4: first order in time).
The explicit part limits dt by the CFL number max|u| dt s. The default dt = 0.01
suits 64² in the FNO setting (max|u| stays below 0.3, CFL < 0.2), and the scheme is
second order in dt, so ω at t = 50 is within about 1e-4 (relative L2) of a much finer step. Use a
smaller dt on finer grids or at lower viscosity (keep max|u| dt s below ~0.3);
a run that blows up raises an error that says so and names dt.

Array convention: ``w[..., i, j] = ω(x_i, y_j)``: axis -2 is x, axis -1 is y.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import torch

from .._device import resolve_device
from .._progress import progress_bar
from .base import PathLike, ProblemParams, cpu_threads_for, load_or_generate, solver_dtype
from .dataset import PDEDataset
from .grf import sample_periodic_grf
from .timeseries import SnapshotTimes, Trajectories, cut, whole_ratio


def wavenumbers_2d(s: int, device=None, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer wavenumbers of rfft2 on an s × s grid: kx (s, 1) along axis -2, ky (1, s//2+1)."""
    kx = torch.fft.fftfreq(s, 1.0 / s, device=device, dtype=dtype)[:, None]
    ky = torch.fft.rfftfreq(s, 1.0 / s, device=device, dtype=dtype)[None, :]
    return kx, ky


def dealias_mask(s: int, device=None, dtype=torch.float64) -> torch.Tensor:
    """2/3 rule: 1 where |k_x| <= s/3 and |k_y| <= s/3, else 0; shape (s, s//2+1)."""
    kx, ky = wavenumbers_2d(s, device, dtype)
    return ((kx.abs() <= s / 3) & (ky.abs() <= s / 3)).to(dtype)


def fno_forcing(s: int, amplitude: float = 0.1, device=None, dtype=torch.float64) -> torch.Tensor:
    """f = amplitude (sin 2π(x+y) + cos 2π(x+y)) on the s × s grid x_i = i/s; shape (s, s)."""
    x = torch.arange(s, device=device, dtype=dtype) / s
    xy = x[:, None] + x[None, :]
    return amplitude * (torch.sin(2 * math.pi * xy) + torch.cos(2 * math.pi * xy))


def velocity_from_vorticity(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Velocity (u, v) = (∂ψ/∂y, -∂ψ/∂x) with -Δψ = ω, spectrally; w (..., s, s) -> two (..., s, s).

    The mean of ω is ignored (on the torus it must be 0) and the mean velocity is 0.
    """
    s = w.shape[-1]
    real = torch.promote_types(w.dtype, torch.float64)
    kx, ky = wavenumbers_2d(s, w.device, real)
    lap = 4 * math.pi**2 * (kx**2 + ky**2)
    lap[0, 0] = 1.0
    psi_h = torch.fft.rfft2(w.to(real)) / lap
    psi_h[..., 0, 0] = 0
    u = torch.fft.irfft2(2j * math.pi * ky * psi_h, s=(s, s))
    v = torch.fft.irfft2(-2j * math.pi * kx * psi_h, s=(s, s))
    return u.to(w.dtype), v.to(w.dtype)


def spectral_divergence(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """∂u/∂x + ∂v/∂y, spectrally, on the torus; (..., s, s)."""
    s = u.shape[-1]
    kx, ky = wavenumbers_2d(s, u.device, torch.promote_types(u.dtype, torch.float64))
    div_h = 2j * math.pi * (kx * torch.fft.rfft2(u.double()) + ky * torch.fft.rfft2(v.double()))
    return torch.fft.irfft2(div_h, s=(s, s))


def solve_navier_stokes(
    w0: torch.Tensor,
    viscosity: float,
    t_final: float,
    record_dt: float,
    dt: float = 0.01,
    forcing: torch.Tensor | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate the vorticity equation from w0 and record snapshots every ``record_dt``.

    Args:
        w0: (B, s, s) initial vorticity at x_i = i/s (its dtype and device are used).
        viscosity: ν.
        t_final: end time; a multiple of record_dt.
        record_dt: time between snapshots; a multiple of dt.
        dt: time step.
        forcing: (s, s) time-independent forcing f, or None for none.
        progress: show a progress bar over time steps.
    Returns:
        w: (B, T, s, s) vorticity at times t = 0, record_dt, ..., t_final (T = t_final/record_dt + 1),
        in w0's dtype and device; t: (T,) float64 times.
    Raises:
        FloatingPointError if the solution stops being finite (dt too large for the flow).
    """
    if w0.ndim != 3 or w0.shape[-1] != w0.shape[-2]:
        raise ValueError(f"w0 must be (B, s, s), got {tuple(w0.shape)}.")
    steps_per_record = whole_ratio(record_dt, dt, "record_dt", "dt")
    n_records = whole_ratio(t_final, record_dt, "t_final", "record_dt")
    B, s = w0.shape[0], w0.shape[-1]
    real = w0.dtype
    kx, ky = wavenumbers_2d(s, w0.device, real)
    lap = 4 * math.pi**2 * (kx**2 + ky**2)  # |2πk|², the symbol of -Δ
    lap_safe = lap.clone()
    lap_safe[0, 0] = 1.0  # ψ̂_0 = 0 anyway: ω̂_0 = 0
    mask = dealias_mask(s, w0.device, real)
    implicit = 1 + 0.5 * dt * viscosity * lap
    explicit = 1 - 0.5 * dt * viscosity * lap
    f_h = mask * torch.fft.rfft2(forcing.to(real)) if forcing is not None else 0.0
    d_dx, d_dy = 2j * math.pi * kx, 2j * math.pi * ky

    def nonlinear(w_h: torch.Tensor) -> torch.Tensor:
        """-(u·∇ω)^, de-aliased; one batched inverse FFT of the four fields, one forward."""
        psi_h = w_h / lap_safe
        fields = torch.fft.irfft2(torch.stack([d_dy * psi_h, -d_dx * psi_h, d_dx * w_h, d_dy * w_h]), s=(s, s))
        u, v, w_x, w_y = fields
        return -mask * torch.fft.rfft2(u * w_x + v * w_y)

    w_h = mask * torch.fft.rfft2(w0)
    w_h[..., 0, 0] = 0  # zero-mean vorticity: the only kind a periodic velocity has
    out = torch.empty((B, n_records + 1, s, s), dtype=real, device=w0.device)
    out[:, 0] = torch.fft.irfft2(w_h, s=(s, s))
    n_prev = None
    bar = progress_bar(
        total=n_records * steps_per_record,
        desc=f"navier-stokes {s}x{s}",
        unit="step",
        disable=not progress,
        leave=False,
    )
    for r in range(1, n_records + 1):
        for _ in range(steps_per_record):
            n_now = nonlinear(w_h)
            # Adams-Bashforth 2 (forward Euler on the very first step).
            n_ab = n_now if n_prev is None else 1.5 * n_now - 0.5 * n_prev
            w_h = (explicit * w_h + dt * (n_ab + f_h)) / implicit
            n_prev = n_now
        bar.update(steps_per_record)
        out[:, r] = torch.fft.irfft2(w_h, s=(s, s))
        if not torch.isfinite(out[:, r]).all():
            bar.close()
            raise FloatingPointError(
                f"Navier-Stokes solution became non-finite by t={r * record_dt:g} (s={s}, "
                f"viscosity={viscosity:g}, dt={dt:g}): the explicit advection step is unstable. Use a "
                f"smaller dt (CFL number max|u| dt s should stay below ~0.5)."
            )
    bar.close()
    t = torch.arange(n_records + 1, dtype=torch.float64) * record_dt
    return out, t


@dataclasses.dataclass(frozen=True)
class NavierStokesParams(SnapshotTimes, ProblemParams):
    """One Navier-Stokes data set: n trajectories of ω on the resolution² torus grid.

    Attributes:
        resolution: grid points per axis s (x_i = i/s); the output grid.
        n: number of trajectories.
        seed: trajectory i's initial vorticity uses numpy's generator seeded with (seed, i).
        viscosity: ν (FNO paper: 1e-3, 1e-4, 1e-5).
        t_final: end time T (FNO paper: 50, 30, 20 for the three viscosities).
        record_dt: time between snapshots (FNO paper: 1).
        dt: solver time step; record_dt must be a multiple of it.
        forcing_amplitude: A in the forcing A (sin 2π(x+y) + cos 2π(x+y)) (FNO: 0.1); 0 for none.
        alpha: GRF exponent α of σ²(-Δ + τ²)^(-α) for ω0 (FNO: 2.5).
        tau: GRF τ (FNO: 7).
        sigma: GRF σ (FNO: √2 · 7^1.5 ≈ 26.19, the normalisation of its GaussianRF).
        n_grf_modes: Fourier modes K per axis and sign drawn for ω0; resolution-independent.
        oversample: solve on resolution * oversample points per axis and keep every
            oversample-th (the FNO paper solved on 256² for its 64² data: oversample=4).
        dtype: arithmetic of the solver, "float64" or "float32" (the data is stored as float32).
    """

    problem: ClassVar[str] = "navier_stokes"
    version: ClassVar[int] = 1
    grid: ClassVar[str] = "periodic"
    arrays: ClassVar[tuple[str, ...]] = ("u",)
    spatial_dims: ClassVar[int] = 2

    resolution: int = 64
    n: int = 1000
    seed: int = 0
    viscosity: float = 1e-3
    t_final: float = 50.0
    record_dt: float = 1.0
    dt: float = 0.01
    forcing_amplitude: float = 0.1
    alpha: float = 2.5
    tau: float = 7.0
    sigma: float = math.sqrt(2.0) * 7.0**1.5
    n_grf_modes: int = 32
    oversample: int = 1
    dtype: str = "float64"

    def __post_init__(self):
        super().__post_init__()
        if self.resolution < 8:
            raise ValueError(f"navier_stokes: resolution must be at least 8, got {self.resolution}.")
        if self.viscosity <= 0:
            raise ValueError(f"navier_stokes: viscosity must be positive, got {self.viscosity}.")
        if self.oversample < 1:
            raise ValueError(f"navier_stokes: oversample must be at least 1, got {self.oversample}.")
        solver_dtype(self.problem, self.dtype)
        whole_ratio(self.record_dt, self.dt, "record_dt", "dt")
        whole_ratio(self.t_final, self.record_dt, "t_final", "record_dt")

    def initial_vorticity(self, i: int) -> np.ndarray:
        """Trajectory i's ω0 on the solver grid (resolution * oversample)², float64."""
        rng = np.random.default_rng([self.seed, i])
        return sample_periodic_grf(
            rng, self.resolution * self.oversample, self.n_grf_modes, self.alpha, self.tau, self.sigma, ndim=2
        )

    def generate(self, progress: bool = True, device=None, batch_size: int = 50) -> tuple[torch.Tensor]:
        """u: (n, T, s, s) float32 vorticity at t = 0, record_dt, ..., t_final.

        Trajectories are solved ``batch_size`` at a time on ``device`` (default: CUDA if
        available); neither changes the result beyond rounding.
        """
        device = resolve_device(device)
        real = solver_dtype(self.problem, self.dtype)
        S, k = self.resolution * self.oversample, self.oversample
        forcing = fno_forcing(S, self.forcing_amplitude, device, real) if self.forcing_amplitude else None
        out = torch.empty((self.n, len(self.times()), self.resolution, self.resolution), dtype=torch.float32)
        bar = progress_bar(
            total=self.n,
            desc=f"navier-stokes {self.resolution}x{self.resolution} nu={self.viscosity:g}",
            unit="traj",
            disable=not progress,
        )
        for lo in range(0, self.n, batch_size):
            hi = min(lo + batch_size, self.n)
            w0 = torch.from_numpy(np.stack([self.initial_vorticity(i) for i in range(lo, hi)]))
            with cpu_threads_for(w0.numel() * 4, device):
                w, _ = solve_navier_stokes(
                    w0.to(device=device, dtype=real), self.viscosity, self.t_final, self.record_dt, self.dt, forcing
                )
            out[lo:hi] = w[..., ::k, ::k].float().cpu()
            bar.update(hi - lo)
        bar.close()
        return (out,)

    def to_dataset(self, arrays, meta) -> Trajectories:
        return Trajectories(arrays["u"], self.times(), grid="periodic", meta=meta)


def navier_stokes_trajectories(
    resolution: int = 64,
    n: int = 1000,
    seed: int = 0,
    *,
    cache_dir: PathLike | None = None,
    cache: bool = True,
    progress: bool = True,
    device=None,
    batch_size: int = 50,
    **params,
) -> Trajectories:
    """Vorticity trajectories u (n, T, s, s) at t = 0, record_dt, ..., t_final, cached on disk.

    ``params`` are the other NavierStokesParams fields (viscosity, t_final, record_dt, dt, ...).
    """
    p = NavierStokesParams.from_kwargs(resolution=resolution, n=n, seed=seed, **params)
    return load_or_generate(p, cache_dir, cache=cache, progress=progress, device=device, batch_size=batch_size)


def navier_stokes_dataset(
    resolution: int = 64,
    n: int = 1000,
    seed: int = 0,
    *,
    cache_dir: PathLike | None = None,
    cache: bool = True,
    progress: bool = True,
    device=None,
    batch_size: int = 50,
    t_in: int = 10,
    t_out: int | None = None,
    t_start: int = 1,
    window_stride: int = 0,
    **params,
) -> PDEDataset:
    """Navier-Stokes pairs for an operator, the FNO paper's 2D setting by default.

    x = ω at snapshots t_start .. t_start+t_in-1 (channels), y = ω at the next t_out
    (default: all the rest). With the defaults (record_dt=1, T=50): x = ω(t=1..10)
    (10, s, s), y = ω(t=11..50) (40, s, s), as in the FNO paper. ``window_stride=k > 0``
    instead gives every window of t_in + t_out snapshots starting k apart (autoregressive
    training; t_out must then be given). Grid: periodic. ``params``: NavierStokesParams
    fields. For the full time series use :func:`navier_stokes_trajectories`.
    """
    traj = navier_stokes_trajectories(
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
