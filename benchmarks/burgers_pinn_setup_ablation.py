"""Why is our fp32 Burgers PINN behind DeepXDE's in the same configuration? One 5000-step fp32 run per
call, with DeepXDE's choices switched on one by one:

    python benchmarks/burgers_pinn_setup_ablation.py raw SEED           # inputs not normalized
    python benchmarks/burgers_pinn_setup_ablation.py raw_all SEED       # + PDE residual on boundary/initial points
    DDE_BACKEND=pytorch python benchmarks/burgers_pinn_setup_ablation.py raw_all_ham SEED   # + DeepXDE's Hammersley points

Prints the final relative L2 error (results: benchmarks/results/physics/b5k_vs_deepxde/).
"""
import sys, dataclasses
import torch
torch.set_num_threads(1)
from lowprec.physics import Burgers, TrainConfig, train
from lowprec.physics.burgers import burgers_residual

variant, seed = sys.argv[1], int(sys.argv[2])

@dataclasses.dataclass(frozen=True)
class BurgersAllPoints(Burgers):
    """PDE residual also on the boundary and initial points, as DeepXDE's TimePDE does."""
    def loss_terms(self, c, batch):
        terms = super().loss_terms(c, batch)
        pts = torch.cat([batch["interior"], batch["boundary"], batch["initial"]])
        r, s = burgers_residual(c, c.points(pts), self.nu)
        terms["pde"] = c.mean_square(r, s)
        return terms

prob = (BurgersAllPoints if "all" in variant else Burgers)(normalize_inputs=False)
data = None
if "ham" in variant:
    import deepxde as dde
    g = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 1))
    col = torch.tensor(g.random_points(2540, random="Hammersley"), dtype=torch.float32)
    data = prob.training_data(seed, collocation=col)
r = train(prob, "fp32", TrainConfig(steps=5000, seed=seed), data=data)
print(variant, seed, r.final["error"], flush=True)
