"""What a training step costs: saved activations on any device, peak memory on CUDA.

Mixed precision saves memory mainly in the activations autograd keeps for
the backward pass. :class:`SavedTensorMeter` measures exactly those bytes
(distinct storages, so a tensor saved twice counts once) through
``torch.autograd.graph.saved_tensors_hooks``; it works on CPU, where torch
keeps no allocator statistics, and so gives CI and laptops an honest figure.
On CUDA the trainer also reports ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


class SavedTensorMeter:
    """Count bytes of the distinct tensors saved for backward inside the context.

    Example::

        with SavedTensorMeter() as meter:
            loss = model(x).pow(2).mean()
        meter.mib  # activations kept for the backward pass
    """

    def __init__(self):
        self.bytes = 0
        self._seen: set = set()
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = (storage.data_ptr(), t.device)
        if key not in self._seen:
            self._seen.add(key)
            self.bytes += storage.nbytes()
        return t

    @property
    def mib(self) -> float:
        return self.bytes / 2**20

    def __enter__(self) -> SavedTensorMeter:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        self._seen.clear()


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device: torch.device):
    """Peak allocated CUDA memory since the last reset, in MiB; None elsewhere."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return None


def write_jsonl(path: str | Path, records: list[dict]) -> None:
    """Write ``records`` as JSON lines, replacing the file."""
    from .._atomic import atomic_write

    atomic_write(path, lambda f: f.write("".join(json.dumps(r) + "\n" for r in records).encode()))
