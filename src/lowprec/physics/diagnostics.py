"""Per-step diagnostics that explain why a training mode trains or does not.

Three numbers per step (Hayford et al. name the failure modes of fp16 as
gradients that underflow, and weight updates that go to zero):

* ``grad_norm``: the 2-norm of the (unscaled) weight gradient;
* ``underflow``: the share of gradient entries that are zero or round to zero
  in the probe dtype (fp16 unless the run computes in bf16). Measured on the
  gradient as the backward pass produced it, loss scale included, since that
  is the number that has to fit. For an fp32 run it shows what fp16 without
  loss scaling would lose;
* ``stalled``: the share of weights that this step's update leaves unchanged
  *when the weight is stored in the probe dtype*: ``fp16(fp16(w) + dw) ==
  fp16(w)``, i.e. |dw| below half an fp16 ulp of w. In pure fp16 this is the
  update actually lost; with fp32 master weights it is what a pure fp16 run
  would have lost on the same step.

And one number per evaluation, how much of what the loss minimizes the compute
dtype can resolve:

* ``residual_rounding``: the rms of the rounding error in the residuals the loss
  squares, relative to the residuals' rms. A PDE residual is a small difference
  of large terms (in Kovasznay's momentum equations the terms' magnitudes sum to
  hundreds of times the residual once training has converged), and fp16 rounds
  each term to 2**-11 of its size, so as training drives the residual down, a
  fixed rounding error becomes a growing share of it -- and of the gradient. It
  is measured by evaluating the residuals in the compute dtype and in fp64 on
  the same weights. How large a share a problem tolerates before mixed falls
  behind fp32 depends on the problem; the ``--compare`` table reports the share
  beside the error, and the trainer warns past 25 %.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from .base import Compute, PhysicsProblem
from .modes import TrainingMode, WeightCopies


def smallest_subnormal(dtype: torch.dtype) -> float:
    """2**-24 for fp16, 2**-133 for bf16, 2**-149 for fp32."""
    info = torch.finfo(dtype)
    return info.smallest_normal * info.eps


@torch.no_grad()
def grad_norm(grads: Iterable[torch.Tensor]) -> float:
    """2-norm of all entries, accumulated in fp32 (an fp16 sum of squares would overflow)."""
    total = torch.zeros((), dtype=torch.float64)
    for g in grads:
        total += g.double().square().sum()
    return float(total.sqrt())


@torch.no_grad()
def underflow_share(grads: Iterable[torch.Tensor], dtype: torch.dtype = torch.float16) -> float:
    """Share of entries that are 0 or round to 0 in ``dtype`` (|g| <= half the smallest subnormal).

    Exact zeros count: a tanh network has no structurally zero weight gradients,
    so a zero in a computed half-precision gradient is lost information: an
    underflow, or (fewer in fp16, more in bf16 with its 8-bit significand) two
    contributions that cancel exactly once rounded. Non-finite entries do not count.
    """
    half_tiny = smallest_subnormal(dtype) / 2
    zero = count = 0
    for g in grads:
        a = g.detach().abs().double()
        zero += int((a <= half_tiny).sum())
        count += a.numel()
    return zero / count if count else 0.0


@torch.no_grad()
def stalled_update_share(
    before: Sequence[torch.Tensor], after: Sequence[torch.Tensor], dtype: torch.dtype = torch.float16
) -> float:
    """Share of weights whose value in ``dtype`` an update ``after - before`` leaves unchanged.

    before / after: the weights before and after the optimizer step (any dtype).
    """
    stalled = count = 0
    for b, a in zip(before, after):
        w = b.detach().to(dtype)
        delta = a.detach().double() - b.detach().double()
        stalled += int(((w.double() + delta).to(dtype) == w).sum())
        count += w.numel()
    return stalled / count if count else 0.0


def residual_rounding(problem: PhysicsProblem, master: nn.Module, mode: TrainingMode, batch: dict) -> float:
    """rms of the residuals' rounding in ``mode``'s compute dtype over the rms of the residuals.

    At ``master``'s weights, the loss terms are computed twice -- as ``mode`` computes them (its
    working copy: weights rounded to the compute dtype, derivatives in it) and in fp64 -- and every
    residual they square is compared (PDE residuals, and data misfits ``pred - target``)::

        sqrt(sum_terms mean((r_mode - r_fp64)**2) / sum_terms mean(r_fp64**2))

    Each term counts as it counts in the loss (a mean over its points), without the problem's loss
    weights. 0: rounding is invisible in the residual; 0.1: it is a tenth of it; inf: the compute
    dtype overflows (no residual guard is applied here); nan: the two passes did not square the
    same residuals.

    Args:
        problem: the problem; its ``loss_terms`` must square residuals through ``Compute.mean_square``
            / ``Compute.mse`` (every lowprec problem does).
        master: the model in fp32 (or fp16 for pure fp16); it is not modified.
        mode: the mode whose compute dtype is probed.
        batch: the loss terms' input (a training batch).
    """
    passes = []
    low = WeightCopies(copy.deepcopy(master), mode)
    low.sync()
    for net, dtype, policy in (
        (low.working, mode.compute_dtype, mode.policy),
        (copy.deepcopy(master).double(), torch.float64, None),
    ):
        c = Compute(net, dtype)
        c.residuals = []
        with torch.enable_grad(), policy or contextlib.nullcontext():
            problem.loss_terms(c, batch)
        passes.append(c.residuals)
    low_r, ref_r = passes
    if len(low_r) != len(ref_r) or any(a.shape != b.shape for a, b in zip(low_r, ref_r)):
        return math.nan
    noise = sum(float((a - b).square().mean()) for a, b in zip(low_r, ref_r))
    size = sum(float(b.square().mean()) for b in ref_r)
    if not math.isfinite(noise):
        return math.inf
    return math.sqrt(noise / size) if size > 0 else math.nan
