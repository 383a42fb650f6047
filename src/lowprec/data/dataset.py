"""PDEDataset: input/output pairs on a grid, validated once so training never meets bad data.

    x: (N, C_in,  *grid) float tensor   -- e.g. Darcy coefficient a, (N, 1, s, s)
    y: (N, C_out, *grid) float tensor   -- e.g. Darcy solution u,    (N, 1, s, s)

``dataset[i]`` is ``(x[i], y[i])``, so a plain ``DataLoader`` batches it.

Grids come in two kinds, which decide how a grid may be subsampled:

* ``"nodes"``: both boundaries included, x_i = i / (s - 1) (Darcy here and in the
  FNO paper: 421 = 420 + 1 nodes). Taking every stride-th node keeps both
  boundaries only if stride divides s - 1: 65 -> 33 -> 17 with stride 2, but
  64 -> 32 is not possible (32 nodes cannot contain both ends of 64 equal cells).
* ``"periodic"``: x_i = i / s, the right end is the left end (Navier-Stokes on the
  torus). Stride must divide s: 64 -> 32.

Other sizes are reached by interpolation, :meth:`PDEDataset.resample`: Fourier
(trigonometric) on periodic grids, multi-linear or bicubic on node grids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

GRIDS = ("nodes", "periodic")


def _check_finite(name: str, t: torch.Tensor) -> None:
    """Raise naming how many NaN/inf values there are and in which samples."""
    bad = ~torch.isfinite(t)
    if not bad.any():
        return
    n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
    bad_samples = bad.flatten(1).any(1).nonzero().flatten().tolist()
    what = " and ".join(f"{c} {k}" for c, k in ((n_nan, "NaN"), (n_inf, "inf")) if c) + " values"
    where = (
        f"sample {bad_samples[0]}"
        if len(bad_samples) == 1
        else f"{len(bad_samples)} samples (first: {bad_samples[:5]})"
    )
    raise ValueError(
        f"{name} contains {what} in {where}; a solver probably diverged there. Drop those samples "
        f"before building the dataset: keep = torch.isfinite(x).flatten(1).all(1) & "
        f"torch.isfinite(y).flatten(1).all(1); x, y = x[keep], y[keep] "
        f"(load_dataset(..., drop_nonfinite=True) does this for files)."
    )


class PDEDataset(Dataset):
    """Pairs (x_i, y_i) on a common grid.

    Args:
        x: (N, C_in, *grid) floating tensor.
        y: (N, C_out, *grid) floating tensor, same N and grid as x.
        meta: free-form description (problem parameters, source file...), kept and copied
            into every derived dataset.
        grid: ``"nodes"`` (boundaries included) or ``"periodic"``; see the module docstring.

    Raises ValueError, naming the problem and the fix, if the tensors are not floating,
    disagree in N or grid, have no channel axis, or contain NaN/inf.
    Derived datasets (``split``, ``subset``, ``subsample``) share storage with this one.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, meta: dict | None = None, grid: str = "nodes"):
        for name, t in (("x", x), ("y", y)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(
                    f"{name} must be a torch.Tensor, got {type(t).__name__}; convert with torch.as_tensor({name})."
                )
            if not t.is_floating_point():
                raise ValueError(
                    f"{name} has dtype {t.dtype}; PDEDataset holds floating tensors. "
                    f"Convert with {name}.float() (load_dataset converts bool/int "
                    f"masks for you)."
                )
            if t.ndim < 3:
                raise ValueError(
                    f"{name} has shape {tuple(t.shape)}; expected (N, C, *grid) with at "
                    f"least one grid axis. Add a channel axis with {name}.unsqueeze(1) "
                    f"if {name} is (N, *grid)."
                )
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]}; they must pair up one to one.")
        if x.shape[2:] != y.shape[2:]:
            raise ValueError(
                f"x grid {tuple(x.shape[2:])} differs from y grid {tuple(y.shape[2:])} "
                f"(shapes {tuple(x.shape)} and {tuple(y.shape)}); both must be "
                f"(N, C, *grid) on the same grid."
            )
        if grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}.")
        _check_finite("x", x)
        _check_finite("y", y)
        self.x, self.y, self.grid = x, y, grid
        self.meta: dict[str, Any] = dict(meta or {})

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]

    def __repr__(self) -> str:
        problem = self.meta.get("problem", "")
        return (
            f"PDEDataset({problem + ', ' if problem else ''}n={len(self)}, "
            f"x={tuple(self.x.shape[1:])}, y={tuple(self.y.shape[1:])}, grid={self.grid!r})"
        )

    @property
    def resolution(self) -> tuple[int, ...]:
        """Grid shape, e.g. (65, 65)."""
        return tuple(self.x.shape[2:])

    @property
    def in_channels(self) -> int:
        return self.x.shape[1]

    @property
    def out_channels(self) -> int:
        return self.y.shape[1]

    def _derive(self, x: torch.Tensor, y: torch.Tensor, **meta) -> PDEDataset:
        # Skip re-validation: slices of validated tensors are valid.
        new = PDEDataset.__new__(PDEDataset)
        new.x, new.y, new.grid, new.meta = x, y, self.grid, {**self.meta, **meta}
        return new

    def subset(self, indices: slice | Sequence[int] | torch.Tensor) -> PDEDataset:
        """Samples selected by a slice, index list or boolean mask."""
        if isinstance(indices, slice):
            return self._derive(self.x[indices], self.y[indices])
        idx = torch.as_tensor(indices)
        return self._derive(self.x[idx], self.y[idx])

    def split(self, n_train: int, n_test: int | None = None) -> tuple[PDEDataset, PDEDataset]:
        """First n_train samples and the n_test after them (default: all the rest).

        Splitting by position keeps generated sets reproducible: sample i depends only on
        (seed, i), so the training set does not change when more test samples are asked for.
        """
        n = len(self)
        n_test = n - n_train if n_test is None else n_test
        if n_train < 1 or n_test < 1 or n_train + n_test > n:
            raise ValueError(
                f"cannot split {n} samples into n_train={n_train} and n_test={n_test}: "
                f"both must be at least 1 and together at most {n}. Generate more "
                f"samples or ask for fewer."
            )
        return self.subset(slice(0, n_train)), self.subset(slice(n_train, n_train + n_test))

    def subsample(self, stride: int | Sequence[int]) -> PDEDataset:
        """Every stride-th grid point along each grid axis (an int applies to all axes).

        Node grids (boundaries included) need stride | s - 1, periodic grids stride | s;
        otherwise the coarse grid would not be a uniform grid on the same domain and
        ValueError says which strides work.
        """
        strides = check_strides(self.resolution, stride, self.grid)
        index = (slice(None), slice(None)) + tuple(slice(None, None, k) for k in strides)
        return self._derive(self.x[index], self.y[index])

    def resample(self, resolution: int | Sequence[int], method: str = "auto") -> PDEDataset:
        """The same fields on another grid size, by interpolation (a copy).

        Args:
            resolution: new grid size per axis (an int applies to all axes).
            method: ``"fourier"`` (trigonometric interpolation: exact for band-limited
                periodic fields, and downsampling keeps the lowest modes),
                ``"linear"`` (multi-linear through the nodes, endpoints kept), or
                ``"cubic"`` (2D only, bicubic); ``"auto"``: fourier on periodic grids,
                linear on node grids.
        Use :meth:`subsample` where a stride does the job: it copies nothing and adds no
        interpolation error.
        """
        size = (resolution,) * len(self.resolution) if isinstance(resolution, int) else tuple(resolution)
        return self._derive(resample(self.x, size, self.grid, method), resample(self.y, size, self.grid, method))


