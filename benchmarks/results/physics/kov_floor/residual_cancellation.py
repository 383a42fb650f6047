"""Kovasznay at fp32's step-5000 weights (seed 0, ``fp32_s0.pt`` beside this file): why fp16 blurs the residual.

    python benchmarks/results/physics/kov_floor/residual_cancellation.py > \
        benchmarks/results/physics/kov_floor/residual_cancellation.txt

A record of the 2026-12-02 probe behind ``lowprec.physics.diagnostics.residual_rounding``. Prints, for
the x-momentum residual u u_x + v u_y + p_x - lap(u) / Re at the 2601 collocation points: the sum of
its terms' magnitudes against the residual (the cancellation), the residual's error in fp16 (mixed's
working copy) and fp32 against fp64; then ``residual_rounding`` and the weight gradient's relative error
against fp64 for mixed (fp16) and bf16, and how the per-weight gradient error compares with the gradient.
"""

import copy
import pathlib

import torch

from lowprec.physics import Compute, WeightCopies, get_mode, get_problem
from lowprec.physics.diagnostics import residual_rounding

torch.set_num_threads(1)
problem = get_problem("kovasznay", kind="pinn")
data = problem.training_data(0)
net = problem.build_model(0)
net.load_state_dict(torch.load(pathlib.Path(__file__).with_name("fp32_s0.pt")))


def working(mode_name, dtype):
    if dtype == torch.float64:
        return copy.deepcopy(net).double()
    copies = WeightCopies(copy.deepcopy(net), get_mode(mode_name))
    copies.sync()
    return copies.working


def momentum_x_terms(mode_name, dtype):
    with get_mode(mode_name).policy:
        c = Compute(working(mode_name, dtype), dtype)
        X = c.points(data["interior"])
        out = c.net(X)
        u, v, p = out[:, 0:1], out[:, 1:2], out[:, 2:3]
        du, dp = c.grad(u, X), c.grad(p, X)
        lap_u = c.grad(du[:, 0:1], X, 1 / problem.re)[:, 0:1] + c.grad(du[:, 1:2], X, 1 / problem.re)[:, 1:2]
        terms = [u * du[:, 0:1], v * du[:, 1:2], dp[:, 0:1], -lap_u]
    return torch.cat([t.detach().double() for t in terms], 1)


def gradient(mode_name, dtype):
    net_ = working(mode_name, dtype)
    with get_mode(mode_name).policy:
        terms = problem.loss_terms(Compute(net_, dtype), data)
    scale = 2.0**12  # keeps the fp16 backward's small entries from underflowing; divided out below
    (sum(terms.values()) * scale).backward()
    return torch.cat([p.grad.double().flatten() / scale for p in net_.parameters()])


t64, t32, t16 = (
    momentum_x_terms(m, d) for m, d in (("fp32", torch.float64), ("fp32", torch.float32), ("mixed", torch.float16))
)
r64, r32, r16 = t64.sum(1), t32.sum(1), t16.sum(1)
size = t64.abs().sum(1)
q = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)


def row(name, v):
    print(f"  {name:36s}" + "".join(f"{x:>11.3g}" for x in torch.quantile(v, q)))


print("x-momentum residual at the 2601 collocation points      10 %       50 %       90 %")
row("sum of |terms|", size)
row("|residual| (fp64)", r64.abs())
row("cancellation: sum |terms| / |residual|", size / r64.abs())
row("|residual fp16 - fp64|", (r16 - r64).abs())
row("|residual fp32 - fp64|", (r32 - r64).abs())
row("|residual fp16 - fp64| / |residual|", (r16 - r64).abs() / r64.abs())
row("|residual fp16 - fp64| / (2^-11 sum|terms|)", (r16 - r64).abs() / (2**-11 * size))
print(
    f"  rms: residual {r64.square().mean().sqrt():.3g}, its fp16 error {(r16 - r64).square().mean().sqrt():.3g}, "
    f"fp32 error {(r32 - r64).square().mean().sqrt():.3g}"
)

g64 = gradient("fp32", torch.float64)
print("\nall loss terms            residual_rounding   gradient error vs fp64 (relative 2-norm)")
for name, dtype in (("fp32", torch.float32), ("mixed", torch.float16), ("bf16", torch.bfloat16)):
    g = gradient(name, dtype)
    print(
        f"  {name:24s}{residual_rounding(problem, net, get_mode(name), data):>12.3g}"
        f"{float((g - g64).norm() / g64.norm()):>22.3g}"
    )
    if name == "mixed":
        noise = (g - g64).abs()
        print(
            "    per weight, quantiles 10/50/90 %: |gradient| "
            + " ".join(f"{x:.2e}" for x in torch.quantile(g64.abs(), q))
            + "; |fp16 error| "
            + " ".join(f"{x:.2e}" for x in torch.quantile(noise, q))
            + f"; error > gradient on {float((noise > g64.abs()).double().mean()):.1%}"
        )
