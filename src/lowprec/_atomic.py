"""Atomic file writes: a stop at any moment leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def atomic_write(path: str | Path, write: Callable | None = None):
    """Write ``path`` through a temporary file beside it, fsync'ed, then renamed over ``path``.

    Two shapes: ``atomic_write(path, write)`` calls ``write(f)`` with the temporary file
    open in binary mode (``torch.save``, bytes); ``with atomic_write(path) as tmp:`` yields
    the temporary path for writers that need a name (h5py, ``np.savez``), which write and
    close it inside the block. On any exception the temporary file is deleted, so ``path``
    never names a half-written file. Files are created 0644 (a cache may be shared).
    """
    if write is None:
        return _atomic_path(path)
    with _atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            write(f)
    return None


@contextlib.contextmanager
def _atomic_path(path: str | Path) -> Iterator[Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # close/flush reached the OS, fsync reaches the disk
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
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
