"""The DeepXDE peer comparison: optional, with a clear message when it cannot run."""

import math

import pytest

from lowprec.physics import Advection, PhysicsTrainConfig
from lowprec.physics.compare import comparison_table, run_peers
from lowprec.physics.peer import deepxde_available, run_deepxde_burgers


def test_peer_exists_only_for_burgers():
    rows = run_peers(Advection(), PhysicsTrainConfig(steps=1))
    assert rows[0]["failure"] == "no DeepXDE peer for advection; only burgers has one"


def test_peer_rejects_unknown_precision():
    with pytest.raises(ValueError, match="DeepXDE precision 'float16': choose one of"):
        run_deepxde_burgers("float16", steps=1)


def test_peer_failure_row_is_shown_in_the_table():
    from lowprec.physics import Regression, train

    r = train(Regression(), "fp32", PhysicsTrainConfig(steps=2, measure_memory=False))
    text = comparison_table([r], [{"precision": "-", "failure": "DeepXDE is not installed: pip install deepxde"}])
    assert "| deepxde -" in text and "pip install deepxde" in text


@pytest.mark.slow
def test_deepxde_burgers_runs_in_float32_and_mixed():
    ok, why = deepxde_available()
    if not ok:
        pytest.skip(why)
    for precision in ("float32", "mixed"):
        row = run_deepxde_burgers(precision, steps=20)
        assert "failure" not in row, row
        assert math.isfinite(row["error"]) and row["error"] < 1.5
