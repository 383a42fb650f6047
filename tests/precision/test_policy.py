import logging

import pytest
import torch

from lowprec.precision import PRESETS, PrecisionPolicy, PrecisionSchedule, current_policy, emulation, get_policy
from lowprec.precision.emulation import fft_native, round_through
from lowprec.precision.stabilizers import sigma_clip, stabilize


def test_presets_follow_the_paper():
    assert get_policy("full").autocast_dtype is None and not get_policy("full").is_reduced
    amp = get_policy("amp")
    assert amp.autocast_dtype == torch.float16 and amp.transform_dtype == torch.float32
    assert amp.contract_dtype == torch.float32 and amp.stabilizer is None
    half = get_policy("half")
    assert half.transform_dtype == half.contract_dtype == torch.float16 and half.stabilizer == "tanh"
    mixed = get_policy("mixed")
    assert mixed.transform_dtype == torch.float32 and mixed.contract_dtype == torch.float16
    assert mixed.stabilizer is None  # its fp32 normalized FFT cannot overflow; see the policy docstring
    assert get_policy("mixed_tanh") == mixed.replace(name="mixed_tanh", stabilizer="tanh")
    for name in ("amp_bf16", "half_bf16", "mixed_bf16"):
        assert PRESETS[name].autocast_dtype == torch.bfloat16 and not PRESETS[name].loss_scaling


def test_dft_presets_and_the_backend_field():
    assert all(PRESETS[n].backend == "auto" for n in PRESETS if n not in ("full_dft", "bf16", "fp16"))
    assert get_policy("full_dft") == get_policy("full").replace(name="full_dft", backend="dft")
    # Low precision end to end: autocast, transform and contraction in one half dtype.
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        p = get_policy(name)
        assert p.autocast_dtype == p.transform_dtype == p.contract_dtype == dtype
        assert p.backend == "dft" and p.stabilizer is None
    assert get_policy("fp16").loss_scaling and not get_policy("bf16").loss_scaling
    assert get_policy("bf16") == get_policy("half_bf16").replace(name="bf16", backend="dft")
    assert get_policy("full").to_dict()["backend"] == "auto"
    assert PrecisionPolicy("x", None, torch.float32, torch.float32, None, False, "skip").backend == "auto"


def test_unknown_policy_names_the_closest_preset():
    with pytest.raises(ValueError, match="unknown precision policy 'mixd'.*Did you mean 'mixed'"):
        get_policy("mixd")


def test_bad_policy_fields_raise():
    with pytest.raises(ValueError, match="unknown stabilizer"):
        PrecisionPolicy(stabilizer="relu")
    with pytest.raises(ValueError, match="autocast"):
        PrecisionPolicy(autocast_dtype=torch.float32)
    with pytest.raises(ValueError, match="on_overflow"):
        PrecisionPolicy(on_overflow="ignore")
    with pytest.raises(ValueError, match="unknown spectral backend 'gemm'"):
        PrecisionPolicy(backend="gemm")


def test_policy_context_sets_autocast_and_active_policy():
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    assert current_policy().name == "full"
    with get_policy("mixed") as p:
        assert current_policy() is p
        assert layer(x).dtype == torch.float16
        with get_policy("full"):
            assert current_policy().name == "full"
            assert layer(x).dtype == torch.float32  # full switches autocast off inside an outer one
        assert current_policy() is p
    assert current_policy().name == "full" and layer(x).dtype == torch.float32


def test_schedule_switches_at_the_papers_epochs():
    schedule = PrecisionSchedule.paper()
    names = [schedule.policy_at(e, 500).name for e in range(500)]
    assert names[:125] == ["half"] * 125
    assert names[125:375] == ["mixed"] * 250
    assert names[375:] == ["full"] * 125
    assert schedule.phases[1][1].stabilizer is None  # the paper's mixed phase ran without tanh


def test_schedule_parse_and_user_fractions():
    s = PrecisionSchedule.parse("half:0.5,full:0.5")
    assert [s.policy_at(e, 10).name for e in range(10)] == ["half"] * 5 + ["full"] * 5
    assert str(s) == "half:0.5,full:0.5"
    with pytest.raises(ValueError, match="sum to 0.9"):
        PrecisionSchedule.parse("half:0.4,full:0.5")
    with pytest.raises(ValueError, match="policy:fraction"):
        PrecisionSchedule.parse("half")
    with pytest.raises(ValueError, match="unknown precision policy"):
        PrecisionSchedule.parse("quarter:1")


@pytest.mark.parametrize("name", ["tanh", "hardclip"])
def test_stabilizers_bound_the_input(name):
    x = torch.randn(4, 3, 16, 16) * 1e4
    y = stabilize(x, name)
    assert y.shape == x.shape and y.abs().max() <= 1.0


def test_sigma_clip_bounds_each_sample_and_channel():
    x = torch.randn(4, 3, 32, 32)
    x[0, 1, 5, 5] = 1e6  # one huge outlier in one channel of one sample
    y = sigma_clip(x)
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = x.std(dim=(2, 3), keepdim=True)
    assert (y <= mean + 2 * std + 1e-4).all() and (y >= mean - 2 * std - 1e-4).all()
    assert y[0, 1, 5, 5] < 1e6 and torch.equal(y[1], sigma_clip(x[1:2])[0])


def test_stabilizer_gradients_flow():
    x = torch.randn(2, 2, 8, requires_grad=True)
    for name in ("tanh", "hardclip", "sigma_clip"):
        stabilize(x, name).sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        x.grad = None


def test_fft_support_table():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert fft_native(torch.float32, cpu, (30, 30))[0]
    assert not fft_native(torch.float16, cpu, (32, 32))[0]
    assert not fft_native(torch.bfloat16, cuda, (32, 32))[0]
    assert fft_native(torch.float16, cuda, (64, 32))[0]
    ok, reason = fft_native(torch.float16, cuda, (64, 48))
    assert not ok and "power-of-two" in reason


def test_round_through_matches_a_cast():
    x = torch.randn(1000, dtype=torch.float32) * 100
    assert torch.equal(round_through(x, torch.float16), x.half().float())
    z = torch.randn(10, dtype=torch.complex64)
    r = round_through(z, torch.bfloat16)
    assert torch.equal(r.real, z.real.bfloat16().float()) and torch.equal(r.imag, z.imag.bfloat16().float())
    big = torch.tensor([1e5])
    assert torch.isinf(round_through(big, torch.float16)).all()  # overflow shows up, as on hardware


def test_emulation_is_logged_once(caplog):
    caplog.set_level(logging.WARNING, logger="lowprec")
    emulation._LOGGED.discard("probe-key")
    emulation.log_once("probe-key", "emulating something")
    emulation.log_once("probe-key", "emulating something")
    assert [r.getMessage() for r in caplog.records].count("emulating something") == 1


def test_a_schedule_names_its_policies_overrides_and_reads_them_back():
    """A checkpoint labels its run with str(schedule): overrides must be in it, or a resume could change them."""
    with_overrides = PrecisionSchedule([(0.5, "bf16 | blocks.0=full"), (0.5, "full")])
    assert str(with_overrides) == "bf16 | blocks.0=full:0.5,full:0.5"
    assert PrecisionSchedule.parse(str(with_overrides)) == with_overrides
    assert str(PrecisionSchedule.paper()) == "half:0.25,mixed:0.5,full:0.25"
