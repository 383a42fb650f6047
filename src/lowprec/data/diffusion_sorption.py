"""1D diffusion-sorption (PDEBench): a contaminant diffusing through soil that adsorbs it.

    ∂u/∂t = D / R(u) ∂²u/∂x²,      x in (0, 1), t in (0, 500]
    R(u) = 1 + ((1 - φ)/φ) ρ_s k_f n_f (u + ε)^(n_f - 1)        (Freundlich retardation)

with PDEBench's values D = 5e-4, φ = 0.29, ρ_s = 2880, k_f = 3.5e-4, n_f = 0.874,
ε = 1e-6 (PDEBench's solver adds ε so that R stays finite at u = 0), boundary
conditions u(0, t) = 1 and the Cauchy (outflow) condition at x = 1, and u0 a
constant drawn from U(0, 0.2) per sample (PDEBench's generator draws one number).
PDEBench's paper writes the outflow condition as u(1, t) = D ∂u/∂x(1, t), but its
solver imposes u = -D ∂u/∂x (ghost value D (u_{N-2} - u_{N-1}) / Δx): the diffusive
flux out of the domain equals u, the well-posed sign (the other one feeds energy
in). We implement the solver's meaning: -D ∂u/∂x (1, t) = u(1, t).

Conservative form. Since R(u) = dm/du for m(u) = u + c (u + ε)^n_f, c = (1-φ)/φ ρ_s k_f,
the equation is ∂m(u)/∂t = ∂/∂x (D ∂u/∂x): m is the total (dissolved + sorbed)
amount. Finite volumes on N cells of width h (centres (i + ½) h) balance it
exactly: h dm_i/dt = F_{i-½} - F_{i+½} with F = -D ∂u/∂x, F_{i+½} = -D (u_{i+1} - u_i)/h,
F_{-½} = 2D (1 - u_0)/h (u = 1 on the face x = 0, half a cell from the centre) and
F_{N-½} = u_b, the face value from -D (u_b - u_{N-1})/(h/2) = u_b.

Time stepping: implicit, BDF2 (second order, L-stable; the first step backward
Euler), the nonlinear m solved by Newton's method with a tridiagonal Jacobian
(parallel cyclic reduction, batched, in torch). Because the update is conservative,
the total amount changes by exactly the boundary fluxes the step uses;
:func:`solve_diffusion_sorption` returns those cumulative fluxes, and the tests
check the balance to rounding. With R = 1 (k_f = 0) it is linear diffusion, and the
tests check second-order convergence to the exact series solution.

The default dt = 0.5 keeps the snapshots within about 1e-3 (relative L2) of a
ten times finer step at t = 5, where the start from the jump at x = 0 is the hard part,
and far closer later on.

PDEBench's data (``1D_diff-sorp_NA_NA.h5``): 1024 cells, 101 snapshots t = 0, 5, ..., 500;
PDEBench integrated its semi-discrete equations (non-conservative form, Dirichlet value
at a ghost cell) with an adaptive explicit Runge-Kutta method (RK45).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from .._device import resolve_device
from .._progress import progress_bar
from .base import PathLike, ProblemParams, cpu_threads_for, load_or_generate
from .dataset import PDEDataset
from .timeseries import SnapshotTimes, Trajectories, cut, whole_ratio


def solve_tridiagonal(lower: torch.Tensor, diag: torch.Tensor, upper: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve batched tridiagonal systems by parallel cyclic reduction; all (B, N).

    Row i reads lower[i] x[i-1] + diag[i] x[i] + upper[i] x[i+1] = rhs[i]; lower[:, 0]
    and upper[:, -1] are ignored. log2(N) rounds of whole-array operations (no loop over
    N), stable for diagonally dominant matrices such as the ones here.
    """
    a, b, c, d = lower.clone(), diag.clone(), upper.clone(), rhs.clone()
    a[:, 0] = 0
    c[:, -1] = 0
    n = b.shape[-1]
    stride = 1
    while stride < n:

        def before(t, fill):  # t[i - stride], fill where that is outside
            return torch.cat([torch.full_like(t[:, :stride], fill), t[:, :-stride]], dim=1)

        def after(t, fill):  # t[i + stride]
            return torch.cat([t[:, stride:], torch.full_like(t[:, :stride], fill)], dim=1)

        alpha = -a / before(b, 1.0)
        gamma = -c / after(b, 1.0)
        a, b, c, d = (
            alpha * before(a, 0.0),
            b + alpha * before(c, 0.0) + gamma * after(a, 0.0),
            gamma * after(c, 0.0),
            d + alpha * before(d, 0.0) + gamma * after(d, 0.0),
        )
        stride *= 2
    return d / b


