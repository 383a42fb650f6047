"""Inference cost in bit operations: ``bops(model, input_shape, config)``.

    BOPs = sum over every multiply-accumulate (MAC) of  bits(operand 1) x bits(operand 2)

(Baskin et al. 2021; van Baalen et al. 2020), so a MAC of two 8-bit integers costs 64 and
a float32 MAC 1024. Counted, per layer, from one forward pass at ``input_shape``:

* Linear: (rows) x in x out MACs; Conv: outputs x in/groups x prod(kernel);
  transposed Conv: inputs x out/groups x prod(kernel). Bits: weight x input. Input
  channels holding grid coordinates (``models.mark_coordinate_input``) are left out, in
  every config: their product is a per-grid constant, computed once, not per sample.
* attention MatMul (..., n, k) @ (..., k, m): n k m per batch entry. Bits: input x input.
* spectral layers (any :class:`lowprec.spectral.SpectralLayer`), three rows, each counted by
  the layer itself (``transform_macs``, ``mixing_macs``); for SpectralConv:

  - forward transform, per (batch, channel) field, by the backend the layer would run
    (``lowprec.spectral.resolve_backend`` under the policy, for this grid and device):
    FFT: 1.25 P log2 P real MACs for P grid points (a real FFT's ~2.5 P log2 P flops, the
    figure :mod:`lowprec.spectral.backend` uses); DFT as GEMMs (:mod:`lowprec.spectral.dft`):
    prod(N_1..N_{d-1}) N_d 2K for the real axis (K = m_d//2+1), then rows x 2N_a x 2m_a per
    other axis a, rows being the size of the intermediate without that axis;
  - channel mixing: 4 real MACs per complex one, B x in x out x prod(kept modes) for dense
    weights; for Tucker/CP, opt_einsum's count for the planned order (flops / 2);
  - inverse transform: FFT as the forward; DFT: the same products in reverse order.

  Bits: transform constants (``QuantConfig.transform_bits``) x input or mixed-spectrum
  bits; mixing: weight x spectrum bits.

Element-wise work (activations, normalization, softmax, residual additions, the
quantizers) is not counted: it grows with the activations, not with their products,
and is a few percent of the MACs in these models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..precision.policy import PrecisionPolicy, current_policy, get_policy
from .config import QuantConfig, get_config
from .modules import (
    _TRANSPOSED,
    QuantConv,
    QuantConvTranspose,
    QuantLayer,
    QuantLinear,
    QuantMatMul,
    QuantSpectralConv,
    bypass,
    candidates,
    selected_layers,
)


@dataclass
class LayerCost:
    """One row: a layer (or one step of a spectral layer), its MACs and the bits of its two operands."""

    name: str
    kind: str
    macs: int
    bits_a: int
    bits_b: int
    note: str = ""

    @property
    def bops(self) -> int:
        return self.macs * self.bits_a * self.bits_b


@dataclass
class CostReport:
    """Per-layer MACs and BOPs of one forward pass at ``input_shape``."""

    input_shape: tuple
    config: str
    layers: list = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.layers)

    @property
    def bops(self) -> int:
        return sum(r.bops for r in self.layers)

    def by_kind(self) -> dict:
        out: dict = {}
        for r in self.layers:
            macs, bops = out.get(r.kind, (0, 0))
            out[r.kind] = (macs + r.macs, bops + r.bops)
        return out

    def table(self) -> str:
        from ..report import format_table

        rows = [
            {
                "name": r.name,
                "kind": r.kind,
                "macs": r.macs,
                "bits": f"{r.bits_a}x{r.bits_b}",
                "bops": r.bops,
                "share": r.bops / max(self.bops, 1),
                "note": r.note,
            }
            for r in self.layers
        ]
        rows.append({"name": "total", "macs": self.macs, "bops": self.bops, "share": 1.0})
        return format_table(
            rows,
            [
                ("name", "layer", ""),
                ("kind", "kind", ""),
                ("macs", "MACs", ",d"),
                ("bits", "bits", ""),
                ("bops", "BOPs", ".3e"),
                ("share", "share", ".1%"),
                ("note", "note", ""),
            ],
        )

    def to_dict(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "config": self.config,
            "macs": self.macs,
            "bops": self.bops,
            "layers": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "macs": r.macs,
                    "bits": [r.bits_a, r.bits_b],
                    "bops": r.bops,
                    "note": r.note,
                }
                for r in self.layers
            ],
        }


# -- bits ------------------------------------------------------------------------------------------


def _bits(quantizer) -> int:
    return getattr(quantizer, "bits", 32)


class _Bits:
    """Bits of each operand of a layer: from its quantizers, or from a config for a float layer."""

    def __init__(self, model: nn.Module, config: QuantConfig | None):
        self.config = config
        self.planned = {n for n, _ in selected_layers(model, config)} if config is not None else set()

    def weight_input(self, name: str, module: nn.Module) -> tuple[int, int]:
        if self.config is not None:
            if name in self.planned:
                return self.config.weight_bits, self.config.activation_bits
            return 32, 32
        if isinstance(module, (QuantLinear, QuantConv, QuantConvTranspose)):
            return _bits(module.weight_quant), _bits(module.input_quant)
        return 32, 32

    def matmul(self, name: str, module: nn.Module) -> tuple[int, int]:
        if self.config is not None:
            a = self.config.activation_bits if name in self.planned else 32
            return a, a
        if isinstance(module, QuantMatMul):
            return _bits(module.a_quant), _bits(module.b_quant)
        return 32, 32

    def spectral(self, name: str, module: nn.Module) -> dict:
        """Bits of: input, spectrum, weights, mixed spectrum, and the transform constants."""
        if self.config is not None:
            if name in self.planned:
                a, w = self.config.activation_bits, self.config.weight_bits
                return {"input": a, "spectrum": a, "weight": w, "mixed": a, "transform": self.config.transform_bits}
            return dict.fromkeys(("input", "spectrum", "weight", "mixed", "transform"), 32)
        if isinstance(module, QuantSpectralConv):
            return {
                "input": _bits(module.input_quant),
                "spectrum": _bits(module.spectrum_quant),
                "weight": max(_bits(q) for q in module.weight_quants),
                "mixed": _bits(module.mixed_quant),
                "transform": module.config.transform_bits,
            }
        return dict.fromkeys(("input", "spectrum", "weight", "mixed", "transform"), 32)


# -- the count -------------------------------------------------------------------------------------


def _conv_layer(module):
    return module.layer if isinstance(module, QuantLayer) else module


@torch.no_grad()
def bops(
    model: nn.Module,
    input_shape: Sequence[int] | None = None,
    config: str | QuantConfig | None = None,
    policy: str | PrecisionPolicy | None = None,
    *,
    inputs: dict | None = None,
) -> CostReport:
    """Count MACs and BOPs of one forward pass of ``model`` on an input of ``input_shape``.

    Args:
        model: float or quantized (after :func:`lowprec.quant.quantize_`).
        input_shape: (batch, C_in, *grid); pass batch 1 for the cost per sample.
        inputs: instead of input_shape, named inputs ``{name: tensor or shape}`` for models called
            as ``model(**inputs)`` (GINO: coords, latent); shapes become zeros. Pass real tensors
            where the cost depends on the values (a point cloud's neighbour pairs).
        config: the bits to count: a preset name or QuantConfig, applied to the layers it
            would quantize (the model need not be quantized); None: the model's own
            quantizers (float layers at 32 bits).
        policy: precision policy deciding the spectral backend (default: the active one).

    Returns:
        A :class:`CostReport` (``.macs``, ``.bops``, ``.layers``, ``.table()``).

    Runs the model once on zeros on its device, in eval mode, with quantizers bypassed,
    so it works on uncalibrated models too.
    """
    config = get_config(config) if config is not None else None
    policy = get_policy(policy) if policy is not None else current_policy()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    bits = _Bits(model, config)
    label = config.name if config is not None else getattr(model, "quant_config", QuantConfig("float")).name
    if (input_shape is None) == (inputs is None):
        raise ValueError("bops() takes input_shape (one tensor input) or inputs= (named inputs), not both or neither.")
    if inputs is not None:
        inputs = {
            k: (v if isinstance(v, torch.Tensor) else torch.zeros(tuple(v))).to(device) for k, v in inputs.items()
        }
    shape = tuple(input_shape) if inputs is None else tuple((k, tuple(v.shape)) for k, v in inputs.items())
    report = CostReport(shape, label)
    hooks = []

    def on_dense(name):
        def hook(module, inputs, output):
            layer = _conv_layer(module)
            w, a = bits.weight_input(name, module)
            coords = getattr(layer, "coordinate_channels", 0)
            if isinstance(layer, nn.Linear):
                macs = output.numel() * (layer.in_features - coords)
            elif isinstance(layer, _TRANSPOSED):
                macs = inputs[0].numel() * (layer.out_channels // layer.groups) * math.prod(layer.kernel_size)
            else:
                macs = output.numel() * (layer.in_channels // layer.groups - coords) * math.prod(layer.kernel_size)
            note = f"+{coords} coordinate channels: once per grid" if coords else ""
            report.layers.append(
                LayerCost(name, "linear" if isinstance(layer, nn.Linear) else "conv", macs, w, a, note)
            )

        return hook

    def on_matmul(name):
        def hook(module, inputs, output):
            a, b = bits.matmul(name, module)
            report.layers.append(LayerCost(name, "matmul", output.numel() * inputs[0].shape[-1], a, b))

        return hook

    def on_spectral(name):
        def hook(module, inputs, output):
            layer = _conv_layer(module)  # a lowprec.spectral.SpectralLayer: it counts its own transforms
            x = inputs[0]
            grid, batch = tuple(x.shape[2:]), x.shape[0]
            b = bits.spectral(name, module)
            forward, label = layer.transform_macs(grid, False, policy, x.dtype, x.device)
            report.layers.append(
                LayerCost(
                    f"{name}.forward_{label}",
                    "transform",
                    batch * layer.in_channels * forward,
                    b["input"],
                    b["transform"],
                    label,
                )
            )
            macs, note = layer.mixing_macs(batch)
            report.layers.append(LayerCost(f"{name}.mixing", "spectral", macs, b["weight"], b["spectrum"], note))
            inverse, label = layer.transform_macs(grid, True, policy, x.dtype, x.device)
            report.layers.append(
                LayerCost(
                    f"{name}.inverse_{label}",
                    "transform",
                    batch * layer.out_channels * inverse,
                    b["mixed"],
                    b["transform"],
                    label,
                )
            )

        return hook

    counters = {"linear": on_dense, "conv": on_dense, "matmul": on_matmul, "spectral": on_spectral}
    for name, module, kind in candidates(model):
        hooks.append(module.register_forward_hook(counters[kind](name)))
    was_training = model.training
    model.eval()
    try:
        with bypass(model), policy:
            if inputs is not None:
                model(**inputs)
            else:
                model(torch.zeros(tuple(input_shape), device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return report


def cost_vs_resolution(
    model: nn.Module,
    in_channels: int,
    grids: Sequence[Sequence[int]],
    configs: Sequence[str | QuantConfig] = ("float", "w8a8", "w4a4"),
    policy=None,
) -> list[dict]:
    """MACs and BOPs per sample at each grid, for each config: rows {grid, config, macs, bops, transform_share}."""
    rows = []
    for grid in grids:
        for config in configs:
            report = bops(model, (1, in_channels, *grid), config, policy)
            transform = sum(r.bops for r in report.layers if r.kind == "transform")
            rows.append(
                {
                    "grid": "x".join(map(str, grid)),
                    "config": get_config(config).name,
                    "macs": report.macs,
                    "bops": report.bops,
                    "transform_share": transform / max(report.bops, 1),
                }
            )
    return rows
