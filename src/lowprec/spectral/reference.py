"""An fp64 reference for the spectral layer: naive DFT sums written out as matrices.

Independent of torch.fft on purpose: the tests compare every policy and
backend against it. O(N * m) per axis, fine at test sizes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .transforms import kept_modes


def frequencies(m: int, n: int, last: bool) -> torch.Tensor:
    """Kept frequencies along an axis of n points: 0..m//2 (last axis) or 0..ceil(m/2)-1, -floor(m/2)..-1."""
    if last:
        return torch.arange(m // 2 + 1)
    pos, neg = (m + 1) // 2, m // 2
    return torch.cat([torch.arange(pos), torch.arange(-neg, 0)])


def _phase(k: torch.Tensor, n: int) -> torch.Tensor:
    # exp(-2 pi i k j / n), shape (len(k), n)
    j = torch.arange(n, dtype=torch.float64)
    return torch.exp(-2j * math.pi * k.to(torch.float64)[:, None] * j[None, :] / n)


def spectral_conv_reference(x: torch.Tensor, weight: torch.Tensor, n_modes: Sequence[int]) -> torch.Tensor:
    """y = irfft(W . rfft(x) restricted to the kept modes), in fp64, by explicit sums.

    Args:
        x: real (batch, in, *grid).
        weight: complex (in, out, *kept_modes(n_modes)).
        n_modes: modes per axis.

    Returns:
        Real fp64 (batch, out, *grid).
    """
    d = len(n_modes)
    grid = x.shape[2:]
    letters = "xyz"[:d]
    spatial = "XYZ"[:d]
    xc = x.to(torch.complex128)
    # Forward: X[k] = (1/N) sum_j x[j] exp(-2 pi i k j / N), one axis at a time.
    for a, (m, n) in enumerate(zip(n_modes, grid)):
        f = _phase(frequencies(m, n, a == d - 1), n) / n
        eq = f"bi{spatial[:a]}{letters[a]}{letters[a + 1 :]},K{letters[a]}->bi{spatial[:a]}K{letters[a + 1 :]}"
        xc = torch.einsum(eq.replace("K", spatial[a]), xc, f)
    assert tuple(xc.shape[2:]) == kept_modes(n_modes)
    yc = torch.einsum(f"bi{spatial},io{spatial}->bo{spatial}", xc, weight.to(torch.complex128))
    # Inverse along all axes but the last: complex sums over the kept frequencies.
    for a, (m, n) in enumerate(zip(n_modes[:-1], grid[:-1])):
        g = _phase(frequencies(m, n, False), n).conj()  # (K, n)
        eq = f"bo{letters[:a]}{spatial[a]}{spatial[a + 1 :]},{spatial[a]}{letters[a]}->bo{letters[: a + 1]}{spatial[a + 1 :]}"
        yc = torch.einsum(eq, yc, g)
    # Last axis: a real signal from half a spectrum. Frequency 0 and Nyquist count once and
    # lose their imaginary part; the others count twice (their conjugate twins).
    n, m = grid[-1], n_modes[-1]
    k = frequencies(m, n, True)
    weights = torch.full((len(k),), 2.0, dtype=torch.float64)
    weights[0] = 1.0
    if n % 2 == 0 and k[-1] == n // 2:
        weights[-1] = 1.0
    g = _phase(k, n).conj() * weights[:, None]  # (K, n)
    yc = yc.clone()
    yc[..., 0] = yc[..., 0].real.to(torch.complex128)
    if n % 2 == 0 and k[-1] == n // 2:
        yc[..., -1] = yc[..., -1].real.to(torch.complex128)
    out = torch.einsum(f"bo{letters[:-1]}K,Kn->bo{letters[:-1]}n", yc, g)
    return out.real
