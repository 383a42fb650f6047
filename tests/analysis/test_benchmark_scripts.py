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


def _claims_rows(case, l2s, l2_2x=0.2):
    return [
        {
            "problem": "darcy",
            "case": case,
            "seed": s,
            "epochs": 2,
            "n_train": 10,
            "n_test": 5,
            "width": 8,
            "resolution": 33,
            "test_resolutions": [65],
            "errors": {
                "test_33/own": {"l2": l2, "h1": 0.5},
                "test_65/own": {"l2": l2_2x, "h1": 0.6},
                "test_33/full": {"l2": 9.0, "h1": 9.0},
            },
        }
        for s, l2 in enumerate(l2s)
    ]


def test_claims_table_averages_seeds(tmp_path):
    tables = _load("make_tables")
    rows = _claims_rows("full", [0.1, 0.2]) + _claims_rows("mixed", [0.2, 0.2], l2_2x=0.3)
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    table = tables.accuracy_claims(path)
    # mean ± sample std over the seeds, under the run's own policy; L2 ratio of the means to full
    assert "| full | 0,1 | 0.1500 ± 0.0707 | 1.000 | 0.5000 ± 0.0000 | 0.2000 ± 0.0000 | 1.000 |" in table
    assert "| mixed | 0,1 | 0.2000 ± 0.0000 | 1.333 |" in table
    claims = tables.accuracy_claims(path, "claims")
    # per seed: 0.2/0.1 and 0.2/0.2, averaged; 1.5 is past the 5 % of "little or no loss"
    assert "| little or no loss in mixed precision | darcy | mixed / full | 2 | x1.500 (1.00-2.00) |" in claims
    assert "no: +50 %" in claims
