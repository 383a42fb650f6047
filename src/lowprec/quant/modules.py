"""``quantize_(model, config)``: fake-quantized Linear, Conv, spectral and attention layers, in place.

Each quantizable layer is replaced by a wrapper holding the original layer (``.layer``,
same parameters, same initialisation) and :class:`~lowprec.quant.fake.FakeQuantizer` s:

=================== ============================================ ==========================================
wrapper             weights                                      activations
=================== ============================================ ==========================================
QuantLinear         weight, per output row                       input (data channels, see below)
QuantConv           weight, per output channel                   input (data channels, see below)
QuantConvTranspose  weight, per output channel (axis 1)          input
QuantSpectralConv   every real (..., 2) factor of the complex    input (entering the forward transform),
                    weight; real and imaginary parts separately  spectrum (leaving it, a scale per mode),
                    (per output channel where the factor has     mixed spectrum (entering the inverse
                    one)                                         transform, a scale per mode), output
QuantMatMul         --                                           both operands (attention Q K^T and A V)
=================== ============================================ ==========================================

Input channels marked as grid coordinates (:func:`lowprec.models.mark_coordinate_input`:
the FNO's lifting and the Transformer's patch embedding) are not activations: they
depend only on the grid, so their product with the weight is a per-position constant
that an integer model computes once per grid and adds like a bias. They stay float
and out of the input's scale; only the data channels are quantized.

So every product a quantized model computes has integer operands, and every
transform starts and ends on the activations' grid. What stays in float: biases
(added to the int32 accumulator in a real kernel), normalizations, activation
functions, softmax, residual additions, and the spectral transforms themselves (see
:mod:`lowprec.quant.config` on their constants).

Usage::

    quantize_(model, "w8a8")              # or a QuantConfig
    calibrate(model, train_set)            # observe activation ranges, set scales
    Trainer(model, train_set, ...).fit()   # QAT: scales are parameters (LSQ)
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..models.transformer import MatMul
from ..precision.policy import PrecisionPolicy, current_policy, get_policy
from ..spectral.protocol import is_spectral_layer
from .config import QuantConfig, QuantSpec, get_config
from .fake import FakeQuantizer, NotCalibratedError

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def layer_kind(module: nn.Module) -> str | None:
    """``"linear"``, ``"conv"``, ``"spectral"``, ``"matmul"`` for a quantizable float layer, else None."""
    handler = _handler(module)
    return handler[0] if handler else None


def _handler(module: nn.Module) -> tuple[str, type] | None:
    """(kind, wrapper class) for a quantizable float layer: by its type (or a base's), else by protocol."""
    if isinstance(module, QuantLayer):
        return None
    for cls in type(module).__mro__:
        if cls in HANDLERS:
            return HANDLERS[cls]
    return ("spectral", QuantSpectralConv) if is_spectral_layer(module) else None


class Identity(nn.Module):
    """Stands in for a quantizer where a stream stays in float (``spec=None``)."""

    bits = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _quantizer(
    spec: QuantSpec | None, config: QuantConfig, label: str, shape=None, axes=(), is_weight: bool = False
) -> nn.Module:
    if spec is None:
        return Identity()
    if is_weight and not spec.per_channel:
        axes = tuple(a for a in axes if a == -1)  # [re, im] keep their own scales even per tensor
    return FakeQuantizer(spec, shape, axes, config.learn_scales, label, is_weight)


class QuantLayer(nn.Module):
    """Base of the wrappers: ``.layer`` is the float layer, ``.config`` the QuantConfig, ``.name`` its path."""

    kind = ""

    def __init__(self, layer: nn.Module, config: QuantConfig, name: str):
        super().__init__()
        self.layer, self.config, self.name = layer, config, name
        # Trailing input channels holding grid coordinates (models.mark_coordinate_input): they
        # stay float and out of the input's scale; their product is a per-grid constant.
        self.coordinate_channels = getattr(layer, "coordinate_channels", 0)
        if self.coordinate_channels and getattr(layer, "groups", 1) != 1:
            raise ValueError(f"{name}: coordinate input channels need groups=1, got groups={layer.groups}.")

    def data_weight(self) -> torch.Tensor:
        """The weight's columns that multiply data channels (all of them without coordinate channels)."""
        w = self.layer.weight
        return w[:, : w.shape[1] - self.coordinate_channels]

    def extra_repr(self) -> str:
        return f"{self.name!r}, {self.config.name}"


class QuantLinear(QuantLayer):
    """Fake-quantized ``nn.Linear``: (..., in) -> (..., out)."""

    kind = "linear"

    def __init__(self, layer: nn.Linear, config: QuantConfig, name: str = ""):
        super().__init__(layer, config, name)
        self.weight_quant = _quantizer(config.weight, config, f"{name} weight", self.data_weight().shape, (0,), True)
        self.input_quant = _quantizer(config.activation, config, f"{name} input")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d, w = self.coordinate_channels, self.layer.weight
        y = F.linear(
            self.input_quant(x[..., : x.shape[-1] - d]), self.weight_quant(self.data_weight()), self.layer.bias
        )
        return y + F.linear(x[..., -d:], w[:, -d:]) if d else y


class QuantConv(QuantLayer):
    """Fake-quantized ``nn.Conv1d/2d/3d``: (B, C_in, *grid) -> (B, C_out, *grid')."""

    kind = "conv"

    def __init__(self, layer: nn.Module, config: QuantConfig, name: str = ""):
        super().__init__(layer, config, name)
        self.weight_quant = _quantizer(config.weight, config, f"{name} weight", self.data_weight().shape, (0,), True)
        self.input_quant = _quantizer(config.activation, config, f"{name} input")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # _conv_forward applies the layer's own padding mode (circular, reflect...) and settings;
        # a convolution is a sum over input channels, so data and coordinates can run apart.
        d, layer = self.coordinate_channels, self.layer
        y = layer._conv_forward(
            self.input_quant(x[:, : x.shape[1] - d]), self.weight_quant(self.data_weight()), layer.bias
        )
        return y + layer._conv_forward(x[:, -d:], layer.weight[:, -d:], None) if d else y


class QuantConvTranspose(QuantLayer):
    """Fake-quantized ``nn.ConvTranspose1d/2d/3d``; weight (C_in, C_out / groups, *k), scales per C_out."""

    kind = "conv"
    _FUNCTIONS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}

    def __init__(self, layer: nn.Module, config: QuantConfig, name: str = ""):
        super().__init__(layer, config, name)
        if layer.padding_mode != "zeros":
            raise ValueError(f"{name}: transposed convolutions support only padding_mode='zeros' (as torch).")
        if self.coordinate_channels:
            raise ValueError(f"{name}: coordinate input channels are not supported on transposed convolutions.")
        self.weight_quant = _quantizer(config.weight, config, f"{name} weight", layer.weight.shape, (1,), True)
        self.input_quant = _quantizer(config.activation, config, f"{name} input")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        dim = layer.weight.ndim - 2
        return self._FUNCTIONS[dim](
            self.input_quant(x),
            self.weight_quant(layer.weight),
            layer.bias,
            layer.stride,
            layer.padding,
            layer.output_padding,
            layer.groups,
            layer.dilation,
        )


