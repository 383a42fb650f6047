"""Running a dtype the hardware lacks by rounding through it.

No FFT runs in fp16 or bf16 on CPU, cuFFT runs fp16 only on power-of-two
sizes, and nothing runs a bf16 FFT. Where a policy asks for one of those, the
transform runs in fp32 with its input and output rounded through the
requested dtype, so values carry the same rounding the real half-precision
transform would give them at its boundaries (its internal accumulation is
fp32, which is what tensor-core kernels do too). Each such substitution is
logged once, so a CPU run shows the accuracy effect of a policy honestly and
never silently computes something else.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence

import torch

log = logging.getLogger("lowprec")
_LOGGED: set = set()

_HALF = (torch.float16, torch.bfloat16)


def log_once(key: Hashable, message: str, level: int = logging.WARNING) -> None:
    """Log ``message`` the first time ``key`` is seen in this process."""
    if key not in _LOGGED:
        _LOGGED.add(key)
        log.log(level, message)


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def fft_native(dtype: torch.dtype, device: torch.device, sizes: Sequence[int]) -> tuple[bool, str]:
    """Whether an FFT over ``sizes`` runs natively in ``dtype`` on ``device``, and why not.

    Returns (True, "") or (False, reason).
    """
    if dtype not in _HALF:
        return True, ""
    if dtype == torch.bfloat16:
        return False, "no FFT library computes in bfloat16"
    if torch.device(device).type != "cuda":
        return False, f"FFT in float16 is not available on {torch.device(device).type}"
    bad = [n for n in sizes if not _is_pow2(n)]
    if bad:
        return False, f"cuFFT runs float16 only on power-of-two sizes, got {tuple(sizes)}"
    return True, ""


def round_through(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Round ``x`` to ``dtype`` and back, keeping its dtype (complex: part by part).

    Gradients pass straight through the rounding, as they would through a cast.
    """
    if x.is_complex():
        return torch.view_as_complex(round_through(torch.view_as_real(x), dtype).contiguous())
    if x.dtype == dtype:
        return x
    return x.to(dtype).to(x.dtype)
