"""The diagnostics count underflow, stalled updates and residual rounding correctly on constructed cases."""

import logging
import math
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import nn

from lowprec.physics import (
    PhysicsProblem,
    PhysicsTrainConfig,
    get_mode,
    grad_norm,
    stalled_update_share,
    train,
    underflow_share,
)
from lowprec.physics.diagnostics import residual_rounding, smallest_subnormal


def test_smallest_subnormals():
    assert smallest_subnormal(torch.float16) == 2.0**-24
    assert smallest_subnormal(torch.bfloat16) == 2.0**-133


def test_underflow_share_counts_entries_that_round_to_zero_in_fp16():
    # 1e-9 and -2e-8 are below half of fp16's smallest subnormal (2**-25 ~ 2.98e-8): they flush to 0;
    # 3e-8 rounds up to 2**-24 and 1e-7 is a subnormal: both survive; the exact 0 counts.
    g = torch.tensor([1e-9, 1e-7, 0.0, 1.0, -2e-8, 3e-8])
    assert underflow_share([g]) == pytest.approx(3 / 6)
    assert underflow_share([g]) == pytest.approx(float((g.half() == 0).float().mean()))  # what a cast does
    assert underflow_share([g[:3], g[3:]]) == pytest.approx(3 / 6)  # pooled over tensors


def test_underflow_share_in_bf16_and_on_fp16_tensors():
    g = torch.tensor([1e-9, 1e-30, 0.0, 1.0])
    assert underflow_share([g], torch.bfloat16) == pytest.approx(1 / 4)  # only the exact zero
    assert underflow_share([g.half()]) == pytest.approx(3 / 4)  # already fp16: zeros are zeros


def test_stalled_update_share_against_fp16_ulps():
    # ulp(1.0) = 2**-10 ~ 9.8e-4: a 1e-4 update is lost, 1e-3 is not; ulp(0.001) ~ 9.5e-7: 1e-5 survives;
    # ulp(100) = 0.0625: a 0.01 update is lost.
    before = torch.tensor([1.0, 1.0, 0.001, 100.0])
    delta = torch.tensor([1e-4, 1e-3, 1e-5, 0.01])
    assert stalled_update_share([before], [before + delta]) == pytest.approx(2 / 4)
    # in pure fp16, before and after are fp16: an update that was lost leaves the weight unchanged
    b16 = before.half()
    a16 = b16 + delta.half()
    assert stalled_update_share([b16], [a16]) == pytest.approx(2 / 4)
    # bf16 has 8 significant bits: even the 1e-3 update to 1.0 is lost
    assert stalled_update_share([before], [before + delta], torch.bfloat16) == pytest.approx(3 / 4)


def test_grad_norm_does_not_overflow_in_fp16():
    g = torch.full((100,), 1000.0, dtype=torch.float16)  # sum of squares 1e8 > 65504
    assert grad_norm([g]) == pytest.approx(10000.0)


@dataclass(frozen=True)
class _Line(PhysicsProblem):
    """Fit y = slope * x with a bias-free linear unit of weight ``weight``; the residual is w x - slope x.

    With ``slope`` close to ``weight`` and large x, the residual is a small difference of large numbers,
    the shape of a converged PINN's residual.
    """

    name: ClassVar[str] = "line"
    kind: ClassVar[str] = "pinn"
    title: ClassVar[str] = "line"
    weight: float = 1.1
    slope: float = 0.0
    scale: float = 1.0

    def build_model(self, seed):
        net = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            net.weight.fill_(self.weight)
        return net

    def training_data(self, seed):
        return {"x": self.scale * torch.linspace(0.5, 1.0, 8).unsqueeze(1)}

    def loss_terms(self, c, batch):
        x = c.cast(batch["x"])
        return {"data": c.mse(c(x), self.slope * x.double())}

    def evaluate(self, net, dtype, data):
        return {"error": abs(float(net.weight.detach()) - self.slope) / max(abs(self.slope), 1.0)}


def test_residual_rounding_is_one_rounding_of_the_output_when_nothing_cancels():
    p = _Line(slope=0.0)  # the residual is the output itself
    r = residual_rounding(p, p.build_model(0), get_mode("mixed"), p.training_data(0))
    assert 0 < r < 2.0**-10  # the weight's rounding and the product's: each at most 2**-11 relative
    assert residual_rounding(p, p.build_model(0), get_mode("fp32"), p.training_data(0)) < 1e-7


def test_residual_rounding_matches_the_rounding_of_a_cancelling_residual_computed_by_hand():
    p = _Line(weight=1.1, slope=1.1 * (1 + 1e-4), scale=100.0)  # terms ~100, residual ~1e-2
    x = p.training_data(0)["x"]
    fp16_out = (torch.tensor(1.1).half() * x.half()).double()  # one fp16 product of fp16 operands
    fp64_out = torch.tensor(1.1, dtype=torch.float32).double() * x.double()  # the fp32 weight, exactly
    # the target at the points as fp16 rounds them; the misfit is formed in fp32 (Compute.mse)
    target = (p.slope * x.half().double()).float().double()
    ref_target = p.slope * x.double()
    expected = ((fp16_out - target) - (fp64_out - ref_target)).square().mean().sqrt() / (
        fp64_out - ref_target
    ).square().mean().sqrt()
    got = residual_rounding(p, p.build_model(0), get_mode("mixed"), p.training_data(0))
    assert got == pytest.approx(float(expected), rel=1e-6)
    assert got > 1  # fp16 cannot see this residual at all: rounding exceeds it
    assert residual_rounding(p, p.build_model(0), get_mode("fp32"), p.training_data(0)) < 1e-2


def test_residual_rounding_reports_overflow_as_inf():
    p = _Line(slope=0.0, scale=1e5)  # x itself overflows fp16
    assert residual_rounding(p, p.build_model(0), get_mode("mixed"), p.training_data(0)) == math.inf


def test_training_records_residual_rounding_and_warns_once_a_half_run_cannot_see_its_residual(caplog):
    p = _Line(weight=1.1, slope=1.1 * (1 + 1e-4), scale=100.0)
    with caplog.at_level(logging.WARNING, logger="lowprec"):
        r = train(p, "fp32", PhysicsTrainConfig(steps=2, lr=1e-9, eval_every=1, measure_memory=False))
    assert all(e["residual_rounding"] > 1 for e in r.evals)  # what mixed's fp16 would make of fp32's weights
    assert not [m for m in caplog.messages if "of the loss residual" in m]  # fp32 itself is not warned
    with caplog.at_level(logging.WARNING, logger="lowprec"):
        r = train(p, "mixed", PhysicsTrainConfig(steps=2, lr=1e-9, eval_every=1, measure_memory=False))
    warned = [m for m in caplog.messages if "of the loss residual" in m]
    assert len(warned) == 1 and "at step 0 rounding to fp16" in warned[0] and "mixed_then_fp32" in warned[0]
