"""The study: interpolation back to full resolution, the Pareto front, a tiny resumable sweep, the CLI."""

import json

import pytest
import torch

from lowprec.cli import main
from lowprec.quant import study
from lowprec.quant.study import StudyConfig, pareto_front, run_sweep, upsample

from .. import tiny

TINY = dict(
    resolution=17,
    n_train=16,
    n_test=4,
    width=4,
    depth=1,
    n_modes=2,
    epochs=1,
    qat_epochs=1,
    batch_size=8,
    calib_batches=1,
    presets=("float", "w8a8", "w4a4"),
    factors=(1, 2, 4),
)


@pytest.fixture
def one_thread():
    """One torch thread for the sweep (the cores are shared), the caller's count restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_upsample_reproduces_coarse_points_and_linear_fields():
    t = torch.linspace(0, 1, 17)
    field = (2 * t[:, None] - t[None, :] + 1)[None, None]  # linear: interpolation is exact on node grids
    assert torch.allclose(upsample(field[..., ::4, ::4], (17, 17), periodic=False), field, atol=1e-6)
    wave = torch.sin(2 * torch.pi * torch.arange(32) / 32)[None, None]
    up = upsample(wave[..., ::2], (32,), periodic=True)
    assert torch.allclose(up[..., ::2], wave[..., ::2]) and (up - wave).abs().max() < 0.02
    assert torch.allclose(up[..., -1], (wave[..., -2] + wave[..., 0]) / 2)  # wraps round


def test_pareto_front():
    points = [
        {"bops": 1, "mse": 5.0},
        {"bops": 2, "mse": 6.0},
        {"bops": 3, "mse": 2.0},
        {"bops": 10, "mse": 1.0},
        {"bops": 10, "mse": 3.0},
    ]
    assert [(p["bops"], p["mse"]) for p in pareto_front(points)] == [(1, 5.0), (3, 2.0), (10, 1.0)]


def test_tiny_sweep_writes_jsonl_front_and_plot_and_resumes(tmp_path, monkeypatch, one_thread):
    cfg = StudyConfig(**TINY)
    result = run_sweep(cfg, tmp_path, echo=lambda *a: None)
    lines = [json.loads(line) for line in (tmp_path / "pareto.jsonl").read_text().splitlines()]
    assert lines[0]["header"]["resolution"] == 17 and len(lines) == 1 + 9
    for key in ("model", "dataset", "preset", "resolution", "mse", "rel_l2", "bops"):
        assert all(key in p for p in lines[1:])
    assert {p["resolution"] for p in lines[1:]} == {"17x17", "9x9", "5x5"}
    front = [json.loads(line) for line in (tmp_path / "front.jsonl").read_text().splitlines()]
    assert front and front == result.front
    assert (tmp_path / "pareto.png").stat().st_size > 1000 and "front" in (tmp_path / "pareto.md").read_text()
    bops = {(p["preset"], p["factor"]): p["bops"] for p in lines[1:]}
    assert bops[("float", 1)] > 10 * bops[("w8a8", 1)] > 10 * bops[("w8a8", 4)]

    # Resume: nothing is redone, a new factor adds only its points.
    calls = []
    real = study.run_point
    monkeypatch.setattr(study, "run_point", lambda *a, **k: calls.append(a[4:6]) or real(*a, **k))
    run_sweep(cfg, tmp_path, echo=lambda *a: None)
    assert calls == []
    run_sweep(StudyConfig(**{**TINY, "factors": (1, 2, 4, 8)}), tmp_path, echo=lambda *a: None)
    assert sorted(calls) == [("float", 8), ("w4a4", 8), ("w8a8", 8)]

    # A different configuration is refused, naming what changed.
    with pytest.raises(ValueError, match=r"different configuration \(qat_epochs: 1 -> 2\).*--out"):
        run_sweep(StudyConfig(**{**TINY, "qat_epochs": 2}), tmp_path)


def test_bad_study_settings():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        StudyConfig(model="resnet")
    with pytest.raises(ValueError, match="unknown quantization preset 'w2a2'"):
        StudyConfig(presets=("w2a2",))
    cfg = StudyConfig(**{**TINY, "factors": (1, 3)})
    train, _ = study.load_data(cfg)
    with pytest.raises(ValueError, match=r"factor\(s\) \[3\] do not divide the nodes grid of 17 points"):
        study.check_factors(cfg, train)
    with pytest.raises(ValueError, match="n_modes=4 does not fit the coarsest grid"):
        study.check_factors(StudyConfig(**{**TINY, "n_modes": 4, "factors": (1, 8)}), train)


@pytest.mark.parametrize("model", ["unet", "transformer"])
def test_other_models_run_a_point(model):
    cfg = StudyConfig(**{**TINY, "model": model, "depth": 2})
    train, test = study.load_data(cfg)
    float_model, _ = study.train_float(cfg, train, test, None)
    point = study.run_point(cfg, float_model, train, test, "w4a8", 2)
    assert point["resolution"] == "9x9" and point["mse"] > 0 and point["w_bits"] == 4


def test_cli_quantize_and_pareto(tmp_path, capsys, one_thread):  # --threads 1 sets torch's count
    flags = [*tiny.STUDY, "--threads", "1"]
    assert main(["quantize", *flags, "--preset", "w8a8", "--factor", "2", "--int8", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "BOPs" in out and "int8 kernels" in out and (tmp_path / "quantize_w8a8_r2.json").is_file()
    assert main(["pareto", *flags, "--presets", "float", "w4a4", "--factors", "1", "2", "--out", str(tmp_path)]) == 0
    assert "Pareto front" in capsys.readouterr().out and (tmp_path / "pareto.png").is_file()
    # the float model was trained once and shared
    assert main(["pareto", *flags, "--width", "8", "--out", str(tmp_path)]) == 2
    assert "different configuration" in capsys.readouterr().err


def test_identity_reads_back_equal_so_sweeps_with_problem_params_resume():
    cfg = StudyConfig(dataset="burgers_pdebench", problem_params=(("t_final", 1), ("record_dt", 1)))
    assert json.loads(json.dumps(cfg.identity())) == cfg.identity()


def test_a_rejected_pareto_run_leaves_the_folder_as_it_was(tmp_path, capsys, one_thread):
    flags = [*tiny.STUDY, "--presets", "float"]
    out = tmp_path / "sweep"
    # Rejected after the data is read (3 does not divide 16 cells) and before it (no such dataset).
    assert main(["pareto", *flags, "--factors", "1", "3", "--out", str(out)]) == 2
    assert "do not divide" in capsys.readouterr().err
    assert main(["pareto", *flags, "--dataset", "darcyy", "--out", str(out)]) == 2
    assert "unknown dataset 'darcyy'. Did you mean 'darcy'" in capsys.readouterr().err
    assert not out.exists()
    # ... and when the folder's float model (from `lowprec quantize`) was trained with other settings.
    (out / "float").mkdir(parents=True)
    other = StudyConfig(resolution=17, n_train=8, n_test=4, width=8, depth=1, n_modes=2, epochs=1, batch_size=4)
    (out / "float" / "float.json").write_text(json.dumps(other.identity()))
    assert main(["pareto", *flags, "--factors", "1", "2", "--out", str(out)]) == 2
    assert "float model trained with other settings (width: 8 -> 4);" in capsys.readouterr().err
    assert sorted(p.name for p in out.rglob("*")) == ["float", "float.json"]
    (out / "float" / "float.json").unlink()
    # So the corrected run in the same folder is not refused as "a different configuration".
    assert main(["pareto", *flags, "--factors", "1", "2", "--out", str(out)]) == 0
    header = json.loads((out / "pareto.jsonl").read_text().splitlines()[0])["header"]
    assert header["dataset"] == "darcy"


def test_dataset_names_take_hyphens():
    assert StudyConfig(dataset="burgers-pdebench").dataset == "burgers_pdebench"
