"""The physics problems by name: :data:`PHYSICS_PROBLEMS`, :func:`get_problem`, :func:`problem_names`.

A new problem is one entry here; ``python -m lowprec._catalog`` then copies its parameters into the
help of ``lowprec pinn`` / ``lowprec deeponet``, which lists them without importing torch.
"""

from __future__ import annotations

import dataclasses

from .._hints import did_you_mean, problem_key
from .advection import Advection, PODAdvection
from .base import PhysicsProblem
from .burgers import Burgers, BurgersInverse
from .diffusion import Diffusion
from .diffusion_reaction import DiffusionReaction
from .kovasznay import Kovasznay, KovasznayInverse
from .regression import Regression

PHYSICS_PROBLEMS: dict[str, type] = {
    cls.name: cls
    for cls in (
        Regression,
        Burgers,
        BurgersInverse,
        Kovasznay,
        KovasznayInverse,
        Advection,
        PODAdvection,
        DiffusionReaction,
        Diffusion,
    )
}


def problem_names(kind: str | None = None) -> list[str]:
    """Names of the registered problems, optionally only those of one kind ("pinn" or "deeponet")."""
    return [n for n, cls in PHYSICS_PROBLEMS.items() if kind is None or cls.kind == kind]


def get_problem(name: str, kind: str | None = None, **params) -> PhysicsProblem:
    """Build a problem by name with parameters overriding its defaults, e.g. ``get_problem("burgers", nu=0.02)``.

    Hyphens read as underscores (``burgers-inverse``). Raises ValueError for an unknown name
    (listing the problems and the closest match), a problem of the wrong kind, or an unknown parameter.
    """
    name = problem_key(name)
    names = problem_names(kind)
    if name not in names:
        hint = did_you_mean(name, names)
        other = "" if name not in PHYSICS_PROBLEMS else f" ({name!r} is a {PHYSICS_PROBLEMS[name].kind} problem.)"
        what = f"{kind} problem" if kind else "problem"
        raise ValueError(f"unknown {what} {name!r}.{other}{hint} Choose one of: {', '.join(names)}.")
    cls = PHYSICS_PROBLEMS[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in params if k not in fields]
    if unknown:
        raise ValueError(f"{cls.title}: unknown parameter(s) {unknown}; its parameters are {', '.join(fields)}.")
    return cls(**params)
