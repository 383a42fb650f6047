"""Read the data files users already have into a PDEDataset, and write ours back out.

``load_dataset(path, x_key, y_key)`` dispatches on the suffix:

=============== =========================================================================
``.pt .pth``    torch.save'd dict (neuraloperator: ``x`` bool (N, 16, 16) mask, ``y``
                float32 (N, 16, 16)); loaded with ``weights_only=True``, never unpickled.
``.npz``        numpy archive with arrays under x_key, y_key.
``.h5 .hdf5``   HDF5 datasets x_key, y_key (group paths like ``"fields/u"`` work).
                PDEBench Darcy: ``x_key="nu", y_key="tensor"``.
``.mat``        MATLAB (FNO paper: ``coeff``/``sol`` for Darcy, ``a``/``u`` for Burgers);
                v5 through scipy.io, v7.3 (HDF5) through h5py with the axes reversed
                back to MATLAB's order.
=============== =========================================================================

Channel axis. PDEDataset wants (N, C, *grid). Files written by :func:`save_npz` /
:func:`save_h5` say so in a ``lowprec_meta`` entry and are read as they are. For
other files an array with ``1 + spatial_dims`` axes is (N, *grid) and gets a channel
axis, one with ``2 + spatial_dims`` axes is (N, C, *grid). ``spatial_dims``
defaults to 2, the common case; pass 1 or 3 for other data (the shapes alone
cannot tell (N, C, X) from (N, X, Y)).

Values are converted to ``dtype`` (float32): bool masks become 0/1.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Optional

import h5py
import numpy as np
import scipy.io
import torch

from .base import PathLike, atomic_write
from .dataset import PDEDataset

SUFFIXES = {".pt": "pt", ".pth": "pt", ".npz": "npz", ".h5": "h5", ".hdf5": "h5", ".hdf": "h5",
            ".mat": "mat"}
META_KEY = "lowprec_meta"


def _missing_key(path: Path, key: str, role: str, present: list[str]) -> KeyError:
    shown = present[:20] + (["..."] if len(present) > 20 else [])
    return KeyError(f"{path} has no {role} array {key!r}; it holds {shown}. Name the arrays with "
                    f"load_dataset(path, x_key=..., y_key=...), e.g. x_key={present[0]!r}."
                    if present else f"{path} has no {role} array {key!r}; it holds no arrays.")


def _read_pt(path: Path, keys: dict[str, str], n: Optional[int]) -> tuple[dict, Optional[dict]]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- torch raises several types for the same problem
        raise ValueError(f"{path} could not be loaded with torch.load(weights_only=True): {e}. "
                         f"It must be a torch.save'd dict of tensors.") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}; expected a dict of tensors with "
                         f"keys such as 'x' and 'y' (the neuraloperator format).")
    out = {}
    for role, key in keys.items():
        if key not in obj:
            raise _missing_key(path, key, role, [str(k) for k in obj])
        out[role] = torch.as_tensor(obj[key])[:n]
    meta = obj.get(META_KEY)
    return out, json.loads(meta) if isinstance(meta, str) else None


def _read_npz(path: Path, keys: dict[str, str], n: Optional[int]) -> tuple[dict, Optional[dict]]:
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


def _read_h5(path: Path, keys: dict[str, str], n: Optional[int], reverse_axes: bool = False
             ) -> tuple[dict, Optional[dict]]:
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path} is not a readable HDF5 file ({e}).") from e
    with f:
        out = {}
        for role, key in keys.items():
            if key not in f or not isinstance(f[key], h5py.Dataset):
                raise _missing_key(path, key, role, _h5_datasets(f))
            ds = f[key]
            if reverse_axes:  # MATLAB v7.3 stores column-major: samples on the last axis
                arr = (ds[..., :n] if n is not None else ds[()]).transpose()
            else:
                arr = ds[:n] if n is not None else ds[()]
            out[role] = torch.from_numpy(np.ascontiguousarray(arr))
        meta = f.attrs.get(META_KEY)
    return out, json.loads(meta) if meta is not None else None


def _read_mat(path: Path, keys: dict[str, str], n: Optional[int]) -> tuple[dict, Optional[dict]]:
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
    raise ValueError(f"{path}: {role} has shape {tuple(t.shape)}, which is neither (N, *grid) nor "
                     f"(N, C, *grid) with {spatial_dims} grid axes. Pass spatial_dims= the number "
                     f"of grid axes of your data (1 for (N, X), 3 for (N, X, Y, Z)), or reshape "
                     f"the arrays and build PDEDataset(x, y) directly.")


def load_dataset(path: PathLike, x_key: str = "x", y_key: str = "y", *,
                 spatial_dims: Optional[int] = None, grid: Optional[str] = None,
                 n: Optional[int] = None, dtype: torch.dtype = torch.float32,
                 drop_nonfinite: bool = False) -> PDEDataset:
    """Read input/output pairs from a .pt, .npz, .h5/.hdf5 or .mat file.

    Args:
        path: the file; its suffix picks the reader.
        x_key, y_key: names of the input and output arrays in the file.
        spatial_dims: grid axes of the data (default 2; see the module docstring).
        grid: ``"nodes"`` or ``"periodic"``; default from the file if we wrote it, else nodes.
        n: read only the first n samples (HDF5 and v7.3 .mat read no more than that).
        dtype: floating dtype of the tensors.
        drop_nonfinite: drop samples with NaN/inf in x or y (with a warning) instead of raising.
    Returns:
        PDEDataset with x (N, C_in, *grid), y (N, C_out, *grid) and meta["source"] = path.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {path} (resolved: {path.resolve()}).")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path}: unknown suffix {path.suffix!r}; load_dataset reads "
                         f"{sorted(SUFFIXES)}. Convert other formats with "
                         f"numpy.savez(path.npz, x=inputs, y=outputs).")
    arrays, own = _READERS[kind](path, {"input": x_key, "output": y_key}, n)
    x, y = arrays["input"], arrays["output"]
    if own is None:
        sd = 2 if spatial_dims is None else spatial_dims
        x = _with_channel_axis(path, f"x ({x_key!r})", x, sd)
        y = _with_channel_axis(path, f"y ({y_key!r})", y, sd)
    x, y = x.to(dtype), y.to(dtype)
    if x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[2:]:
        raise ValueError(f"{path}: x ({x_key!r}) has shape {tuple(x.shape)} and y ({y_key!r}) "
                         f"{tuple(y.shape)}; they need the same number of samples and the same "
                         f"grid. Check x_key/y_key and spatial_dims.")
    if drop_nonfinite:
        keep = torch.isfinite(x).flatten(1).all(1) & torch.isfinite(y).flatten(1).all(1)
        if not keep.all():
            warnings.warn(f"{path}: dropped {int((~keep).sum())} of {len(keep)} samples with "
                          f"NaN/inf values.", stacklevel=2)
            x, y = x[keep], y[keep]
    meta: dict[str, Any] = dict((own or {}).get("meta", {}))
    meta["source"] = str(path)
    grid = grid or (own or {}).get("grid", "nodes")
    return PDEDataset(x, y, meta=meta, grid=grid)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _own_meta(dataset: PDEDataset) -> str:
    return json.dumps({"layout": "N,C,*grid", "grid": dataset.grid, "meta": dataset.meta},
                      default=str)


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
