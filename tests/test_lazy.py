"""Packages that import their public names on first use (lowprec._lazy) behave as eagerly imported ones."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
LAZY = ["train", "data", "physics", "bench", "quant", "analysis"]


@pytest.mark.parametrize("name", LAZY)
def test_every_public_name_resolves_to_its_definition(name):
    package = importlib.import_module(f"lowprec.{name}")
    assert set(package._lazy_exports) == set(package.__all__)
    for attr in package.__all__:
        module = importlib.import_module(package._lazy_exports[attr], package.__name__)
        assert getattr(package, attr) is getattr(module, attr)
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        package.no_such_name  # noqa: B018


def test_a_name_spelled_like_its_module_stays_the_name():
    # physics.train (the function) lives in physics/train.py, quant.bops in quant/bops.py: importing the
    # module first, as a fresh process may, must not turn the package's name into the module.
    script = (
        "import lowprec.physics.train, lowprec.quant.bops, lowprec.physics, lowprec.quant; "
        "from lowprec.physics import train; "
        "assert callable(train) and train is lowprec.physics.train, train; "
        "assert callable(lowprec.quant.bops), lowprec.quant.bops"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": SRC})
    assert done.returncode == 0, done.stderr


def test_settings_import_no_torch():
    script = (
        "import sys; from lowprec.train.settings import TrainConfig; from lowprec.bench.settings import BenchConfig; "
        "from lowprec.quant.settings import StudyConfig; import lowprec.config; "
        "TrainConfig(precision='mixed', loss='h1'); "
        "heavy = [m for m in ('torch', 'numpy') if m in sys.modules]; assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": SRC})
    assert done.returncode == 0, done.stderr