class QuantMatMul(QuantLayer):
    """Fake-quantized ``a @ b`` (attention scores and mixing); both operands are activations."""

    kind = "matmul"

    def __init__(self, layer: MatMul, config: QuantConfig, name: str = ""):
        super().__init__(layer, config, name)
        self.a_quant = _quantizer(config.activation, config, f"{name} left operand")
        self.b_quant = _quantizer(config.activation, config, f"{name} right operand")

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.a_quant(a), self.b_quant(b))


class QuantSpectralConv(QuantLayer):
    """Fake-quantized spectral layer: any :class:`lowprec.spectral.SpectralLayer`, such as
    :class:`lowprec.spectral.SpectralConv` (1D/2D/3D; dense, Tucker or CP weights).

    Runs the layer itself under the active precision policy (stabilizer, dtypes, FFT or DFT
    backend), with fake-quantized weight factors and quantizers at its stages::

        x -> stabilize -> [input] -> forward transform -> [spectrum] -> channel mixing with
          [weight factors] -> [mixed] -> inverse transform -> [output]

    Weight factors are real (..., 2) tensors: each gets scales per [re, im] part (and per
    output channel when the factor has the output-channel axis ``o`` and the spec is per
    channel), so the real and imaginary parts are quantized as two real tensors.
    Shapes as the wrapped layer: (B, in, *grid) -> (B, out, *grid).
    """

    kind = "spectral"

    def __init__(self, layer: nn.Module, config: QuantConfig, name: str = ""):  # layer: a SpectralLayer
        super().__init__(layer, config, name)
        act = config.activation
        self.input_quant = _quantizer(act, config, f"{name} input")
        # Spectra get a scale per kept mode: a field's low modes are 10-100x its high ones, so one
        # scale per tensor would round the high modes away. It costs no integer arithmetic: the
        # mixing sums over channels within a mode (the mode's scale factors out), and the
        # inverse transform's constants absorb the per-mode scales of its input.
        kept = layer.spectrum_shape
        spectrum_shape, mode_axes = (1, 1, *kept, 1), tuple(range(2, 2 + len(kept)))
        self.spectrum_quant = _quantizer(act, config, f"{name} spectrum", spectrum_shape, mode_axes)
        self.mixed_quant = _quantizer(act, config, f"{name} mixed spectrum", spectrum_shape, mode_axes)
        self.output_quant = _quantizer(act, config, f"{name} output")
        quants = []
        for k, (subscripts, tensor) in enumerate(layer.weight_factors()):
            axes = ((subscripts.index("o"),) if "o" in subscripts else ()) + (-1,)
            quants.append(
                _quantizer(config.weight, config, f"{name} weight factor {k} ({subscripts})", tensor.shape, axes, True)
            )
        self.weight_quants = nn.ModuleList(quants)

    def quantized_factors(self) -> list[tuple[str, torch.Tensor]]:
        """The weight's (subscripts, real tensor) factors, fake-quantized."""
        return [(s, q(t)) for (s, t), q in zip(self.layer.weight_factors(), self.weight_quants)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stages = {
            "input": self.input_quant,
            "spectrum": self.spectrum_quant,
            "mixed": self.mixed_quant,
            "output": self.output_quant,
        }
        return self.layer(x, factors=self.quantized_factors(), tap=lambda stage, t: stages[stage](t))


# Quantizable float layers by type, found along a layer's MRO: (kind, wrapper). Spectral layers are
# found by protocol (lowprec.spectral.SpectralLayer), so a new one needs no entry here.
HANDLERS: dict[type, tuple[str, type]] = {
    nn.Linear: ("linear", QuantLinear),
    **{cls: ("conv", QuantConv) for cls in _CONVS},
    **{cls: ("conv", QuantConvTranspose) for cls in _TRANSPOSED},
    MatMul: ("matmul", QuantMatMul),
}


def _wrapper_for(module: nn.Module) -> type:
    handler = _handler(module)
    assert handler is not None, "selected_layers yields quantizable layers only"
    return handler[1]


def _skipped(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def candidates(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """(name, module, kind) of every quantizable layer: float ones and Quant* wrappers (not their insides)."""
    out, wrapped = [], []
    for name, module in model.named_modules():
        if any(name.startswith(w + ".") for w in wrapped):
            continue
        if isinstance(module, QuantLayer):
            wrapped.append(name)
            out.append((name, module, module.kind))
        elif layer_kind(module) is not None:
            out.append((name, module, layer_kind(module)))
    return out


def selected_layers(model: nn.Module, config: QuantConfig) -> list[tuple[str, nn.Module]]:
    """The (name, layer) pairs :func:`quantize_` would replace under ``config``, in module order."""
    config = get_config(config)
    if config.is_float:
        return []
    found = candidates(model)
    for pattern in config.skip:
        if not any(fnmatch.fnmatchcase(n, pattern) for n, _, _ in found):
            names = ", ".join(n for n, _, _ in found[:12]) + (", ..." if len(found) > 12 else "")
            raise ValueError(
                f"QuantConfig.skip pattern {pattern!r} matches no quantizable layer; check the "
                f"name (fnmatch syntax, e.g. 'model.projection.*'). Quantizable layers: {names}."
            )
    return [(n, m) for n, m, kind in found if kind in config.layers and not _skipped(n, config.skip)]


def quantize_(model: nn.Module, config: str | QuantConfig) -> nn.Module:
    """Replace ``model``'s quantizable layers by fake-quantized wrappers, in place; returns ``model``.

    Args:
        model: any module; Linear, Conv(Transpose)1d/2d/3d, spectral (any
            :class:`lowprec.spectral.SpectralLayer`) and MatMul layers are quantized as
            ``config`` says, everything else is left alone.
        config: a preset name (``"w8a8"``, ``"w4a4"``, ..., ``"float"``) or a QuantConfig.

    Then call :func:`calibrate` before training or evaluating (activation scales need data).
    The parameters of the wrapped layers are the original ones (same objects), so an
    optimizer built afterwards sees weights and scales together.

    Raises:
        ValueError: if the model is already quantized, or a skip pattern matches nothing.
    """
    config = get_config(config)
    if any(isinstance(m, QuantLayer) for m in model.modules()):
        raise ValueError(
            "this model is already quantized (it holds Quant* layers); quantize a fresh float model, "
            "e.g. copy.deepcopy of the float one, once."
        )
    for name, layer in selected_layers(model, config):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        wrapper = _wrapper_for(layer)(layer, config, name)
        if isinstance(parent, (nn.ModuleList, nn.Sequential)) or child.isdigit():
            parent[int(child)] = wrapper
        else:
            setattr(parent, child, wrapper)
    model.quant_config = config  # read by bops(), calibrate() and the int8 converter
    return model


def quantizers(model: nn.Module) -> list[FakeQuantizer]:
    return [m for m in model.modules() if isinstance(m, FakeQuantizer)]


def _batches(data, batch_size: int, n_batches: int):
    """Model inputs, a batch at a time: tensors, or dicts of named inputs (the target ``"y"`` left out)."""
    if hasattr(data, "batch"):  # a data set of named tensors (lowprec.data.DictDataset)
        for start in range(0, min(len(data), batch_size * n_batches), batch_size):
            yield {k: v for k, v in data.batch(slice(start, start + batch_size)).items() if k != "y"}
        return
    if hasattr(data, "x") and isinstance(data.x, torch.Tensor):
        data = data.x
    if isinstance(data, torch.Tensor):
        for start in range(0, min(len(data), batch_size * n_batches), batch_size):
            yield data[start : start + batch_size]
        return
    for k, batch in enumerate(data):
        if k >= n_batches:
            break
        if isinstance(batch, Mapping):
            yield {name: v for name, v in batch.items() if name != "y"}
        else:
            yield batch[0] if isinstance(batch, (tuple, list)) else batch


@torch.no_grad()
def calibrate(
    model: nn.Module, data, n_batches: int = 8, batch_size: int = 16, policy: str | PrecisionPolicy | None = None
) -> nn.Module:
    """Observe activation (and weight) ranges on a few batches and set every quantizer's scale.

    Args:
        model: a model after :func:`quantize_`.
        data: a data set with ``.x`` (N, C, *grid) or with ``batch(index)`` (named inputs,
            e.g. :class:`lowprec.data.DictDataset`), a tensor of inputs, or an iterable of
            input batches, (x, y) pairs or dicts (the model then gets every entry but ``"y"`` by name).
        n_batches, batch_size: how much data is observed (batch_size applies to tensors and
            data sets).
        policy: precision policy to run under (default: the active one).

    The model runs in eval mode (BatchNorm uses its running statistics, as at inference)
    on its own device; quantizers pass values through unchanged while observing.
    """
    found = quantizers(model)
    if not found:
        raise ValueError(
            "calibrate() found no quantizers in this model; call lowprec.quant.quantize_(model, config) "
            "first (a 'float' config adds none, and needs no calibration)."
        )
    device = next(model.parameters()).device
    policy = get_policy(policy) if policy is not None else current_policy()
    was_training = model.training
    model.eval()
    for q in found:
        q.reset()
        q.observing = True
    try:
        seen = 0
        for inputs in _batches(data, batch_size, n_batches):
            with policy:
                if isinstance(inputs, Mapping):
                    model(**{k: v.to(device) for k, v in inputs.items()})
                else:
                    model(inputs.to(device))
            seen += 1
        if not seen:
            raise ValueError("calibrate() got no batches; pass a non-empty data set or iterable.")
    finally:
        for q in found:
            q.observing = False
        model.train(was_training)
    for q in found:
        q.set_range()
    return model


class bypass:
    """Context: every quantizer of ``model`` passes values through unchanged (for counting, or float references)."""

    def __init__(self, model: nn.Module):
        self.found = quantizers(model)

    def __enter__(self):
        self.saved = [q.enabled for q in self.found]
        for q in self.found:
            q.enabled = False
        return self

    def __exit__(self, *exc):
        for q, enabled in zip(self.found, self.saved):
            q.enabled = enabled


__all__ = [
    "quantize_",
    "calibrate",
    "selected_layers",
    "candidates",
    "bypass",
    "layer_kind",
    "quantizers",
    "QuantLayer",
    "QuantLinear",
    "QuantConv",
    "QuantConvTranspose",
    "QuantSpectralConv",
    "QuantMatMul",
    "NotCalibratedError",
]
