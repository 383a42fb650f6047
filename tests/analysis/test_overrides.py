"""Per-layer precision overrides: each layer runs in the dtype its override states (checked with hooks)."""

import pytest
import torch

from lowprec.models import FNO
from lowprec.precision import PrecisionPolicy, current_policy, get_policy


def _model():
    torch.manual_seed(0)
    return FNO((4, 4), hidden_channels=8, n_layers=3, grid_endpoint=False)


def _record(model):
    """{module name: (dtype of the skip conv's output, policy the spectral layer saw)} per block."""
    seen = {}
    handles = []
    for k, block in enumerate(model.blocks):
        handles.append(
            block.skip.register_forward_hook(
                lambda m, a, out, k=k: seen.setdefault(f"blocks.{k}", {}).update(skip=out.dtype)
            )
        )
        handles.append(
            block.spectral.register_forward_pre_hook(
                lambda m, a, k=k: seen.setdefault(f"blocks.{k}", {}).update(
                    policy=current_policy().name, spectral_in=a[0].dtype
                )
            )
        )
    handles.append(
        model.projection.register_forward_hook(
            lambda m, a, out: seen.setdefault("projection", {}).update(out=out.dtype)
        )
    )
    return seen, handles


def test_each_block_runs_in_its_stated_dtype():
    model = _model()
    policy = get_policy("bf16").replace(overrides=(("blocks.0", "full"), ("projection", "full")))
    seen, handles = _record(model)
    with policy:
        y = model(torch.randn(2, 1, 16, 16))
    assert seen["blocks.0"] == {"skip": torch.float32, "policy": "full", "spectral_in": torch.float32}
    assert seen["blocks.1"]["skip"] == torch.bfloat16 and seen["blocks.1"]["policy"] == "bf16"
    assert seen["blocks.2"]["skip"] == torch.bfloat16 and seen["blocks.2"]["policy"] == "bf16"
    assert seen["projection"]["out"] == torch.float32 and y.dtype == torch.float32
    assert current_policy().name == "full"  # everything unwound
    for h in handles:
        h.remove()


def test_glob_pattern_and_text_form_agree():
    a = get_policy("bf16 | blocks.*=full")
    assert a.overrides[0][0] == "blocks.*" and a.overrides[0][1].name == "full"
    assert a.spec == "bf16 | blocks.*=full"
    assert get_policy(a.spec) == a
    model = _model()
    seen, _ = _record(model)
    with a:
        model(torch.randn(1, 1, 8, 8))
    assert all(seen[f"blocks.{k}"]["skip"] == torch.float32 for k in range(3))


def test_override_to_full_is_closer_to_fp64_and_trains():
    from lowprec.analysis import precision_errors

    model = _model()
    x = torch.randn(2, 1, 16, 16)
    plain = get_policy("bf16")
    every = plain.replace(overrides=(("*", "full"),))
    err = precision_errors(model, x, [plain, every], names=[])
    assert err["bf16 | *=full"]["total"] < 1e-5 < err["bf16"]["total"]
    # gradients flow through the casts the override inserts
    with plain.replace(overrides=(("blocks.1", "full"),)):
        loss = model(x).float().square().mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_a_raising_forward_leaves_no_override_active():
    model = _model()
    with pytest.raises(ValueError):
        with get_policy("bf16 | blocks.0=full"):
            model.blocks[0](torch.randn(1, 3, 8, 8))  # wrong channel count: raises inside the override
    assert current_policy().name == "full"
    assert not torch.is_autocast_enabled("cpu")


def test_bad_overrides_are_refused():
    with pytest.raises(ValueError, match="pair"):
        PrecisionPolicy(overrides=("blocks.0",))
    with pytest.raises(ValueError, match="non-empty"):
        PrecisionPolicy(overrides=(("", "full"),))
    with pytest.raises(ValueError, match="nest"):
        PrecisionPolicy(overrides=(("a", get_policy("bf16 | b=full")),))
    with pytest.raises(ValueError, match="pattern=policy"):
        get_policy("bf16 | blocks.0")
    with pytest.raises(ValueError, match="precision policy"):
        get_policy("bf16 | blocks.0=fulll")
