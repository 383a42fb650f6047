"""`lowprec bench --model gino`: GINO steps and its GNO layer on surface points, with errors against fp64."""

import json

import pytest

from lowprec.bench import BenchConfig
from lowprec.bench.cases import Shape, our_fno, surface_points
from lowprec.cli import main

TINY = "--device cpu --threads 1 --grids 8 --batch 2 --width 4 --layers 1 --modes 4 --warmup 0 --repeats 1".split()


@pytest.mark.parametrize("mode", ["step", "layer"])
def test_gino_rows_are_finite_and_near_fp64(tmp_path, mode):
    out = tmp_path / f"{mode}.json"
    argv = ["bench", *TINY, "--compare", "none", "--model", "gino", "--dim", "3", "--mode", mode]
    assert main([*argv, "--policies", "full,bf16", "--out", str(out)]) == 0
    rows = {r["policy"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"full", "bf16"} and all("error" not in r and r["finite"] for r in rows.values())
    assert rows["full"]["rel_error"] < 1e-5 and rows["bf16"]["rel_error"] < 0.2
    assert rows["bf16"]["saved_mib"] < 0.6 * rows["full"]["saved_mib"]


def test_gino_bench_model_maps_the_latent_grid_to_the_surface():
    shape = Shape(3, 4, 1, 4, 8, 2, model="gino")
    points = surface_points(8)
    assert points.shape == (14 * 64, 3) and points.abs().max() <= 0.8
    assert shape.output_shape == (14 * 64,)
    import torch

    assert our_fno(shape)(torch.randn(2, 1, 8, 8, 8)).shape == (2, 1, 14 * 64)


def test_gino_needs_three_dimensions():
    with pytest.raises(ValueError, match="gino with --dim 3"):
        BenchConfig(model="gino", dim=2)
