"""What every generated PDE data set shares: parameters, the on-disk cache, validation.

One file per PDE (``darcy.py``, ``navier_stokes.py``, ``burgers.py``,
``diffusion_sorption.py``) defines a frozen dataclass of its parameters,
subclassing :class:`ProblemParams`, and a ``generate`` method. This module turns
that into a cached data set:

    params = DarcyParams(resolution=33, n=200, seed=0)
    ds = load_or_generate(params)             # PDEDataset, x (200, 1, 33, 33), y likewise

Generators in torch run on ``device`` (default: CUDA when there is one) and take
their random numbers from numpy generators seeded with (seed, i) on the CPU, so
sample i is the same on every device and whatever n is. Settings that change
only speed (device, batch size, worker threads) are arguments of ``generate``,
not parameters: they are not part of the cache key.

Cache files
-----------
``<cache_dir>/<problem>-s<resolution>-seed<seed>-<hash>.h5`` where the hash covers
the problem name, the generator version and every parameter *except n*. Sample i
depends only on (seed, i), so a file of 1000 samples also serves any request for
n <= 1000 (the first n are read); a request for more regenerates the file.

Each file holds the arrays the generator makes (``x`` and ``y``, float32
(n, C, *grid), for input/output problems such as Darcy; ``u``, (n, T, *grid), for
time series such as Navier-Stokes) and, as HDF5 attributes, the problem, the
generator version and every parameter. On load the attributes are compared with
the request and the arrays are checked (shape, finite); a mismatch raises
:class:`CacheMismatchError` naming the parameter.

What the cache holds is what the *solver* makes; how it is presented is not
cached. ``params.to_dataset(arrays, meta)`` turns the arrays into the object
``load_or_generate`` returns: a :class:`PDEDataset` for Darcy, a
:class:`~lowprec.data.timeseries.Trajectories` for time series (whose input/output
windows are cut on load, so one cached simulation serves every choice of t_in/t_out).

Files are written atomically: into a temporary file ``.<name>.<random>.tmp`` in the
same directory, flushed and fsync'ed, then renamed over the final name with
``os.replace`` (atomic on POSIX and Windows). A writer killed half-way leaves at
most a ``.tmp`` file, which is never read; the final name only ever refers to a
complete file. Writers of one entry take turns under a lock file (``.<name>.lock``,
:mod:`filelock`) and look at the entry again once they hold it, so concurrent commands
neither generate the same data twice nor replace a larger entry with a smaller one.

cache_dir defaults to ``$LOWPREC_CACHE``, else ``~/.cache/lowprec``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np
import torch

from .._atomic import atomic_write
from .dataset import PDEDataset

log = logging.getLogger(__name__)

PathLike = str | os.PathLike


class CacheError(RuntimeError, ValueError):
    """A cache file exists but cannot be used (unreadable, wrong shape, non-finite).

    Also a ValueError, so that command-line tools report it as bad input (one line, the fix).
    """


class CacheMismatchError(CacheError):
    """A cache file was written for different parameters than those requested."""


def default_cache_dir() -> Path:
    """``$LOWPREC_CACHE`` if set, else ``~/.cache/lowprec``."""
    env = os.environ.get("LOWPREC_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lowprec"


SOLVER_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def solver_dtype(problem: str, name: str) -> torch.dtype:
    """The torch dtype a generator's ``dtype`` parameter names; a ValueError naming the choices otherwise."""
    if name not in SOLVER_DTYPES:
        raise ValueError(f"{problem}: dtype must be one of {sorted(SOLVER_DTYPES)}, got {name!r}.")
    return SOLVER_DTYPES[name]


