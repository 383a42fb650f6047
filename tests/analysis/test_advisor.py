"""The advisor: full below bf16's error, a low-precision policy above it, text a config accepts."""

import torch

from lowprec.analysis import accuracy_study, synthetic_inputs
from lowprec.analysis.advisor import advise
from lowprec.models import FNO
from lowprec.precision import get_policy


def _setup():
    torch.manual_seed(0)
    model = FNO((4, 4), hidden_channels=8, n_layers=2, grid_endpoint=False)

    def make_input(n):
        return synthetic_inputs("jump", n, batch=1)

    return model, make_input, accuracy_study(model, make_input, (16, 32, 64), ["full", "bf16"])


def test_full_below_bf16_error_low_precision_above():
    model, make_input, study = _setup()
    disc = study["discretization"]["errors"]["32"]
    bf16 = study["precision"]["bf16"]["errors"]["32"]
    full = study["precision"]["full"]["errors"]["32"]
    low = ("bf16", "fp16", "half_bf16", "half", "mixed_bf16", "mixed", "amp_bf16", "amp")
    # Budget between full's error and the smallest reduced-precision error: only full fits.
    tight = advise(model, make_input, study, tolerance=10 * full / disc, resolution=32)
    errors = {c["policy"]: c["error"] for c in tight["candidates"]}
    assert 10 * full < min(errors[p] for p in low)  # the premise of this test
    assert tight["recommended"] == "full"
    # A budget above bf16's error: something cheaper than full is recommended and fits it.
    loose = advise(model, make_input, study, tolerance=2 * bf16 / disc, resolution=32)
    assert loose["recommended"] != "full"
    chosen = next(c for c in loose["candidates"] if c["policy"] == loose["recommended"])
    assert chosen["error"] <= loose["budget"]
    assert chosen["saved_bytes"] < next(c for c in loose["candidates"] if c["policy"] == "full")["saved_bytes"]
    assert get_policy(loose["recommended"]).is_reduced
    assert f'precision: "{loose["recommended"]}"' in loose["yaml"]


def test_no_policy_fits_says_so():
    model, make_input, study = _setup()
    advice = advise(model, make_input, study, tolerance=1e-12, resolution=32)
    assert advice["recommended"] == "full" and "not even full" in advice["summary"]


def test_overrides_are_candidates_and_parse():
    model, make_input, study = _setup()
    advice = advise(model, make_input, study, tolerance=1.0)
    specs = [c["policy"] for c in advice["candidates"]]
    assert "bf16 | blocks.0=full; blocks.1=full" in specs
    assert "bf16 | lifting=full; projection=full" in specs
    for spec in specs:
        assert get_policy(spec).spec == spec
    assert advice["resolution"] == 32  # the finest N with a discretization error


def test_extrapolated_resolution():
    model, make_input, study = _setup()
    advice = advise(model, make_input, study, tolerance=1.0, resolution=128)
    assert advice["discretization_source"].startswith("extrapolated")


def test_advice_text_is_a_training_precision(tmp_path):
    from lowprec.config import load_config
    from lowprec.train.trainer import as_schedule

    path = tmp_path / "advice.yaml"
    path.write_text('train:\n  precision: "bf16 | blocks.0=full; projection=full"\n')
    cfg = load_config(str(path))
    policy = as_schedule(cfg.train.precision).policy_at(0, 1)
    assert policy.name == "bf16" and [p for p, _ in policy.overrides] == ["blocks.0", "projection"]
