"""Quantization-aware training of neural PDE solvers, their cost in bit operations, and Pareto sweeps.

    from lowprec.quant import quantize_, calibrate, bops
    quantize_(model, "w8a8")                 # fake-quantized Linear/Conv/spectral/attention layers
    calibrate(model, train_set)              # activation ranges from a few batches
    Trainer(model, train_set, ...).fit()     # QAT: weights and (log) scales learn together
    bops(model, (1, 1, 65, 65)).table()      # MACs and bit operations per layer
    int8_model, names = convert_int8(model)  # Linear/Conv on real int8 kernels (CPU)

Files:
    config.py   QuantSpec, QuantConfig, presets (float, w8a32, w8a16, w8a8, w4a8, w4a4)
    fake.py     straight-through fake quantization, observers, learned (LSQ) scales
    modules.py  quantize_, calibrate, the Quant* wrappers
    bops.py     bops(), per-layer cost table, cost against resolution
    int8.py     convert_int8: integer kernels for Linear/Conv, latency measurement
    study.py    float training, QAT at reduced resolution, Pareto sweep (JSONL, front, plot)
    cli.py      ``lowprec quantize`` and ``lowprec pareto``
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_package

if TYPE_CHECKING:
    from ..spectral.backend import dft_macs, fft_macs
    from .bops import CostReport, LayerCost, bops, cost_vs_resolution
    from .config import PRESETS, QuantConfig, QuantSpec, get_config
    from .fake import FakeQuantizer, NotCalibratedError, fake_quantize
    from .int8 import compare_int8, convert_int8, latency_table
    from .modules import (
        QuantConv,
        QuantConvTranspose,
        QuantLinear,
        QuantMatMul,
        QuantSpectralConv,
        bypass,
        calibrate,
        quantize_,
        quantizers,
        selected_layers,
    )

lazy_package(__name__)

__all__ = [
    "quantize_",
    "calibrate",
    "quantizers",
    "selected_layers",
    "bypass",
    "QuantConfig",
    "QuantSpec",
    "PRESETS",
    "get_config",
    "FakeQuantizer",
    "NotCalibratedError",
    "fake_quantize",
    "QuantLinear",
    "QuantConv",
    "QuantConvTranspose",
    "QuantSpectralConv",
    "QuantMatMul",
    "bops",
    "cost_vs_resolution",
    "CostReport",
    "LayerCost",
    "fft_macs",
    "dft_macs",
    "convert_int8",
    "compare_int8",
    "latency_table",
]