def solve_diffusion_sorption(
    u0: torch.Tensor,
    t_final: float = 500.0,
    record_dt: float = 5.0,
    dt: float = 0.5,
    D: float = 5e-4,
    porosity: float = 0.29,
    rho_s: float = 2880.0,
    k_f: float = 3.5e-4,
    n_f: float = 0.874,
    eps: float = 1e-6,
    u_left: float = 1.0,
    newton_tol: float = 1e-10,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """Implicit finite-volume solution of the diffusion-sorption equation from u0.

    Args:
        u0: (B, N) initial cell values (its dtype and device are used; float64 advised).
        t_final, record_dt, dt: end time, time between snapshots, time step (each a whole
            multiple of the next).
        D, porosity, rho_s, k_f, n_f, eps: the PDE's coefficients (k_f = 0 gives R = 1).
        u_left: Dirichlet value at x = 0.
        newton_tol: stop Newton when the largest update is below this.
    Returns:
        dict with ``u`` (B, T, N) at t = 0, record_dt, ..., t_final; ``t`` (T,);
        ``inflow``, ``outflow`` (B, T): cumulative amount through x = 0 (in) and x = 1
        (out) since t = 0, as the scheme counts it; ``mass`` (B, T): h Σ_i m(u_i), so that
        mass - mass[:, :1] == inflow - outflow to rounding.
    """
    if u0.ndim != 2:
        raise ValueError(f"u0 must be (B, N), got {tuple(u0.shape)}.")
    steps_per_record = whole_ratio(record_dt, dt, "record_dt", "dt")
    n_records = whole_ratio(t_final, record_dt, "t_final", "record_dt")
    B, N = u0.shape
    h = 1.0 / N
    c_sorb = (1 - porosity) / porosity * rho_s * k_f
    kappa = (2 * D / h) / (1 + 2 * D / h)  # outflow flux per unit u_{N-1}

    def amount(u):  # m(u): dissolved + sorbed
        return u + c_sorb * (u + eps) ** n_f

    def retardation(u):  # R(u) = m'(u)
        return 1 + c_sorb * n_f * (u + eps) ** (n_f - 1)

    # Linear part: h dm/dt = -A u + b. Off-diagonals -D/h; the diagonal collects each face.
    off = torch.full((B, N), -D / h, dtype=u0.dtype, device=u0.device)
    a_diag = torch.full((B, N), 2 * D / h, dtype=u0.dtype, device=u0.device)
    a_diag[:, 0] = 3 * D / h  # interior face + Dirichlet face at half a cell
    a_diag[:, -1] = D / h + kappa  # interior face + outflow face
    if N == 1:
        a_diag[:, 0] = 2 * D / h + kappa

    def apply_a(u):
        au = a_diag * u
        au[:, 1:] += off[:, 1:] * u[:, :-1]
        au[:, :-1] += off[:, :-1] * u[:, 1:]
        return au

    b_left = 2 * D / h * u_left

    def boundary_fluxes(u):  # (inflow at x = 0, outflow at x = 1), each (B,)
        return 2 * D / h * (u_left - u[:, 0]), kappa * u[:, -1]

    u = u0.clone()
    m_now, m_prev = amount(u), None
    rec = {"u": torch.empty((B, n_records + 1, N), dtype=u0.dtype, device=u0.device)}
    for name in ("inflow", "outflow", "mass"):
        rec[name] = torch.zeros((B, n_records + 1), dtype=u0.dtype, device=u0.device)
    rec["u"][:, 0] = u
    rec["mass"][:, 0] = h * m_now.sum(-1)
    q_in = q_out = 0.0  # cumulative fluxes
    dq_in = dq_out = None  # last step's increments (BDF2 recursion)
    for r in progress_bar(
        range(1, n_records + 1), desc=f"diffusion-sorption {N}", unit="record", disable=not progress, leave=False
    ):
        for _ in range(steps_per_record):
            # BDF2: h (3 m^{n+1} - 4 m^n + m^{n-1}) / 2 = dt (b - A u^{n+1}); first step BE.
            first = m_prev is None
            a_coef = 1.0 if first else 1.5
            target = m_now if first else 2.0 * m_now - 0.5 * m_prev
            u_new = u.clone()
            for _it in range(30):
                resid = h * (a_coef * amount(u_new) - target) + dt * apply_a(u_new)
                resid[:, 0] -= dt * b_left
                jac_diag = h * a_coef * retardation(u_new) + dt * a_diag
                step = solve_tridiagonal(dt * off, jac_diag, dt * off, resid)
                # The exact solution stays >= 0; keep Newton's iterates where m is defined.
                u_new = (u_new - step).clamp(min=0.0)
                if step.abs().max() < newton_tol:
                    break
            else:
                raise FloatingPointError(
                    f"diffusion-sorption: Newton did not converge at t~{r * record_dt:g} "
                    f"(last update {step.abs().max().item():.2e}); use a smaller dt "
                    f"(now {dt:g})."
                )
            f_in, f_out = boundary_fluxes(u_new)
            # The increments the scheme's balance uses: BE dt B^{n+1}; BDF2 (2 dt B^{n+1} + q^n) / 3.
            dq_in = dt * f_in if first else (2 * dt * f_in + dq_in) / 3
            dq_out = dt * f_out if first else (2 * dt * f_out + dq_out) / 3
            q_in, q_out = q_in + dq_in, q_out + dq_out
            m_prev, m_now, u = m_now, amount(u_new), u_new
        rec["u"][:, r] = u
        rec["inflow"][:, r], rec["outflow"][:, r] = q_in, q_out
        rec["mass"][:, r] = h * m_now.sum(-1)
    rec["t"] = torch.arange(n_records + 1, dtype=torch.float64) * record_dt
    return rec


@dataclasses.dataclass(frozen=True)
class DiffusionSorptionParams(SnapshotTimes, ProblemParams):
    """PDEBench diffusion-sorption data: n trajectories on ``resolution`` cells of (0, 1).

    Attributes:
        resolution: number of cells N (PDEBench: 1024); values at centres (i + ½)/N.
        n: number of trajectories.
        seed: trajectory i's u0 uses numpy's generator seeded with (seed, i).
        t_final: end time (PDEBench: 500).
        record_dt: time between snapshots (PDEBench: 5, 101 snapshots).
        dt: implicit time step; record_dt must be a multiple of it.
        D: diffusion coefficient (PDEBench: 5e-4).
        porosity: φ (PDEBench: 0.29).
        rho_s: bulk density ρ_s (PDEBench: 2880).
        k_f: Freundlich coefficient (PDEBench: 3.5e-4; 0 gives R = 1, linear diffusion).
        n_f: Freundlich exponent (PDEBench: 0.874).
        eps: ε added to u in R(u) (PDEBench: 1e-6).
        u0_max: u0 is a constant drawn from U(0, u0_max) (PDEBench: 0.2).
    """

    problem: ClassVar[str] = "diffusion_sorption"
    version: ClassVar[int] = 1
    grid: ClassVar[str] = "nodes"
    arrays: ClassVar[tuple[str, ...]] = ("u",)
    spatial_dims: ClassVar[int] = 1

    resolution: int = 1024
    n: int = 1000
    seed: int = 0
    t_final: float = 500.0
    record_dt: float = 5.0
    dt: float = 0.5
    D: float = 5e-4
    porosity: float = 0.29
    rho_s: float = 2880.0
    k_f: float = 3.5e-4
    n_f: float = 0.874
    eps: float = 1e-6
    u0_max: float = 0.2

    def __post_init__(self):
        super().__post_init__()
        if self.D <= 0 or not 0 < self.porosity < 1 or self.k_f < 0 or self.eps <= 0 or self.u0_max < 0:
            raise ValueError(
                "diffusion_sorption: need D > 0, 0 < porosity < 1, k_f >= 0, eps > 0, "
                f"u0_max >= 0; got D={self.D}, porosity={self.porosity}, k_f={self.k_f}, "
                f"eps={self.eps}, u0_max={self.u0_max}."
            )
        whole_ratio(self.record_dt, self.dt, "record_dt", "dt")
        whole_ratio(self.t_final, self.record_dt, "t_final", "record_dt")

    def initial(self, i: int) -> np.ndarray:
        """Sample i's u0: the constant U(0, u0_max) in every cell (as PDEBench), float64."""
        return np.full(self.resolution, np.random.default_rng([self.seed, i]).uniform(0, self.u0_max))

    def generate(self, progress: bool = True, device=None, batch_size: int = 250) -> tuple[torch.Tensor]:
        """u: (n, T, N) float32 at t = 0, record_dt, ..., t_final."""
        device = resolve_device(device)
        out = torch.empty((self.n, len(self.times()), self.resolution), dtype=torch.float32)
        bar = progress_bar(
            total=self.n, desc=f"diffusion-sorption {self.resolution}", unit="traj", disable=not progress
        )
        coefficients = {k: getattr(self, k) for k in ("D", "porosity", "rho_s", "k_f", "n_f", "eps")}
        for lo in range(0, self.n, batch_size):
            hi = min(lo + batch_size, self.n)
            u0 = torch.from_numpy(np.stack([self.initial(i) for i in range(lo, hi)]))
            with cpu_threads_for(u0.numel() * 4, device):
                rec = solve_diffusion_sorption(
                    u0.to(device=device, dtype=torch.float64), self.t_final, self.record_dt, self.dt, **coefficients
                )
            out[lo:hi] = rec["u"].float().cpu()
            bar.update(hi - lo)
        bar.close()
        return (out,)

    def meta(self):
        return {**super().meta(), "cell_centred": True}

    def to_dataset(self, arrays, meta) -> Trajectories:
        return Trajectories(arrays["u"], self.times(), grid="nodes", meta=meta)


def diffusion_sorption_trajectories(
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
    """Diffusion-sorption trajectories u (n, 101, N) at t = 0, 5, ..., 500 (defaults); cached."""
    p = DiffusionSorptionParams.from_kwargs(resolution=resolution, n=n, seed=seed, **params)
    return load_or_generate(p, cache_dir, cache=cache, progress=progress, device=device, batch_size=batch_size)


def diffusion_sorption_dataset(
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
    """Diffusion-sorption pairs: x = the first t_in=10 snapshots, y = the rest (91), node grid.

    (Cell-centred and not periodic; "nodes" is the closer of the two grid kinds.)
    PDEBench trains autoregressively: ``t_out=1, window_stride=1``.
    ``params``: DiffusionSorptionParams fields.
    """
    traj = diffusion_sorption_trajectories(
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
