"""Trajectories: solutions recorded over time, and the input/output windows cut from them.

    u: (N, T, *grid) float tensor  -- N solutions, T snapshots each (a scalar field)
    t: (T,) float64 tensor         -- the snapshot times, increasing

An operator learns from pairs, so a time series is presented as a
:class:`~lowprec.data.dataset.PDEDataset` whose channels are snapshots:

* :meth:`Trajectories.pairs` ``(t_in, t_out, start)``: one pair per trajectory,
  x = u(t_start .. t_start+t_in-1), y = the next t_out snapshots. The FNO paper's
  Navier-Stokes setting is ``pairs(t_in=10, t_out=40, start=1)`` (its files hold
  ω at t = 1..50; ω0 is not an input); its Burgers setting is ``pairs(1, 1)`` on
  the snapshots (u0, u(1)).
* :meth:`Trajectories.windows` ``(t_in, t_out, stride)``: every window of
  t_in + t_out consecutive snapshots, for autoregressive training (``windows(1, 1)``
  is all one-step pairs u(t_k) -> u(t_k+1); PDEBench trains with t_in=10, t_out=1).
  Windows are copies: they take (t_in + t_out) / T times the memory of u per
  window start. Split trajectories *before* windowing (``traj.split(...)``), or
  windows of one trajectory end up on both sides of the split.

Every derived data set records the snapshot times of its channels in
``meta["t_x"]`` and ``meta["t_y"]`` (window 0 for :meth:`windows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from .dataset import GRIDS, PDEDataset, _check_finite, check_strides


class Trajectories(Dataset):
    """N recorded solutions ``u`` (N, T, *grid) at times ``t`` (T,).

    Args:
        u: (N, T, *grid) floating tensor, at least one grid axis.
        t: (T,) snapshot times, strictly increasing (any sequence; kept as float64).
        grid: ``"nodes"`` or ``"periodic"`` (see :mod:`lowprec.data.dataset`).
        meta: problem parameters, source file...; copied into every derived data set.

    ``traj[i]`` is ``u[i]`` (T, *grid).
    """

    def __init__(
        self, u: torch.Tensor, t: torch.Tensor | Sequence[float], grid: str = "periodic", meta: dict | None = None
    ):
        if not isinstance(u, torch.Tensor) or not u.is_floating_point() or u.ndim < 3:
            raise ValueError(
                f"u must be a floating tensor (N, T, *grid) with at least one grid axis, "
                f"got {type(u).__name__} {tuple(getattr(u, 'shape', ()))}."
            )
        t = torch.as_tensor(t, dtype=torch.float64).flatten()
        if t.numel() != u.shape[1]:
            raise ValueError(
                f"u has {u.shape[1]} snapshots (axis 1 of {tuple(u.shape)}) but t has "
                f"{t.numel()} times; they must match one to one."
            )
        if t.numel() > 1 and not (t[1:] > t[:-1]).all():
            raise ValueError(f"snapshot times must increase strictly, got {t.tolist()[:8]}...")
        if grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}.")
        _check_finite("u", u)
        self.u, self.t, self.grid = u, t, grid
        self.meta: dict[str, Any] = dict(meta or {})

    def __len__(self) -> int:
        return self.u.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.u[i]

    def __repr__(self) -> str:
        problem = self.meta.get("problem", "")
        return (
            f"Trajectories({problem + ', ' if problem else ''}n={len(self)}, T={self.n_times} "
            f"(t={self.t[0].item():g}..{self.t[-1].item():g}), grid={tuple(self.u.shape[2:])}, "
            f"{self.grid!r})"
        )

    @property
    def n_times(self) -> int:
        return self.u.shape[1]

    @property
    def resolution(self) -> tuple[int, ...]:
        return tuple(self.u.shape[2:])

    def _derive(self, u: torch.Tensor, t: torch.Tensor | None = None) -> Trajectories:
        new = Trajectories.__new__(Trajectories)
        new.u, new.t, new.grid, new.meta = u, self.t if t is None else t, self.grid, dict(self.meta)
        return new

    def subset(self, indices: slice | Sequence[int] | torch.Tensor) -> Trajectories:
        """Trajectories selected by a slice, index list or boolean mask."""
        return self._derive(self.u[indices] if isinstance(indices, slice) else self.u[torch.as_tensor(indices)])

    def split(self, n_train: int, n_test: int | None = None) -> tuple[Trajectories, Trajectories]:
        """First n_train trajectories and the n_test after them (default: the rest)."""
        n = len(self)
        n_test = n - n_train if n_test is None else n_test
        if n_train < 1 or n_test < 1 or n_train + n_test > n:
            raise ValueError(
                f"cannot split {n} trajectories into n_train={n_train} and n_test={n_test}: "
                f"both must be at least 1 and together at most {n}."
            )
        return self.subset(slice(0, n_train)), self.subset(slice(n_train, n_train + n_test))

    def subsample(self, stride: int | Sequence[int] = 1, time_stride: int = 1) -> Trajectories:
        """Every stride-th grid point (same rules as PDEDataset.subsample) and time_stride-th snapshot."""
        if time_stride < 1:
            raise ValueError(f"time_stride must be at least 1, got {time_stride}.")
        strides = check_strides(self.resolution, stride, self.grid)
        index = (slice(None), slice(None, None, time_stride)) + tuple(slice(None, None, k) for k in strides)
        return self._derive(self.u[index], self.t[::time_stride])

    def _check_window(self, t_in: int, t_out: int, start: int) -> None:
        T = self.n_times
        if t_in < 1 or t_out < 1 or start < 0 or start + t_in + t_out > T:
            raise ValueError(
                f"cannot cut t_in={t_in} input and t_out={t_out} output snapshots starting at "
                f"snapshot {start} from trajectories of T={T} snapshots (t={self.t[0].item():g}.."
                f"{self.t[-1].item():g}): need t_in >= 1, t_out >= 1 and start + t_in + t_out <= {T}."
            )

    def _times(self, lo: int, hi: int) -> list[float]:
        return [round(v, 12) for v in self.t[lo:hi].tolist()]

    def pairs(self, t_in: int = 1, t_out: int | None = None, start: int = 0) -> PDEDataset:
        """One pair per trajectory: x = u[:, start : start+t_in], y = the next t_out snapshots.

        t_out defaults to every snapshot after the input. Returns a PDEDataset with
        x (N, t_in, *grid) and y (N, t_out, *grid) (views of u, no copy).
        """
        t_out = self.n_times - start - t_in if t_out is None else t_out
        self._check_window(t_in, t_out, start)
        mid, end = start + t_in, start + t_in + t_out
        meta = {
            **self.meta,
            "t_x": self._times(start, mid),
            "t_y": self._times(mid, end),
            "view": {"kind": "pairs", "t_in": t_in, "t_out": t_out, "start": start},
        }
        return PDEDataset(self.u[:, start:mid], self.u[:, mid:end], meta=meta, grid=self.grid)

    def windows(self, t_in: int = 1, t_out: int = 1, stride: int = 1, start: int = 0) -> PDEDataset:
        """Every window of t_in inputs and t_out outputs, window starts ``stride`` snapshots apart.

        Returns a PDEDataset of N * W pairs, trajectory-major (sample i*W + w is window w
        of trajectory i), x (N*W, t_in, *grid), y (N*W, t_out, *grid): a copy.
        """
        self._check_window(t_in, t_out, start)
        if stride < 1:
            raise ValueError(f"stride must be at least 1, got {stride}.")
        starts = torch.arange(start, self.n_times - t_in - t_out + 1, stride)
        index = starts[:, None] + torch.arange(t_in + t_out)  # (W, t_in + t_out)
        cut = self.u[:, index]  # (N, W, t_in + t_out, *grid)
        cut = cut.reshape(-1, t_in + t_out, *self.u.shape[2:])
        meta = {
            **self.meta,
            "t_x": self._times(start, start + t_in),
            "t_y": self._times(start + t_in, start + t_in + t_out),
            "view": {
                "kind": "windows",
                "t_in": t_in,
                "t_out": t_out,
                "stride": stride,
                "start": start,
                "windows_per_trajectory": len(starts),
            },
        }
        return PDEDataset(cut[:, :t_in], cut[:, t_in:], meta=meta, grid=self.grid)

    def view(self, kind: str = "pairs", **kwargs) -> PDEDataset:
        """``pairs(**kwargs)`` or ``windows(**kwargs)`` by name (what configs and files store)."""
        if kind == "pairs":
            return self.pairs(**kwargs)
        if kind == "windows":
            return self.windows(**kwargs)
        raise ValueError(f"unknown view {kind!r}; choose 'pairs' or 'windows'.")


def cut(
    traj: Trajectories, t_in: int = 1, t_out: int | None = None, t_start: int = 0, window_stride: int = 0
) -> PDEDataset:
    """``traj.pairs(t_in, t_out, t_start)``, or with window_stride=k > 0 every window k apart.

    The generators' ``*_dataset`` functions take these four arguments (from configs:
    ``problem_params: {t_in: 10, t_out: 1, window_stride: 1}``).
    """
    if window_stride:
        if t_out is None:
            raise ValueError("window_stride > 0 (autoregressive windows) needs t_out, e.g. t_out=1.")
        return traj.windows(t_in=t_in, t_out=t_out, stride=window_stride, start=t_start)
    return traj.pairs(t_in=t_in, t_out=t_out, start=t_start)


def whole_ratio(a: float, b: float, name_a: str, name_b: str) -> int:
    """a / b as a whole number >= 1, or a ValueError naming both (e.g. t_final and record_dt)."""
    q = a / b
    if q < 1 - 1e-9 or abs(q - round(q)) > 1e-6 * max(1.0, q):
        raise ValueError(
            f"{name_a}={a:g} must be a positive whole multiple of {name_b}={b:g} "
            f"(ratio {q:g}); choose {name_b} = {name_a} / k for a whole k."
        )
    return int(round(q))


class SnapshotTimes:
    """Mixin for time-series generator parameters with ``t_final`` and ``record_dt`` fields."""

    def times(self) -> torch.Tensor:
        """The snapshot times 0, record_dt, ..., t_final, float64."""
        return torch.arange(round(self.t_final / self.record_dt) + 1, dtype=torch.float64) * self.record_dt
