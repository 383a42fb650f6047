"""Does evaluating an average of the weights close mixed precision's lag on Kovasznay? A probe.

    python benchmarks/pinn_ema_probe.py --mode mixed --seed 0 --steps 5000 \
        --out benchmarks/results/physics/kov_full_5k_ema

Trains the Kovasznay PINN exactly as ``lowprec pinn kovasznay --precision MODE --steps 5000 --seed S``
does (same loop, same Adam, so the raw errors reproduce ``kov_full_5k/``), and beside it keeps
exponential moving averages of the fp32 master weights with several decays. At every evaluation each
average is evaluated as the mode evaluates its own weights (mixed: rounded to fp16, fp16 arithmetic).
The averages never feed back into training. Why: at lr 1e-3 mixed's loss oscillates in a dense band
late in training where fp32's sits lower with sparse spikes; an average of the iterates evaluates the
centre of that band rather than wherever the last step landed.

The averages are kept by an Adam subclass swapped in for ``torch.optim.Adam`` (the training loop has no
callbacks, and the probe must not change it). Writes ``{mode}_s{seed}.json`` under ``--out``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib

import torch

from lowprec._device import describe_device
from lowprec.physics import TrainConfig, WeightCopies, get_mode, get_problem, train

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--mode", default="mixed")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--steps", type=int, default=5000)
parser.add_argument("--adam-eps", type=float, default=None)
parser.add_argument("--decays", default="0.99,0.995,0.999")
parser.add_argument("--out", default="benchmarks/results/physics/kov_full_5k_ema")
args = parser.parse_args()
torch.set_num_threads(1)
decays = [float(d) for d in args.decays.split(",")]
problem = get_problem("kovasznay", kind="pinn")
mode = get_mode(args.mode)
data = problem.training_data(args.seed)
eval_every = problem.default_eval_every
ema_evals: list[dict] = []


def evaluate_average(avg: list[torch.Tensor]) -> float:
    net = problem.build_model(args.seed)
    with torch.no_grad():
        for p, a in zip(net.parameters(), avg):
            p.copy_(a)
    copies = WeightCopies(net, mode)
    copies.sync()
    with mode.policy:
        return problem.evaluate(copies.working, mode.compute_dtype, data)["error"]


class AveragingAdam(torch.optim.Adam):
    """Adam that keeps the moving averages and evaluates them at the trainer's evaluation steps."""

    def __init__(self, params, **kw):
        super().__init__(params, **kw)
        self.params = [p for g in self.param_groups for p in g["params"]]
        self.averages = {d: [p.detach().clone() for p in self.params] for d in decays}
        self.steps = 0
        optimizers.append(self)

    def evaluate(self) -> None:
        if not ema_evals or ema_evals[-1]["optimizer_step"] != self.steps:
            ema_evals.append({"optimizer_step": self.steps,
                              **{f"ema_{d:g}": evaluate_average(a) for d, a in self.averages.items()}})

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        self.steps += 1
        for d, avg in self.averages.items():
            torch._foreach_lerp_(avg, [p.detach() for p in self.params], 1 - d)
        if self.steps % eval_every == 0:
            self.evaluate()
        return loss


optimizers: list[AveragingAdam] = []
adam, torch.optim.Adam = torch.optim.Adam, AveragingAdam
cfg = TrainConfig(steps=args.steps, seed=args.seed, adam_eps=args.adam_eps, progress=True, measure_memory=False)
run = train(problem, mode, cfg, data=data)
torch.optim.Adam = adam
# Skipped steps (loss scaler) take no optimizer step: the final averages are evaluated here.
optimizers[0].evaluate()
raw = [(e["step"], e["error"]) for e in run.evals]
print(f"{mode.name} seed {args.seed}: raw error {run.error:.4g}; skipped steps {run.skipped_steps}")
for e in ema_evals[-4:]:
    print("  " + "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in e.items()))
out = pathlib.Path(args.out)
out.mkdir(parents=True, exist_ok=True)
record = {"what": "Kovasznay PINN: raw error and the error of exponential moving averages of the master weights",
          "mode": run.mode.describe(), "seed": args.seed, "steps": args.steps, "decays": decays,
          "skipped_steps": run.skipped_steps, "raw_evals": raw, "ema_evals": ema_evals,
          "final_raw": run.error, "final_ema": ema_evals[-1] if ema_evals else None,
          "machine": describe_device(torch.device("cpu")), "torch": torch.__version__,
          "date": datetime.date.today().isoformat()}
path = out / f"{mode.name}{f'_eps{args.adam_eps:g}' if args.adam_eps else ''}_s{args.seed}.json"
path.write_text(json.dumps(record, indent=1))
print(f"wrote {path}")
