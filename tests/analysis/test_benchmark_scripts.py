"""The benchmark scripts' case table and their table generators, on tiny inputs."""

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_claims_case_is_a_training_precision():
    from lowprec.train.trainer import as_schedule

    claims = _load("accuracy_claims")
    for case in claims.CASES:
        schedule = as_schedule(claims.precision_of(case))
        assert schedule.phases
    assert claims.precision_of("half_sigma_clip").stabilizer == "sigma_clip"
    assert str(as_schedule(claims.precision_of("paper"))) == "half:0.25,mixed:0.5,full:0.25"


def test_claims_table_averages_seeds(tmp_path):
    tables = _load("make_tables")
    rows = [
        {
            "problem": "darcy",
            "case": "full",
            "seed": s,
            "epochs": 2,
            "errors": {
                "test_33/own": {"l2": 0.1 * (s + 1), "h1": 0.5},
                "test_65/own": {"l2": 0.2, "h1": 0.6},
                "test_33/full": {"l2": 9.0, "h1": 9.0},
            },
        }
        for s in (0, 1)
    ]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    table = tables.accuracy_claims(path)
    assert "| darcy | full | 0,1 | 2 | 0.1500 | 0.5000 | 0.2000 | 0.6000 |" in table
