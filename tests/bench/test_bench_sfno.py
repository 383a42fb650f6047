"""`lowprec bench --model sfno`: spherical layers and SFNO steps, with errors against fp64."""

import json

import pytest

from lowprec.bench import BenchConfig
from lowprec.cli import main

TINY = [
    "--device",
    "cpu",
    "--threads",
    "1",
    "--grids",
    "8,12",
    "--batch",
    "2",
    "--width",
    "4",
    "--layers",
    "1",
    "--modes",
    "6",
    "--warmup",
    "1",
    "--repeats",
    "1",
    "--compare",
    "none",
    "--model",
    "sfno",
]


@pytest.mark.parametrize("mode", ["step", "layer"])
def test_sfno_rows_are_finite_and_near_fp64(tmp_path, capsys, mode):
    out = tmp_path / f"{mode}.json"
    assert main(["bench", *TINY, "--mode", mode, "--policies", "full,bf16", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["meta"]["command"].endswith(f"--model sfno --out {out}")
    rows = {(r["grid"], r["policy"]): r for r in result["rows"]}
    assert len(rows) == 4 and all("error" not in r and r["finite"] for r in rows.values())
    assert all(rows[g, "full"]["rel_error"] < 1e-5 and rows[g, "bf16"]["rel_error"] < 3e-2 for g in (8, 12))


def test_sfno_needs_two_dimensions():
    with pytest.raises(ValueError, match="sfno with --dim 2"):
        BenchConfig(model="sfno", dim=1)
