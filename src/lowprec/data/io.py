"""Read the data files users already have into a PDEDataset (or Trajectories), and write ours out.

``load_dataset(path)`` recognises the published layouts below by their keys; with
``x_key``/``y_key`` it reads any two arrays of a .pt, .npz, .h5/.hdf5 or .mat file.

========================= =================================================================
layout                    contents (N samples; T snapshots; X, Y grid)
========================= =================================================================
``lowprec``               ours (:func:`save_h5`, :func:`save_npz`): ``x`` (N, C, *grid),
                          ``y``, and a ``lowprec_meta`` JSON entry (grid kind, parameters).
``lowprec-trajectories``  ours (:func:`save_trajectories`): ``u`` (N, T, *grid), ``t`` (T,),
                          ``lowprec_meta`` (with the generator's default input/output view).
``neuraloperator``        .pt dict (or .npz/.h5) with ``x`` and ``y`` (Darcy: x bool (N, 16, 16)
                          coefficient mask, y float32 solution); .pt loaded with
                          ``weights_only=True``, never unpickled.
``pdebench-1d``           HDF5 ``tensor`` (N, T, X), ``x-coordinate`` (X,), ``t-coordinate``
                          (T or T + 1: PDEBench stores one more than it has snapshots),
                          attribute ``Nu`` (Burgers; diffusion Nu/π) or ``beta`` (advection).
                          Periodic. A time series.
``pdebench-darcy``        HDF5 ``tensor`` (N, 1, X, Y) solution, ``nu`` (N, X, Y) coefficient,
                          ``x-coordinate``, ``y-coordinate``, attribute ``beta``: x = nu, y = tensor.
``pdebench-groups``       HDF5 with one group per sample, ``0000``, ``0001``, ...: ``data``
                          (T, *grid, 1), ``grid/x`` (and ``grid/y``), ``grid/t`` (T,)
                          (diffusion-sorption, 2D diffusion-reaction, shallow water). A time series.
``fno-darcy``             .mat ``coeff`` and ``sol`` (N, 421, 421): x = coeff, y = sol.
``fno-burgers``           .mat ``a`` (N, 8192) = u0 and ``u`` (N, 8192) = u(1): periodic, 1D.
``fno-navier-stokes``     .mat ``u`` (N, 64, 64, T) = ω at t = 1..T, ``a`` (N, 64, 64) = ω0,
                          ``t``; a time series (ω0 is prepended as t = 0).
========================= =================================================================

FNO ``.mat`` files come in the old MATLAB format (read with scipy.io) and as v7.3,
which is HDF5 with the axes in reverse order (read with h5py and transposed back).

Time series become pairs with ``t_in`` input and ``t_out`` output snapshots (see
:mod:`lowprec.data.timeseries`); the default is the file's own view for ours,
x = the first 10 snapshots and y = the rest for PDEBench, and the FNO paper's
x = ω(t=1..10), y = ω(t=11..T) for its Navier-Stokes files. :func:`load_trajectories`
returns the whole series instead.

Channel axis, for arrays read by key. PDEDataset wants (N, C, *grid). An array with
``1 + spatial_dims`` axes is (N, *grid) and gets a channel axis, one with
``2 + spatial_dims`` axes is (N, C, *grid). ``spatial_dims`` defaults to 2, the
common case; pass 1 or 3 for other data (the shapes alone cannot tell (N, C, X)
from (N, X, Y)). Values are converted to ``dtype`` (float32): bool masks become 0/1.
"""

from __future__ import annotations

import json
import math
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io
import torch

from .._atomic import atomic_write
from .base import PathLike
from .dataset import PDEDataset
from .timeseries import Trajectories, cut

