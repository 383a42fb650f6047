"""lowprec._catalog (what the command line's help lists without importing torch) against the registries."""

import dataclasses

import pytest

from lowprec import _catalog
from lowprec.cli import build_parser


@pytest.mark.parametrize("name", ["PRECISION_PRESETS", "MODELS", "DATA_PROBLEMS", "PHYSICS_PROBLEMS"])
def test_catalog_matches_the_registries(name):
    assert getattr(_catalog, name) == _catalog.live()[name], (
        f"lowprec._catalog.{name} is out of date: run `python -m lowprec._catalog` and commit the result."
    )


def test_other_torch_free_names_match_their_registries():
    from lowprec.physics import TRAINING_MODES
    from lowprec.physics.cli import PRECISIONS
    from lowprec.train import TrainConfig, make_loss
    from lowprec.train.settings import LOSSES

    assert PRECISIONS == tuple(TRAINING_MODES)
    for loss in LOSSES:
        make_loss(loss, 2)
    with pytest.raises(ValueError) as from_config:
        TrainConfig(loss="l1")
    with pytest.raises(ValueError) as from_make_loss:
        make_loss("l1", 2)
    assert str(from_config.value) == str(from_make_loss.value)


def helps(*path):
    parser = build_parser()
    for name in path:
        parser.format_help()
        sub = next(a for a in parser._actions if a.dest in ("command", "data_command", "problem"))
        parser = sub.choices[name]
    return parser.format_help()


def test_help_lists_what_the_registries_hold():
    from lowprec.data import PROBLEMS
    from lowprec.physics import PHYSICS_PROBLEMS
    from lowprec.precision import PRESETS

    bench = " ".join(helps("bench").split())
    assert all(name in bench for name in PRESETS)
    assert all(name in helps("data") and name in helps("data", "generate") for name in PROBLEMS)
    for name, problem in PROBLEMS.items():
        text = helps("data", "generate", name)
        flags = [
            f"--{f.name.replace('_', '-')}"
            for f in dataclasses.fields(problem.params)
            if f.name not in ("n", "seed", "resolution")
        ]
        assert all(flag in text for flag in flags), (name, [f for f in flags if f not in text])
        assert ("--t-in" in text) == (problem.trajectories is not None)
    for kind in ("pinn", "deeponet"):
        text = helps(kind)
        for name, cls in PHYSICS_PROBLEMS.items():
            assert (f"  {name}: {cls.title}" in text) == (cls.kind == kind)
