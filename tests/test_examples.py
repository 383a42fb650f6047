"""Every script in examples/ runs to the end at its smoke size (LOWPREC_SMOKE=1: a few samples and steps).

Each runs as a user would run it, in a fresh interpreter, from an empty working directory (plots land
there) and with an empty data cache, so a broken import, a renamed API or a crash fails here.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_examples_found():
    assert EXAMPLES, f"no scripts in {ROOT / 'examples'}"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    env = dict(
        os.environ,
        LOWPREC_SMOKE="1",
        LOWPREC_CACHE=str(tmp_path / "cache"),
        OMP_NUM_THREADS="1",
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
    )
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), f"{script.name} printed nothing"
