"""Synthetic input families with a known regularity, on the periodic unit square (or interval).

Every family is a continuous function evaluated at x_i = i / N, so the same
sample at resolution N is the finest one taken with stride N_max / N; what a
model does differently at N is then discretization error alone.

* ``bandlimited``: a few Fourier modes (|k| <= 4); any grid with N > 8 holds it
  exactly, so a linear spectral layer has no discretization error at all.
* ``smooth``: g(x) = sum_{k>=1} k^(-decay) cos(2 pi k x + phi_k), a function in
  the Sobolev space H^s for every s < decay - 1/2. Sampling it aliases the
  modes above N/2 onto the kept ones: the discrete coefficient of a fixed mode
  k picks up sum_{j != 0} c_{k + jN} ~ N^(-decay), so the discrete Fourier
  coefficients (and a Fourier layer's output) converge at rate ``decay``.
* ``jump``: the indicator of an interval [a, b) with a, b off every grid; the
  trapezoidal rule (which the DFT is) is first-order accurate for a function
  with a jump, so the discrete coefficients converge at rate 1.

In 2D (3D) a sample is the product g(x) g'(y) of independent 1D samples, which
keeps the rate of the 1D factor. Phases and jump positions are drawn per sample
from ``seed``. Shapes: (batch, 1, N, ..., N), float64.
"""

from __future__ import annotations

import math

import numpy as np
import torch

FAMILIES = ("bandlimited", "smooth", "jump")
# Terms of the smooth series summed explicitly; the tail beyond is below 1e-16 relative for decay >= 2.5
# at the resolutions used (<= 4096), and it is the same function at every N, so it cannot bias a rate.
_SMOOTH_TERMS = 8192


def _factor(family: str, rng: np.random.Generator, x: np.ndarray, decay: float) -> np.ndarray:
    if family == "bandlimited":
        k = np.arange(1, 5)
        amp = rng.standard_normal(4) / k
        phase = rng.uniform(0, 2 * math.pi, 4)
        return (amp[:, None] * np.cos(2 * math.pi * k[:, None] * x + phase[:, None])).sum(0)
    if family == "smooth":
        k = np.arange(1, _SMOOTH_TERMS + 1, dtype=np.float64)
        phase = rng.uniform(0, 2 * math.pi, k.size)
        coeff = k ** (-decay) * np.exp(1j * phase)
        # sum_k c_k e^{2 pi i k x} evaluated by an FFT on a fine grid that contains x (x = i / N, N | M).
        m = 2 * _SMOOTH_TERMS + 2
        n = x.size
        if m % n:
            m = n * math.ceil(m / n)
        spectrum = np.zeros(m, dtype=np.complex128)
        spectrum[1 : _SMOOTH_TERMS + 1] = coeff
        fine = (np.fft.ifft(spectrum) * m).real
        return fine[:: m // n]
    if family == "jump":
        a, b = rng.uniform(0.1, 0.4), rng.uniform(0.6, 0.9)
        return ((x >= a) & (x < b)).astype(np.float64)
    raise ValueError(f"unknown input family {family!r}; choose one of {FAMILIES}.")


def synthetic_inputs(
    family: str, resolution: int, batch: int = 4, dim: int = 2, decay: float = 3.0, seed: int = 0
) -> torch.Tensor:
    """``batch`` samples of ``family`` on the (resolution,)*dim periodic grid, (batch, 1, *grid) float64.

    The same ``seed`` gives the same continuous functions at every resolution.
    ``decay`` is the smooth family's coefficient decay |c_k| ~ k^(-decay) (ignored otherwise).
    """
    if family == "smooth" and decay <= 1:
        raise ValueError(f"decay={decay} gives a series that does not converge; use decay > 1 (e.g. 3).")
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}.")
    rng = np.random.default_rng(seed)
    x = np.arange(resolution, dtype=np.float64) / resolution
    out = np.empty((batch, 1) + (resolution,) * dim)
    for b in range(batch):
        field = np.ones(())
        for _ in range(dim):
            field = np.multiply.outer(field, _factor(family, rng, x, decay))
        out[b, 0] = field
    return torch.from_numpy(out)
