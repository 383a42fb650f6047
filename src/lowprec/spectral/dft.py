"""Truncated real DFTs as matrix products: exact on every grid, in any real dtype.

Keeping m of N frequencies along an axis is a product with an N x m matrix
of cosines and sines, so a truncated transform needs no FFT at all:

* forward, last axis (real in, complex out): ``x @ F``, F (N, 2K) with
  K = m//2 + 1 columns of cos and -sin, interleaved [re, im];
* forward, any other axis (complex in, complex out): the 2x2 real form of the
  complex matrix, (2N, 2m), applied to [re, im] pairs;
* inverse, the same matrices the other way, the last axis last (complex in,
  real out), frequency 0 and Nyquist counted once and all others twice, as
  irfft counts them.

Everything is a real GEMM over the last axis: it runs in fp32, bf16 or fp16
(fp32 accumulation on tensor cores, and in oneDNN on CPU), compiles with
Inductor (no complex tensors), and autograd saves only the constant matrices,
never the activations. The intermediates after the first product are m/N of
the input. ``norm="forward"``: the 1/N sits in the forward matrices, so every
forward coefficient is an average of its inputs and fp16 cannot overflow
where the input did not.

Layouts match :mod:`lowprec.spectral.transforms` exactly (same kept
frequencies in the same order, spectra as real (..., 2) views), so the two
backends are interchangeable step by step.

Matrices are built once in fp64 and cached per (kind, N, m, dtype, device).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def axis_frequencies(m: int, last: bool) -> list[int]:
    """Kept frequencies, in storage order: 0..m//2 (last axis) or 0..ceil(m/2)-1, -floor(m/2)..-1."""
    if last:
        return list(range(m // 2 + 1))
    return list(range((m + 1) // 2)) + list(range(-(m // 2), 0))


def _angles(freqs: Sequence[int], n: int) -> torch.Tensor:
    """2 pi k j / n for k in freqs (rows) and j < n (columns), exact: k j is reduced mod n first."""
    k = torch.tensor(freqs, dtype=torch.int64)[:, None]
    j = torch.arange(n, dtype=torch.int64)[None, :]
    return (2 * math.pi / n) * torch.remainder(k * j, n).to(torch.float64)  # (m, n)


def _complex_block(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """Real form of a complex matrix G = re + i im acting on [re, im] pairs from the right.

    re, im: (n_in, n_out). Returns (2 n_in, 2 n_out) M with
    ``[x_re, x_im] @ M = [(G^T x)_re, (G^T x)_im]`` entry by entry, pairs interleaved.
    """
    n_in, n_out = re.shape
    m = torch.empty(n_in, 2, n_out, 2, dtype=re.dtype)
    m[:, 0, :, 0], m[:, 1, :, 0] = re, -im  # out_re = x_re re - x_im im
    m[:, 0, :, 1], m[:, 1, :, 1] = im, re  # out_im = x_re im + x_im re
    return m.reshape(2 * n_in, 2 * n_out)


_MATRICES: dict = {}


def dft_matrix(kind: str, n: int, m: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The real matrix of one truncated transform along one axis of ``n`` points, ``m`` modes.

    kind:
        ``"rfft"``   (n, 2K): real input -> K = m//2+1 interleaved [re, im] coefficients.
        ``"fft"``    (2n, 2m): complex -> the m kept frequencies (see :func:`axis_frequencies`).
        ``"ifft"``   (2m, 2n): the m kept frequencies -> complex values at n points.
        ``"irfft"``  (2K, n): K half-spectrum coefficients -> n real values.
    Forward kinds divide by n (``norm="forward"``); inverse kinds do not. Cached per
    (kind, n, m, dtype, device) in a plain dict, which ``torch.compile`` reads as a graph
    input (an lru_cache it would trace through, rebuilding the matrix in every graph).
    """
    key = (kind, n, m, dtype, torch.device(device))
    if key not in _MATRICES:
        _MATRICES[key] = _build(kind, n, m).to(device=device, dtype=dtype)
    return _MATRICES[key]


def cached_storages() -> set[int]:
    """Storage addresses of every cached matrix: constants that autograd may save but never adds up."""
    return {m.untyped_storage().data_ptr() for m in _MATRICES.values()}


def _build(kind: str, n: int, m: int) -> torch.Tensor:
    last = kind in ("rfft", "irfft")
    theta = _angles(axis_frequencies(m, last), n)  # (modes, n)
    cos, sin = torch.cos(theta), torch.sin(theta)
    if kind == "rfft":
        out = torch.stack((cos.T, -sin.T), dim=-1).reshape(n, -1) / n
    elif kind == "fft":
        out = _complex_block(cos.T / n, -sin.T / n)
    elif kind == "ifft":
        out = _complex_block(cos, sin)
    elif kind == "irfft":
        # y[t] = sum_k w_k (Re Y_k cos - Im Y_k sin). Frequency 0 and Nyquist have no conjugate
        # twin (w = 1) and their imaginary parts are dropped, as irfft drops them.
        w = torch.full((theta.shape[0], 1), 2.0, dtype=torch.float64)
        w[0] = 1.0
        sin[0] = 0.0
        if n % 2 == 0 and theta.shape[0] - 1 == n // 2:
            w[-1] = 1.0
            sin[-1] = 0.0
        out = torch.stack((w * cos, -w * sin), dim=1).reshape(-1, n)
    else:
        raise ValueError(f"unknown DFT matrix kind {kind!r}; one of rfft, fft, ifft, irfft.")
    return out


def _along(t: torch.Tensor, dim: int, matrix: torch.Tensor) -> torch.Tensor:
    """Apply ``matrix`` (2n, 2m) to the complex axis ``dim`` of t (..., n, ..., 2) -> (..., m, ..., 2)."""
    t = t.movedim(dim, -2)  # (..., n, 2)
    out = t.flatten(-2) @ matrix
    return out.unflatten(-1, (-1, 2)).movedim(-2, dim)


def dft_rfft(x: torch.Tensor, modes: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """Same result as :func:`lowprec.spectral.transforms.truncated_rfft`, by matrix products in ``dtype``.

    x: real (batch, channels, *grid) -> real view (batch, channels, *kept_modes(modes), 2) in ``dtype``.
    """
    d = len(modes)
    grid = x.shape[-d:]
    x = x.to(dtype)
    # The last axis first: it turns the full real grid into K columns, so every later
    # product runs on a tensor K/N the size of the input.
    t = (x @ dft_matrix("rfft", grid[-1], modes[-1], dtype, x.device)).unflatten(-1, (-1, 2))
    for axis in range(d - 1):
        t = _along(t, 2 + axis, dft_matrix("fft", grid[axis], modes[axis], dtype, x.device))
    return t


def dft_irfft(spectrum: torch.Tensor, grid: Sequence[int], modes: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """Same result as :func:`lowprec.spectral.transforms.truncated_irfft`, by matrix products in ``dtype``.

    spectrum: real view (batch, channels, *kept_modes(modes), 2) -> real (batch, channels, *grid).
    """
    d = len(modes)
    t = spectrum.to(dtype)
    for axis in range(d - 1):
        t = _along(t, 2 + axis, dft_matrix("ifft", grid[axis], modes[axis], dtype, t.device))
    return t.flatten(-2) @ dft_matrix("irfft", grid[-1], modes[-1], dtype, t.device)
