"""Which backend computes a truncated spectral transform: FFT or DFT-as-GEMM.

Two rules, in order:

1. **Never emulate when asked to choose.** Where the FFT cannot run in the
   requested dtype (bf16 anywhere, fp16 on CPU, fp16 on a CUDA grid that is
   not a power of two in every axis), ``"auto"`` takes the DFT, which runs
   natively in every real dtype and every size. So an fp16 policy on a 500²
   grid runs; it does not crash in cuFFT.
2. **Otherwise, the cheaper one by a roofline model.** Each backend's time is
   its floating-point work at the device's rate for that kind of work plus
   the bytes it moves at the device's memory bandwidth:

   * FFT: ~2.5 P log2 P flops for P grid points, and about four passes over a
     full-grid buffer (read the input, write the whole half-spectrum, read it
     back to keep the corners; the inverse pads it back out to full size).
   * DFT: the GEMMs of :mod:`lowprec.spectral.dft` (about 4 P m_d flops for the
     first product, much less for the rest, whose inputs are already m/N the
     size), one pass over the input and small intermediates.

   The DFT's work grows with the modes kept, the FFT's does not, so the FFT
   wins once most of the spectrum is kept; with 32 modes on 128² to 1024² the
   DFT wins, and by more in fp16/bf16, where GEMMs run on tensor cores but an
   FFT is memory-bound whatever its dtype.

The rates are round figures for an H100 and for a small CPU; their ratios
are what matter. ``lowprec bench --mode layer --backends fft,dft`` measures
both on a real device: where it disagrees with the model, correct the table.

``backend="fft"`` or ``"dft"`` in a policy forces one (a forced FFT in a dtype
the hardware lacks is emulated, see :mod:`lowprec.precision.emulation`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..precision.emulation import fft_native
from ..precision.policy import BACKENDS

# Round figures: flop/s of GEMMs per dtype, flop/s of FFT arithmetic, bytes/s of memory.
# CUDA: H100 SXM (fp32 GEMMs on CUDA cores, TF32 being off by default in torch; fp16/bf16
# on tensor cores). CPU: a few AVX-512 cores (bf16 through oneDNN; fp16 has no fast path
# on most CPUs).
_RATES = {
    "cuda": {
        "gemm": {torch.float64: 5e13, torch.float32: 4e13, torch.bfloat16: 4e14, torch.float16: 4e14},
        "fft": 2e13,
        "bandwidth": 2.5e12,
    },
    "cpu": {
        "gemm": {torch.float64: 3e10, torch.float32: 6e10, torch.bfloat16: 1e11, torch.float16: 1e10},
        "fft": 1e10,
        "bandwidth": 1e10,
    },
}


def _rates(device_type: str) -> dict:
    return _RATES.get(device_type, _RATES["cuda"])


def transform_costs(
    grid: Sequence[int], modes: Sequence[int], dtype: torch.dtype, device: torch.device | str
) -> dict[str, float]:
    """Modelled seconds for one truncated transform of one (batch, channel) field, per backend."""
    rates = _rates(torch.device(device).type)
    size = torch.empty((), dtype=dtype).element_size()
    points = math.prod(grid)

    fft = 2.5 * points * math.log2(max(points, 2)) / rates["fft"] + 4 * points * size / rates["bandwidth"]

    # DFT: the last axis from N_d real points to K = m_d//2+1 complex ones, then every
    # other axis from N_a to m_a complex points ((rows, 2N) @ (2N, 2m) per axis).
    kept_last = modes[-1] // 2 + 1
    shape = list(grid[:-1]) + [kept_last]
    flops = 2 * math.prod(grid[:-1]) * grid[-1] * 2 * kept_last
    moved = points + math.prod(shape) * 2
    for axis in range(len(grid) - 1):
        rows = math.prod(shape) // shape[axis]
        flops += 8 * rows * grid[axis] * modes[axis]
        shape[axis] = modes[axis]
        moved += 2 * math.prod(shape) * 2
    dft = flops / rates["gemm"].get(dtype, rates["gemm"][torch.float32]) + moved * size / rates["bandwidth"]
    return {"fft": fft, "dft": dft}


def choose_backend(grid: Sequence[int], modes: Sequence[int], dtype: torch.dtype, device: torch.device | str) -> str:
    """``"fft"`` or ``"dft"`` for a truncated transform over ``grid`` keeping ``modes``, in ``dtype`` on ``device``.

    Pure Python on shapes: it can be asked about a CUDA device on a machine without one.
    """
    native, _ = fft_native(dtype, torch.device(device), grid)
    if not native:
        return "dft"
    costs = transform_costs(grid, modes, dtype, device)
    return "dft" if costs["dft"] <= costs["fft"] else "fft"


def resolve_backend(
    backend: str, grid: Sequence[int], modes: Sequence[int], dtype: torch.dtype, device: torch.device | str
) -> str:
    """A policy's ``backend`` made concrete: ``"fft"`` and ``"dft"`` as given, ``"auto"`` by :func:`choose_backend`."""
    if backend == "auto":
        return choose_backend(grid, modes, dtype, device)
    if backend not in BACKENDS:
        raise ValueError(f"unknown spectral backend {backend!r}; choose one of {BACKENDS}.")
    return backend


# -- MAC counts (what lowprec.quant.bops reports for SpectralConv) --------------------------------


def fft_macs(grid: Sequence[int]) -> int:
    """Real MACs of one real FFT (or its inverse) of a field on ``grid``: 1.25 P log2 P."""
    points = math.prod(grid)
    return round(1.25 * points * math.log2(points)) if points > 1 else 0


def dft_macs(grid: Sequence[int], modes: Sequence[int], inverse: bool = False) -> int:
    """Real MACs of one truncated DFT-as-GEMM transform of one field (:mod:`lowprec.spectral.dft`'s products).

    Forward: the real last axis first, (rows, N_d) @ (N_d, 2K), K = m_d//2+1; then each other
    axis a in order, (rows, 2N_a) @ (2N_a, 2m_a). Inverse: axes 0..d-2 first, (rows, 2m_a) @
    (2m_a, 2N_a), then (rows, 2K) @ (2K, N_d). ``rows`` is the intermediate's size without the
    axis being transformed, so the two directions differ in 3D (not in 1D or 2D).
    """
    kept_last = modes[-1] // 2 + 1
    if not inverse:
        shape = list(grid[:-1]) + [kept_last]
        macs = math.prod(grid[:-1]) * grid[-1] * 2 * kept_last
        for axis in range(len(grid) - 1):
            rows = math.prod(shape) // shape[axis]
            macs += rows * 2 * grid[axis] * 2 * modes[axis]
            shape[axis] = modes[axis]
        return macs
    shape = list(modes[:-1]) + [kept_last]
    macs = 0
    for axis in range(len(grid) - 1):
        rows = math.prod(shape) // shape[axis]
        macs += rows * 2 * modes[axis] * 2 * grid[axis]
        shape[axis] = grid[axis]
    return macs + math.prod(grid[:-1]) * 2 * kept_last * grid[-1]
