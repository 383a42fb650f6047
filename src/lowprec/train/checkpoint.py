"""Atomic checkpoints: a stop at any moment leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from .._atomic import atomic_write


def save_checkpoint(path: "str | Path", state: dict) -> None:
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: "str | Path", map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train without --resume first, or point --resume "
                                "at a run directory containing checkpoint.pt.")
    return torch.load(path, map_location=map_location, weights_only=False)


def rng_state() -> dict:
    """Every random number generator a training run draws from."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
