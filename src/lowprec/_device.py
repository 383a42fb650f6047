"""The one reading of a ``device`` argument that trainer, data generators and benchmarks share,
the one description of a device that their results record, the CPU features that decide which
precision policy is fast on a CPU."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

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
    threads = torch.get_num_threads()
    return f"CPU {cpu}, {threads} thread{'s' * (threads != 1)}"


# -- CPU features ---------------------------------------------------------------------------------
# /proc/cpuinfo flags of native bf16 products: x86 (AVX512-BF16's vdpbf16ps, AMX tiles) and Arm (BF16).
_BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")


def _cpu_flags() -> set | None:
    """The CPU's feature flags from /proc/cpuinfo (Linux), or ``None`` where there is no such file."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":", 1)[0].strip() in ("flags", "Features"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return set()


def _bf16_matmul_speedup(n: int = 256, repeats: int = 5) -> float:
    """fp32 time over bf16 time of one n x n matrix product (best of ``repeats``)."""

    def best(dtype):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        a @ b
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        return min(times)

    return best(torch.float32) / best(torch.bfloat16)


def cpu_native_bf16(flags: set | None = None, measure: Callable[[], float] = _bf16_matmul_speedup) -> str | None:
    """How this CPU multiplies bf16 natively, or ``None`` where it does not.

    Native means the hardware multiplies bf16 pairs and accumulates in fp32 (AVX512-BF16, AMX,
    Arm BF16); without it oneDNN widens bf16 to fp32 first and a bf16 policy only adds casts.
    torch's ``get_cpu_capability()`` stops at "AVX512" and does not say, so the CPU flags decide
    (returned: the flag, e.g. ``"avx512_bf16"``); where no flags can be read (macOS, Windows) a
    256x256 bf16 product that runs at least 1.5x faster than fp32 does (returned: ``"measured"``).

    ``flags``: the CPU's flags (default: read from /proc/cpuinfo); ``measure``: the speed-up probe.
    """
    flags = _cpu_flags() if flags is None else flags
    if flags is not None:
        return next((flag for flag in _BF16_FLAGS if flag in flags), None)
    return "measured" if measure() >= 1.5 else None


def fast_policies(device: str | torch.device, native_bf16: str | None = "detect") -> tuple:
    """The reduced-precision policies worth timing against ``full`` on ``device``, fastest kind first.

    CUDA: ``mixed`` (fp16 tensor cores, the FFT in fp32) and ``bf16`` (bf16 end to end, DFT backend).
    CPU with native bf16: ``bf16``. CPU without: none (fp16 has no fast CPU kernels and bf16 would
    be widened to fp32). ``native_bf16``: the result of :func:`cpu_native_bf16` (default: detect it).
    """
    if torch.device(device).type == "cuda":
        return ("mixed", "bf16")
    if native_bf16 == "detect":
        native_bf16 = cpu_native_bf16()
    return ("bf16",) if native_bf16 else ()
