"""The one reading of a ``device`` argument that trainer, data generators and benchmarks share,
and the one description of a device that their results record."""

from __future__ import annotations

import platform

import torch


def resolve_device(device: None | str | torch.device = None) -> torch.device:
    """``None`` or ``"auto"``: the current CUDA device if there is one, else the CPU.

    Raises:
        ValueError: for a CUDA device on a machine where torch sees none.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} asked for, but torch sees no CUDA device here; use device 'cpu' or 'auto'."
        )
    return device


def describe_device(device: str | torch.device) -> str:
    """The GPU's name, or the CPU's model name and torch's thread count, for a result's record.

    The CPU model matters: the same seed trains to different weights on different CPUs (their
    kernels round differently and a PINN's training amplifies it), and fp16 support varies.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} threads"
