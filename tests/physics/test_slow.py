"""Longer checks, left out of the default run (pytest -m slow)."""

import pytest

from lowprec.physics import Burgers, DiffusionReaction, Kovasznay, PhysicsTrainConfig, train


@pytest.mark.slow
def test_burgers_mixed_tracks_fp32_over_3000_steps():
    cfg = PhysicsTrainConfig(steps=3000, eval_every=1000, measure_memory=False)
    fp32 = train(Burgers(), "fp32", cfg)
    mixed = train(Burgers(), "mixed", cfg)
    assert fp32.error < 0.5
    # 25%: one seed, mid-training; the 10% target is checked on full --compare runs (see the issue notes)
    assert mixed.error <= 1.25 * fp32.error, (fp32.error, mixed.error)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fp32", "mixed"])
def test_kovasznay_learns(mode):
    prob = Kovasznay(width=50, depth=4, n_domain=1000, n_boundary=200, n_test=2500)
    r = train(prob, mode, PhysicsTrainConfig(steps=1500, eval_every=500, measure_memory=False))
    assert r.error < 0.5 * r.evals[0]["error"], (r.evals[0]["error"], r.error)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fp32", "mixed"])
def test_diffusion_reaction_pi_deeponet_learns(mode):
    prob = DiffusionReaction(n_train=200, n_test=20)
    r = train(prob, mode, PhysicsTrainConfig(steps=1500, eval_every=500, measure_memory=False))
    assert r.error < 0.5 * r.evals[0]["error"], (r.evals[0]["error"], r.error)
