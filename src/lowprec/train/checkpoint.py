"""Checkpoints that run no code, survive damage, and are written atomically.

A run directory keeps its last ``keep`` checkpoints (default 2): ``checkpoint.pt``
(the newest), ``checkpoint.1.pt`` (the one before), ... and a manifest,
``checkpoints.json``, listing each file with its epoch and SHA-256. Saving
rotates the older files one place down, writes the new ``checkpoint.pt``, then
the manifest; every file write is atomic (temporary file, fsync, rename), so a
stop at any moment leaves complete files and a manifest that names only
complete files.

Loading never unpickles code: files are read with ``torch.load(weights_only=True)``,
which accepts tensors and plain containers only (random-generator states are
stored as tensors and ints for that reason). :func:`load_latest` checks each file
against the manifest's checksum, newest first; a damaged one is named in one log
line and the previous good one is used; when none is good a
:class:`CheckpointError` names every file and what was wrong with it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from pathlib import Path

import numpy as np
import torch

from .._atomic import atomic_write

log = logging.getLogger("lowprec")

LATEST = "checkpoint.pt"
MANIFEST = "checkpoints.json"


class CheckpointError(ValueError):
    """No usable checkpoint: missing, damaged, or not a lowprec checkpoint (a ValueError: bad input)."""


def checkpoint_names(keep: int) -> list[str]:
    """``['checkpoint.pt', 'checkpoint.1.pt', ...]``, newest first."""
    return [LATEST] + [f"checkpoint.{i}.pt" for i in range(1, keep)]


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds any checkpoint file (good or not)."""
    run_dir = Path(run_dir)
    return (run_dir / MANIFEST).is_file() or any(run_dir.glob("checkpoint*.pt"))


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write one checkpoint file atomically (no rotation, no manifest; see :func:`save_rotating`)."""
    atomic_write(path, lambda f: torch.save(state, f))


def save_rotating(run_dir: str | Path, state: dict, keep: int = 2) -> Path:
    """Save ``state`` as ``run_dir/checkpoint.pt``, keeping the previous ``keep - 1`` and a checksum manifest."""
    if keep < 1:
        raise ValueError(f"keep={keep}: keep at least one checkpoint.")
    run_dir = Path(run_dir)
    names = checkpoint_names(keep)
    entries = {e["file"]: e for e in _read_manifest(run_dir) or []}
    shifted = []
    # Oldest first, so no rename lands on a file that is still to be moved. A file that does not match
    # its checksum is dropped rather than moved: it must not push a good checkpoint out.
    for older, newer in reversed(list(zip(names[1:], names[:-1]))):
        source = run_dir / newer
        if not source.is_file():
            continue
        if newer in entries and sha256(source) == entries[newer]["sha256"]:
            os.replace(source, run_dir / older)
            shifted.append({**entries[newer], "file": older})
        else:
            source.unlink()
    path = run_dir / LATEST
    save_checkpoint(path, state)
    newest = {"file": LATEST, "epoch": int(state.get("epoch", -1)), "sha256": sha256(path)}
    manifest = {"format": 1, "checkpoints": [newest] + sorted(shifted, key=lambda e: names.index(e["file"]))}
    atomic_write(run_dir / MANIFEST, lambda f: f.write((json.dumps(manifest, indent=1) + "\n").encode()))
    return path


def _read_manifest(run_dir: Path) -> list[dict] | None:
    """The manifest's entries, or None when there is no readable manifest."""
    try:
        entries = json.loads((run_dir / MANIFEST).read_text())["checkpoints"]
        return [e for e in entries if isinstance(e, dict) and {"file", "sha256"} <= set(e)]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load_checked(path: Path, expected: set | None, map_location) -> dict:
    """Load one file; raise CheckpointError saying what is wrong with it."""
    if expected is not None and sha256(path) not in expected:
        raise CheckpointError("its checksum is not in the manifest (damaged or replaced)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read is a damaged file, named to the user
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"it cannot be read as a weights-only checkpoint ({type(e).__name__}: {reason[:160]})"
        ) from None
    if not isinstance(state, dict) or "epoch" not in state:
        raise CheckpointError("it is not a lowprec training checkpoint")
    return state


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """One checkpoint file, read weights-only (no code runs); checked against its directory's manifest if listed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; train without --resume first, or point --resume "
            "at a run directory containing checkpoint.pt."
        )
    entries = _read_manifest(path.parent)
    # A file the manifest lists must match one of its checksums; any other file is the caller's own.
    listed = entries is not None and any(e["file"] == path.name for e in entries)
    expected = {e["sha256"] for e in entries} if listed else None
    try:
        return _load_checked(path, expected, map_location)
    except CheckpointError as e:
        raise CheckpointError(
            f"checkpoint {path} is unusable: {e}; delete it, or resume from another checkpoint of the run."
        ) from None


def load_latest(run_dir: str | Path, map_location="cpu") -> tuple[dict, Path]:
    """The newest good checkpoint in ``run_dir`` and its path, falling back past damaged ones.

    Each damaged file is named in one warning; if no file is good, a CheckpointError names them all.
    """
    run_dir = Path(run_dir)
    entries = _read_manifest(run_dir)
    expected = {e["sha256"] for e in entries} if entries is not None else None
    candidates = sorted(run_dir.glob("checkpoint*.pt"), key=_rank)
    if not candidates:
        raise FileNotFoundError(
            f"no checkpoint in {run_dir}; train without --resume first, or point --resume "
            "at a run directory containing checkpoint.pt."
        )
    problems = []
    for path in candidates:
        try:
            state = _load_checked(path, expected, map_location)
        except CheckpointError as e:
            problems.append(f"{path.name}: {e}")
            log.warning("checkpoint %s is unusable (%s); trying the previous one.", path, e)
            continue
        return state, path
    raise CheckpointError(
        f"no usable checkpoint in {run_dir} ({'; '.join(problems)}); delete the damaged files "
        "and start the run again without --resume."
    )


def _rank(path: Path) -> tuple[int, str]:
    """checkpoint.pt first, then checkpoint.1.pt, checkpoint.2.pt, ...; unknown names last."""
    if path.name == LATEST:
        return 0, ""
    middle = path.name[len("checkpoint.") : -len(".pt")]
    return (int(middle), "") if middle.isdigit() else (1 << 30, path.name)


def rng_state() -> dict:
    """Every random number generator a training run draws from, as tensors and ints (weights-only loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {
            "version": int(version),
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
