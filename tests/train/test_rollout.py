"""Autoregressive rollout: per-step errors against the solver, and the SFNO shallow-water study end to end."""

import pytest
import torch
from torch import nn

from lowprec.config import load_config, make_config
from lowprec.train.rollout import rollout_errors, rollout_study


class Exact(nn.Module):
    """u(t + 1) = factor * u(t): the exact model of geometric trajectories."""

    def __init__(self, factor, wrong=0.0):
        super().__init__()
        self.factor, self.wrong = factor, wrong
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x * (self.factor + self.wrong)


def geometric(factor, n=2, steps=6):
    u0 = torch.randn(n, 1, 3, 8, 16)
    return u0 * factor ** torch.arange(steps + 1.0)[None, :, None, None, None]


def test_exact_model_has_zero_error_and_a_biased_one_compounds():
    u = geometric(0.9)
    assert max(rollout_errors(Exact(0.9), u, 5)["l2"]) < 1e-6
    errors = rollout_errors(Exact(0.9, wrong=0.01), u, 5)["l2"]
    # after k steps the error is |(1 + 0.01/0.9)^k - 1|: it grows with every step
    expected = [(1 + 0.01 / 0.9) ** k - 1 for k in range(1, 6)]
    assert errors == pytest.approx(expected, rel=1e-4)


def test_scalar_trajectories_and_too_short_rollouts():
    u = geometric(1.0)[:, :, 0]  # (N, T, nlat, nlon)
    result = rollout_errors(Exact(1.0), u.unsqueeze(2), 3, policy="bf16")
    assert result["policy"] == "bf16" and len(result["l2"]) == 3 and len(result["l2_by_channel"][0]) == 1
    with pytest.raises(ValueError, match="needs trajectories"):
        rollout_errors(Exact(1.0), u.unsqueeze(2), 7)
    with pytest.raises(ValueError, match="unsqueeze"):
        rollout_errors(Exact(1.0), u[..., 0], 3)


def test_swe_sfno_config_builds_and_rolls_out_under_each_precision(tmp_path):
    cfg = load_config("configs/swe_sfno.yaml")
    assert cfg.model.model == "sfno" and cfg.data.problem == "shallow_water"
    small = make_config(
        {
            "problem": "shallow_water",
            "resolution": 16,
            "n_train": 2,
            "n_test": 2,
            "cache_dir": str(tmp_path),
            "problem_params": {
                "t_final": 14400.0,
                "record_dt": 3600.0,
                "dt": 900.0,
                "t_in": 1,
                "t_out": 1,
                "window_stride": 1,
            },
            "model": "sfno",
            "n_modes": [12, 12],
            "hidden_channels": 8,
            "n_layers": 2,
            "epochs": 2,
            "batch_size": 4,
            "lr": 3e-3,
            "progress": False,
        }
    )
    assert small.train.epochs == 2
    results = rollout_study(small, ["full", "bf16", "half:0.5,full:0.5"], steps=3)
    for name, r in results.items():
        assert len(r["l2"]) == 3 and all(0 < e < 10 for e in r["l2"]), (name, r)
        assert r["nonfinite"] == 0 and "test_16_l2" in r["test_l2"]
