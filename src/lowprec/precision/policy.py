"""Precision policies: which dtype each part of a neural operator runs in.

A :class:`PrecisionPolicy` is a small frozen dataclass. It is entered as a
context (``with policy:``), which does two things at once:

* it enters ``torch.autocast`` with the policy's ``autocast_dtype`` (or
  disables autocast), so real-valued layers (Linear, Conv) run in that dtype;
* it becomes the *active* policy that every spectral layer reads to decide
  the dtype of its forward transform and of its channel contraction.

So one model object runs under any policy, and a schedule can switch policy
between epochs without touching the model. Spectral layers never rely on the
dtype of their input: under autocast the preceding Linear emits fp16, and a
layer that passed that on would run its FFT in fp16 by accident (and crash on
grids that are not powers of two). Every spectral layer sets its own dtypes
from the active policy.

Presets (``get_policy(name)``) follow Tu et al. (ICLR 2024), plus three
that run the spectral transforms as matrix products (``dft``):

========== ========= ============ =========== ========== ============ =======
name       autocast  forward      contraction stabilizer loss scaling backend
========== ========= ============ =========== ========== ============ =======
full       --        fp32         fp32        --         no           auto
amp        fp16      fp32         fp32        --         yes          auto
half       fp16      fp16         fp16        tanh       yes          auto
mixed      fp16      fp32         fp16        --         yes          auto
mixed_tanh fp16      fp32         fp16        tanh       yes          auto
amp_bf16   bf16      fp32         fp32        --         no           auto
half_bf16  bf16      bf16         bf16        --         no           auto
mixed_bf16 bf16      fp32         bf16        --         no           auto
full_dft   --        fp32         fp32        --         no           dft
bf16       bf16      bf16         bf16        --         no           dft
fp16       fp16      fp16         fp16        --         yes          dft
========== ========= ============ =========== ========== ============ =======

"contraction" covers the per-mode channel mixing and the inverse transform,
as in the paper's reference code. ``backend`` says how the truncated
transforms are computed: ``"fft"``, ``"dft"`` (products with cosine/sine
matrices, exact on every grid and native in every dtype), or ``"auto"``, which
takes the DFT wherever the FFT cannot run in the dtype (bf16 anywhere, fp16
on CPU or on a CUDA grid that is not a power of two) and otherwise the
cheaper of the two by a cost model (:mod:`lowprec.spectral.backend`).

``bf16`` and ``fp16`` are low precision end to end: activations stay in that
dtype from layer to layer (autocast's pointwise layers emit it, the spectral
layers take and return it), so no layer pays to cast its input; the weights
stay fp32 (autocast casts them per step) and the loss is computed in fp32.
``bf16`` is ``half_bf16`` with the backend fixed (``auto`` takes the DFT for
bf16 anyway, as nothing computes a bf16 FFT). ``fp16`` differs from ``half``
in dropping the stabilizer: the DFT divides by N inside an fp32-accumulated
product, so its coefficients cannot overflow where its input did not.

Where the stabilizer is on, and why not everywhere: the paper puts tanh
before every forward FFT because an unnormalized fp16 FFT sums N values and
overflows. lowprec's forward transform is normalized (``norm="forward"``), so
every coefficient it returns is an average, no larger than max|x|. When that
transform runs in fp32 (``mixed``) or in bf16 (fp32's exponent range), the
stabilizer has nothing to prevent and only changes the function the model
computes (it squashes every spectral layer's input into [-1, 1]), an error of
its own far larger than fp16 rounding of the contraction. It stays on in
``half``, the paper's setting, where a native fp16 FFT may run on a GPU:
cuFFT sums before it scales, and although lowprec splits the 1/N around it
(see :mod:`lowprec.spectral.transforms`), its
values still reach sqrt(N) max|x|, past fp16's range at 1024² once
max|x| > 64; tanh keeps max|x| <= 1. ``fp16`` drops it because its DFT
divides before it sums. ``mixed_tanh`` is the paper's mixed setting verbatim,
and the paper's own schedule ran its mixed phase without the stabilizer too.
bf16 has fp32's exponent range, so its presets need no loss scaling.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

import torch

from .._hints import lookup

STABILIZERS = ("tanh", "hardclip", "sigma_clip")
OVERFLOW_ACTIONS = ("skip", "raise")
BACKENDS = ("auto", "fft", "dft")
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass(frozen=True)
class PrecisionPolicy:
    """How a model runs: the dtype of each part and how overflow is handled.

    Attributes:
        name: label used in logs and metrics.
        autocast_dtype: dtype of ``torch.autocast`` for real-valued layers,
            or ``None`` to run them in their parameters' dtype.
        transform_dtype: dtype of the forward spectral transform's input.
        contract_dtype: dtype of the per-mode channel contraction and of the
            inverse transform.
        stabilizer: ``"tanh"``, ``"hardclip"`` (clip to [-1, 1]),
            ``"sigma_clip"`` (clip to mean +- 2 std per sample and channel), or
            ``None``; applied to the input of every forward transform so that
            fp16 spectra cannot overflow.
        loss_scaling: whether the trainer scales the loss dynamically.
        on_overflow: ``"skip"`` (drop the step and lower the loss scale) or
            ``"raise"`` (stop training with the layer named).
        backend: how spectral layers compute their truncated transforms: ``"auto"``
            (see :func:`lowprec.spectral.backend.choose_backend`), ``"fft"`` or ``"dft"``.
    """

    name: str = "full"
    autocast_dtype: torch.dtype | None = None
    transform_dtype: torch.dtype = torch.float32
    contract_dtype: torch.dtype = torch.float32
    stabilizer: str | None = None
    loss_scaling: bool = False
    on_overflow: str = "skip"
    backend: str = "auto"

    def __post_init__(self):
        for field in ("transform_dtype", "contract_dtype"):
            dtype = getattr(self, field)
            if dtype not in _FLOAT_DTYPES:
                raise ValueError(
                    f"PrecisionPolicy.{field}={dtype} is not a real floating dtype; use one of {_FLOAT_DTYPES}."
                )
        if self.autocast_dtype not in (None, torch.float16, torch.bfloat16):
            raise ValueError(
                f"PrecisionPolicy.autocast_dtype={self.autocast_dtype}: autocast runs in "
                "torch.float16 or torch.bfloat16; use None for no autocast."
            )
        if self.stabilizer not in (None, *STABILIZERS):
            raise ValueError(f"unknown stabilizer {self.stabilizer!r}; choose one of {STABILIZERS} or None.")
        if self.on_overflow not in OVERFLOW_ACTIONS:
            raise ValueError(f"on_overflow={self.on_overflow!r}; choose one of {OVERFLOW_ACTIONS}.")
        if self.backend not in BACKENDS:
            raise ValueError(
                f"unknown spectral backend {self.backend!r}; choose one of {BACKENDS} "
                "('auto' picks the DFT or the FFT per layer and grid)."
            )

    @property
    def is_reduced(self) -> bool:
        """True when any part runs below fp32."""
        low = (torch.float16, torch.bfloat16)
        return self.autocast_dtype is not None or self.transform_dtype in low or self.contract_dtype in low

    def replace(self, **changes: Any) -> PrecisionPolicy:
        """A copy with some fields changed, e.g. ``get_policy('mixed').replace(stabilizer=None)``."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        def show(v):
            return str(v).replace("torch.", "") if isinstance(v, torch.dtype) else v

        return {f.name: show(getattr(self, f.name)) for f in dataclasses.fields(self)}

    # -- context -----------------------------------------------------------------------------
    def __enter__(self) -> PrecisionPolicy:
        stack = contextlib.ExitStack()
        enabled = self.autocast_dtype is not None
        # Autocast is per device type; enter every one that can hold the model so the same
        # `with policy:` works wherever the model lives.
        for device_type in _autocast_device_types():
            if enabled:
                stack.enter_context(torch.autocast(device_type, dtype=self.autocast_dtype))
            else:
                stack.enter_context(torch.autocast(device_type, enabled=False))
        _state().stack.append((self, stack))
        return self

    def __exit__(self, *exc: object) -> None:
        policy, stack = _state().stack.pop()
        stack.close()


