"""What every generated PDE data set shares: parameters, the on-disk cache, validation.

One file per PDE (``darcy.py``; later Navier-Stokes, Burgers, diffusion-sorption)
defines a frozen dataclass of its parameters, subclassing :class:`ProblemParams`,
and a ``generate`` method. This module turns that into a cached data set:

    params = DarcyParams(resolution=33, n=200, seed=0)
    ds = load_or_generate(params)             # PDEDataset, x (200, 1, 33, 33), y likewise

Cache files
-----------
``<cache_dir>/<problem>-s<resolution>-seed<seed>-<hash>.h5`` where the hash covers
the problem name, the generator version and every parameter *except n*. Sample i
depends only on (seed, i), so a file of 1000 samples also serves any request for
n <= 1000 (the first n are read); a request for more regenerates the file.

Each file holds datasets ``x`` and ``y`` (float32, (n, C, *grid)) and, as HDF5
attributes, the problem, the generator version and every parameter. On load the
attributes are compared with the request and the arrays are checked (shape,
finite); a mismatch raises :class:`CacheMismatchError` naming the parameter.

Files are written atomically: into a temporary file ``.<name>.<random>.tmp`` in the
same directory, flushed and fsync'ed, then renamed over the final name with
``os.replace`` (atomic on POSIX and Windows). A writer killed half-way leaves at
most a ``.tmp`` file, which is never read; the final name only ever refers to a
complete file.

cache_dir defaults to ``$LOWPREC_CACHE``, else ``~/.cache/lowprec``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Iterator, Optional, Union

import h5py
import numpy as np
import torch

from .dataset import PDEDataset

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


class CacheError(RuntimeError):
    """A cache file exists but cannot be used (unreadable, wrong shape, non-finite)."""


class CacheMismatchError(CacheError):
    """A cache file was written for different parameters than those requested."""


def default_cache_dir() -> Path:
    """``$LOWPREC_CACHE`` if set, else ``~/.cache/lowprec``."""
    env = os.environ.get("LOWPREC_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lowprec"


def _plain(value: Any) -> Any:
    """Canonical Python form of a parameter or an HDF5 attribute, for hashing and comparing."""
    if isinstance(value, (np.ndarray, list, tuple)):
        return tuple(_plain(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value))
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclasses.dataclass(frozen=True)
class ProblemParams:
    """Base of the parameter dataclasses of generated data sets.

    Subclasses are frozen dataclasses with (at least) the fields ``resolution``, ``n``
    and ``seed``; they set the class attributes below and implement :meth:`generate`.
    Field values must be int, float, str, bool or tuples of those (they are hashed and
    stored as HDF5 attributes); coerce them in ``__post_init__`` so that 1 and 1.0
    hash the same.

    Class attributes:
        problem: short name, used in file names and ``meta["problem"]``.
        version: bump it whenever the generator's output changes for the same
            parameters; old cache files then stop matching instead of being reused.
        grid: ``"nodes"`` or ``"periodic"``, see :mod:`lowprec.data.dataset`.
    """

    problem: ClassVar[str] = ""
    version: ClassVar[int] = 1
    grid: ClassVar[str] = "nodes"

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def cache_key(self) -> str:
        """16 hex digits of SHA-256 over problem, version and every parameter but n."""
        described = {k: _plain(v) for k, v in self.as_dict().items() if k != "n"}
        text = json.dumps({"problem": self.problem, "version": self.version, "params": described},
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def cache_path(self, cache_dir: Optional[PathLike] = None) -> Path:
        cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        resolution = getattr(self, "resolution", "")
        return cache_dir / f"{self.problem}-s{resolution}-seed{getattr(self, 'seed', '')}-{self.cache_key()}.h5"

    def generate(self, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute the data set: x (n, C_in, *grid), y (n, C_out, *grid), float32."""
        raise NotImplementedError

    def meta(self) -> dict[str, Any]:
        return {"problem": self.problem, "generator_version": self.version, "params": self.as_dict()}


# ---------------------------------------------------------------------------------------- writing

