"""Why does mixed precision lag fp32 on some PINNs? Probe the floor that fp16 sets near fp32's weights.

    python benchmarks/pinn_fp16_floor.py --problem burgers_inverse --seed 0 --out benchmarks/results/physics/inverse_floor
    python benchmarks/pinn_fp16_floor.py --problem kovasznay --steps 5000 --continue-steps 1000 \
        --out benchmarks/results/physics/kov_floor

1. Train the problem in fp32 (``--steps``; the Burgers inverse problem with DeepXDE's setup: raw
   inputs, Hammersley points, residual on every point, where mixed lagged fp32 by 21 % over 6 seeds).
2. At those weights, compare each precision's loss terms and gradient with fp64's (relative error,
   for the PDE terms and for the whole loss): fp32; mixed; fp64 arithmetic on the weights rounded to
   fp16; and mixed arithmetic with fp32 weights (fp16 activations and derivatives, fp32 weights in
   the products). The last two split mixed's error into its two sources: the rounded weights, and the
   rounded arithmetic.
3. Continue training from those weights (``--continue-steps`` at ``--continue-lr``, fresh Adam) in
   fp32, in mixed and in mixed with fp32 weights, and record the error along the way: from the same
   start, which precision keeps converging at fp32's pace?

Mixed with fp32 weights is not a mode lowprec offers: its products are fp32 products (the cost
mixed precision exists to avoid) and, with autograd saving an fp32 copy of each product's input, it
stores more than fp32 itself. It is here as a probe, patched in for this script only.

Prints the figures and writes ``floor_s{seed}.json`` (and the fp32 weights, ``fp32_s{seed}.pt``,
reused on a second call) under ``--out``.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import datetime
import json
import pathlib

import torch
import torch.nn.functional as F

from lowprec._device import describe_device
from lowprec.models import pinn as pinn_module
from lowprec.physics import Compute, PhysicsTrainConfig, WeightCopies, get_mode, get_problem, train

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--problem", default="burgers_inverse", help="a PINN problem (lowprec pinn --help)")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--steps", type=int, default=20000, help="fp32 training steps before the probe")
parser.add_argument("--continue-steps", type=int, default=4000)
parser.add_argument("--continue-lr", type=float, default=1e-4)
parser.add_argument("--out", default="benchmarks/results/physics/inverse_floor")
args = parser.parse_args()
torch.set_num_threads(1)
out = pathlib.Path(args.out)
out.mkdir(parents=True, exist_ok=True)

if args.problem == "burgers_inverse":
    # DeepXDE's setup (the forward problem's default), where mixed lagged fp32 by 21 % over 6 seeds.
    problem = get_problem(args.problem, sampler="hammersley", normalize_inputs=False, residual_everywhere=True)
else:
    problem = get_problem(args.problem, kind="pinn")
data = problem.training_data(args.seed)
weights_file = out / f"fp32_s{args.seed}.pt"
if weights_file.exists():
    trained = problem.build_model(args.seed)
    trained.load_state_dict(torch.load(weights_file))
else:
    run = train(problem, "fp32",
                PhysicsTrainConfig(steps=args.steps, seed=args.seed, measure_memory=False, progress=True))
    trained = run.master
    torch.save(trained.state_dict(), weights_file)
print(f"{problem.title}, fp32 after {args.steps} steps: error {problem.evaluate(trained, torch.float32, data)['error']:.4g}")


@contextlib.contextmanager
def fp32_weights_in_products():
    """Mixed's working copy keeps fp32 weights; each product takes fp16 inputs, computes in fp32, rounds."""
    init, linear = WeightCopies.__init__, pinn_module.linear

    def keep_fp32(self, model, mode):
        init(self, model, mode)
        for w, m in self._pairs:
            w.data = m.data.clone()

    def mixed_linear(x, weight, bias):
        if x.dtype != weight.dtype:
            return F.linear(x.to(weight.dtype), weight, bias).to(x.dtype)
        return linear(x, weight, bias)

    WeightCopies.__init__, pinn_module.linear = keep_fp32, mixed_linear
    try:
        yield
    finally:
        WeightCopies.__init__, pinn_module.linear = init, linear


