"""What :mod:`lowprec.quant` needs from a spectral layer: :class:`SpectralLayer`.

A spectral layer computes ``y = inverse( W . forward(x) )``: a transform to a truncated
spectrum (Fourier, spherical harmonics...), a per-mode complex channel mixing, and the
inverse transform. :func:`lowprec.quant.quantize_` wraps any module that has these
members in :class:`lowprec.quant.QuantSpectralConv`, and :func:`lowprec.quant.bops`
counts it, with no change to the quantization code; :class:`SpectralConv` is one.

Members (``in_channels`` and ``out_channels`` are plain ints):

``weight_factors() -> list[(subscripts, tensor)]``
    The complex weight as the factors of :mod:`lowprec.spectral.contract`: real tensors
    whose last axis (size 2) holds [re, im], with einsum subscripts; ``o`` marks the
    output-channel axis (quantized per output channel there), ``i`` the input channel.
    Their contracted product is the dense weight.

``spectrum_shape -> tuple[int, ...]``
    The kept modes of the spectrum entering and leaving the mixing, without batch, channel
    and [re, im] axes: the spectrum is (batch, channels, *spectrum_shape, 2). Quantizers
    keep one scale per mode.

``forward(x, factors=None, tap=None) -> Tensor``
    (batch, in_channels, *grid) -> (batch, out_channels, *grid). ``factors`` replaces
    ``weight_factors()`` (the quantized ones) and ``tap(stage, tensor)`` may replace the
    tensor at each stage: ``"input"`` (entering the forward transform), ``"spectrum"``
    (leaving it, (batch, in, *spectrum_shape, 2)), ``"mixed"`` (after the mixing,
    (batch, out, *spectrum_shape, 2)) and ``"output"`` (leaving the inverse transform).

``transform_macs(grid, inverse, policy, dtype, device) -> (macs, label)``
    Real multiply-accumulates of one forward (``inverse=False``) or inverse transform of
    one (batch, channel) field on ``grid``, for an input of ``dtype`` on ``device`` under
    ``policy``, and a short label for the algorithm (``"fft"``, ``"dft"``, ``"sht"``...).

``mixing_macs(batch) -> (macs, note)``
    Real MACs of the channel mixing for ``batch`` samples (4 per complex MAC), and a note
    on how they were counted (``""`` when there is nothing to say).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import torch

from ..precision.policy import PrecisionPolicy

Factors = list[tuple[str, torch.Tensor]]
Tap = Callable[[str, torch.Tensor], torch.Tensor]
STAGES = ("input", "spectrum", "mixed", "output")


@runtime_checkable
class SpectralLayer(Protocol):
    """A spectral layer :mod:`lowprec.quant` can quantize and count; see the module docstring."""

    in_channels: int
    out_channels: int

    @property
    def spectrum_shape(self) -> tuple[int, ...]: ...

    def weight_factors(self) -> Factors: ...

    def forward(self, x: torch.Tensor, factors: Factors | None = None, tap: Tap | None = None) -> torch.Tensor: ...

    def transform_macs(
        self, grid: Sequence[int], inverse: bool, policy: PrecisionPolicy, dtype: torch.dtype, device: torch.device
    ) -> tuple[int, str]: ...

    def mixing_macs(self, batch: int) -> tuple[int, str]: ...


def is_spectral_layer(module: object) -> bool:
    """Whether ``module`` has every member of :class:`SpectralLayer`."""
    return isinstance(module, SpectralLayer)


__all__ = ["STAGES", "Factors", "SpectralLayer", "Tap", "is_spectral_layer"]
