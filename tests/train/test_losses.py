import math

import pytest
import torch

from lowprec.train import RelativeH1Loss, RelativeL2Loss, relative_h1, relative_l2
from lowprec.train.losses import mean_relative_l2_error, relative_l2_error


def test_relative_l2_per_sample():
    target = torch.ones(2, 1, 4, 4)
    pred = target.clone()
    pred[1] *= 1.5
    assert torch.allclose(relative_l2(pred, target), torch.tensor([0.0, 0.5]))
    assert RelativeL2Loss()(pred, target).item() == pytest.approx(0.25)


def test_reported_errors_are_floats_pooled_or_averaged_over_rows():
    # Pooled over every entry: ||(0, 0.5)|| over ||(1, 1)||, per 16 entries each: sqrt(0.25 / 2).
    target = torch.ones(2, 1, 4, 4)
    pred = target.clone()
    pred[1] *= 1.5
    error = relative_l2_error(pred, target)
    assert isinstance(error, float) and error == pytest.approx(math.sqrt(0.125))
    # Averaged over rows (a DeepONet's functions): the mean of 0 and 0.5.
    assert mean_relative_l2_error(pred.flatten(1), target.flatten(1)) == pytest.approx(0.25)


def test_relative_h1_matches_the_analytic_value():
    # v = sin(pi x) sin(pi y) on [0,1]^2. e = eps * v gives exactly eps; e = eps * sin(2 pi x) sin(2 pi y)
    # gives eps * sqrt((1 + 8 pi^2) / (1 + 2 pi^2)).
    n = 257
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    X, Y = torch.meshgrid(t, t, indexing="ij")
    v = (torch.sin(math.pi * X) * torch.sin(math.pi * Y))[None, None]
    w = (torch.sin(2 * math.pi * X) * torch.sin(2 * math.pi * Y))[None, None]
    eps = 1e-2
    assert relative_h1(v + eps * v, v, 2).item() == pytest.approx(eps, rel=1e-3)
    expected = eps * math.sqrt((1 + 8 * math.pi**2) / (1 + 2 * math.pi**2))
    assert relative_h1(v + eps * w, v, 2).item() == pytest.approx(expected, rel=1e-3)
    assert RelativeH1Loss(2)(v, v).item() == 0.0


def test_periodic_h1_on_a_periodic_grid():
    n = 128
    t = torch.arange(n, dtype=torch.float64) / n
    v = torch.sin(2 * math.pi * t)[None, None]
    w = torch.sin(4 * math.pi * t)[None, None]
    expected = 0.1 * math.sqrt((1 + 16 * math.pi**2) / (1 + 4 * math.pi**2))
    assert relative_h1(v + 0.1 * w, v, 1, periodic=True).item() == pytest.approx(expected, rel=2e-3)


def test_losses_are_fp32_for_half_predictions():
    target = torch.randn(2, 1, 8, 8)
    assert relative_l2(target.half(), target).dtype == torch.float32


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="prediction shape"):
        relative_l2(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5))
