"""Real integer inference for Linear and Conv layers on CPU: ``convert_int8(model)``.

Fake quantization only simulates integers. This module turns every calibrated
:class:`~lowprec.quant.modules.QuantLinear`, ``QuantConv`` and ``QuantConvTranspose`` with
weights and activations of at most 8 bits into a layer that computes its product in
integers, with ``torch._int_mm`` (int8 x int8 -> int32 GEMM; oneDNN/fbgemm on CPU,
cuBLASLt on CUDA; what torchao's int8 kernels call), so the BOPs estimate can be
checked against measured time.

For x quantized per tensor (scale s_x, zero point z_x, levels q_x) and weight levels
W_q with per-channel scales s_w (symmetric, no zero point)::

    y[m, o] = s_x s_w[o] * ( sum_k q_x[m, k] W_q[k, o]  -  z_x sum_k W_q[k, o] ) + bias[o]
              \\___ float ___/   \\__________ int32, exactly __________________/

which is exactly what the fake-quantized layer computes, up to float rounding of the
final sum. Convolutions are unfolded (im2col) to one such GEMM; padding is filled with
the level z_x, which is the real value 0. Input channels holding grid coordinates
(``models.mark_coordinate_input``) are not quantized: their product with the weight is
a per-position constant, computed in float once per grid and cached. Transposed convolutions are a GEMM followed
by col2im (``F.fold``) in float. 1D layers run as 2D with a height of 1.

torch's quantized tensors and ``torch.ao.nn.quantized`` modules would do the same, but
are deprecated; ``torch._int_mm`` is the kernel torchao builds on. Spectral layers and
attention products stay fake-quantized (float kernels on integer-valued operands):
no library has integer FFT kernels, and the DFT backend's GEMMs would need a complex
integer GEMM.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .fake import FakeQuantizer
from .modules import QuantConv, QuantConvTranspose, QuantLayer, QuantLinear


class CoordinateTerm(nn.Module):
    """A layer's product with its grid-coordinate input channels, computed once per grid and cached.

    The coordinates (``models.mark_coordinate_input``) are the same for every sample, so
    the product is a per-position constant (C_out, *grid'), added like a bias.
    """

    def __init__(self, layer: nn.Module, channels: int):
        super().__init__()
        self.channels = channels
        self.layer = copy.deepcopy(layer).float()
        self.layer.weight = nn.Parameter(self.layer.weight.detach()[:, -channels:].clone(), requires_grad=False)
        self.layer.bias = None
        self.cache: dict = {}

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """coords: (B, channels, *grid) or (..., channels) -> the layer's output from them, batch broadcast."""
        key = (tuple(coords.shape[1:]), coords.device)
        if key not in self.cache:
            self.cache[key] = self.layer(coords[:1].float())  # the copy's weight is the coordinate columns, no bias
        value = self.cache[key]
        return value.expand(coords.shape[0], *value.shape[1:])


def _row_major(t: torch.Tensor) -> torch.Tensor:
    """A copy with strides (N, 1). torch._int_mm misreads operands with one column or row whose
    strides are not (N, 1), e.g. (1, 144), which .contiguous() keeps as they are "contiguous"
    (torch 2.13: every output of a one-channel layer wrong)."""
    out = torch.empty(t.shape, dtype=t.dtype, device=t.device)
    return out.copy_(t)


def _split(x: torch.Tensor, channels: int, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.shape[axis]
    return x.narrow(axis, 0, n - channels), x.narrow(axis, n - channels, channels)


class Int8Layer(nn.Module):
    """Shared parts: the input's grid (scale, zero point, range), the weight's levels and scales,
    and the cached coordinate term when the layer has coordinate input channels."""

    def __init__(self, wrapper: QuantLayer, weight: torch.Tensor):
        super().__init__()
        self.name = wrapper.name
        d = wrapper.coordinate_channels
        self.coordinates = CoordinateTerm(wrapper.layer, d) if d else None
        act, wq = wrapper.input_quant, wrapper.weight_quant
        self.qmin, self.qmax = act.spec.qmin, act.spec.qmax
        self.register_buffer("x_scale", act.scale.detach().float().reshape(()))
        self.register_buffer("x_zero", act.zero_point.detach().float().reshape(()))
        levels = wq.levels(weight.detach())  # float tensor of integers, |level| <= 127
        self.register_buffer("w_scale", wq.scale.detach().float().flatten())  # (C_out,) or (1,)
        self._levels = levels  # consumed (and deleted) by the subclass

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """Levels of x on the input grid, as a float tensor holding integers (same arithmetic as fake_quantize)."""
        # in place after the first op: these passes over the activations are most of an int8 layer's time
        return x.float().div(self.x_scale).round_().add_(self.x_zero).clamp_(self.qmin, self.qmax)

    def gemm(self, q: torch.Tensor, w_t: torch.Tensor, w_colsum: torch.Tensor) -> torch.Tensor:
        """(M, K) integer-valued floats x (K, N) int8 -> (M, N) int32 of sum (q - z) W."""
        q = q.to(torch.int8)
        acc = torch._int_mm(q if q.stride(-1) == 1 and q.stride(0) == q.shape[1] else _row_major(q), w_t)
        return acc - self.x_zero.to(torch.int32) * w_colsum


class Int8Linear(Int8Layer):
    """``nn.Linear`` in int8: (..., in) -> (..., out), float in and out."""

    def __init__(self, wrapper: QuantLinear):
        layer = wrapper.layer
        super().__init__(wrapper, wrapper.data_weight())
        w = self._levels.to(torch.int8)  # (out, in)
        del self._levels
        self.register_buffer("w_t", _row_major(w.t()))  # (in, out)
        self.register_buffer("w_colsum", w.to(torch.int32).sum(1))
        self.register_buffer("bias", None if layer.bias is None else layer.bias.detach().float().clone())
        self.out_features = layer.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coords = None
        if self.coordinates is not None:
            x, coords = _split(x, self.coordinates.channels, -1)
        lead = x.shape[:-1]
        acc = self.gemm(self.quantize_input(x.reshape(-1, x.shape[-1])), self.w_t, self.w_colsum)
        y = acc.float().mul_(self.x_scale * self.w_scale)
        if self.bias is not None:
            y = y.add_(self.bias)
        y = y.reshape(*lead, self.out_features)
        return (y if coords is None else y + self.coordinates(coords)).to(x.dtype)


def _pair(v, dim):
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,) * dim
    return (1,) * (2 - dim) + v if dim == 1 else v


class Int8Conv(Int8Layer):
    """``nn.Conv1d/2d`` (groups=1) in int8 by im2col + integer GEMM; (B, C_in, *grid) -> (B, C_out, *grid')."""

    def __init__(self, wrapper: QuantConv):
        layer = wrapper.layer
        self.dim = layer.weight.ndim - 2
        if self.dim not in (1, 2) or layer.groups != 1:
            raise ValueError(
                f"{wrapper.name}: int8 convolutions support 1D/2D with groups=1, got a "
                f"{self.dim}D convolution with groups={layer.groups}; skip this layer in the "
                "QuantConfig or keep it fake-quantized."
            )
        super().__init__(wrapper, wrapper.data_weight())
        w = self._levels.to(torch.int8)
        del self._levels
        self.out_channels = layer.out_channels
        self.kernel = _pair(layer.kernel_size, self.dim)
        self.stride, self.dilation = _pair(layer.stride, self.dim), _pair(layer.dilation, self.dim)
        self.padding_mode = layer.padding_mode
        if layer.padding == "same":
            pads = []
            for k, d in zip(self.kernel[-self.dim :], self.dilation[-self.dim :]):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
        elif layer.padding == "valid":
            pads = [(0, 0)] * self.dim
        else:
            pads = [(p, p) for p in _pair(layer.padding, self.dim)[-self.dim :]]
        self.pad_spec = [v for lo_hi in reversed(pads) for v in lo_hi]  # F.pad order: last axis first
        self.register_buffer("w_t", _row_major(w.reshape(w.shape[0], -1).t()))  # (C_in * prod(k), C_out)
        self.register_buffer("w_colsum", w.to(torch.int32).reshape(w.shape[0], -1).sum(1))
        self.register_buffer("bias", None if layer.bias is None else layer.bias.detach().float().clone())
        self.pointwise = (
            all(k == 1 for k in self.kernel) and all(s == 1 for s in self.stride) and not any(self.pad_spec)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coords = None
        if self.coordinates is not None:
            x, coords = _split(x, self.coordinates.channels, 1)
        q = self.quantize_input(x)
        b = q.shape[0]
        if self.pointwise:  # a 1x1 convolution is a Linear over channels
            grid = q.shape[2:]
            # int8 before the layout change: the copy moves 1 byte per value, not 4. The result stays
            # channels-last (a permuted view, no copy); the next pointwise layer then needs none either.
            rows = q.to(torch.int8).movedim(1, -1).reshape(-1, q.shape[1])
            acc = self.gemm(rows, self.w_t, self.w_colsum)
            y = acc.float().mul_(self.x_scale * self.w_scale).reshape(b, *grid, -1).movedim(-1, 1)
        else:
            if any(self.pad_spec):
                if self.padding_mode == "zeros":
                    q = F.pad(q, self.pad_spec, value=float(self.x_zero))  # level z is the real value 0
                else:
                    q = F.pad(q, self.pad_spec, mode=self.padding_mode)
            q2 = q.unsqueeze(2) if self.dim == 1 else q
            out_grid = [
                (n - d * (k - 1) - 1) // s + 1
                for n, k, s, d in zip(q2.shape[2:], self.kernel, self.stride, self.dilation)
            ]
            cols = F.unfold(q2, self.kernel, dilation=self.dilation, stride=self.stride)  # (B, C k, L)
            acc = self.gemm(cols.transpose(1, 2).reshape(-1, cols.shape[1]), self.w_t, self.w_colsum)
            y = (acc.float() * (self.x_scale * self.w_scale)).reshape(b, -1, self.out_channels).transpose(1, 2)
            y = (
                y.reshape(b, self.out_channels, *out_grid[-self.dim :])
                if self.dim == 2
                else y.reshape(b, self.out_channels, out_grid[-1])
            )
        if self.bias is not None:
            y = y + self.bias.view(1, -1, *([1] * self.dim))
        if coords is not None:
            y = y + self.coordinates(coords)
        return y.to(x.dtype)


class Int8ConvTranspose(Int8Layer):
    """``nn.ConvTranspose1d/2d`` (groups=1) in int8: integer GEMM per input point, then col2im in float."""

    def __init__(self, wrapper: QuantConvTranspose):
        layer = wrapper.layer
        self.dim = layer.weight.ndim - 2
        if self.dim not in (1, 2) or layer.groups != 1:
            raise ValueError(
                f"{wrapper.name}: int8 transposed convolutions support 1D/2D with groups=1; skip this "
                "layer in the QuantConfig or keep it fake-quantized."
            )
        super().__init__(wrapper, layer.weight)
        w = self._levels.to(torch.int8)  # (C_in, C_out, *k)
        del self._levels
        self.out_channels = layer.out_channels
        self.kernel = _pair(layer.kernel_size, self.dim)
        self.stride, self.dilation = _pair(layer.stride, self.dim), _pair(layer.dilation, self.dim)
        self.padding = (0,) * (2 - self.dim) + tuple(layer.padding)
        self.output_padding = (0,) * (2 - self.dim) + tuple(layer.output_padding)
        k = w[0, 0].numel()
        self.register_buffer("w_t", _row_major(w.reshape(w.shape[0], -1)))  # (C_in, C_out * prod(k))
        self.register_buffer("w_colsum", w.to(torch.int32).reshape(w.shape[0], -1).sum(0))
        self.register_buffer(
            "col_scale", self.w_scale.repeat_interleave(k) if self.w_scale.numel() > 1 else self.w_scale
        )
        self.register_buffer("bias", None if layer.bias is None else layer.bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.quantize_input(x)
        q2 = q.unsqueeze(2) if self.dim == 1 else q
        b, c, h, w = q2.shape
        acc = self.gemm(q2.flatten(2).transpose(1, 2).reshape(-1, c), self.w_t, self.w_colsum)  # (B HW, C_out k)
        cols = (acc.float() * (self.x_scale * self.col_scale)).reshape(b, h * w, -1).transpose(1, 2)
        out = [
            (n - 1) * s - 2 * p + d * (k - 1) + op + 1
            for n, s, p, d, k, op in zip(
                (h, w), self.stride, self.padding, self.dilation, self.kernel, self.output_padding
            )
        ]
        y = F.fold(cols, out, self.kernel, dilation=self.dilation, padding=self.padding, stride=self.stride)
        y = y.squeeze(2) if self.dim == 1 else y
        if self.bias is not None:
            y = y + self.bias.view(1, -1, *([1] * self.dim))
        return y.to(x.dtype)


_CONVERTERS = {QuantLinear: Int8Linear, QuantConv: Int8Conv, QuantConvTranspose: Int8ConvTranspose}


def _convertible(wrapper: QuantLayer) -> str | None:
    """None if the wrapper can run on int8 kernels, else why not."""
    w, a = getattr(wrapper, "weight_quant", None), getattr(wrapper, "input_quant", None)
    if not isinstance(w, FakeQuantizer) or not isinstance(a, FakeQuantizer):
        return "weights or inputs are not quantized"
    if w.bits > 8 or a.bits > 8:
        return f"{w.bits}-bit weights / {a.bits}-bit inputs do not fit int8"
    if not w.spec.symmetric:
        return "int8 kernels need symmetric weights (no weight zero point)"
    if not (bool(w.calibrated) and bool(a.calibrated)):
        return "not calibrated"
    layer = wrapper.layer
    if getattr(layer, "groups", 1) != 1 or layer.weight.ndim - 2 > 2:
        return "grouped or 3D convolution"
    return None


def convert_int8(model: nn.Module, inplace: bool = False) -> tuple[nn.Module, list[str]]:
    """A copy of a calibrated quantized model whose Linear/Conv layers run integer kernels.

    Returns ``(int8_model, names)``, ``names`` being the converted layers. Layers that cannot
    run in int8 (more than 8 bits, grouped or 3D convolutions, spectral and attention
    products) stay fake-quantized. The result is for inference (no gradients through the
    integer layers).

    Raises:
        ValueError: if no layer can be converted (the message says why for the first one).
    """
    model = model if inplace else copy.deepcopy(model)
    converted, reasons = [], []
    for name, module in list(model.named_modules()):
        converter = _CONVERTERS.get(type(module))
        if converter is None:
            continue
        why = _convertible(module)
        if why is not None:
            reasons.append(f"{name}: {why}")
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, converter(module))
        converted.append(name)
    if not converted:
        detail = reasons[0] if reasons else "the model has no quantized Linear/Conv layers (call quantize_ first)"
        raise ValueError(
            f"convert_int8: no layer can run on int8 kernels ({detail}). Use a preset with at most "
            "8-bit weights and activations (w8a8, w4a8, w4a4), quantize_ and calibrate first."
        )
    return model.eval(), converted


@torch.no_grad()
def measure_latency(fn: Callable[[], object], repeats: int = 10, warmup: int = 2) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls (after ``warmup`` calls)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def compare_int8(quantized: nn.Module, x: torch.Tensor, repeats: int = 10) -> dict:
    """Convert ``quantized`` to int8 and check it: outputs against the fake-quantized model, and time.

    Args:
        quantized: a calibrated quantized model (eval mode is used throughout).
        x: an input batch.

    Returns a dict with ``converted`` (layer names), ``max_rel_diff`` (max |int8 - fake| over
    max |fake| on ``x``), whole-model seconds for ``float`` (quantizers bypassed), ``fake``
    and ``int8``, and ``layers``: per converted layer, its MACs, BOPs at 32x32 and at its
    bits, and the median seconds of the float layer, the fake-quantized one and the int8 one
    on the input it sees inside the model.
    """
    from .bops import bops
    from .modules import bypass

    was_training = quantized.training
    quantized.eval()
    int8_model, names = convert_int8(quantized)
    fake_out = quantized(x)
    int8_out = int8_model(x)
    result = {
        "converted": names,
        "max_rel_diff": ((int8_out - fake_out).abs().max() / fake_out.abs().max().clamp(min=1e-30)).item(),
    }

    def run_float():
        with bypass(quantized):
            quantized(x)

    result["seconds"] = {
        "float": measure_latency(run_float, repeats),
        "fake": measure_latency(lambda: quantized(x), repeats),
        "int8": measure_latency(lambda: int8_model(x), repeats),
    }
    # Per layer: capture each converted layer's input inside the model, then time the three versions on it.
    inputs, hooks = {}, []

    def keeper(name):
        def hook(module, args, output):
            inputs.setdefault(name, args[0])  # returns None: the output is left alone

        return hook

    for name in names:
        hooks.append(quantized.get_submodule(name).register_forward_hook(keeper(name)))
    quantized(x)
    for h in hooks:
        h.remove()
    cost = {r.name: r for r in bops(quantized, tuple(x.shape)).layers}
    rows = []
    for name in names:
        fake_layer, int8_layer, inp = quantized.get_submodule(name), int8_model.get_submodule(name), inputs[name]
        row = {
            "name": name,
            "macs": cost[name].macs,
            "bops_float": cost[name].macs * 1024,
            "bops": cost[name].bops,
            "float_s": measure_latency(lambda: fake_layer.layer(inp), repeats),
            "fake_s": measure_latency(lambda: fake_layer(inp), repeats),
            "int8_s": measure_latency(lambda: int8_layer(inp), repeats),
        }
        # The products alone, at the layer's GEMM shape: what BOPs model, without the quantize,
        # layout and dequantize passes around them.
        k, n = int8_layer.w_t.shape
        a = torch.randint(-100, 100, (cost[name].macs // (k * n), k), dtype=torch.int8)
        a_float, w_float = a.float(), int8_layer.w_t.float()
        row.update(
            gemm_float_s=measure_latency(lambda: a_float @ w_float, repeats),
            gemm_int8_s=measure_latency(lambda: torch._int_mm(a, int8_layer.w_t), repeats),
        )
        rows.append(row)
    result["layers"] = rows
    quantized.train(was_training)
    return result


def latency_table(result: dict) -> str:
    """The per-layer rows of :func:`compare_int8` as text, with totals."""
    from ..report import format_table

    rows = [dict(r) for r in result["layers"]]
    keys = ("macs", "bops_float", "bops", "float_s", "fake_s", "int8_s", "gemm_float_s", "gemm_int8_s")
    rows.append({"name": "total (converted layers)", **{k: sum(r[k] for r in rows) for k in keys}})
    for r in rows:
        r.update(
            float_ms=r["float_s"] * 1e3,
            fake_ms=r["fake_s"] * 1e3,
            int8_ms=r["int8_s"] * 1e3,
            bops_ratio=r["bops_float"] / max(r["bops"], 1),
            time_ratio=r["float_s"] / max(r["int8_s"], 1e-12),
            gemm_ratio=r["gemm_float_s"] / max(r["gemm_int8_s"], 1e-12),
        )
    return format_table(
        rows,
        [
            ("name", "layer", ""),
            ("macs", "MACs", ",d"),
            ("bops", "BOPs int", ".2e"),
            ("bops_ratio", "BOPs fp32/int", ".0f"),
            ("float_ms", "fp32 ms", ".3f"),
            ("fake_ms", "fake-quant ms", ".3f"),
            ("int8_ms", "int8 ms", ".3f"),
            ("time_ratio", "layer fp32/int8", ".2f"),
            ("gemm_ratio", "GEMM fp32/int8", ".2f"),
        ],
    )
