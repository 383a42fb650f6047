"""What to quantize and how: two small frozen dataclasses and the named presets.

    QuantSpec(bits=8, symmetric=True, per_channel=True, observer="minmax")   # one kind of tensor
    QuantConfig(weight=QuantSpec(...), activation=QuantSpec(...), layers=(...), skip=(...))

Presets (``get_config(name)``):

======== ================================ ================================== =========
name     weights                          activations                        transform
======== ================================ ================================== =========
float    --                               --                                 32
w8a32    8 bit, symmetric, per channel    -- (float)                         32
w8a16    8 bit, symmetric, per channel    16 bit, affine, per tensor         16
w8a8     8 bit, symmetric, per channel    8 bit, affine, per tensor          16
w4a8     4 bit, symmetric, per channel    8 bit, affine, per tensor          16
w4a4     4 bit, symmetric, per channel    4 bit, affine, per tensor          16

All observe min/max ranges during calibration; with ``learn_scales`` (the default) the
scales are then trained (LSQ).
======== ================================ ================================== =========

Why these choices: weights are centred on zero, so symmetric (no zero point, and a
kernel need not correct for one) and per output channel (channels' ranges differ by
10x in a trained FNO); activations are often one-sided (after GELU, tanh, softmax),
so affine, and per tensor, as integer kernels need one scale per input. Activation
ranges are the min/max over all calibration batches, not torch's default moving
average of per-batch extremes: a regression model is hurt far more by clipping than by
a coarser grid: a moving average clips every test sample whose range exceeds the
averaged one, an error far larger than the rounding of 8 or 16 bits.

``transform`` is the bit width at which :func:`lowprec.quant.bops` counts the
constants of spectral transforms (FFT twiddles or DFT matrices), which multiply the
quantized activations. The fake-quantized model computes those transforms in float
on quantized inputs and outputs; 16-bit constants would change the result by about
1e-5 (relative), far below the 8-bit activations' rounding, so not simulating them is
honest at 16 bits. Fewer bits would need simulating: set it below 16 at your own risk.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .._hints import did_you_mean, lookup

OBSERVERS = ("minmax", "moving_average")
# Layer kinds quantize_ can handle: Linear, Conv1d/2d/3d (+ transposed), spectral layers, attention MatMul.
LAYER_TYPES = ("linear", "conv", "spectral", "matmul")
MIN_BITS, MAX_BITS = 2, 16


@dataclass(frozen=True)
class QuantSpec:
    """How one kind of tensor (weights or activations) is quantized.

    Attributes:
        bits: integer width, 2..16. Values lie on a grid of 2^bits levels.
        symmetric: grid symmetric about 0, no zero point (levels -(2^(b-1)-1) .. 2^(b-1)-1);
            otherwise affine (levels -2^(b-1) .. 2^(b-1)-1 shifted by an integer zero point).
        per_channel: one scale per output channel (weights only; activations are per tensor).
        observer: how calibration sets the range: ``"minmax"`` (running min/max over all
            calibration batches) or ``"moving_average"`` (exponential average of each batch's
            min/max, weight 0.1 for the newest).
    """

    bits: int = 8
    symmetric: bool = True
    per_channel: bool = False
    observer: str = "minmax"

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not MIN_BITS <= self.bits <= MAX_BITS:
            raise ValueError(
                f"QuantSpec.bits={self.bits!r}: bit widths must be integers in {MIN_BITS}..{MAX_BITS}; "
                "for no quantization pass None instead of a QuantSpec (e.g. QuantConfig(activation=None))."
            )
        if self.observer not in OBSERVERS:
            raise ValueError(f"unknown observer {self.observer!r}; choose one of {OBSERVERS}.")

    @property
    def qmin(self) -> int:
        return -(2 ** (self.bits - 1)) + (1 if self.symmetric else 0)

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1


@dataclass(frozen=True)
class QuantConfig:
    """Which layers :func:`lowprec.quant.quantize_` quantizes, and how.

    Attributes:
        name: label in logs, tables and sweep files.
        weight: spec of weights (real and imaginary parts of complex spectral weights are
            quantized as separate real tensors, each with its own scales); None: float weights.
        activation: spec of the inputs of every quantized product (and, in spectral layers,
            of the spectra entering and leaving the channel mixing and the output); None: float.
        layers: layer kinds to quantize, from ``"linear"``, ``"conv"`` (incl. transposed),
            ``"spectral"`` and ``"matmul"`` (attention products).
        skip: module names (fnmatch patterns, e.g. ``"model.projection.*"``) left in float.
        learn_scales: after calibration, scales become parameters trained with the weights
            (LSQ, Esser et al. 2020); otherwise weight scales follow the weights' min/max and
            activation scales stay as calibrated.
        transform_bits: bit width at which :func:`~lowprec.quant.bops` counts the constants of
            spectral transforms (see the module docstring); 32 for float.
    """

    name: str = "custom"
    weight: QuantSpec | None = None
    activation: QuantSpec | None = None
    layers: tuple[str, ...] = LAYER_TYPES
    skip: tuple[str, ...] = ()
    learn_scales: bool = True
    transform_bits: int = 32

    def __post_init__(self):
        for field in ("weight", "activation"):
            value = getattr(self, field)
            if value is not None and not isinstance(value, QuantSpec):
                raise TypeError(f"QuantConfig.{field} must be a QuantSpec or None, got {type(value).__name__}.")
        if isinstance(self.layers, str) or isinstance(self.skip, str):
            raise TypeError("QuantConfig.layers and .skip are tuples of strings, e.g. layers=('linear', 'conv').")
        bad = [kind for kind in self.layers if kind not in LAYER_TYPES]
        if bad:
            hint = did_you_mean(bad[0], LAYER_TYPES)
            raise ValueError(
                f"QuantConfig.layers names {bad[0]!r}, which quantize_ cannot quantize.{hint} "
                f"Quantizable layer kinds: {', '.join(LAYER_TYPES)} (nn.Linear; nn.Conv1d/2d/3d and "
                "their transposes; lowprec.spectral.SpectralConv or any lowprec.spectral.SpectralLayer; "
                "lowprec.models.transformer.MatMul). "
                "Leave other layers out of `layers`; they stay in float."
            )
        if not 2 <= self.transform_bits <= 32:
            raise ValueError(f"QuantConfig.transform_bits={self.transform_bits}: use 2..16, or 32 for float.")

    @property
    def is_float(self) -> bool:
        return self.weight is None and self.activation is None

    @property
    def weight_bits(self) -> int:
        return self.weight.bits if self.weight is not None else 32

    @property
    def activation_bits(self) -> int:
        return self.activation.bits if self.activation is not None else 32

    def replace(self, **changes) -> QuantConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _preset(name: str, w_bits: int | None, a_bits: int | None) -> QuantConfig:
    weight = QuantSpec(w_bits, symmetric=True, per_channel=True, observer="minmax") if w_bits else None
    activation = QuantSpec(a_bits, symmetric=False, per_channel=False, observer="minmax") if a_bits else None
    # Transform constants at 16 bits once anything is quantized (see the module docstring).
    return QuantConfig(name, weight, activation, transform_bits=32 if activation is None else 16)


PRESETS: dict[str, QuantConfig] = {
    "float": _preset("float", None, None),
    "w8a32": _preset("w8a32", 8, None),
    "w8a16": _preset("w8a16", 8, 16),
    "w8a8": _preset("w8a8", 8, 8),
    "w4a8": _preset("w4a8", 4, 8),
    "w4a4": _preset("w4a4", 4, 4),
}


def get_config(config: str | QuantConfig) -> QuantConfig:
    """A preset by name (a QuantConfig is returned unchanged); unknown names list the presets."""
    if isinstance(config, QuantConfig):
        return config
    return lookup(
        PRESETS,
        config,
        "quantization preset",
        "lowprec.quant.QuantConfig(weight=QuantSpec(...), activation=QuantSpec(...))",
    )
