"""Pre-activations that bound what reaches a forward spectral transform.

A forward FFT sums N values, so an fp16 spectrum overflows (65504) once the
inputs are large; Tu et al. put a ``tanh`` before every forward FFT, with hard
clipping and 2-sigma clipping as alternatives. All three keep the input shape.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def hardclip(x: torch.Tensor) -> torch.Tensor:
    """Clip to [-1, 1]."""
    return x.clamp(-1.0, 1.0)


def sigma_clip(x: torch.Tensor, n_sigma: float = 2.0) -> torch.Tensor:
    """Clip each (sample, channel) to mean +- ``n_sigma`` standard deviations over space.

    x: (batch, channels, *grid). Statistics are taken in fp32 and not
    differentiated: they set the bounds, the gradient flows through the values.
    """
    dims = tuple(range(2, x.ndim))
    with torch.no_grad():
        xf = x.float()
        mean = xf.mean(dim=dims, keepdim=True)
        std = xf.std(dim=dims, keepdim=True) if x[0, 0].numel() > 1 else torch.zeros_like(mean)
        lo, hi = (mean - n_sigma * std).to(x.dtype), (mean + n_sigma * std).to(x.dtype)
    return torch.maximum(torch.minimum(x, hi), lo)


_STABILIZERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "hardclip": hardclip,
    "sigma_clip": sigma_clip,
}


def stabilize(x: torch.Tensor, name: str | None) -> torch.Tensor:
    """Apply the stabilizer called ``name`` (``None``: identity)."""
    return x if name is None else _STABILIZERS[name](x)
