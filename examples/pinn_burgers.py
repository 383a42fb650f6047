"""Burgers PINN in mixed precision, next to fp32 (Hayford et al. 2024).

    python examples/pinn_burgers.py            # 2000 steps each, about a minute on a laptop CPU
    python examples/pinn_burgers.py 20000      # the paper's length
    LOWPREC_SMOKE=1 python examples/pinn_burgers.py   # 20 steps each (the test suite)

Mixed precision keeps fp32 master weights and Adam state and runs the forward
pass, the residual derivatives and the backward pass on an fp16 copy.
"""

import os
import sys

from lowprec.physics import Burgers, PhysicsTrainConfig, train
from lowprec.physics.compare import comparison_table, plot_curves

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20 if os.environ.get("LOWPREC_SMOKE") else 2000
problem = Burgers()  # nu = 0.01/pi, network [2, 32, 32, 32, 1], 2540 collocation points
config = PhysicsTrainConfig(steps=steps, lr=1e-3, seed=0, eval_every=max(1, steps // 20), log_every=max(1, steps // 4))

results = [train(problem, mode, config) for mode in ("fp32", "mixed")]
print(comparison_table(results))
plot_curves(results, "pinn_burgers_curves.png")
print("wrote pinn_burgers_curves.png")
