"""What lowprec promises (docs/trust.md), through the command line: no code runs from a checkpoint, a damaged
checkpoint never strands a run, resume works as documented, and help imports nothing heavy."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lowprec.cli import main
from lowprec.train.checkpoint import MANIFEST, sha256

from . import tiny
from .train.test_checkpoint import plant

SRC = str(Path(__file__).resolve().parents[1] / "src")
TINY = tiny.TRAIN
STUDY = tiny.STUDY + ["--qat-epochs", "0", "--batch-size", "8"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWPREC_CACHE", str(tmp_path / "cache"))


def run(argv):
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


# Run in a fresh interpreter: every command's --help (sub-commands and each generator included), one after the
# other, must leave torch and numpy unimported. Prints the commands, and those that imported something heavy.
HELP_EVERYWHERE = """
import argparse, contextlib, io, json, sys

from lowprec.cli import build_parser, main

heavy = {}

def check(path):
    found = [m for m in ("torch", "numpy", "scipy", "h5py", "matplotlib") if m in sys.modules]
    if found and not heavy:
        heavy[" ".join(path)] = found

def commands(parser, path=()):
    parser.format_help()  # what --help prints; fills a command's parser
    check(path)
    yield list(path)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # an alias (navier-stokes) is the same parser
                    seen.add(id(sub))
                    yield from commands(sub, (*path, name))

paths = list(commands(build_parser()))
for path in paths:  # and through main, as the command line runs it
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main([*path, "--help"])
        except SystemExit:
            pass
    check(path)
print(json.dumps({"commands": [" ".join(p) for p in paths], "heavy": heavy}))
"""


def test_help_imports_no_torch():
    done = subprocess.run(
        [sys.executable, "-c", HELP_EVERYWHERE], capture_output=True, text=True, env={"PYTHONPATH": SRC}
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert not found["heavy"], f"--help of these commands imported heavy modules: {found['heavy']}"
    commands = set(found["commands"])
    assert {"train", "demo", "pinn", "deeponet", "bench", "quantize", "pareto", "analyze"} <= commands
    assert {"data generate darcy", "data generate shallow_water", "data info", "data plot"} <= commands
    done = subprocess.run(
        [sys.executable, "-m", "lowprec", "data", "generate", "navier-stokes", "--help"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": SRC},
    )
    assert done.returncode == 0 and "--viscosity" in done.stdout


@pytest.mark.parametrize("command", ["train", "quantize", "pareto"])
def test_a_crafted_checkpoint_runs_no_code_in_any_command(command, tmp_path, capsys):
    marker = tmp_path / "marker"
    out = tmp_path / "out"
    if command == "train":
        assert main(["train", "--out-dir", str(out), "--epochs", "1", *TINY]) == 0
        plant(out, marker)
        argv = ["train", "--out-dir", str(out), "--resume"]
    else:
        plant(out / "float", marker)
        argv = [command, "--out", str(out), *STUDY] + (
            ["--presets", "float", "--factors", "1"] if command == "pareto" else []
        )
    capsys.readouterr()
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert "checkpoint" in err and "weights-only" in err and "Traceback" not in err
    assert not marker.exists()


def test_resume_from_out_dir_alone_past_a_damaged_checkpoint(tmp_path, capsys, caplog):
    out = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  epochs: 3\n  precision: half:0.5,full:0.5\n")
    assert main(["train", "--config", str(config), "--out-dir", str(out), *TINY]) == 0
    finished = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    (out / "checkpoint.pt").write_bytes(b"truncated")

    # As the README says: --out-dir and --resume, nothing else; device and progress may change.
    assert main(["train", "--out-dir", str(out), "--resume", "--device", "cpu", "--progress"]) == 0
    assert f"resumed {out} after epoch 2" in capsys.readouterr().out
    assert any(str(out / "checkpoint.pt") in r.getMessage() for r in caplog.records)
    resumed = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in resumed] == [1, 2, 3]
    drop = {"seconds", "samples_per_s"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed] == [
        {k: v for k, v in r.items() if k not in drop} for r in finished
    ]
    manifest = json.loads((out / MANIFEST).read_text())["checkpoints"]
    assert all(sha256(out / e["file"]) == e["sha256"] for e in manifest)

    assert run(["train", "--out-dir", str(out), "--resume", "--lr", "0.5"]) == 2
    assert "train.lr" in capsys.readouterr().err


def test_forward_overflow_keeps_the_scale_and_names_the_input_remedies(caplog):
    import logging

    from lowprec.train import TrainConfig

    from .train.test_trainer import make, overflowing

    caplog.set_level(logging.WARNING, logger="lowprec")
    t = overflowing(make(TrainConfig(epochs=1, batch_size=4, precision="amp", progress=False)))
    history = t.fit()
    assert history[0]["skipped_steps"] == 6 and history[0]["loss_scale"] == 2.0**16  # never backed off
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("epoch 1 step 1: under policy 'amp' (at loss scale 65536)")
    assert "forward pass" in messages[0] and "normalize the input" in messages[0]
    assert "keeping the loss scale at 65536" in messages[0] and "lowering" not in " ".join(messages)


def test_a_run_that_ends_non_finite_exits_non_zero(tmp_path, capsys):
    # Every step's gradients overflow (the scale is absurd): nothing trains, the loss is never finite.
    code = main(
        [
            "train",
            "--out-dir",
            str(tmp_path / "run"),
            "--epochs",
            "1",
            "--precision",
            "amp",
            "--init-loss-scale",
            "1e30",
            *TINY,
        ]
    )
    printed = capsys.readouterr()
    assert code == 1 and "ended non-finite after epoch 1" in printed.err and "train_loss=nan" in printed.err
    assert "finished" not in printed.out


def test_a_failed_pinn_run_still_writes_its_files(tmp_path, monkeypatch, capsys):
    import torch

    from lowprec.physics.burgers import Burgers

    def overflowing_terms(self, c, batch):
        return {"pde": torch.tensor(float("inf")), "ic": torch.tensor(1.0)}

    monkeypatch.setattr(Burgers, "loss_terms", overflowing_terms)
    out = tmp_path / "pinn"
    code = main(["pinn", "burgers", "--precision", "fp32", "--steps", "3", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "error" in err and "'pde'" in err
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert runs[0]["failure"] and runs[0]["failed_step"] == 0
    assert (out / "table.md").is_file()


def test_a_pinn_gradient_failure_states_the_scalers_real_state():
    import types

    from torch import nn

    from lowprec.physics import get_problem
    from lowprec.physics.base import ResidualGuard
    from lowprec.physics.modes import TRAINING_MODES
    from lowprec.physics.train import _describe_failure
    from lowprec.precision import LossScaler

    problem, weights = get_problem("burgers"), types.SimpleNamespace(master=nn.Linear(1, 1))
    terms = {"pde": 1.0}
    on = LossScaler(init_scale=3.05e-5, enabled=True)
    said = _describe_failure(
        problem, TRAINING_MODES["mixed"], 7, ["gradients"], terms, ResidualGuard(True), weights, on
    )
    assert "loss scaling is off" not in said and "3.05e-05" in said and "cannot help" in said
    off = LossScaler(enabled=False)
    said = _describe_failure(
        problem, TRAINING_MODES["fp16"], 7, ["gradients"], terms, ResidualGuard(True), weights, off
    )
    assert "loss scaling is off" in said
