"""Per-frequency error against fields whose spectra are known exactly."""

import math

import pytest
import torch

from lowprec.analysis.inputs import synthetic_inputs
from lowprec.analysis.spectrum import mode_sweep, radial_bins, spectral_energy_error, spectral_errors
from lowprec.models import FNO


def test_radial_bins_of_a_small_grid():
    bins = radial_bins((4, 4))
    assert bins[0, 0] == 0 and bins[0, 1] == 1 and bins[1, 1] == 1 and bins[2, 2] == 2 and bins[0, 2] == 2


def test_error_lands_in_the_perturbed_bin_only():
    n = 32
    x = torch.arange(n, dtype=torch.float64) / n
    X, Y = torch.meshgrid(x, x, indexing="ij")
    reference = (torch.cos(2 * math.pi * X) + torch.cos(2 * math.pi * 5 * Y))[None, None]
    y = reference + 1e-3 * torch.cos(2 * math.pi * 5 * Y)
    result = spectral_energy_error(y, reference)
    errors = dict(zip(result["k"], result["error"]))
    assert set(errors) == {1, 5}
    assert errors[1] == pytest.approx(0, abs=1e-15)
    assert errors[5] == pytest.approx(1e-3, rel=1e-10)


def test_spectral_errors_per_policy_and_fp64_exact():
    torch.manual_seed(0)
    model = FNO((4, 4), hidden_channels=8, n_layers=1, grid_endpoint=False)
    from lowprec.precision import PrecisionPolicy

    fp64 = PrecisionPolicy("fp64", transform_dtype=torch.float64, contract_dtype=torch.float64)
    result = spectral_errors(model, synthetic_inputs("smooth", 16, batch=1), [fp64, "bf16"])
    assert max(result["fp64"]["error"]) == 0.0
    assert min(result["bf16"]["error"]) > 0


def test_mode_sweep_skips_modes_the_grid_cannot_hold():
    x = synthetic_inputs("smooth", 16, batch=1)
    rows = mode_sweep([4, 16], x, ["full", "bf16"], width=4, n_layers=1, repeats=1)
    assert "skipped" in rows[1]
    full, bf16 = rows[0]["policies"]["full"], rows[0]["policies"]["bf16"]
    assert full["error"] < bf16["error"]
    # bf16 keeps activations in 2 bytes, full in 4: the saved activations shrink.
    assert bf16["saved_bytes"] < 0.75 * full["saved_bytes"]
