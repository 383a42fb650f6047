"""Training modes for PINNs and DeepONets, and the weight copies they keep.

A training mode is not a :class:`lowprec.precision.PrecisionPolicy`. A policy
says how one forward pass computes (``mixed``: autocast fp16, FFTs in fp32, fp16
spectral contraction) and leaves the weights where they are; a training mode
says where the weights, the optimizer state and the update live as well, and
which dtype every operation of a step computes in. Each mode enters a policy
while its working copy computes (:attr:`TrainingMode.policy`). The names
``fp32``/``fp16``/``mixed``/``bf16`` are the paper's and stay the command-line
spelling (``lowprec pinn burgers --precision mixed``).

Hayford et al. (2024) compare four ways to train SciML models:

======= =============== ================ =========== ============ =============
mode    stored weights, compute (forward, Adam eps     loss scaling residual guard
        Adam state,     residual
        update          derivatives,
                        backward)
======= =============== ================ =========== ============ =============
fp32    float32         float32          1e-8        no           no
fp16    float16         float16          1e-4        yes          yes
mixed   float32         float16          1e-8        yes          yes
bf16    float32         bfloat16         1e-8        no           no
======= =============== ================ =========== ============ =============

*Mixed* keeps fp32 master weights and a working copy in the compute dtype:
each step copies master -> working, runs everything on the working copy (so
elementwise products and every ``autograd.grad`` derivative are fp16 tensors,
not just the matrix products autocast would lower), then copies the working
gradients back to fp32 for the optimizer. The one exception is the activation
function, evaluated in fp32 and rounded back (see ``activation_dtype``). *fp16* has only the fp16
copy: Adam's moments and the update are fp16 too, and updates smaller than
half an fp16 ulp of a weight are lost. That, with Adam's epsilon rounding to
zero in fp16 (1e-8 < 2**-24), is why pure fp16 fails; the mode reproduces it rather
than hide it, and keep the same safety measures (fp32 loss sums, loss scaling,
residual guard) in fp16 and mixed so that the only difference between them is
where the weights and the update live.

*mixed_then_fp32* is mixed with an fp32 finish (the last 10 % of steps): see
``TrainingMode.fp32_finish`` for the floor that fp16 working weights set on a
converging PINN, and what the finish buys.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from lowprec._hints import lookup
from lowprec.precision import PrecisionPolicy
from lowprec.precision.emulation import log_once

_DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.float64: "fp64"}


def dtype_name(dtype: torch.dtype) -> str:
    return _DTYPE_NAMES.get(dtype, str(dtype).replace("torch.", ""))


@dataclass(frozen=True)
class TrainingMode:
    """Where the weights live and what dtype computes, for physics training.

    Attributes:
        name: ``fp32``, ``fp16``, ``mixed``, ``bf16`` (or your own label).
        compute_dtype: dtype of the forward pass, the residual derivatives and
            the backward pass.
        master_dtype: dtype of the stored weights, the optimizer state and the update.
        adam_eps: Adam's epsilon. In fp16 state, 1e-8 rounds to 0 and the first
            step with an underflowed second moment divides by zero; Hayford et
            al. use 1e-4 there.
        loss_scaling: scale the loss dynamically (``lowprec.precision.LossScaler``)
            so small weight gradients survive the fp16 backward pass.
        residual_guard: compute each residual times a power-of-two scale that
            shrinks whenever the residual or its derivatives overflow, see
            :class:`lowprec.physics.base.ResidualGuard`.
        activation_dtype: dtype of the networks' elementwise activations (tanh...) and so
            of their derivatives; None: the compute dtype. ``mixed`` uses fp32: autograd
            forms tanh' as 1 - tanh(z)^2 from the saved output, and a saturated unit's
            fp16 output (ulp 4.9e-4 near 1) leaves that difference with tens of percent
            error, in exactly the steep units that carry a shock. Matrix products (the
            cost) stay fp16; only the elementwise activation and its derivative are fp32.
        fp32_finish: fraction of the steps, at the end, run in the master dtype: the working
            copy is dropped and the same master weights and Adam state go on, without loss
            scaling or residual guard. Why: fp16 working weights hold 11 significant bits, and
            near a PINN's optimum the gradient is sensitive to rounding them, so mixed keeps
            converging, but more slowly than fp32. A short fp32 finish takes the last steps at
            fp32's pace, as Tu et al.'s schedule for operators ends in full precision. It helps
            where mixed trails fp32 in the last phase of training; it cannot recover a lag built
            up earlier at a large learning rate.
    """

    name: str
    compute_dtype: torch.dtype
    master_dtype: torch.dtype
    adam_eps: float = 1e-8
    loss_scaling: bool = False
    residual_guard: bool = False
    activation_dtype: torch.dtype | None = None
    fp32_finish: float = 0.0

    def __post_init__(self):
        for field in ("compute_dtype", "master_dtype", "activation_dtype"):
            if field == "activation_dtype" and self.activation_dtype is None:
                continue
            if getattr(self, field) not in _DTYPE_NAMES:
                raise ValueError(
                    f"TrainingMode.{field}={getattr(self, field)} is not a floating dtype "
                    f"lowprec trains in; use one of {list(_DTYPE_NAMES)}."
                )
        if not self.adam_eps > 0:
            raise ValueError(f"adam_eps must be positive, got {self.adam_eps}.")
        if not 0 <= self.fp32_finish < 1:
            raise ValueError(f"fp32_finish is a fraction of the steps in [0, 1), got {self.fp32_finish}.")
        if self.fp32_finish and (not self.is_mixed or self.master_dtype != torch.float32):
            raise ValueError(
                f"mode {self.name}: an fp32 finish needs fp32 master weights and a lower compute "
                f"dtype (mixed or bf16), not master {dtype_name(self.master_dtype)} / compute "
                f"{dtype_name(self.compute_dtype)}."
            )

    def finish_step(self, steps: int) -> int | None:
        """The step at which a run of ``steps`` switches to fp32 (None: it never does)."""
        n = round(steps * self.fp32_finish)
        return steps - n if n > 0 else None

    def finish(self) -> TrainingMode:
        """The mode of the fp32 finish: compute in the master dtype, nothing to scale or guard."""
        return self.replace(
            compute_dtype=self.master_dtype,
            loss_scaling=False,
            residual_guard=False,
            activation_dtype=None,
            fp32_finish=0.0,
        )

    @property
    def is_mixed(self) -> bool:
        """True when a separate working copy computes (master and compute dtypes differ)."""
        return self.compute_dtype != self.master_dtype

    @property
    def probe_dtype(self) -> torch.dtype:
        """The low dtype the diagnostics measure underflow and stalled updates against.

        The compute dtype when it is a half type; for fp32 runs, fp16, so that an
        fp32 run shows what fp16 would have lost.
        """
        if self.compute_dtype in (torch.float16, torch.bfloat16):
            return self.compute_dtype
        return torch.float16

    @property
    def policy(self) -> PrecisionPolicy:
        """The ``lowprec.precision`` policy entered while the working copy computes.

        ``autocast_dtype=None``: real-valued layers run in their parameters' dtype,
        which is the compute dtype because the working copy is already cast
        (autocast would only lower matrix products and would leave inputs, and
        so every ``autograd.grad`` derivative with respect to them, in fp32).
        Spectral layers, should a model contain one, contract in the compute dtype.
        """
        return PrecisionPolicy(
            name=f"physics_{self.name}",
            autocast_dtype=None,
            transform_dtype=torch.float32,
            contract_dtype=self.compute_dtype,
            loss_scaling=self.loss_scaling,
        )

    def replace(self, **changes) -> TrainingMode:
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        return (
            f"{self.name}: weights/optimizer {dtype_name(self.master_dtype)}, compute "
            f"{dtype_name(self.compute_dtype)}, Adam eps {self.adam_eps:g}, loss scaling "
            f"{'on' if self.loss_scaling else 'off'}, residual guard "
            f"{'on' if self.residual_guard else 'off'}"
            + (f", activations {dtype_name(self.activation_dtype)}" if self.activation_dtype else "")
            + (f"; fp32 for the last {self.fp32_finish:.0%} of steps" if self.fp32_finish else "")
        )


TRAINING_MODES: dict[str, TrainingMode] = {
    "fp32": TrainingMode("fp32", torch.float32, torch.float32, 1e-8, False, False),
    "fp16": TrainingMode("fp16", torch.float16, torch.float16, 1e-4, True, True),
    "mixed": TrainingMode("mixed", torch.float16, torch.float32, 1e-8, True, True, activation_dtype=torch.float32),
    "bf16": TrainingMode("bf16", torch.bfloat16, torch.float32, 1e-8, False, False),
    "mixed_then_fp32": TrainingMode(
        "mixed_then_fp32",
        torch.float16,
        torch.float32,
        1e-8,
        True,
        True,
        activation_dtype=torch.float32,
        fp32_finish=0.1,
    ),
}


def get_mode(mode: str | TrainingMode) -> TrainingMode:
    """Look up a mode by name (a mode object is returned unchanged)."""
    if isinstance(mode, TrainingMode):
        return mode
    return lookup(TRAINING_MODES, mode, "training mode", "lowprec.physics.TrainingMode(...)")


class WeightCopies:
    """The master weights the optimizer updates and the working copy that computes.

    For fp32 and fp16 the two are the same module; for mixed and bf16 the
    working copy is a cast deep copy, refreshed from the masters every step.

    Args:
        model: the model, built in fp32; it is cast to the master dtype in place.
        mode: the training mode.
    """

    def __init__(self, model: nn.Module, mode: TrainingMode):
        self.mode = mode
        self.master = model.to(mode.master_dtype)
        self.working = copy.deepcopy(self.master).to(mode.compute_dtype) if mode.is_mixed else self.master
        if self.working is not self.master:
            # Scalar parameters (an inverse problem's PDE coefficient) keep the master dtype, as
            # autocast keeps them: they cost no compute, and an fp16 copy would confine the
            # recovered coefficient to fp16's grid (2**-11 relative steps), which is coarser than the
            # accuracy an inverse problem reaches. Where a scalar meets an fp16 field, type
            # promotion rounds it there, once per use.
            for w, m in zip(self.working.parameters(), self.master.parameters()):
                if w.ndim == 0:
                    w.data = w.data.to(m.dtype)
            for module in self.working.modules():
                if hasattr(module, "activation_dtype"):
                    module.activation_dtype = mode.activation_dtype
        self._pairs = list(zip(self.working.parameters(), self.master.parameters()))
        eps16 = torch.tensor(mode.adam_eps, dtype=mode.master_dtype)
        if mode.master_dtype in (torch.float16, torch.bfloat16) and eps16 == 0:
            log_once(
                ("adam_eps_zero", mode.adam_eps, mode.master_dtype),
                f"Adam eps={mode.adam_eps:g} rounds to 0 in {dtype_name(mode.master_dtype)}: any "
                "weight whose second moment underflows will get a 0/0 update. Hayford et al. use "
                "1e-4 for fp16 (--adam-eps 1e-4).",
            )

    @torch.no_grad()
    def sync(self) -> None:
        """Copy master weights into the working copy (rounding to the compute dtype)."""
        if self.working is not self.master:
            for w, m in self._pairs:
                w.copy_(m)

    def zero_grad(self) -> None:
        self.working.zero_grad(set_to_none=True)
        self.master.zero_grad(set_to_none=True)

    def working_grads(self) -> list[torch.Tensor]:
        """The gradients as the backward pass computed them (compute dtype, loss scale included)."""
        return [w.grad for w, _ in self._pairs if w.grad is not None]

    @torch.no_grad()
    def grads_to_master(self) -> None:
        """Give each master weight its working gradient, cast to the master dtype (exact for fp16 -> fp32)."""
        if self.working is self.master:
            return
        for w, m in self._pairs:
            m.grad = None if w.grad is None else w.grad.to(m.dtype)

    def state_bytes(self, optimizer: torch.optim.Optimizer | None = None) -> int:
        """Bytes of weights (both copies), gradients and optimizer state: the persistent memory."""
        tensors = list(self.master.parameters()) + list(self.master.buffers())
        if self.working is not self.master:
            tensors += list(self.working.parameters()) + list(self.working.buffers())
        total = sum(t.numel() * t.element_size() for t in tensors)
        total += sum(p.numel() * p.element_size() for p in self.master.parameters())  # master grads
        if self.working is not self.master:
            total += sum(p.numel() * p.element_size() for p in self.working.parameters())
        if optimizer is not None:
            for state in optimizer.state.values():
                total += sum(v.numel() * v.element_size() for v in state.values() if torch.is_tensor(v))
        return total