def _autocast_device_types() -> list[str]:
    types = ["cpu"]
    if torch.cuda.is_available():
        types.append("cuda")
    return types


class _State(threading.local):
    def __init__(self):
        self.stack: list = []


_STATE = _State()


def _state() -> _State:
    return _STATE


FULL = PrecisionPolicy("full")


def current_policy() -> PrecisionPolicy:
    """The innermost policy entered with ``with policy:``; ``full`` outside any."""
    stack = _state().stack
    return stack[-1][0] if stack else FULL


def active_policy() -> PrecisionPolicy | None:
    """The innermost policy entered with ``with policy:``, or None outside any (where plain
    ``torch.autocast`` may be in charge)."""
    stack = _state().stack
    return stack[-1][0] if stack else None


PRESETS: dict[str, PrecisionPolicy] = {
    "full": FULL,
    "amp": PrecisionPolicy("amp", torch.float16, torch.float32, torch.float32, None, True),
    "half": PrecisionPolicy("half", torch.float16, torch.float16, torch.float16, "tanh", True),
    "mixed": PrecisionPolicy("mixed", torch.float16, torch.float32, torch.float16, None, True),
    "mixed_tanh": PrecisionPolicy("mixed_tanh", torch.float16, torch.float32, torch.float16, "tanh", True),
    "amp_bf16": PrecisionPolicy("amp_bf16", torch.bfloat16, torch.float32, torch.float32, None, False),
    "half_bf16": PrecisionPolicy("half_bf16", torch.bfloat16, torch.bfloat16, torch.bfloat16, None, False),
    "mixed_bf16": PrecisionPolicy("mixed_bf16", torch.bfloat16, torch.float32, torch.bfloat16, None, False),
    "full_dft": FULL.replace(name="full_dft", backend="dft"),
    "bf16": PrecisionPolicy("bf16", torch.bfloat16, torch.bfloat16, torch.bfloat16, None, False, backend="dft"),
    "fp16": PrecisionPolicy("fp16", torch.float16, torch.float16, torch.float16, None, True, backend="dft"),
}


def get_policy(policy: str | PrecisionPolicy) -> PrecisionPolicy:
    """Look up a preset by name (a policy object is returned unchanged).

    Raises:
        ValueError: for an unknown name, listing the presets and the closest match.
    """
    if isinstance(policy, PrecisionPolicy):
        return policy
    return lookup(PRESETS, policy, "precision policy", "lowprec.precision.PrecisionPolicy(...)")