@contextlib.contextmanager
def cpu_threads_for(numel: int, device: str | torch.device, threshold: int = 1 << 23) -> Iterator[None]:
    """Run a time-stepping loop single-threaded on the CPU when its arrays are small.

    A solver step is a few dozen whole-array operations; below about a million elements
    each one is too short to share between threads, and on a busy machine waiting for
    the second thread costs more than the work (a small Burgers batch on loaded cores
    runs many times slower multi-threaded). The previous thread count is restored afterwards.
    """
    if torch.device(device).type != "cpu" or numel >= threshold or torch.get_num_threads() == 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    stored as HDF5 attributes); :meth:`__post_init__` coerces them to the annotated
    types, so that 1 and 1.0 hash the same.

    Class attributes:
        problem: short name, used in file names and ``meta["problem"]``.
        version: bump it whenever the generator's output changes for the same
            parameters; old cache files then stop matching instead of being reused.
        grid: ``"nodes"`` or ``"periodic"``, see :mod:`lowprec.data.dataset`.
        arrays: names of the arrays :meth:`generate` returns, in order; each is
            float32 with n first and the grid last.
        spatial_dims: number of grid axes (each of size ``resolution``).
    """

    problem: ClassVar[str] = ""
    version: ClassVar[int] = 1
    grid: ClassVar[str] = "nodes"
    arrays: ClassVar[tuple[str, ...]] = ("x", "y")
    spatial_dims: ClassVar[int] = 2

    def __post_init__(self):
        """Coerce every field to its annotated type (int, float, str, bool, tuple of float)."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), hints[f.name]
            try:
                if kind in (int, float, str):
                    if kind is int and isinstance(value, float) and not value.is_integer():
                        raise ValueError
                    value = kind(value)
                elif kind is bool:
                    if not isinstance(value, (bool, np.bool_, int)):
                        raise ValueError
                    value = bool(value)
                elif typing.get_origin(kind) is tuple:
                    value = tuple(float(v) for v in value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{self.problem}: parameter {f.name}={value!r} is not a valid {getattr(kind, '__name__', kind)}."
                ) from None
            object.__setattr__(self, f.name, value)
        if self.resolution < 2:
            raise ValueError(f"{self.problem}: resolution must be at least 2, got {self.resolution}.")
        if self.n < 1:
            raise ValueError(f"{self.problem}: n must be at least 1, got {self.n}.")
        if self.seed < 0:
            raise ValueError(f"{self.problem}: seed must be non-negative (numpy SeedSequence), got {self.seed}.")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_kwargs(cls, **params) -> ProblemParams:
        """Build from keyword arguments, with an error that lists the valid names for a typo."""
        names = cls.field_names()
        unknown = [k for k in params if k not in names]
        if unknown:
            from .._hints import closest

            hints = [f"{k!r} (did you mean {m!r}?)" if (m := closest(k, names)) else repr(k) for k in unknown]
            raise ValueError(
                f"{cls.problem}: unknown parameter(s) {', '.join(hints)}. Its parameters are: {', '.join(names)}."
            )
        return cls(**params)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def cache_key(self) -> str:
        """16 hex digits of SHA-256 over problem, version and every parameter but n."""
        described = {k: _plain(v) for k, v in self.as_dict().items() if k != "n"}
        text = json.dumps({"problem": self.problem, "version": self.version, "params": described}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def cache_path(self, cache_dir: PathLike | None = None) -> Path:
        cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        resolution = getattr(self, "resolution", "")
        return cache_dir / f"{self.problem}-s{resolution}-seed{getattr(self, 'seed', '')}-{self.cache_key()}.h5"

    def generate(self, progress: bool = True, **speed) -> tuple[torch.Tensor, ...]:
        """Compute the arrays named in ``arrays``, float32 on the CPU, n first.

        ``speed`` holds settings that must not change the result (device, batch size).
        """
        raise NotImplementedError

    def grid_shape(self) -> tuple:
        """The grid of every cached array (its last ``spatial_dims`` axes); (resolution,) * spatial_dims."""
        return (getattr(self, "resolution", None),) * self.spatial_dims

    def write_arrays(self, path: PathLike, arrays: dict[str, torch.Tensor]) -> Path:
        """Write a cache file of ``arrays`` atomically (:func:`write_cache`); a problem whose arrays are not
        all (n, ...) sample stacks overrides this and :meth:`read_arrays` together."""
        return write_cache(path, self, arrays)

    def read_arrays(self, path: PathLike) -> dict[str, torch.Tensor]:
        """The first ``n`` samples of each array of a cache file, checked (:func:`read_cache_arrays`)."""
        return read_cache_arrays(path, self)

    def meta(self) -> dict[str, Any]:
        return {"problem": self.problem, "generator_version": self.version, "params": self.as_dict()}

    def to_dataset(self, arrays: dict[str, torch.Tensor], meta: dict[str, Any]):
        """What load_or_generate returns for these arrays; by default PDEDataset(x, y)."""
        return PDEDataset(arrays["x"], arrays["y"], meta=meta, grid=self.grid)


# ---------------------------------------------------------------------------------------- writing


def write_cache(path: PathLike, params: ProblemParams, arrays: dict[str, torch.Tensor]) -> Path:
    """Write the arrays and the parameters to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            _fill(f, params, arrays)
    return Path(path)


def _fill(f: h5py.File, params: ProblemParams, arrays: dict[str, torch.Tensor]) -> None:
    for name, t in arrays.items():
        f.create_dataset(name, data=t.numpy())
    f.attrs["problem"] = params.problem
    f.attrs["generator_version"] = params.version
    for key, value in params.as_dict().items():
        f.attrs[key] = value


# ---------------------------------------------------------------------------------------- reading


@contextlib.contextmanager
def open_cache(path: PathLike, params: ProblemParams) -> Iterator[tuple[h5py.File, dict[str, Any]]]:
    """Open a cache file for reading, its stored parameters checked against ``params``: yields (file, attrs).

    Raises CacheError if it is not readable HDF5 and CacheMismatchError if a parameter differs.
    """
    path = Path(path)
    fix = f"Delete {path} and it will be regenerated."
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CacheError(f"cache file {path} cannot be read as HDF5 ({e}). {fix}") from e
    with f:
        attrs = {k: _plain(v) for k, v in f.attrs.items()}
        expected = {
            "problem": params.problem,
            "generator_version": params.version,
            **{k: _plain(v) for k, v in params.as_dict().items() if k != "n"},
        }
        for key, want in expected.items():
            if key not in attrs:
                raise CacheMismatchError(
                    f"cache file {path} lacks the attribute {key!r} (written by another lowprec version?). {fix}"
                )
            if attrs[key] != want:
                raise CacheMismatchError(
                    f"cache file {path} was written with {key}={attrs[key]!r}, but {key}={want!r} "
                    f"was requested. The file name should make this impossible, so the file was "
                    f"renamed, copied or edited by hand. {fix} Or pass another cache_dir."
                )
        yield f, attrs


def read_cache_arrays(path: PathLike, params: ProblemParams) -> dict[str, torch.Tensor]:
    """The first ``params.n`` samples of each array in a cache file, checked against ``params``.

    Raises CacheMismatchError if a stored parameter differs from the requested one, and
    CacheError if the file is unreadable, too short, mis-shaped or non-finite.
    """
    path = Path(path)
    fix = f"Delete {path} and it will be regenerated."
    with open_cache(path, params) as (f, attrs):
        n_cached = int(attrs.get("n", -1))
        arrays = {}
        for name in params.arrays:
            if name not in f:
                raise CacheError(f"cache file {path} has no dataset {name!r}. {fix}")
            if f[name].shape[0] != n_cached:
                raise CacheError(f"cache file {path} says n={n_cached} but {name} has shape {f[name].shape}. {fix}")
            if n_cached < params.n:
                raise CacheError(
                    f"cache file {path} holds {n_cached} samples, {params.n} requested; "
                    f"load_or_generate regenerates it, read_cache does not."
                )
            arrays[name] = torch.from_numpy(f[name][: params.n])
    grid = params.grid_shape()
    for name, t in arrays.items():
        if t.ndim < 2 + params.spatial_dims or t.dtype != torch.float32:
            raise CacheError(
                f"cache file {path}: {name} is {t.dtype} {tuple(t.shape)}, expected "
                f"float32 (n, C, *grid) with {params.spatial_dims} grid axes. {fix}"
            )
        if not torch.isfinite(t).all():
            raise CacheError(f"cache file {path}: {name} has non-finite values. {fix}")
        if grid[0] is not None and tuple(t.shape[-params.spatial_dims :]) != grid:
            raise CacheError(
                f"cache file {path}: {name} has grid {tuple(t.shape[-params.spatial_dims :])}, "
                f"which does not match resolution={grid[0]}. {fix}"
            )
    return arrays


def read_cache(path: PathLike, params: ProblemParams):
    """Load the first ``params.n`` samples of a cache file as ``params.to_dataset`` presents them."""
    arrays = params.read_arrays(path)
    return params.to_dataset(arrays, {**params.meta(), "source": str(path)})


def cached_count(path: PathLike) -> int:
    """Number of samples in a cache file, or 0 if the file does not exist."""
    path = Path(path)
    if not path.exists():
        return 0
    try:
        with h5py.File(path, "r") as f:
            return int(f.attrs.get("n", 0))
    except OSError as e:
        raise CacheError(
            f"cache file {path} cannot be read as HDF5 ({e}). Delete {path} and it will be regenerated."
        ) from e


def load_or_generate(
    params: ProblemParams,
    cache_dir: PathLike | None = None,
    *,
    cache: bool = True,
    progress: bool = True,
    workers: int | None = 1,
    **speed,
):
    """The data set described by ``params``: read from the cache, or generated and cached.

    Args:
        params: a ProblemParams subclass instance, e.g. ``DarcyParams(resolution=33, n=200)``.
        cache_dir: directory of cache files; default ``$LOWPREC_CACHE`` or ``~/.cache/lowprec``.
        cache: False to generate without reading or writing any file.
        progress: show a progress bar while generating.
        workers: processes that share the samples when they are generated
            (:mod:`lowprec.data.parallel`); the entry written is the one a single process writes.
        speed: passed to ``params.generate`` (device, batch_size): they change how fast the
            data is made, not what it is.
    Returns:
        ``params.to_dataset(...)``: a PDEDataset, or Trajectories for time series.
    """
    if not cache:
        arrays = dict(zip(params.arrays, params.generate(progress=progress, **speed)))
        return params.to_dataset(arrays, params.meta())
    path = params.cache_path(cache_dir)
    if cached_count(path) >= params.n:
        log.info("loading %d %s samples from %s", params.n, params.problem, path)
        return read_cache(path, params)
    with cache_lock(path):
        # Checked again under the lock: another process may have written the entry meanwhile. So two
        # commands never generate the same data twice, and a smaller request never replaces a larger entry.
        n_cached = cached_count(path)
        if n_cached >= params.n:
            log.info("loading %d %s samples from %s (written by another process)", params.n, params.problem, path)
            return read_cache(path, params)
        if n_cached:
            log.info("%s holds %d samples, %d requested: regenerating", path, n_cached, params.n)
        if (workers or 1) > 1:
            from .parallel import generate_parallel

            log.info("generating %d %s samples in %d processes", params.n, params.problem, workers)
            arrays = dict(zip(params.arrays, generate_parallel(params, workers, **speed)))
        else:
            arrays = dict(zip(params.arrays, params.generate(progress=progress, **speed)))
        params.write_arrays(path, arrays)
    log.info("wrote %s", path)
    return params.to_dataset(arrays, {**params.meta(), "source": str(path)})


@contextlib.contextmanager
def cache_lock(path: PathLike) -> Iterator[None]:
    """Hold the cache entry ``path``'s lock file (``.<name>.lock`` beside it) while the entry is made.

    Made before any data is generated, so an unwritable cache folder is reported before the work.
    """
    from filelock import FileLock, Timeout

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path.parent / f".{path.name}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("waiting for another process that is generating %s", path)
            lock.acquire()
    except OSError as e:
        raise CacheError(
            f"cache folder {path.parent} cannot be written ({e.strerror or e}); pass another cache_dir "
            "(or set $LOWPREC_CACHE), or cache=False."
        ) from None
    try:
        yield
    finally:
        lock.release()
