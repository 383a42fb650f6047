"""Straight-through fake quantization with observed, then learned, scales.

    q = clamp(round(x / s) + z, qmin, qmax)          (integer level)
    fake_quantize(x) = (q - z) * s                   (back on x's scale: what an integer kernel computes)

Gradients are straight-through (Bengio et al. 2013): d/dx is 1 where x lies inside
the grid's range [(qmin - z) s, (qmax - z) s] and 0 outside it. The gradient with
respect to the scale is LSQ's (Esser et al. 2020): round(x/s) - x/s inside the
range, qmin - z or qmax - z outside it.

Why our own twenty lines rather than a library:

* ``torch.ao.quantization`` is deprecated (and its quantized-tensor dtypes with it);
* torchao's QAT covers ``nn.Linear`` and ``nn.Embedding`` only, nothing convolutional
  or spectral, and its observers drop the imaginary part of complex tensors;
* torch's core ``torch.fake_quantize_per_tensor_affine`` /
  ``_per_channel_affine`` reject complex tensors, give no gradient for the scale
  (the learnable variants are private ``torch._fake_quantize_learnable_*`` ops), and
  want float32 inputs, one channel axis and int32 zero points.

A straight-through estimator written with ``detach()`` handles every real tensor in
any dtype, broadcasts a scale over any set of axes (per output channel *and* per
real/imaginary part for complex spectral weights, stored as real (..., 2) tensors),
and gives LSQ's scale gradient by plain autograd. The tests check it against torch's
core kernels, value for value.

Scales are stored as ``log s``: Adam moves a parameter by about ``lr`` per step
whatever its gradient, which for a raw scale of 1e-3 would be a 100% change per step
at lr 1e-3; in log space it is a 0.1% change. That also keeps scales positive.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .config import QuantSpec

_EPS = 1e-12  # smallest scale: a channel of zeros quantizes to zeros, never 0/0
_MOMENTUM = 0.1  # weight of the newest batch in the moving-average observer


class _FakeQuantize(torch.autograd.Function):
    """One autograd node: forward rounds, backward applies the straight-through and LSQ rules.

    (Written with detach() instead, the same estimator takes eight autograd nodes and saves
    as many activation-sized tensors, which makes every QAT step markedly slower.)
    """

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):
        q = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)
        ctx.save_for_backward(x, scale, zero_point)
        ctx.qrange = (qmin, qmax)
        return (q - zero_point) * scale

    @staticmethod
    def backward(ctx, grad):
        x, scale, zero_point = ctx.saved_tensors
        qmin, qmax = ctx.qrange
        t = x / scale
        level = torch.round(t) + zero_point
        inside = (level >= qmin) & (level <= qmax)
        grad_x = grad * inside if ctx.needs_input_grad[0] else None
        grad_scale = None
        if ctx.needs_input_grad[1]:
            # d/ds (q - z) s: round(t) - t inside the range, (qmin or qmax) - z outside (LSQ).
            d_scale = torch.where(inside, level - zero_point - t, level.clamp(qmin, qmax) - zero_point)
            grad_scale = _sum_to(grad * d_scale, scale.shape)
        return grad_x, grad_scale, None, None, None


def _sum_to(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum ``t`` over the axes a scale of ``shape`` was broadcast along."""
    if len(shape) == 0:
        return t.sum()
    dims = tuple(k for k, (n, m) in enumerate(zip(shape, t.shape)) if n == 1 and m != 1)
    return t.sum(dim=dims, keepdim=True) if dims else t


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    """Round ``x`` to the grid ``(q - zero_point) * scale``, q in [qmin, qmax], with straight-through gradients.

    Args:
        x: any real tensor.
        scale: positive, broadcastable to x: a scalar for per tensor, or x's number of axes
            with 1 on the shared ones (e.g. (O, 1) for per-row scales of an (O, I) weight).
        zero_point: integer-valued float tensor shaped like ``scale`` (0 for symmetric grids).
        qmin, qmax: integer range of the levels.

    Returns:
        Tensor like x (x's dtype promoted with the scale's). Gradients: to x, 1 inside the
        range and 0 outside; to scale, LSQ's; none to zero_point.
    """
    return _FakeQuantize.apply(x, scale, zero_point, qmin, qmax)


def quantize_levels(
    x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int
) -> torch.Tensor:
    """The integer levels q = clamp(round(x / s) + z, qmin, qmax), as a float tensor (no gradient)."""
    return torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)


class NotCalibratedError(RuntimeError):
    """A quantized model was run (trained or evaluated) before its activation ranges were calibrated."""


