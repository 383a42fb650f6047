"""The diagnostics count underflow and stalled updates correctly on constructed cases."""
import pytest
import torch

from lowprec.physics import grad_norm, stalled_update_share, underflow_share
from lowprec.physics.diagnostics import smallest_subnormal


def test_smallest_subnormals():
    assert smallest_subnormal(torch.float16) == 2.0 ** -24
    assert smallest_subnormal(torch.bfloat16) == 2.0 ** -133


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