@contextlib.contextmanager
def atomic_write(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success make it ``path`` atomically.

    The caller writes and closes the file at the yielded path. Then it is fsync'ed and
    renamed over ``path`` with os.replace; on any exception it is deleted, so ``path``
    never names a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # close/flush reaches the OS, fsync reaches the disk
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a cache may be shared
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # persist the rename itself; not possible on every platform, and not fatal
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def write_cache(path: PathLike, params: ProblemParams, x: torch.Tensor, y: torch.Tensor) -> Path:
    """Write x, y and the parameters to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            _fill(f, params, x, y)
    return Path(path)


def _fill(f: h5py.File, params: ProblemParams, x: torch.Tensor, y: torch.Tensor) -> None:
    f.create_dataset("x", data=x.numpy())
    f.create_dataset("y", data=y.numpy())
    f.attrs["problem"] = params.problem
    f.attrs["generator_version"] = params.version
    for key, value in params.as_dict().items():
        f.attrs[key] = value


# ---------------------------------------------------------------------------------------- reading

def read_cache(path: PathLike, params: ProblemParams) -> PDEDataset:
    """Load the first ``params.n`` samples of a cache file, checking that it matches ``params``.

    Raises CacheMismatchError if a stored parameter differs from the requested one, and
    CacheError if the file is unreadable, too short, mis-shaped or non-finite.
    """
    path = Path(path)
    fix = f"Delete {path} and it will be regenerated."
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CacheError(f"cache file {path} cannot be read as HDF5 ({e}). {fix}") from e
    with f:
        attrs = {k: _plain(v) for k, v in f.attrs.items()}
        expected = {"problem": params.problem, "generator_version": params.version,
                    **{k: _plain(v) for k, v in params.as_dict().items() if k != "n"}}
        for key, want in expected.items():
            if key not in attrs:
                raise CacheMismatchError(f"cache file {path} lacks the attribute {key!r} "
                                         f"(written by another lowprec version?). {fix}")
            if attrs[key] != want:
                raise CacheMismatchError(
                    f"cache file {path} was written with {key}={attrs[key]!r}, but {key}={want!r} "
                    f"was requested. The file name should make this impossible, so the file was "
                    f"renamed, copied or edited by hand. {fix} Or pass another cache_dir.")
        for name in ("x", "y"):
            if name not in f:
                raise CacheError(f"cache file {path} has no dataset {name!r}. {fix}")
        n_cached = int(attrs.get("n", -1))
        if f["x"].shape[0] != n_cached or f["y"].shape[0] != n_cached:
            raise CacheError(f"cache file {path} says n={n_cached} but holds x {f['x'].shape} and "
                             f"y {f['y'].shape}. {fix}")
        if n_cached < params.n:
            raise CacheError(f"cache file {path} holds {n_cached} samples, {params.n} requested; "
                             f"load_or_generate regenerates it, read_cache does not.")
        x = torch.from_numpy(f["x"][: params.n])
        y = torch.from_numpy(f["y"][: params.n])
    for name, t in (("x", x), ("y", y)):
        if t.ndim < 3 or t.dtype != torch.float32:
            raise CacheError(f"cache file {path}: {name} is {t.dtype} {tuple(t.shape)}, expected "
                             f"float32 (n, C, *grid). {fix}")
        if not torch.isfinite(t).all():
            raise CacheError(f"cache file {path}: {name} has non-finite values. {fix}")
    resolution = getattr(params, "resolution", None)
    if resolution is not None and any(s != resolution for s in x.shape[2:]):
        raise CacheError(f"cache file {path}: grid {tuple(x.shape[2:])} does not match "
                         f"resolution={resolution}. {fix}")
    return PDEDataset(x, y, meta={**params.meta(), "source": str(path)}, grid=params.grid)


def cached_count(path: PathLike) -> int:
    """Number of samples in a cache file, or 0 if the file does not exist."""
    path = Path(path)
    if not path.exists():
        return 0
    try:
        with h5py.File(path, "r") as f:
            return int(f.attrs.get("n", 0))
    except OSError as e:
        raise CacheError(f"cache file {path} cannot be read as HDF5 ({e}). Delete {path} and it "
                         f"will be regenerated.") from e


def load_or_generate(params: ProblemParams, cache_dir: Optional[PathLike] = None, *,
                     cache: bool = True, progress: bool = True) -> PDEDataset:
    """The data set described by ``params``: read from the cache, or generated and cached.

    Args:
        params: a ProblemParams subclass instance, e.g. ``DarcyParams(resolution=33, n=200)``.
        cache_dir: directory of cache files; default ``$LOWPREC_CACHE`` or ``~/.cache/lowprec``.
        cache: False to generate without reading or writing any file.
        progress: show a progress bar while generating.
    """
    if not cache:
        x, y = params.generate(progress=progress)
        return PDEDataset(x, y, meta=params.meta(), grid=params.grid)
    path = params.cache_path(cache_dir)
    n_cached = cached_count(path)
    if n_cached >= params.n:
        log.info("loading %d %s samples from %s", params.n, params.problem, path)
        return read_cache(path, params)
    if n_cached:
        log.info("%s holds %d samples, %d requested: regenerating", path, n_cached, params.n)
    x, y = params.generate(progress=progress)
    write_cache(path, params, x, y)
    log.info("wrote %s", path)
    return PDEDataset(x, y, meta={**params.meta(), "source": str(path)}, grid=params.grid)
