"""Dynamic loss scaling, and overflow reports that name the layer.

Written here rather than taken from ``torch.amp.GradScaler`` because that
scaler (a) crashes on complex parameters in ``unscale_``, (b) cannot say which
layer overflowed, and (c) has no "stop" mode: it skips steps silently for
ever. This one works on any parameter dtype, names the modules whose gradients
went non-finite, and leaves the skip-or-stop decision to the policy.

Typical use (the trainer does this)::

    scaler.enabled = policy.loss_scaling
    scaler.scale(loss).backward()
    bad = scaler.unscale_(model)          # names of parameters with inf/NaN grads
    if bad: ...skip or raise...           # see lowprec.train
    else: optimizer.step()
    scaler.update(overflow=bool(bad))
"""

from __future__ import annotations

import torch
from torch import nn


class PrecisionOverflowError(FloatingPointError):
    """Raised when reduced precision produces inf/NaN and the policy says stop."""


class LossScaler:
    """Multiply the loss by a scale that halves on overflow and doubles after a clean stretch.

    Args:
        init_scale: starting scale (2**16, as torch's GradScaler).
        growth_factor / backoff_factor: scale multipliers after ``growth_interval``
            clean steps / after an overflow.
        growth_interval: clean steps before the scale grows.
        min_scale: below this, overflow is not a scaling problem: raise.
        enabled: when False, ``scale`` is the identity and ``unscale_`` only checks.
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        min_scale: float = 2.0**-14,
        enabled: bool = True,
    ):
        self.scale_value = float(init_scale)
        self.growth_factor = growth_factor
        self.backoff_factor = backoff_factor
        self.growth_interval = growth_interval
        self.min_scale = min_scale
        self.enabled = enabled
        self._clean_steps = 0

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        return loss * self.scale_value if self.enabled else loss

    @torch.no_grad()
    def unscale_(self, model: nn.Module) -> list[str]:
        """Divide gradients by the scale in place; return names of parameters whose grads are not finite.

        Under FSDP2 a gradient is a DTensor and this rank checks its own shard, without communication
        (the trainer combines the ranks' answers).
        """
        named = [(n, _local(p.grad)) for n, p in model.named_parameters() if p.grad is not None]
        if not named:
            return []
        grads = [g for _, g in named]
        if self.enabled and self.scale_value != 1.0:
            torch._foreach_mul_(grads, 1.0 / self.scale_value)
        finite = torch.stack([torch.isfinite(g).all() for g in grads])
        if bool(finite.all()):
            return []
        return [n for (n, _), ok in zip(named, finite.tolist()) if not ok]

    def update(self, overflow: bool) -> None:
        if not self.enabled:
            return
        if overflow:
            self.scale_value *= self.backoff_factor
            self._clean_steps = 0
            if self.scale_value < self.min_scale:
                raise PrecisionOverflowError(
                    f"loss scale fell below {self.min_scale:g}: gradients overflow even unscaled. "
                    "Use a stabilizer (tanh), a bf16 policy, or a lower learning rate."
                )
        else:
            self._clean_steps += 1
            if self._clean_steps >= self.growth_interval:
                self.scale_value *= self.growth_factor
                self._clean_steps = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale_value, "clean_steps": self._clean_steps, "enabled": self.enabled}

    def load_state_dict(self, state: dict) -> None:
        self.scale_value = float(state["scale"])
        self._clean_steps = int(state["clean_steps"])
        self.enabled = bool(state["enabled"])


def _local(grad: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor gradient (FSDP2), sharing its storage; a plain tensor as it is."""
    return grad.to_local() if hasattr(grad, "to_local") else grad


def module_of(param_name: str) -> str:
    """``'blocks.2.spectral.weight'`` -> ``'blocks.2.spectral'``."""
    return param_name.rpartition(".")[0] or param_name


@torch.no_grad()
def first_nonfinite_module(
    model: nn.Module, *inputs: torch.Tensor, **named_inputs: torch.Tensor
) -> tuple[str, str] | None:
    """Re-run ``model(*inputs, **named_inputs)`` and return the innermost module that first emits inf/NaN.

    Run under the same policy as the failed step. Returns (module name, module
    class) or None when the forward pass stays finite (the overflow was in the
    backward pass). This costs one extra forward pass, paid only after a failure.
    """
    found: list = []

    def hook(module, args, output):
        if found:
            return
        outs = output if isinstance(output, (tuple, list)) else (output,)
        for out in outs:
            if torch.is_tensor(out) and out.is_floating_point() and not torch.isfinite(out).all():
                found.append(module)
                return

    # Forward hooks fire when a module returns, so inner modules report before their parents.
    names = {m: n for n, m in model.named_modules()}
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        model(*inputs, **named_inputs)
    finally:
        for h in handles:
            h.remove()
    if not found:
        return None
    return names[found[0]] or "<model>", type(found[0]).__name__