class FakeQuantizer(nn.Module):
    """Fake-quantizes one tensor stream: a weight, or the activations at one point of a layer.

    Args:
        spec: bit width, symmetric or affine, observer.
        shape: the tensor's shape when it is fixed (weights), for per-channel scales.
        channel_axes: axes of ``shape`` with their own scale (e.g. (0,) for a Linear weight's
            rows, (1, -1) for a complex spectral weight's output channels and [re, im] parts).
            Empty: one scale for the whole tensor.
        learn: after calibration, ``log_scale`` receives gradients (LSQ).
        label: where it sits, for error messages ("blocks.0.skip input").

    States:
        observing (during :func:`lowprec.quant.calibrate`): records the range, returns x unchanged;
        calibrated: fake-quantizes; before calibration, running it raises NotCalibratedError.
    """

    def __init__(
        self,
        spec: QuantSpec,
        shape: Sequence[int] | None = None,
        channel_axes: Sequence[int] = (),
        learn: bool = True,
        label: str = "",
        is_weight: bool = False,
    ):
        super().__init__()
        self.spec, self.learn, self.label, self.is_weight = spec, learn, label, is_weight
        if channel_axes and shape is None:
            raise ValueError("per-channel scales need the tensor's shape.")
        if shape is not None:
            axes = {a % len(shape) for a in channel_axes}
            scale_shape = tuple(n if k in axes else 1 for k, n in enumerate(shape))
        else:
            scale_shape = ()
        self.reduce_dims = tuple(k for k, n in enumerate(scale_shape) if n == 1) if shape is not None else None
        self.log_scale = nn.Parameter(torch.zeros(scale_shape), requires_grad=learn)
        self.register_buffer("zero_point", torch.zeros(scale_shape))
        self.register_buffer("min_val", torch.zeros(scale_shape))
        self.register_buffer("max_val", torch.zeros(scale_shape))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))
        self.observing = False  # set by calibrate()
        self.enabled = True  # False: pass through (bops() counting, float references)

    @property
    def bits(self) -> int:
        return self.spec.bits

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def extra_repr(self) -> str:
        kind = "symmetric" if self.spec.symmetric else "affine"
        per = f"per-channel {tuple(self.log_scale.shape)}" if self.log_scale.ndim else "per-tensor"
        return f"{self.label!r}, {self.spec.bits} bit, {kind}, {per}, learn={self.learn}"

    # -- observing -----------------------------------------------------------------------------
    def reset(self) -> None:
        self.batches.zero_()
        self.calibrated.fill_(False)

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        """Fold x's range into min_val/max_val (min-max: running extremes; moving average: EMA)."""
        x = x.detach().float()
        if self.reduce_dims is None:  # per tensor, any shape
            lo, hi = x.min(), x.max()
        else:
            lo, hi = x.amin(dim=self.reduce_dims, keepdim=True), x.amax(dim=self.reduce_dims, keepdim=True)
            lo, hi = lo.reshape(self.min_val.shape), hi.reshape(self.max_val.shape)
        if self.batches == 0:
            self.min_val.copy_(lo), self.max_val.copy_(hi)
        elif self.spec.observer == "moving_average":
            self.min_val.lerp_(lo, _MOMENTUM), self.max_val.lerp_(hi, _MOMENTUM)
        else:
            torch.minimum(self.min_val, lo, out=self.min_val), torch.maximum(self.max_val, hi, out=self.max_val)
        self.batches += 1

    @torch.no_grad()
    def set_range(self) -> None:
        """Scale and zero point from the observed range; marks the quantizer calibrated."""
        if self.batches == 0:
            raise NotCalibratedError(
                f"quantizer {self.label!r} saw no data during calibration: the layer was not "
                "reached by the calibration batches. Calibrate with inputs that run through "
                "every quantized layer."
            )
        spec = self.spec
        # The range always holds 0, so zero padding and ReLU/GELU zeros are exact.
        lo, hi = self.min_val.clamp(max=0), self.max_val.clamp(min=0)
        if spec.symmetric:
            scale = torch.maximum(-lo, hi) / spec.qmax
            zero_point = torch.zeros_like(scale)
        else:
            scale = (hi - lo) / (spec.qmax - spec.qmin)
            zero_point = torch.clamp(torch.round(spec.qmin - lo / scale.clamp(min=_EPS)), spec.qmin, spec.qmax)
        self.log_scale.copy_(scale.clamp(min=_EPS).log())
        self.zero_point.copy_(zero_point)
        self.calibrated.fill_(True)

    # -- running -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        if self.observing:
            self.observe(x)
            return x
        if not self.calibrated:
            raise NotCalibratedError(
                f"quantizer {self.label!r} ({self.spec.bits} bit) has no calibrated range: a quantized model was "
                "run before calibration. Call lowprec.quant.calibrate(model, train_set) after quantize_ and before "
                "training (QAT) or evaluating it."
            )
        if not self.learn:
            # Fixed scales: weights track their own min/max (they move during training);
            # moving-average activations keep averaging while training, as torch's QAT does.
            if self.is_weight:
                self.batches.zero_()
                self.observe(x)
                self.set_range()
            elif self.training and self.spec.observer == "moving_average" and torch.is_grad_enabled():
                self.observe(x)
                self.set_range()
        scale = self.log_scale.exp()
        out = fake_quantize(x.float(), scale, self.zero_point, self.spec.qmin, self.spec.qmax)
        return out.to(x.dtype) if x.is_floating_point() else out

    @torch.no_grad()
    def levels(self, x: torch.Tensor) -> torch.Tensor:
        """The integer levels of x on this quantizer's grid (float tensor of integers)."""
        return quantize_levels(x.float(), self.scale, self.zero_point, self.spec.qmin, self.spec.qmax)
