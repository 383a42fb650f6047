"""Physics-informed networks and operator networks in reduced precision (Hayford et al. 2024).

Problems (each with a reference solution generated here), training modes
(fp32, pure fp16, mixed fp16 with fp32 master weights, bf16 mixed), the
training loop, per-step diagnostics and the comparison across modes::

    from lowprec.physics import get_problem, train, PhysicsTrainConfig
    result = train(get_problem("burgers"), "mixed", PhysicsTrainConfig(steps=2000))
    print(result.error)

Command line: ``lowprec pinn burgers --compare`` / ``lowprec deeponet advection --compare``.
"""

from __future__ import annotations

import dataclasses

from .._hints import did_you_mean, problem_key
from .advection import Advection, PODAdvection, advection_residual
from .base import Box, Compute, NonFiniteLossError, PhysicsProblem, ResidualGuard
from .burgers import Burgers, BurgersInverse, burgers_cole_hopf, burgers_fd, burgers_residual
from .diagnostics import grad_norm, residual_rounding, stalled_update_share, underflow_share
from .diffusion import Diffusion, diffusion_exact, diffusion_residual
from .diffusion_reaction import DiffusionReaction, diffusion_reaction_fd, dr_residual
from .kovasznay import Kovasznay, KovasznayInverse, kovasznay_exact, kovasznay_residual
from .modes import TRAINING_MODES, TrainingMode, WeightCopies, get_mode
from .regression import Regression
from .train import PhysicsTrainConfig, RunResult, StepRecord, train

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


__all__ = [
    "PHYSICS_PROBLEMS",
    "TRAINING_MODES",
    "get_problem",
    "get_mode",
    "TrainingMode",
    "WeightCopies",
    "train",
    "PhysicsTrainConfig",
    "RunResult",
    "StepRecord",
    "PhysicsProblem",
    "Box",
    "Compute",
    "ResidualGuard",
    "NonFiniteLossError",
    "Regression",
    "Burgers",
    "BurgersInverse",
    "Kovasznay",
    "KovasznayInverse",
    "Advection",
    "PODAdvection",
    "DiffusionReaction",
    "burgers_cole_hopf",
    "burgers_fd",
    "burgers_residual",
    "kovasznay_exact",
    "kovasznay_residual",
    "advection_residual",
    "diffusion_reaction_fd",
    "dr_residual",
    "grad_norm",
    "underflow_share",
    "stalled_update_share",
    "residual_rounding",
    "Diffusion",
    "diffusion_exact",
    "diffusion_residual",
]
