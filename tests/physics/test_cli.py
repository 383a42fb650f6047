import json
import os

import pytest

from lowprec.cli import main


def test_help_lists_problems_and_precisions(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["pinn", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--precision {fp32,fp16,mixed,bf16,mixed_then_fp32}" in out and "burgers" in out and "--compare" in out


def test_unknown_precision_is_rejected(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["pinn", "burgers", "--precision", "fp8"])
    assert exc.value.code == 2
    assert "invalid choice: 'fp8'" in capsys.readouterr().err


def test_unknown_problem_and_bad_param(capsys):
    assert main(["deeponet", "burgers"]) == 2
    assert "'burgers' is a pinn problem" in capsys.readouterr().err
    assert main(["pinn", "burgers", "--set", "viscosity=1"]) == 2
    assert "has no parameter 'viscosity'" in capsys.readouterr().err


def test_compare_prints_one_table_and_writes_outputs(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(["pinn", "regression", "--compare", "--steps", "30", "--eval-every", "10", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    for mode in ("fp32", "fp16", "mixed", "bf16"):
        assert f"| {mode}" in text
    assert "not representative" in text
    assert sorted(os.listdir(out)) == ["curves.png", "results.json", "runs", "solution.png", "table.md"]
    assert sorted(os.listdir(out / "runs")) == ["bf16_seed0", "fp16_seed0", "fp32_seed0", "mixed_seed0"]
    saved = json.loads((out / "results.json").read_text())
    assert [r["mode"] for r in saved["runs"]] == ["fp32", "fp16", "mixed", "bf16"]
    # The CPU's model is recorded: the same seed trains differently on different CPUs.
    assert saved["machine"].startswith("CPU ") and "torch" in saved["machine"] and saved["date"]
    assert saved["machine"] in text
    # One seed's end point swings by more than the 10 % target: the verdict says it rests on one seed.
    assert "Result: mixed vs fp32" in text and "This verdict rests on 1 seed:" in text


def test_single_deeponet_run(tmp_path, capsys):
    code = main(
        [
            "deeponet",
            "pod_advection",
            "--precision",
            "bf16",
            "--steps",
            "20",
            "--set",
            "n_train=64",
            "--set",
            "n_test=8",
            "--set",
            "n_pod=8",
            "--set",
            "batch_size=16",
        ]
    )
    assert code == 0
    assert "| bf16" in capsys.readouterr().out


def test_compare_over_seeds_averages(capsys):
    code = main(["pinn", "regression", "--compare", "--modes", "fp32,mixed", "--steps", "20", "--seeds", "2"])
    assert code == 0
    text = capsys.readouterr().out
    assert "mean of 2 seeds" in text and "seeds 0, 1" in text and " ± " in text
    assert text.count("| mixed") == 1
    assert "This verdict rests on 2 seeds" in text


def test_resume_continues_the_runs_in_out(tmp_path, capsys):
    """A finished run resumed from --out repeats nothing and reports the same result; a longer one is refused."""
    args = ["pinn", "regression", "--precision", "mixed", "--steps", "20", "--eval-every", "10", "--out", str(tmp_path)]
    assert main(args) == 0
    first = json.loads((tmp_path / "results.json").read_text())["runs"][0]["final"]
    metrics = (tmp_path / "runs" / "mixed_seed0" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in metrics] == [10, 20]
    assert main([*args, "--resume"]) == 0
    assert json.loads((tmp_path / "results.json").read_text())["runs"][0]["final"] == first
    capsys.readouterr()
    assert main([*args[:-2], "--out", str(tmp_path), "--lr", "0.01", "--resume"]) == 2
    assert "different run (lr: 0.001 -> 0.01)" in capsys.readouterr().err


def test_resume_needs_out(capsys):
    assert main(["pinn", "regression", "--resume"]) == 2
    assert "--resume continues the runs saved in --out DIR" in capsys.readouterr().err