SUFFIXES = {".pt": "pt", ".pth": "pt", ".npz": "npz", ".h5": "h5", ".hdf5": "h5", ".hdf": "h5", ".mat": "mat"}
META_KEY = "lowprec_meta"
TIME_SERIES = ("lowprec-trajectories", "pdebench-1d", "pdebench-groups", "fno-navier-stokes")
KNOWN_LAYOUTS = (
    "lowprec (x, y), lowprec-trajectories (u, t), neuraloperator (x, y), "
    "pdebench-1d (tensor (N, T, X), t-coordinate), pdebench-darcy (nu, tensor), "
    "pdebench-groups (0000/data, 0000/grid/t, ...), fno-darcy (.mat coeff, sol), "
    "fno-burgers (.mat a, u), fno-navier-stokes (.mat u (N, X, Y, T))"
)


def _check_path(path: PathLike) -> tuple[Path, str]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {path} (resolved: {path.resolve()}).")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ValueError(
            f"{path}: unknown suffix {path.suffix!r}; load_dataset reads "
            f"{sorted(SUFFIXES)}. Convert other formats with "
            f"numpy.savez(path.npz, x=inputs, y=outputs)."
        )
    return path, kind


# ---------------------------------------------------------------------------------- inventory


def inventory(path: PathLike) -> dict[str, Any]:
    """What a file holds, without reading the arrays (except for .pt, which must be loaded).

    Returns ``{"format": "pt"|"npz"|"h5"|"mat", "arrays": {name: (shape, dtype)}, "attrs":
    {...}, "meta": lowprec meta or None}``. For .mat v7.3 shapes are given in MATLAB's
    order (reversed from the HDF5 order). HDF5 groups appear as ``group/name``.
    """
    path, kind = _check_path(path)
    arrays: dict[str, tuple[tuple[int, ...], str]] = {}
    attrs: dict[str, Any] = {}
    meta = None
    if kind == "pt":
        obj = _load_pt(path)
        for k, v in obj.items():
            if isinstance(v, torch.Tensor):
                arrays[str(k)] = (tuple(v.shape), str(v.dtype).replace("torch.", ""))
            elif k == META_KEY:
                meta = json.loads(v)
    elif kind == "npz":
        try:
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    if not name.endswith(".npy"):
                        continue
                    with z.open(name) as fh:
                        arrays[name[:-4]] = _npy_header(fh)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise ValueError(f"{path} is not a readable .npz archive ({e}).") from e
        if META_KEY in arrays:
            del arrays[META_KEY]
            with np.load(path, allow_pickle=False) as archive:
                meta = json.loads(str(archive[META_KEY]))
    elif kind == "h5" or (kind == "mat" and h5py.is_hdf5(path)):
        reverse = kind == "mat"
        with _open_h5(path) as f:

            def visit(name, obj):
                if isinstance(obj, h5py.Dataset) and not name.startswith("#"):
                    shape = obj.shape[::-1] if reverse else obj.shape
                    arrays[name] = (tuple(shape), str(obj.dtype))

            f.visititems(visit)
            attrs = {k: _plain_attr(v) for k, v in f.attrs.items() if k != META_KEY}
            if META_KEY in f.attrs:
                meta = json.loads(f.attrs[META_KEY])
        kind = "mat-v7.3" if kind == "mat" else kind
    else:
        try:
            for name, shape, cls in scipy.io.whosmat(path):
                arrays[name] = (tuple(shape), cls)
        except Exception as e:  # noqa: BLE001 -- scipy raises several types for one problem
            raise ValueError(f"{path} is not a readable MATLAB file ({e}).") from e
    return {"format": kind, "arrays": arrays, "attrs": attrs, "meta": meta}


def _npy_header(fh) -> tuple[tuple[int, ...], str]:
    """(shape, dtype) of an .npy stream from its header alone."""
    version = np.lib.format.read_magic(fh)
    read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read is None:  # a newer header version: read the array itself
        array = np.lib.format.read_array(fh, allow_pickle=False)
        return tuple(array.shape), str(array.dtype)
    shape, _fortran, dtype = read(fh)
    return tuple(shape), str(dtype)


def _plain_attr(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _open_h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path} is not a readable HDF5 file ({e}).") from e


