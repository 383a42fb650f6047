"""Truncated real FFTs in a chosen precision, emulated where the hardware has none.

Conventions (as neuraloperator's): along every spatial axis but the last, a
layer with ``m`` modes keeps the ``ceil(m/2)`` lowest non-negative and the
``floor(m/2)`` lowest negative frequencies, stored in that order
(0, 1, ..., -2, -1); along the last axis it keeps ``m//2 + 1`` frequencies of
the real FFT (0 .. m//2). ``norm="forward"``: the forward transform divides by
the number of points, so coefficients approximate the continuous Fourier
coefficients whatever the grid (the same weights serve every resolution), and
stay as small as the input (an fp16 spectrum of a tanh-bounded input cannot
overflow).

Two backends compute the same thing: the FFT here, and the DFT as matrix
products in :mod:`lowprec.spectral.dft`. :func:`forward_transform` and
:func:`inverse_transform` take a backend (``"auto"``, ``"fft"``, ``"dft"``) and
dispatch; ``"auto"`` is decided per call by :mod:`lowprec.spectral.backend`.

Spectra are returned as real views (..., 2) so every later step runs on real
tensors in any dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..precision.emulation import fft_native, log_once, round_through
from .backend import resolve_backend
from .dft import dft_irfft, dft_rfft

_HALF = (torch.float16, torch.bfloat16)


def kept_modes(modes: Sequence[int]) -> tuple[int, ...]:
    """Number of frequencies stored per axis for ``modes``: (m_1, ..., m_{d-1}, m_d // 2 + 1)."""
    return (*modes[:-1], modes[-1] // 2 + 1)


def check_modes(modes: Sequence[int], grid: Sequence[int]) -> None:
    """Raise if ``modes`` cannot be kept on ``grid`` (m_k <= N_k on every axis)."""
    too_many = [(k, m, n) for k, (m, n) in enumerate(zip(modes, grid)) if m > n]
    if too_many:
        k, m, n = too_many[0]
        raise ValueError(
            f"{m} modes along spatial axis {k} need a grid of at least {m} points, got {n} "
            f"(grid {tuple(grid)}, modes {tuple(modes)}). Use a finer grid or fewer modes "
            f"(n_modes <= grid size on every axis)."
        )


def compute_dtype(policy_dtype: torch.dtype, input_dtype: torch.dtype) -> torch.dtype:
    """The dtype a step runs in: the policy's half dtype, or full precision at the input's width.

    "fp32" in a policy means full precision: an fp64 input (tests, references)
    keeps fp64.
    """
    if policy_dtype in _HALF or policy_dtype == torch.float64:
        return policy_dtype
    return torch.promote_types(input_dtype, torch.float32) if input_dtype.is_floating_point else torch.float32


def _carrier(dtype: torch.dtype) -> torch.dtype:
    # The dtype an emulated transform really computes in.
    return torch.float32 if dtype in _HALF else dtype


def _emulation_note(dtype, device, reason, what):
    log_once(
        ("emulate", what, dtype, str(device), reason),
        f"lowprec: {what} in {str(dtype).replace('torch.', '')} is emulated ({reason}): "
        "it runs in float32 with its input and output rounded through "
        f"{str(dtype).replace('torch.', '')}.",
    )


def prescale(dtype: torch.dtype, native: bool, grid: Sequence[int]) -> float:
    """The factor a forward FFT's input is multiplied by before an unnormalized transform (1: none).

    torch applies ``norm="forward"`` after the library's unnormalized transform, so a
    native fp16 cuFFT would hold sums of N values: a field of ones at 512² sums to
    262144 > 65504. There the 1/N is split instead, 1/sqrt(N) before the transform, so
    no value it holds exceeds sqrt(N) max|x| (1024 max|x| at 1024²), and 1/sqrt(N) after,
    on the kept modes only. Everywhere else torch's own normalization is exact and
    costs no extra full-size tensor (which autograd would keep for the backward pass).
    """
    return math.prod(grid) ** -0.5 if native and dtype == torch.float16 else 1.0


def truncated_rfft(x: torch.Tensor, modes: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """Lowest Fourier modes of a real field, in ``dtype``.

    Args:
        x: real tensor (batch, channels, *grid), d = len(modes) spatial axes.
        modes: modes per axis (see module docstring).
        dtype: real dtype of the transform (fp16/bf16 emulated where unsupported).

    Returns:
        Real view (batch, channels, *kept_modes(modes), 2), normalized by the number of points.
        In ``dtype`` when it ran natively; otherwise in the carrier dtype with values rounded
        through ``dtype``.
    """
    d = len(modes)
    grid = x.shape[-d:]
    dims = tuple(range(-d, 0))
    native, reason = fft_native(dtype, x.device, grid)
    if native:
        x = x.to(dtype)
    else:
        _emulation_note(dtype, x.device, reason, "forward FFT")
        x = round_through(x.to(_carrier(dtype)), dtype)
    scale = prescale(dtype, native, grid)
    if scale == 1.0:
        spectrum = torch.view_as_real(torch.fft.rfftn(x, dim=dims, norm="forward"))
    else:
        spectrum = torch.view_as_real(torch.fft.rfftn(x * scale, dim=dims))
    # spectrum: (b, c, *grid[:-1], grid[-1]//2+1, 2); keep the corners.
    for axis, (m, n) in enumerate(zip(modes[:-1], grid[:-1])):
        dim = 2 + axis
        pos, neg = (m + 1) // 2, m // 2
        parts = [spectrum.narrow(dim, 0, pos)] + ([spectrum.narrow(dim, n - neg, neg)] if neg else [])
        spectrum = torch.cat(parts, dim=dim)
    spectrum = spectrum.narrow(1 + d, 0, modes[-1] // 2 + 1)
    if scale != 1.0:
        spectrum = spectrum * scale
    return spectrum if native else round_through(spectrum, dtype)


def truncated_irfft(
    spectrum: torch.Tensor, grid: Sequence[int], modes: Sequence[int], dtype: torch.dtype
) -> torch.Tensor:
    """Inverse of :func:`truncated_rfft`: a real field on ``grid`` from its lowest modes.

    Args:
        spectrum: real view (batch, channels, *kept_modes(modes), 2).
        grid: output grid (N_1, ..., N_d); any size with m_k <= N_k.
        modes: modes per axis.
        dtype: real dtype of the transform (emulated where unsupported).

    Returns:
        Real tensor (batch, channels, *grid), in ``dtype`` or (emulated) the carrier dtype
        with values rounded through ``dtype``. Imaginary parts at frequency 0 (and Nyquist)
        of the last axis are dropped after the inverse along the other axes, as irfft does.
    """
    d = len(modes)
    native, reason = fft_native(dtype, spectrum.device, grid)
    spectrum = spectrum.to(dtype if native else _carrier(dtype))
    if not native:
        _emulation_note(dtype, spectrum.device, reason, "inverse FFT")
    for axis, (m, n) in enumerate(zip(modes[:-1], grid[:-1])):
        dim = 2 + axis
        pos, neg = (m + 1) // 2, m // 2
        if n > m:
            gap = list(spectrum.shape)
            gap[dim] = n - m
            zeros = spectrum.new_zeros(gap)
            spectrum = torch.cat([spectrum.narrow(dim, 0, pos), zeros, spectrum.narrow(dim, pos, neg)], dim=dim)
    # Zero-pad the last frequency axis (dim -2 of the real view) up to grid[-1]//2 + 1.
    spectrum = F.pad(spectrum, (0, 0, 0, grid[-1] // 2 + 1 - spectrum.shape[-2]))
    out = torch.fft.irfftn(
        torch.view_as_complex(spectrum.contiguous()), s=tuple(grid), dim=tuple(range(-d, 0)), norm="forward"
    )
    return out if native else round_through(out, dtype)


def forward_transform(x: torch.Tensor, modes: Sequence[int], dtype: torch.dtype, backend: str = "auto") -> torch.Tensor:
    """:func:`truncated_rfft` by the given backend (``"auto"``, ``"fft"`` or ``"dft"``); same shapes."""
    grid = x.shape[-len(modes) :]
    if resolve_backend(backend, grid, modes, dtype, x.device) == "dft":
        return dft_rfft(x, modes, dtype)
    return truncated_rfft(x, modes, dtype)


def inverse_transform(
    spectrum: torch.Tensor, grid: Sequence[int], modes: Sequence[int], dtype: torch.dtype, backend: str = "auto"
) -> torch.Tensor:
    """:func:`truncated_irfft` by the given backend (``"auto"``, ``"fft"`` or ``"dft"``); same shapes."""
    if resolve_backend(backend, grid, modes, dtype, spectrum.device) == "dft":
        return dft_irfft(spectrum, grid, modes, dtype)
    return truncated_irfft(spectrum, grid, modes, dtype)