def gradient(mode_name: str, dtype: torch.dtype, net: torch.nn.Module, term: str | None) -> tuple[dict, dict]:
    """d(loss or the PDE terms)/d(parameters) as ``mode_name`` computes it at ``net``'s weights, in fp64,
    and the loss terms' values."""
    mode = get_mode(mode_name)
    if dtype == torch.float64:
        working = copy.deepcopy(net).double()
    else:
        copies = WeightCopies(copy.deepcopy(net), mode)
        copies.sync()
        working = copies.working
    with mode.policy:
        terms = problem.loss_terms(Compute(working, dtype), data)
    weights = problem.loss_weights()
    loss = sum(weights.get(k, 1.0) * v for k, v in terms.items() if term is None or k.startswith(term))
    scale = 2.0 ** 12  # keeps the fp16 backward's small entries from underflowing; divided out below
    (loss * scale).backward()
    return ({n: p.grad.double() / scale for n, p in working.named_parameters()},
            {k: float(v.detach()) for k, v in terms.items()})


def rel_error(g: dict, ref: dict) -> dict:
    num = sum(float((g[n] - ref[n]).norm()) ** 2 for n in ref)
    den = sum(float(ref[n].norm()) ** 2 for n in ref)
    errors = {"all_parameters": (num / den) ** 0.5}
    if "a" in ref:  # an inverse problem's learned coefficient
        errors["coefficient_parameter"] = float((g["a"] - ref["a"]).abs() / ref["a"].abs())
    return errors


rounded = copy.deepcopy(trained)
with torch.no_grad():
    for p in rounded.parameters():
        if p.ndim:  # an inverse problem's scalar coefficient stays fp32 in mixed's working copy too
            p.copy_(p.half().float())

probes, term_values = {}, {}
for term in ("pde", None):
    ref, term_values["fp64"] = gradient("fp32", torch.float64, trained, term)
    rows = {"fp32": gradient("fp32", torch.float32, trained, term),
            "mixed": gradient("mixed", torch.float16, trained, term),
            "fp64 arithmetic, fp16-rounded weights": gradient("fp32", torch.float64, rounded, term)}
    with fp32_weights_in_products():
        rows["mixed arithmetic, fp32 weights"] = gradient("mixed", torch.float16, trained, term)
    label = "PDE terms" if term else "whole loss"
    probes[label] = {}
    print(f"\ngradient of the {label} at the fp32 weights, relative error against fp64:")
    for name, (g, values) in rows.items():
        probes[label][name] = rel_error(g, ref)
        term_values[name] = values
        print(f"  {name:40s} " + "   ".join(f"{k.replace('_', ' ')} {v:.2e}" for k, v in probes[label][name].items()))
print("\nloss terms at the fp32 weights:")
for name, values in term_values.items():
    print(f"  {name:40s} " + "  ".join(f"{k} {v:.3e}" for k, v in values.items()))


@dataclasses.dataclass(frozen=True)
class FromTrained(type(problem)):
    def build_model(self, seed):
        return copy.deepcopy(trained)


curves, curve_steps = {}, []
every = max(1, args.continue_steps // 16)
cfg = PhysicsTrainConfig(steps=args.continue_steps, seed=args.seed, lr=args.continue_lr, eval_every=every,
                         measure_memory=False, progress=True)
print(f"\ncontinued {args.continue_steps} steps at lr {args.continue_lr:g}, error every {every} steps:")
for name, mode, patch in (("fp32", "fp32", contextlib.nullcontext), ("mixed", "mixed", contextlib.nullcontext),
                          ("mixed, fp32 weights", "mixed", fp32_weights_in_products)):
    with patch():
        r = train(FromTrained(**dataclasses.asdict(problem)), mode, cfg, data=data)
    curves[name] = [e["error"] for e in r.evals]
    curve_steps = [e["step"] for e in r.evals]  # the trainer's schedule: every `every` steps and the last
    print(f"  {name:20s} " + " ".join(f"{e:.4g}" for e in curves[name]))

record = {"what": f"{problem.title}: mixed precision's gradient error and convergence from fp32-trained weights",
          "problem": args.problem, "problem_params": dataclasses.asdict(problem), "seed": args.seed,
          "fp32_steps": args.steps, "continue_steps": args.continue_steps, "continue_lr": args.continue_lr,
          "gradient_relative_error": probes, "loss_terms": term_values, "error_curves": curves,
          "error_curve_steps": curve_steps,
          "machine": describe_device(torch.device("cpu")), "torch": torch.__version__,
          "date": datetime.date.today().isoformat()}
path = out / f"floor_s{args.seed}.json"
path.write_text(json.dumps(record, indent=1))
print(f"\nwrote {path}")