def check_strides(resolution: Sequence[int], stride: int | Sequence[int], grid: str) -> tuple[int, ...]:
    """Strides per grid axis, checked to map the grid onto a uniform grid of the same domain."""
    n_axes = len(resolution)
    strides = (stride,) * n_axes if isinstance(stride, int) else tuple(stride)
    if len(strides) != n_axes:
        raise ValueError(f"got {len(strides)} strides for {n_axes} grid axes.")
    for s, k in zip(resolution, strides):
        cells = s - 1 if grid == "nodes" else s
        if k < 1 or cells % k:
            ok = [d for d in range(2, cells + 1) if cells % d == 0][:6]
            rule = "s - 1 (the grid includes both boundaries)" if grid == "nodes" else "s (periodic grid)"
            raise ValueError(
                f"stride {k} does not divide {rule} = {cells} for grid size {s}: "
                f"the subsampled grid would not span the same domain uniformly. "
                f"Strides that work: {ok or 'none'}. For other sizes use "
                f"resample(size) (interpolation)."
            )
    return strides


def fourier_resample(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Trigonometric interpolation of a periodic real field to a new grid size, axis by axis.

    x: (..., *grid) with len(size) grid axes last. The lowest min(n, m) frequencies are
    kept; an even-sized Nyquist bin is split (upsampling) or folded (downsampling)
    evenly between +-N/2 so that a real field stays real. Exact for fields band-limited
    to the smaller grid.
    """
    dims = range(x.ndim - len(size), x.ndim)
    out = x.to(torch.promote_types(x.dtype, torch.float32))
    for dim, m in zip(dims, size):
        n = out.shape[dim]
        if m == n:
            continue
        X = torch.fft.fft(out, dim=dim).movedim(dim, -1)
        Y = X.new_zeros(*X.shape[:-1], m)
        k = min(n, m)
        half = (k - 1) // 2  # frequencies 0..half and -half..-1 are copied unchanged
        Y[..., : half + 1] = X[..., : half + 1]
        if half:
            Y[..., m - half :] = X[..., n - half :]
        if k % 2 == 0:  # the bin k/2 exists on the smaller grid only as a Nyquist bin
            if m > n:  # split X's Nyquist evenly into +k/2 and -k/2
                Y[..., k // 2] = 0.5 * X[..., k // 2]
                Y[..., m - k // 2] = 0.5 * X[..., k // 2]
            else:  # fold +k/2 and -k/2 of X into Y's Nyquist
                Y[..., k // 2] = X[..., k // 2] + X[..., n - k // 2]
        out = (torch.fft.ifft(Y, dim=-1).real * (m / n)).movedim(-1, dim)
    return out.to(x.dtype)


def resample(x: torch.Tensor, size: Sequence[int], grid: str = "nodes", method: str = "auto") -> torch.Tensor:
    """Interpolate (N, C, *grid) to (N, C, *size); see :meth:`PDEDataset.resample`."""
    size = tuple(int(s) for s in size)
    n_axes = x.ndim - 2
    if len(size) != n_axes or min(size) < 2:
        raise ValueError(f"resample: need {n_axes} sizes of at least 2 for grid {tuple(x.shape[2:])}, got {size}.")
    if method == "auto":
        method = "fourier" if grid == "periodic" else "linear"
    if method == "fourier":
        if grid != "periodic":
            raise ValueError(
                "Fourier resampling assumes a periodic field; this data set is on a node "
                "grid (boundaries included). Use method='linear' or 'cubic'."
            )
        return fourier_resample(x, size)
    if method not in ("linear", "cubic"):
        raise ValueError(f"unknown resampling method {method!r}; choose 'auto', 'fourier', 'linear' or 'cubic'.")
    if grid == "periodic":
        raise ValueError(
            "linear/cubic resampling assumes a node grid with both boundaries; this data "
            "set is periodic. Use method='fourier'."
        )
    if method == "cubic" and n_axes != 2:
        raise ValueError("cubic resampling is implemented for 2D grids only; use 'linear'.")
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[n_axes] if method == "linear" else "bicubic"
    # align_corners=True maps the first and last nodes onto each other: node grids.
    return F.interpolate(x, size=size, mode=mode, align_corners=True)
