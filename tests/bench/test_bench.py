"""`lowprec bench` at tiny size on CPU: it runs, prints its table, writes JSON and a PNG."""

import json

import pytest
import torch

from lowprec.bench import BenchConfig, run_bench
from lowprec.bench.report import bench_table
from lowprec.cli import main

TINY = [
    "--device",
    "cpu",
    "--threads",
    "1",
    "--grids",
    "12,16",
    "--batch",
    "2",
    "--width",
    "4",
    "--layers",
    "1",
    "--modes",
    "4",
    "--warmup",
    "1",
    "--repeats",
    "1",
    "--compare",
    "none",
]


def test_step_mode_prints_a_table_and_writes_json_and_png(tmp_path, capsys):
    out = tmp_path / "step.json"
    assert main(["bench", *TINY, "--policies", "full,bf16,fp16", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "one training step" in printed and "bf16" in printed and f"wrote {out}" in printed
    result = json.loads(out.read_text())
    assert out.with_suffix(".png").stat().st_size > 1000
    meta, rows = result["meta"], result["rows"]
    assert meta["torch"] == torch.__version__ and meta["device_type"] == "cpu" and meta["date"]
    assert meta["command"].startswith("lowprec bench --mode step --grids 12,16 --batch 2")
    assert [(r["grid"], r["policy"]) for r in rows] == [(g, p) for g in (12, 16) for p in ("full", "bf16", "fp16")]
    for row in rows:
        assert "error" not in row, row
        assert row["ms"] > 0 and row["finite"] and row["saved_mib"] > 0
        assert row["baseline"] == "lowprec:full" and row["speedup"] > 0
    bf16 = next(r for r in rows if r["policy"] == "bf16")
    assert bf16["backend"] == "dft->dft" and 1e-4 < bf16["rel_error"] < 3e-2
    assert next(r for r in rows if r["policy"] == "full")["rel_error"] < 1e-5


def test_layer_mode_and_forced_backends(tmp_path):
    out = tmp_path / "layer.json"
    assert (
        main(
            [
                "bench",
                "--mode",
                "layer",
                *TINY,
                "--policies",
                "full,half_bf16",
                "--backends",
                "fft,dft",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = json.loads(out.read_text())["rows"]
    assert {(r["policy"], r["backend"]) for r in rows} == {
        ("full", "fft->fft"),
        ("full", "dft->dft"),
        ("half_bf16", "fft->fft"),
        ("half_bf16", "dft->dft"),
    }
    assert all("error" not in r and r["rel_error"] < 3e-2 for r in rows)
    assert out.with_suffix(".png").exists()


def test_help_names_both_modes(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["bench", "--help"])
    assert exit.value.code == 0
    text = capsys.readouterr().out
    assert "--mode {step,layer}" in text and "--compare" in text and "neuraloperator" in text


def test_bad_configurations_name_the_fix():
    with pytest.raises(ValueError, match="one batch size, or one per grid"):
        BenchConfig(grids=(16, 32, 64), batches=(2, 2))
    with pytest.raises(ValueError, match="fewer than 32 points"):
        BenchConfig(grids=(16,), batches=(2,))
    with pytest.raises(ValueError, match="unknown precision policy 'bf8'"):
        BenchConfig(policies=("bf8",))
    assert main(["bench", "--device", "cpu", "--grids", "8", "--modes", "16"]) == 2  # one line, no traceback


def test_a_failing_case_becomes_a_row_with_its_error(monkeypatch):
    from lowprec.bench import run

    calls = []

    def first_runs_out_of_memory(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return time_step(*args, **kwargs)

    time_step = run.time_step
    monkeypatch.setattr(run, "time_step", first_runs_out_of_memory)
    config = BenchConfig(
        mode="layer",
        dim=3,
        grids=(8,),
        batches=(1,),
        width=2,
        modes=4,
        policies=("full", "bf16"),
        compare=(),
        warmup=0,
        repeats=1,
        device="cpu",
    )
    result = run_bench(config, log=lambda line: None)
    rows = result["rows"]
    assert rows[0]["error"] == "out of memory" and "ms" not in rows[0]
    assert "error" not in rows[1] and rows[1]["ms"] > 0  # the next case still ran
    table = bench_table(result)
    assert "3D" in table and "one spectral layer" in table and "out of memory" in table


def test_neuraloperator_runs_beside_ours_in_the_same_process(tmp_path):
    pytest.importorskip("neuralop")
    config = BenchConfig(
        grids=(16,),
        batches=(2,),
        width=4,
        layers=1,
        modes=4,
        policies=("full", "bf16"),
        compare=("full",),
        warmup=1,
        repeats=1,
        device="cpu",
        threads=1,
    )
    result = run_bench(config, log=lambda line: None)
    rows = {(r["impl"], r["policy"]): r for r in result["rows"]}
    base = rows[("neuralop", "full")]
    assert "error" not in base and base["baseline"] == "neuralop:full" and base["speedup"] == 1.0
    assert base["rel_error"] < 1e-5  # its fp32 forward against its own fp64 copy
    assert rows[("lowprec", "bf16")]["baseline"] == "neuralop:full"
    assert "against neuralop:full" in bench_table(result)
