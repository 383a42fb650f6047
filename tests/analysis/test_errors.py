"""Discretization and precision errors against inputs whose convergence rates are known analytically."""

import json
import math

import pytest
import torch

from lowprec.analysis import (
    accuracy_study,
    convergence_rate,
    crossover,
    discretization_errors,
    layer_names,
    precision_errors,
    sample_to,
    synthetic_inputs,
)
from lowprec.models import FNO
from lowprec.precision import PrecisionPolicy
from lowprec.spectral import SpectralConv

RES_1D = (16, 32, 64, 128, 256, 512)


def _linear_layer():
    torch.manual_seed(0)
    return SpectralConv(1, 1, 8)


def _inputs(family, decay=3.0):
    return lambda n: synthetic_inputs(family, n, batch=2, dim=1, decay=decay, seed=1)


def test_bandlimited_input_has_rounding_level_discretization_error():
    errors = discretization_errors(_linear_layer(), _inputs("bandlimited"), RES_1D)
    assert errors[512] is None  # the reference itself
    assert max(e for e in errors.values() if e is not None) < 1e-13


def test_bandlimited_input_against_exact_reference():
    # The exact output on any grid holding the modes is the output on that grid, in fp64.
    layer = _linear_layer()
    errors = discretization_errors(
        layer, _inputs("bandlimited"), (16, 64), reference=lambda n: layer.double()(_inputs("bandlimited")(n))
    )
    assert max(errors.values()) < 1e-13


@pytest.mark.parametrize("decay", [3.0, 5.0])
def test_smooth_input_converges_at_its_spectral_decay(decay):
    errors = discretization_errors(_linear_layer(), _inputs("smooth", decay), RES_1D)
    rate = convergence_rate(RES_1D, [errors[n] for n in RES_1D])
    assert rate == pytest.approx(decay, abs=0.3)


def test_jump_converges_at_first_order():
    errors = discretization_errors(_linear_layer(), _inputs("jump"), RES_1D)
    rate = convergence_rate(RES_1D, [errors[n] for n in RES_1D])
    assert rate == pytest.approx(1.0, abs=0.3)


def test_fp64_policy_has_zero_precision_error_and_fp32_rounding_level():
    torch.manual_seed(0)
    model = FNO((4, 4), hidden_channels=8, n_layers=2, grid_endpoint=False)
    fp64 = PrecisionPolicy("fp64", transform_dtype=torch.float64, contract_dtype=torch.float64)
    result = precision_errors(model, synthetic_inputs("smooth", 16, batch=2), [fp64, "full", "bf16"])
    assert result["fp64"]["total"] == 0.0
    assert all(e == 0.0 for e in result["fp64"]["layers"].values())
    assert result["full"]["total"] < 1e-5
    assert 1e-4 < result["bf16"]["total"] < 1e-1
    assert list(result["bf16"]["layers"]) == ["lifting", "blocks.0", "blocks.1", "projection"]


def test_fp8_emulation_is_coarser_than_bf16():
    torch.manual_seed(0)
    model = FNO((4, 4), hidden_channels=8, n_layers=2, grid_endpoint=False)
    result = precision_errors(model, synthetic_inputs("smooth", 16, batch=2), ["bf16", "fp8_e4m3", "fp8_e5m2"])
    assert result["bf16"]["total"] < result["fp8_e4m3"]["total"] < result["fp8_e5m2"]["total"] < 1


def test_layer_names_descend_into_wrappers():
    from lowprec.models import Normalized

    net = Normalized(FNO((4, 4), hidden_channels=4, n_layers=2))
    assert layer_names(net) == ["model.lifting", "model.blocks.0", "model.blocks.1", "model.projection"]


def test_sample_to_refuses_grids_that_do_not_nest():
    y = torch.zeros(1, 1, 64)
    assert sample_to(y, 16).shape[-1] == 16
    assert sample_to(torch.zeros(1, 1, 65), 17, "nodes").shape[-1] == 17
    with pytest.raises(ValueError, match="nest"):
        sample_to(y, 24)


def test_crossover_kinds():
    ns = [16, 32, 64, 128]
    disc = [1e-2, 1e-3, 1e-4, 1e-5]
    c = crossover(ns, disc, [3e-4] * 4)
    assert c["kind"] == "measured" and 32 < c["resolution"] < 64
    assert crossover(ns, disc, [1.0] * 4)["kind"] == "below_range"
    c = crossover(ns, disc, [1e-7] * 4)
    assert c["kind"] == "extrapolated" and c["resolution"] == pytest.approx(128 * 100 ** (1 / 3.3219), rel=0.01)


def test_study_is_json_ready_and_names_the_claim():
    torch.manual_seed(0)
    model = FNO((4, 4), hidden_channels=8, n_layers=1, grid_endpoint=False)
    study = accuracy_study(model, lambda n: synthetic_inputs("jump", n, batch=1), (16, 32, 64), ["full", "bf16"])
    json.dumps(study)
    assert study["discretization"]["errors"]["64"] is None
    assert set(study["precision"]) == {"full", "bf16"}
    assert study["precision"]["full"]["claim_holds"]
    assert math.isfinite(study["precision"]["bf16"]["errors"]["16"])


def test_cli_writes_json_and_plot(tmp_path, capsys):
    from lowprec.cli import main

    rc = main(
        [
            "analyze",
            "--inputs",
            "jump",
            "--resolutions",
            "8,16",
            "--modes",
            "2",
            "--width",
            "4",
            "--layers",
            "1",
            "--batch",
            "1",
            "--policies",
            "full,bf16",
            "--out",
            str(tmp_path),
            "--spectrum",
            "--mode-sweep",
            "2,16",
        ]
    )
    assert rc == 0
    study = json.loads((tmp_path / "study.json").read_text())
    assert set(study["precision"]) == {"full", "bf16"}
    assert (tmp_path / "errors.png").stat().st_size > 0
    assert (tmp_path / "spectrum.png").stat().st_size > 0
    assert set(study["spectrum"]) == {"full", "bf16"}
    assert study["mode_sweep"][0]["modes"] == 2 and "skipped" in study["mode_sweep"][1]
    assert "crossover" in capsys.readouterr().out


def test_cli_on_a_dataset_file_uses_its_grid_and_test_error(tmp_path):
    from lowprec.cli import main
    from lowprec.data import PDEDataset, save_npz

    s = torch.linspace(0, 1, 17, dtype=torch.float64)
    x = torch.sin(3 * s)[:, None] * torch.cos(2 * s)[None, :]
    data = PDEDataset(
        torch.stack([x, 2 * x])[:, None].float(), torch.stack([x, 2 * x])[:, None].float() ** 2, grid="nodes"
    )
    save_npz(data, tmp_path / "d.npz")
    rc = main(
        [
            "analyze",
            "--data",
            str(tmp_path / "d.npz"),
            "--resolutions",
            "5,9,12",
            "--modes",
            "2",
            "--width",
            "4",
            "--layers",
            "1",
            "--policies",
            "full,bf16",
            "--advise",
            "--tolerance",
            "1",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert rc == 0
    study = json.loads((tmp_path / "out" / "study.json").read_text())
    assert study["grid"] == "nodes" and study["resolutions"] == [5, 9, 17]  # 12 does not nest; 17 is the data
    assert study["test_error"] > 0 and study["advice"]["test_error"] == study["test_error"]
