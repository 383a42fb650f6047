"""Why was our fp32 Burgers PINN behind DeepXDE's in the same configuration? One 5000-step fp32 run per
call, from our first setup to DeepXDE's choices, switched on one by one (the last is today's default):

    python benchmarks/burgers_pinn_setup_ablation.py first SEED         # normalized inputs, Sobol, residual inside
    python benchmarks/burgers_pinn_setup_ablation.py raw SEED           # inputs not normalized
    python benchmarks/burgers_pinn_setup_ablation.py raw_all SEED       # + PDE residual on boundary/initial points
    python benchmarks/burgers_pinn_setup_ablation.py raw_all_ham SEED   # + Hammersley points (lowprec's default)

Prints the final relative L2 error (results: benchmarks/results/physics/b5k_vs_deepxde/).
"""
import sys

import torch

from lowprec.physics import Burgers, PhysicsTrainConfig, train

torch.set_num_threads(1)
variant, seed = sys.argv[1], int(sys.argv[2])

prob = Burgers(normalize_inputs=variant == "first", sampler="hammersley" if "ham" in variant else "sobol",
               residual_everywhere="all" in variant)
r = train(prob, "fp32", PhysicsTrainConfig(steps=5000, seed=seed))
print(variant, seed, r.final["error"], flush=True)