def detect_layout(path: PathLike) -> str:
    """The name of the layout a file is in (see the module docstring), or ValueError."""
    info = inventory(path)
    names = set(info["arrays"])
    meta = info["meta"] or {}
    fmt = info["format"]
    if meta.get("layout") == "trajectories" and {"u", "t"} <= names:
        return "lowprec-trajectories"
    if {"x", "y"} <= names:
        return "lowprec" if info["meta"] else "neuraloperator"
    if fmt == "h5":
        if {"tensor", "nu"} <= names and len(info["arrays"]["tensor"][0]) == 4:
            return "pdebench-darcy"
        if "tensor" in names and len(info["arrays"]["tensor"][0]) == 3:
            return "pdebench-1d"
        groups = {n.split("/")[0] for n in names if "/" in n}
        if groups and all(g.isdigit() for g in groups) and all(f"{g}/data" in names for g in groups):
            return "pdebench-groups"
    if fmt in ("mat", "mat-v7.3"):
        if {"coeff", "sol"} <= names:
            return "fno-darcy"
        if "u" in names and len(info["arrays"]["u"][0]) == 4:
            return "fno-navier-stokes"
        if {"a", "u"} <= names and len(info["arrays"]["u"][0]) == 2:
            return "fno-burgers"
    shown = sorted(names)[:20] + (["..."] if len(names) > 20 else [])
    raise ValueError(
        f"{path}: its arrays {shown} are not a layout lowprec knows ({KNOWN_LAYOUTS}). "
        f"Name the input and output arrays with load_dataset(path, x_key=..., y_key=...)"
        + (f", e.g. x_key={shown[0]!r}" if shown else "")
        + "."
    )


# ---------------------------------------------------------------------------------- readers by key


def _missing_key(path: Path, key: str, role: str, present: list[str]) -> KeyError:
    shown = present[:20] + (["..."] if len(present) > 20 else [])
    return KeyError(
        f"{path} has no {role} array {key!r}; it holds {shown}. Name the arrays with "
        f"load_dataset(path, x_key=..., y_key=...), e.g. x_key={present[0]!r}."
        if present
        else f"{path} has no {role} array {key!r}; it holds no arrays."
    )


def _load_pt(path: Path) -> dict:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- torch raises several types for the same problem
        raise ValueError(
            f"{path} could not be loaded with torch.load(weights_only=True): {e}. "
            f"It must be a torch.save'd dict of tensors."
        ) from e
    if not isinstance(obj, dict):
        raise ValueError(
            f"{path} holds a {type(obj).__name__}; expected a dict of tensors with "
            f"keys such as 'x' and 'y' (the neuraloperator format)."
        )
    return obj


def _read_pt(path: Path, keys: dict[str, str], n: int | None) -> tuple[dict, dict | None]:
    obj = _load_pt(path)
    out = {}
    for role, key in keys.items():
        if key not in obj:
            raise _missing_key(path, key, role, [str(k) for k in obj if k != META_KEY])
        out[role] = torch.as_tensor(obj[key])[:n]
    meta = obj.get(META_KEY)
    return out, json.loads(meta) if isinstance(meta, str) else None


def _read_npz(path: Path, keys: dict[str, str], n: int | None) -> tuple[dict, dict | None]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} is not a readable .npz archive ({e}).") from e
    with archive:
        out = {}
        for role, key in keys.items():
            if key not in archive.files:
                raise _missing_key(path, key, role, [k for k in archive.files if k != META_KEY])
            out[role] = torch.from_numpy(np.ascontiguousarray(archive[key][:n]))
        meta = json.loads(str(archive[META_KEY])) if META_KEY in archive.files else None
    return out, meta


