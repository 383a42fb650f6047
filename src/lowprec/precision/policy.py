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

Per-layer overrides: ``policy.replace(overrides=(("blocks.0", "full"), ("projection", "full")))``
runs the modules whose qualified names match those patterns (``fnmatch``; ``blocks.*``) under
the other policy, and the rest under this one; as text, ``"bf16 | blocks.0=full; projection=full"``
(what ``precision:`` in a config takes). Entering such a policy installs global forward hooks
for the duration of the ``with`` block: names are taken relative to the outermost module
called inside it, a matching module enters its override (autocast and the dtypes its
spectral layers read) for its own forward, and its floating inputs are cast to the override's
activation dtype (so a ``full`` block takes fp32 even between bf16 layers). Its output is left
in that dtype: the next layer casts it as it casts anything. Hooks rather than a per-model seam,
because then any model (FNO, U-Net, PINN) and every trainer honours overrides unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
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
        overrides: ((module-name pattern, policy or preset name), ...): modules whose qualified
            name matches a pattern run under that policy instead (first match wins; the
            override policies have no overrides of their own). See the module docstring.
    """

    name: str = "full"
    autocast_dtype: torch.dtype | None = None
    transform_dtype: torch.dtype = torch.float32
    contract_dtype: torch.dtype = torch.float32
    stabilizer: str | None = None
    loss_scaling: bool = False
    on_overflow: str = "skip"
    backend: str = "auto"
    overrides: tuple = ()

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
        object.__setattr__(self, "overrides", _parse_overrides(self.overrides))

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

        out = {f.name: show(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["overrides"] = [[pattern, p.name] for pattern, p in self.overrides]
        return out

    @property
    def spec(self) -> str:
        """The policy as ``get_policy`` text: ``"bf16 | blocks.0=full; projection=full"`` (its name alone
        without overrides). Override policies are named by preset name."""
        if not self.overrides:
            return self.name
        return f"{self.name} | " + "; ".join(f"{pattern}={p.name}" for pattern, p in self.overrides)

    # -- context -----------------------------------------------------------------------------
    def __enter__(self) -> PrecisionPolicy:
        return self._enter(owner=None)

    def _enter(self, owner: _OverrideHooks | None) -> PrecisionPolicy:
        stack = contextlib.ExitStack()
        enabled = self.autocast_dtype is not None
        # Autocast is per device type; enter every one that can hold the model so the same
        # `with policy:` works wherever the model lives.
        for device_type in _autocast_device_types():
            if enabled:
                stack.enter_context(torch.autocast(device_type, dtype=self.autocast_dtype))
            else:
                stack.enter_context(torch.autocast(device_type, enabled=False))
        if self.overrides:
            hooks = _OverrideHooks(self.overrides)
            stack.callback(torch.nn.modules.module.register_module_forward_pre_hook(hooks.pre_hook).remove)
            stack.callback(torch.nn.modules.module.register_module_forward_hook(hooks.hook).remove)
        _state().stack.append((self, stack, owner))
        return self

    def __exit__(self, *exc: object) -> None:
        frames = _state().stack
        # Override frames left by a forward that raised (its post-hook never ran) go first.
        while frames and frames[-1][2] is not None:
            frames.pop()[1].close()
        frames.pop()[1].close()


def _parse_overrides(overrides: Any) -> tuple:
    """((pattern, PrecisionPolicy), ...) from pairs or a mapping, validated."""
    items = overrides.items() if isinstance(overrides, dict) else overrides
    parsed = []
    for item in items:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ValueError(
                f"a precision override is a (module-name pattern, policy) pair, got {item!r}; "
                "e.g. overrides=(('blocks.0', 'full'),)."
            )
        pattern, policy = item
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValueError(
                f"override pattern {pattern!r} must be a non-empty module name or glob, "
                "e.g. 'blocks.0' or 'blocks.*' (names as in model.named_modules())."
            )
        policy = get_policy(policy)
        if policy.overrides:
            raise ValueError(f"override {pattern!r} -> {policy.name!r} has overrides of its own; nest none.")
        parsed.append((pattern.strip(), policy))
    return tuple(parsed)


class _OverrideHooks:
    """Global forward hooks that run modules matching an override pattern under the override's policy.

    Names are relative to the outermost module called while the owning policy is active. Only
    the thread that entered the policy is affected.
    """

    def __init__(self, overrides: tuple):
        self.overrides, self.thread = overrides, threading.get_ident()
        self.names: dict = {}
        self.entered: list = []  # one entry per module call in progress: its override or None

    def _match(self, module: torch.nn.Module) -> PrecisionPolicy | None:
        name = self.names.get(module)
        if name is None:
            return None
        for pattern, policy in self.overrides:
            if fnmatch.fnmatchcase(name, pattern):
                return policy
        return None

    def pre_hook(self, module, args):
        if threading.get_ident() != self.thread:
            return None
        if not self.entered:
            self.names = {m: n for n, m in module.named_modules()}
        policy = self._match(module)
        self.entered.append(policy)
        if policy is None:
            return None
        policy._enter(owner=self)
        dtype = policy.autocast_dtype or next(
            (p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32
        )
        return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)

    def hook(self, module, args, output):
        if threading.get_ident() != self.thread or not self.entered:
            return None
        if self.entered.pop() is not None:
            frames = _state().stack
            if frames and frames[-1][2] is self:
                frames.pop()[1].close()
        return None


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
    if isinstance(policy, str) and "|" in policy:
        # "bf16 | blocks.0=full; projection=full": a preset with per-layer overrides
        base, _, rest = policy.partition("|")
        pairs = []
        for item in filter(str.strip, rest.split(";")):
            pattern, sep, name = item.partition("=")
            if not sep:
                raise ValueError(
                    f"override {item.strip()!r} in {policy!r} is not 'pattern=policy', "
                    "e.g. 'bf16 | blocks.0=full; projection=full'."
                )
            pairs.append((pattern.strip(), name.strip()))
        return get_policy(base.strip()).replace(overrides=tuple(pairs))
    return lookup(PRESETS, policy, "precision policy", "lowprec.precision.PrecisionPolicy(...)")
