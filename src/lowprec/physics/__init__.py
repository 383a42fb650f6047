"""Physics-informed networks and operator networks in reduced precision (Hayford et al. 2024).

Problems (each with a reference solution generated here), training modes
(fp32, pure fp16, mixed fp16 with fp32 master weights, bf16 mixed), the
training loop, per-step diagnostics and the comparison across modes::

    from lowprec.physics import get_problem, train, PhysicsTrainConfig
    result = train(get_problem("burgers"), "mixed", PhysicsTrainConfig(steps=2000))
    print(result.error)

Command line: ``lowprec pinn burgers --compare`` / ``lowprec deeponet advection --compare``.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_package

if TYPE_CHECKING:
    from .advection import Advection, PODAdvection, advection_residual
    from .base import Box, Compute, NonFiniteLossError, PhysicsProblem, ResidualGuard
    from .burgers import Burgers, BurgersInverse, burgers_cole_hopf, burgers_fd, burgers_residual
    from .diagnostics import grad_norm, residual_rounding, stalled_update_share, underflow_share
    from .diffusion import Diffusion, diffusion_exact, diffusion_residual
    from .diffusion_reaction import DiffusionReaction, diffusion_reaction_fd, dr_residual
    from .kovasznay import Kovasznay, KovasznayInverse, kovasznay_exact, kovasznay_residual
    from .modes import TRAINING_MODES, TrainingMode, WeightCopies, get_mode
    from .registry import PHYSICS_PROBLEMS, get_problem, problem_names
    from .regression import Regression
    from .train import PhysicsTrainConfig, RunResult, StepRecord, train

lazy_package(__name__)

__all__ = [
    "PHYSICS_PROBLEMS",
    "TRAINING_MODES",
    "get_problem",
    "problem_names",
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