def _h5_datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def _read_h5(path: Path, keys: dict[str, str], n: int | None, reverse_axes: bool = False) -> tuple[dict, dict | None]:
    with _open_h5(path) as f:
        out = {}
        for role, key in keys.items():
            if key not in f or not isinstance(f[key], h5py.Dataset):
                raise _missing_key(path, key, role, _h5_datasets(f))
            ds = f[key]
            if reverse_axes:  # MATLAB v7.3 stores column-major: samples on the last axis
                arr = (ds[..., :n] if n is not None and ds.ndim > 1 else ds[()]).transpose()
            else:
                arr = ds[:n] if n is not None and ds.ndim > 0 else ds[()]
            out[role] = torch.from_numpy(np.ascontiguousarray(arr))
        meta = f.attrs.get(META_KEY)
    return out, json.loads(meta) if meta is not None else None


def _read_mat(path: Path, keys: dict[str, str], n: int | None) -> tuple[dict, dict | None]:
    if h5py.is_hdf5(path):  # MATLAB -v7.3
        return _read_h5(path, keys, n, reverse_axes=True)
    try:
        contents = scipy.io.loadmat(path, variable_names=list(keys.values()))
        present = [name for name, _shape, _cls in scipy.io.whosmat(path)]
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{path} is not a readable MATLAB file ({e}).") from e
    out = {}
    for role, key in keys.items():
        if key not in contents:
            raise _missing_key(path, key, role, present)
        out[role] = torch.from_numpy(np.ascontiguousarray(contents[key][:n]))
    return out, None


_READERS: dict[str, Callable] = {"pt": _read_pt, "npz": _read_npz, "h5": _read_h5, "mat": _read_mat}


