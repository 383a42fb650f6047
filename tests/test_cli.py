"""The command line, end to end at tiny sizes."""

import json
import shutil
import subprocess
import sys

import pytest

import lowprec
from lowprec.cli import build_parser, main

from . import tiny

TINY = tiny.TRAIN


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWPREC_CACHE", str(tmp_path / "cache"))


def commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return list(sub.choices)


@pytest.mark.parametrize("command", commands())
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "usage" in capsys.readouterr().out


def test_train_writes_metrics_checkpoint_and_plot_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  epochs: 2\n  precision: half:0.5,full:0.5\n")
    assert main(["train", "--config", str(config), "--out-dir", str(out), *TINY]) == 0
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["policy"] for m in metrics] == ["half", "full"]
    assert (out / "checkpoint.pt").is_file() and (out / "curves.png").is_file() and (out / "config.yaml").is_file()
    with pytest.raises(SystemExit, match="already holds a run"):
        main(["train", "--config", str(config), "--out-dir", str(out), *TINY])
    # Resuming a finished run with the same settings trains nothing more.
    assert main(["train", "--config", str(config), "--out-dir", str(out), "--resume", *TINY]) == 0
    assert "resumed" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="differ from the saved run"):
        main(["train", "--config", str(config), "--out-dir", str(out), "--resume", *TINY[:-1], "--lr", "0.1"])


def test_bad_input_gives_one_clear_line(tmp_path, capsys):
    assert main(["train", "--precision", "mixd", "--out-dir", str(tmp_path / "x"), *TINY]) == 2
    assert "unknown precision policy 'mixd'. Did you mean 'mixed'" in capsys.readouterr().err
    assert main(["train", "--path", str(tmp_path / "none.npz"), "--out-dir", str(tmp_path / "y"), *TINY]) == 2
    assert "none.npz" in capsys.readouterr().err


def test_demo_prints_its_table_and_writes_plots(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out-dir", str(out), "--epochs", "1", "--test-resolutions", "33", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "test L2 33x33 (zero-shot)" in printed and "full" in printed
    results = json.loads((out / "results.json").read_text())
    assert [r["policy"] for r in results["rows"]][0] == "full" and len(results["rows"]) >= 2
    assert (out / "prediction.png").stat().st_size > 10_000 and (out / "curves.png").is_file()


def test_console_script_is_installed():
    script = shutil.which("lowprec")
    if script is None:
        pytest.skip(
            "no `lowprec` on PATH: the package is not installed (a source-tree run); "
            "`pip install -e .` installs the console script, and CI does"
        )
    done = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"lowprec {lowprec.__version__}"


def test_python_m_lowprec_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "lowprec", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"lowprec {lowprec.__version__}"


def test_train_on_own_files_with_one_test_file_per_resolution(tmp_path):
    import torch

    from lowprec.data import PDEDataset, save_h5

    def field(n, s, seed):
        x = torch.randn(n, 1, s, generator=torch.Generator().manual_seed(seed))
        return PDEDataset(x, torch.roll(x, 1, -1), grid="periodic")

    save_h5(field(8, 16, 0), tmp_path / "train.h5")
    save_h5(field(4, 16, 1), tmp_path / "test16.h5")
    save_h5(field(4, 32, 2), tmp_path / "test32.h5")
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--path",
                str(tmp_path / "train.h5"),
                "--test-path",
                str(tmp_path / "test16.h5"),
                str(tmp_path / "test32.h5"),
                "--n-train",
                "8",
                "--n-test",
                "4",
                "--n-modes",
                "4",
                "--hidden-channels",
                "4",
                "--n-layers",
                "1",
                "--epochs",
                "1",
                "--no-progress",
                "--out-dir",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"test_16_l2", "test_32_l2"} <= set(metrics)


@pytest.mark.parametrize(
    "argv, key, expected",
    [
        (["data", "generate", "navier-stokes"], "problem", "navier_stokes"),
        (["data", "generate", "darcy-pdebench"], "problem", "darcy_pdebench"),
        (["train", "--problem", "diffusion-sorption"], "problem", "diffusion-sorption"),  # read by DataConfig
    ],
)
def test_problem_names_take_hyphens_on_the_command_line(argv, key, expected):
    assert getattr(build_parser().parse_args(argv), key) == expected


def test_pinn_problem_names_take_hyphens(tmp_path, capsys):
    assert main(["pinn", "burgers-inverse", "--steps", "2", "--eval-every", "2"]) == 0
    assert "Burgers" in capsys.readouterr().out
