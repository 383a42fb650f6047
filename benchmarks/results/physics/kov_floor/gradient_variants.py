"""Which rounding makes mixed's Kovasznay gradient differ from fp64's? A one-off probe, kept as the record.

Needs the ``mixed_split`` mode, which lived only in commit 46ba1ec (removed after it failed to close the
gap): ``git checkout 46ba1ec`` and, from the repository root, with ``kov_floor/fp32_s0.pt`` written by
``benchmarks/pinn_fp16_floor.py --problem kovasznay --steps 5000``:

    python benchmarks/results/physics/kov_floor/gradient_variants.py

At fp32's weights after 5000 steps (seed 0) it prints the relative error of the whole loss's gradient
against fp64 for: mixed; mixed_split (weights as fp16 pairs hi + lo); either with the matrix products'
results kept in fp32 through the activation; mixed_split with the residual's elementwise combination
(u u_x + v u_y + p_x - lap u / Re ...) in fp32. Printed on the Xeon host, 2026-12-02: 0.1352, 0.0580,
0.1397 (mixed, fp32 product results), 0.0536 (mixed_split, fp32 product results), 0.0539 (mixed_split, fp32
residual), 0.0570 (both). What remains (about 5 %) comes from what every variant keeps in fp16: the products'
operands (activations, backward gradients) and the coordinates with their normalization.
"""

import contextlib
import copy

import torch
import torch.nn.functional as F

from lowprec.models import pinn as pm
from lowprec.physics import Compute, WeightCopies, get_mode, get_problem
from lowprec.physics import kovasznay as kv

torch.set_num_threads(1)
problem = get_problem("kovasznay", kind="pinn")
data = problem.training_data(0)
net = problem.build_model(0)
net.load_state_dict(torch.load("benchmarks/results/physics/kov_floor/fp32_s0.pt"))


def grad(mode_name, dtype):
    mode = get_mode(mode_name)
    if dtype == torch.float64:
        working = copy.deepcopy(net).double()
    else:
        c = WeightCopies(copy.deepcopy(net), mode)
        c.sync()
        working = c.working
    with mode.policy:
        terms = problem.loss_terms(Compute(working, dtype), data)
    w = problem.loss_weights()
    loss = sum(w.get(k, 1.0) * v for k, v in terms.items())
    (loss * 2.0**12).backward()
    return {n: p.grad.double() / 2**12 for n, p in working.named_parameters()}, {k: float(v) for k, v in terms.items()}


@contextlib.contextmanager
def fp32_gemm_out():
    """GEMM results stay fp32 through the activation; the activation's output is rounded to fp16."""
    orig_lin, orig_fwd = pm.linear, pm.MLP.forward

    def fwd(self, x):
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            xin = x
            if xin.dtype == torch.float16 and xin.device.type == "cpu":
                args = [layer.weight, layer.bias, getattr(layer, "weight_lo", None), getattr(layer, "bias_lo", None)]
                xs, ws, bias = [xin], [args[0]], args[1]
                if args[2] is not None:
                    xs, ws = [xin, xin], [args[0], args[2]]
                    xs.append(xin.new_ones(xin.shape[:-1] + (2,)))
                    ws += [args[1][:, None], args[3][:, None]]
                    bias = None
                z = F.linear(
                    torch.cat(xs, -1).float(), torch.cat(ws, -1).float(), None if bias is None else bias.float()
                )
            else:
                z = orig_lin(xin, layer.weight, layer.bias)
            if i < last:
                x = self.act(z).to(torch.float16)
            else:
                x = z.to(torch.float16)
        return x

    pm.MLP.forward = fwd
    try:
        yield
    finally:
        pm.MLP.forward = orig_fwd


@contextlib.contextmanager
def fp32_residual():
    """The residual's elementwise combination (products and sums of derivatives) in fp32."""
    orig = kv.kovasznay_residual

    def res(c, X, inv_re, key="pde"):
        s = c.scale(key)
        out = c.net(X)
        u, v, p = out[:, 0:1], out[:, 1:2], out[:, 2:3]
        du, dv, dp = c.grad(u, X, s), c.grad(v, X, s), c.grad(p, X, s)
        seed = inv_re
        lap_u = c.grad(du[:, 0:1], X, seed)[:, 0:1].float() + c.grad(du[:, 1:2], X, seed)[:, 1:2].float()
        lap_v = c.grad(dv[:, 0:1], X, seed)[:, 0:1].float() + c.grad(dv[:, 1:2], X, seed)[:, 1:2].float()
        u, v, du, dv, dp = u.float(), v.float(), du.float(), dv.float(), dp.float()
        mom_x = u * du[:, 0:1] + v * du[:, 1:2] + dp[:, 0:1] - lap_u
        mom_y = u * dv[:, 0:1] + v * dv[:, 1:2] + dp[:, 1:2] - lap_v
        div = du[:, 0:1] + dv[:, 1:2]
        return (mom_x, mom_y, div), s

    kv.kovasznay_residual = res
    try:
        yield
    finally:
        kv.kovasznay_residual = orig


@contextlib.contextmanager
def fp32_gemm_out_and_residual():
    with fp32_gemm_out(), fp32_residual():
        yield


ref, tref = grad("fp32", torch.float64)
print("fp64 terms", tref)


def rel(g):
    num = sum(float((g[n] - ref[n]).norm()) ** 2 for n in ref)
    den = sum(float(ref[n].norm()) ** 2 for n in ref)
    return (num / den) ** 0.5


for label, m, ctx in [
    ("mixed", "mixed", contextlib.nullcontext),
    ("mixed_split", "mixed_split", contextlib.nullcontext),
    ("mixed, fp32 gemm out", "mixed", fp32_gemm_out),
    ("split, fp32 gemm out", "mixed_split", fp32_gemm_out),
    ("split, fp32 residual combination", "mixed_split", fp32_residual),
    ("split, fp32 gemm out + fp32 residual", "mixed_split", fp32_gemm_out_and_residual),
]:
    with ctx():
        g, t = grad(m, torch.float16)
    print(f"{label:40s} grad err {rel(g):.4f}  terms " + " ".join(f"{k} {v:.4e}" for k, v in t.items()))