def _with_channel_axis(path: Path, role: str, t: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    if t.ndim == 1 + spatial_dims:
        return t.unsqueeze(1)
    if t.ndim == 2 + spatial_dims:
        return t
    raise ValueError(
        f"{path}: {role} has shape {tuple(t.shape)}, which is neither (N, *grid) nor "
        f"(N, C, *grid) with {spatial_dims} grid axes. Pass spatial_dims= the number "
        f"of grid axes of your data (1 for (N, X), 3 for (N, X, Y, Z)), or reshape "
        f"the arrays and build PDEDataset(x, y) directly."
    )


def _drop_nonfinite(path: Path, *tensors: torch.Tensor) -> list[torch.Tensor]:
    keep = torch.ones(tensors[0].shape[0], dtype=torch.bool)
    for t in tensors:
        keep &= torch.isfinite(t).flatten(1).all(1)
    if not keep.all():
        warnings.warn(f"{path}: dropped {int((~keep).sum())} of {len(keep)} samples with NaN/inf values.", stacklevel=3)
        return [t[keep] for t in tensors]
    return list(tensors)


# Pair layouts read by key: (x_key, y_key, spatial_dims, grid).
_PAIR_LAYOUTS = {
    "pdebench-darcy": ("nu", "tensor", 2, "nodes"),
    "fno-darcy": ("coeff", "sol", 2, "nodes"),
    "fno-burgers": ("a", "u", 1, "periodic"),
    "neuraloperator": ("x", "y", 2, None),
}


def load_dataset(
    path: PathLike,
    x_key: str = "x",
    y_key: str = "y",
    *,
    spatial_dims: int | None = None,
    grid: str | None = None,
    n: int | None = None,
    dtype: torch.dtype = torch.float32,
    drop_nonfinite: bool = False,
    t_in: int | None = None,
    t_out: int | None = None,
    t_start: int | None = None,
    window_stride: int = 0,
) -> PDEDataset:
    """Read input/output pairs from a .pt, .npz, .h5/.hdf5 or .mat file.

    Args:
        path: the file; its suffix picks the reader, its keys the layout.
        x_key, y_key: names of the input and output arrays. Left at "x"/"y" in a file
            without those arrays, the layout is recognised from the keys instead
            (see the module docstring); a file in no known layout raises ValueError.
        spatial_dims: grid axes of arrays read by key (default 2; see the module docstring).
        grid: ``"nodes"`` or ``"periodic"``; default from the layout (ours: as written;
            otherwise nodes).
        n: read only the first n samples (HDF5 and v7.3 .mat read no more than that).
        dtype: floating dtype of the tensors.
        drop_nonfinite: drop samples with NaN/inf (with a warning) instead of raising.
        t_in, t_out, t_start, window_stride: for time-series layouts, which snapshots make
            x and y (see :func:`lowprec.data.timeseries.cut`); None takes the layout's default.
    Returns:
        PDEDataset with x (N, C_in, *grid), y (N, C_out, *grid), meta["source"] = path and
        meta["layout"].
    """
    path, kind = _check_path(path)
    layout = None
    if (x_key, y_key) == ("x", "y") and not _has_keys(path, kind, ("x", "y")):
        layout = detect_layout(path)
        if layout in TIME_SERIES:
            traj = load_trajectories(path, n=n, dtype=dtype, drop_nonfinite=drop_nonfinite, grid=grid)
            view = dict(traj.meta.get("default_view", {}))
            for key, value in (("t_in", t_in), ("t_out", t_out), ("t_start", t_start)):
                if value is not None:
                    view[key] = value
            if window_stride:
                view["window_stride"] = window_stride
            ds = cut(traj, **view)
            ds.meta["layout"] = layout
            return ds
        x_key, y_key, spatial_dims_default, grid_default = _PAIR_LAYOUTS[layout]
        spatial_dims = spatial_dims or spatial_dims_default
        grid = grid or grid_default
    arrays, own = _READERS[kind](path, {"input": x_key, "output": y_key}, n)
    x, y = arrays["input"], arrays["output"]
    if own is None:
        sd = 2 if spatial_dims is None else spatial_dims
        x = _with_channel_axis(path, f"x ({x_key!r})", x, sd)
        y = _with_channel_axis(path, f"y ({y_key!r})", y, sd)
    x, y = x.to(dtype), y.to(dtype)
    if x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[2:]:
        raise ValueError(
            f"{path}: x ({x_key!r}) has shape {tuple(x.shape)} and y ({y_key!r}) "
            f"{tuple(y.shape)}; they need the same number of samples and the same "
            f"grid. Check x_key/y_key and spatial_dims."
        )
    if drop_nonfinite:
        x, y = _drop_nonfinite(path, x, y)
    meta: dict[str, Any] = dict((own or {}).get("meta", {}))
    meta["source"] = str(path)
    meta["layout"] = layout or (
        "lowprec" if own else "neuraloperator" if (x_key, y_key) == ("x", "y") else "arrays by key"
    )
    if layout == "pdebench-darcy":
        meta.update(_h5_attrs(path))
    grid = grid or (own or {}).get("grid", "nodes")
    return PDEDataset(x, y, meta=meta, grid=grid)


def _has_keys(path: Path, kind: str, keys) -> bool:
    names = inventory(path)["arrays"]
    return all(k in names for k in keys)


def _h5_attrs(path: Path) -> dict:
    with _open_h5(path) as f:
        return {k: _plain_attr(v) for k, v in f.attrs.items() if k != META_KEY}


# ---------------------------------------------------------------------------------- time series


def load_trajectories(
    path: PathLike,
    *,
    n: int | None = None,
    dtype: torch.dtype = torch.float32,
    drop_nonfinite: bool = False,
    grid: str | None = None,
) -> Trajectories:
    """Read a time-series file (lowprec-trajectories, pdebench-1d, pdebench-groups,
    fno-navier-stokes) as Trajectories u (N, T, *grid) at times t.

    ``meta["default_view"]`` holds the layout's default pairs (used by load_dataset).
    """
    path, kind = _check_path(path)
    layout = detect_layout(path)
    meta: dict[str, Any] = {"source": str(path), "layout": layout}
    if layout == "lowprec-trajectories":
        with _open_h5(path) as f:
            u = f["u"][:n] if n is not None else f["u"][()]
            t = f["t"][()]
            own = json.loads(f.attrs[META_KEY])
        meta.update(own.get("meta", {}))
        meta["default_view"] = own.get("default_view", {"t_in": 1})
        grid = grid or own.get("grid", "periodic")
    elif layout == "pdebench-1d":
        with _open_h5(path) as f:
            u = f["tensor"][:n] if n is not None else f["tensor"][()]
            t = f["t-coordinate"][()] if "t-coordinate" in f else np.arange(u.shape[1], dtype=np.float64)
            meta["attrs"] = {k: _plain_attr(v) for k, v in f.attrs.items()}
        if t.shape[0] < u.shape[1]:
            raise ValueError(
                f"{path}: t-coordinate has {t.shape[0]} entries for {u.shape[1]} snapshots "
                f"(PDEBench stores T or T + 1); the file is not a PDEBench 1D layout."
            )
        t = t[: u.shape[1]]  # PDEBench's t-coordinate has one more entry than snapshots
        if "Nu" in meta["attrs"]:
            meta["viscosity"] = float(meta["attrs"]["Nu"]) / math.pi
        meta["default_view"] = {"t_in": 10}
        grid = grid or "periodic"
    elif layout == "pdebench-groups":
        with _open_h5(path) as f:
            names = sorted(k for k in f.keys() if k.isdigit())[:n]
            first = f[names[0]]
            data = first["data"]
            if data.shape[-1] != 1:
                raise ValueError(
                    f"{path}: samples have {data.shape[-1]} variables (data {data.shape}); "
                    f"Trajectories hold one scalar field. Read one variable yourself: "
                    f"h5py.File(path)['0000/data'][..., k]."
                )
            u = np.stack([f[name]["data"][..., 0] for name in names])
            t = first["grid/t"][()] if "grid/t" in first else np.arange(u.shape[1], dtype=np.float64)
            meta["attrs"] = {k: _plain_attr(v) for k, v in f.attrs.items()}
        t = t[: u.shape[1]]
        meta["default_view"] = {"t_in": 10}
        grid = grid or "nodes"
    elif layout == "fno-navier-stokes":
        names = inventory(path)["arrays"]
        keys = {"u": "u", **({"a": "a"} if "a" in names else {})}
        arrays, _ = _read_mat(path, keys, n)
        u = arrays["u"].movedim(-1, 1).numpy()  # (N, X, Y, T) -> (N, T, X, Y)
        T = u.shape[1]
        t = np.arange(1, T + 1, dtype=np.float64)  # the FNO files record t = 1..T
        if "a" in arrays:  # ω0: prepend as t = 0, so x = ω(1..10) is start=1 as in the paper
            u = np.concatenate([arrays["a"].numpy()[:, None], u], axis=1)
            t = np.arange(0, T + 1, dtype=np.float64)
        meta["default_view"] = {"t_in": 10, "t_start": 1 if "a" in arrays else 0}
        grid = grid or "periodic"
    else:
        raise ValueError(
            f"{path} is in the {layout} layout, which holds input/output pairs, not time "
            f"series; read it with load_dataset."
        )
    u = torch.from_numpy(np.ascontiguousarray(u)).to(dtype)
    if drop_nonfinite:
        (u,) = _drop_nonfinite(path, u)
    return Trajectories(u, torch.as_tensor(np.asarray(t, dtype=np.float64)), grid=grid, meta=meta)


# ---------------------------------------------------------------------------------- writers


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _own_meta(dataset: PDEDataset) -> str:
    return json.dumps({"layout": "N,C,*grid", "grid": dataset.grid, "meta": dataset.meta}, default=str)


def save_npz(dataset: PDEDataset, path: PathLike) -> Path:
    """Write dataset.x, dataset.y (and meta) to an .npz that load_dataset reads back as is."""
    path = Path(path).expanduser()
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append .npz to a name
            np.savez(fh, x=_numpy(dataset.x), y=_numpy(dataset.y), **{META_KEY: _own_meta(dataset)})
    return path


def save_h5(dataset: PDEDataset, path: PathLike) -> Path:
    """Write dataset.x, dataset.y (and meta) to an HDF5 file that load_dataset reads back as is."""
    path = Path(path).expanduser()
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("x", data=_numpy(dataset.x))
            f.create_dataset("y", data=_numpy(dataset.y))
            f.attrs[META_KEY] = _own_meta(dataset)
    return path


def save_trajectories(traj: Trajectories, path: PathLike, default_view: dict | None = None) -> Path:
    """Write traj.u, traj.t and meta to HDF5 (layout lowprec-trajectories), atomically.

    ``default_view``: the pairs load_dataset cuts by default, e.g. {"t_in": 10, "t_start": 1}
    (keys of :func:`lowprec.data.timeseries.cut`); default x = the first snapshot, y = the rest.
    """
    path = Path(path).expanduser()
    own = {"layout": "trajectories", "grid": traj.grid, "meta": traj.meta, "default_view": default_view or {"t_in": 1}}
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("u", data=_numpy(traj.u))
            f.create_dataset("t", data=_numpy(traj.t))
            f.attrs[META_KEY] = json.dumps(own, default=str)
    return path


def save_pdebench_1d(traj: Trajectories, path: PathLike, attrs: dict | None = None) -> Path:
    """Write 1D trajectories in PDEBench's layout: tensor (N, T, X), x-coordinate (cell
    centres), t-coordinate (T + 1 entries, as PDEBench), attributes (e.g. {"Nu": 0.001})."""
    if traj.u.ndim != 3:
        raise ValueError(f"PDEBench's 1D layout holds (N, T, X); these trajectories are {tuple(traj.u.shape)}.")
    path = Path(path).expanduser()
    X = traj.u.shape[-1]
    t = _numpy(traj.t)
    t_extra = np.append(t, t[-1] + (t[-1] - t[-2] if len(t) > 1 else 1.0))
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("tensor", data=_numpy(traj.u).astype(np.float32))
            f.create_dataset("x-coordinate", data=(np.arange(X) + 0.5) / X)
            f.create_dataset("t-coordinate", data=t_extra)
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
    return path


def save_pdebench_groups(traj: Trajectories, path: PathLike) -> Path:
    """Write 1D/2D trajectories in PDEBench's per-sample layout: groups 0000.. with data
    (T, *grid, 1), grid/x (and grid/y) at cell centres, grid/t."""
    path = Path(path).expanduser()
    u = _numpy(traj.u).astype(np.float32)
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for i in range(u.shape[0]):
                g = f.create_group(f"{i:04d}")
                g.create_dataset("data", data=u[i][..., None])
                for axis, name in zip(u.shape[2:], ("x", "y", "z")):
                    g.create_dataset(f"grid/{name}", data=(np.arange(axis) + 0.5) / axis)
                g.create_dataset("grid/t", data=_numpy(traj.t))
    return path


def save_pdebench_darcy(dataset: PDEDataset, path: PathLike, beta: float = 1.0) -> Path:
    """Write a Darcy PDEDataset in PDEBench's layout: nu (N, X, Y) = x, tensor (N, 1, X, Y) = y,
    x-/y-coordinate, attribute beta."""
    if dataset.x.ndim != 4 or dataset.x.shape[1] != 1 or dataset.y.shape[1] != 1:
        raise ValueError(
            f"PDEBench's Darcy layout holds one coefficient and one solution channel on a 2D "
            f"grid; got x {tuple(dataset.x.shape)}, y {tuple(dataset.y.shape)}."
        )
    path = Path(path).expanduser()
    X, Y = dataset.x.shape[2:]
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("nu", data=_numpy(dataset.x[:, 0]).astype(np.float32))
            f.create_dataset("tensor", data=_numpy(dataset.y).astype(np.float32))
            f.create_dataset("x-coordinate", data=np.linspace(0, 1, X))
            f.create_dataset("y-coordinate", data=np.linspace(0, 1, Y))
            f.attrs["beta"] = beta
    return path
