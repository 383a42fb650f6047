"""The one reading of a ``device`` argument that trainer, data generators and benchmarks share."""

from __future__ import annotations

from typing import Union

import torch


def resolve_device(device: Union[None, str, torch.device] = None) -> torch.device:
    """``None`` or ``"auto"``: the current CUDA device if there is one, else the CPU.

    Raises:
        ValueError: for a CUDA device on a machine where torch sees none.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but torch sees no CUDA device here; "
                         "use device 'cpu' or 'auto'.")
    return device
