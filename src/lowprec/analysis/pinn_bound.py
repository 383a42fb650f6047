"""How far rounding keeps gradient descent from a stationary point: the bound, checked on a PINN.

Hayford et al. (2024, arXiv 2401.16645, Theorem 1) bound the effect of fp16
rounding on training a PINN (checked on a diffusion equation). The statement
of their theorem was not at hand when this was written; what is checked here
is the standard bound it rests on, derived as follows (say so when quoting).

Let the loss f be L-smooth (|grad f(a) - grad f(b)| <= L |a - b|), g = grad f(theta)
the exact gradient, and let one step of gradient descent with step size
eta <= 1/L be computed with rounding:

    theta' = theta - eta (g + e),

where e collects every rounding error of the step, expressed as a gradient
error: the error of the gradient computed in the compute dtype (relative
error delta, ideally delta ~ u_c, the compute dtype's unit roundoff) and the
rounding of the updated weights to their storage dtype (at most u_w |theta'|
per weight, i.e. u_w |theta'| / eta as a gradient error). L-smoothness gives

    f(theta') <= f(theta) - eta <g, g + e> + (L eta^2 / 2) |g + e|^2
              <= f(theta) - (eta / 2) |g|^2 + (eta / 2) |e|^2            (eta L <= 1)       (1)

with |e| <= delta |g| + u_w |theta'| / eta. So the loss keeps falling while
|g| (1 - delta) > u_w |theta'| / eta, and training can stall anywhere
inside the region

    |grad f| <= G* = u_w |theta| / (eta (1 - delta)),                                     (2)

the floor. With fp16 weights (u_w = 2^-11) G* is 8192 times the fp32 floor
(u_w = 2^-24): that is the "weight updates going to zero" failure of pure
fp16, and why mixed precision (fp16 compute, fp32 master weights) does not
suffer it. Summing (1) over T steps outside the floor gives
min_t |g_t|^2 <= 2 (f_0 - f_T) / (eta T) + max_t |e_t|^2.

:func:`check_bound` measures everything the bound contains: L by power
iteration with Hessian-vector products (fp64), e per step exactly (the
actual update against the fp64 gradient at the same stored weights), delta,
the loss before and after, and reports how often (1) holds and where the
measured gradient norm ends relative to G*.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from ..physics.base import Compute, PhysicsProblem

# (weight storage dtype, compute dtype) of each mode, as in lowprec.physics.modes.
MODES = {
    "fp32": (torch.float32, torch.float32),
    "mixed": (torch.float32, torch.float16),
    "fp16": (torch.float16, torch.float16),
    "bf16": (torch.float32, torch.bfloat16),
}


def unit_roundoff(dtype: torch.dtype) -> float:
    """u = eps / 2, the largest relative error of rounding to nearest in ``dtype``."""
    return torch.finfo(dtype).eps / 2


def _loss(problem: PhysicsProblem, net: nn.Module, dtype: torch.dtype, batch: dict) -> torch.Tensor:
    terms = problem.loss_terms(Compute(net, dtype), batch)
    weights = problem.loss_weights()
    return sum(weights.get(k, 1.0) * v for k, v in terms.items())


def _flat_grad(loss: torch.Tensor, params: Sequence[torch.Tensor], create_graph: bool = False) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


def smoothness_constant(problem: PhysicsProblem, net: nn.Module, batch: dict, iters: int = 30, seed: int = 0) -> float:
    """Largest |eigenvalue| of the loss Hessian at ``net``'s weights, by power iteration on
    Hessian-vector products in fp64: the local smoothness constant L."""
    net = copy.deepcopy(net).double()
    params = [p for p in net.parameters() if p.requires_grad]
    grad = _flat_grad(_loss(problem, net, torch.float64, batch), params, create_graph=True)
    v = torch.randn(grad.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    v /= v.norm()
    value = 0.0
    for _ in range(iters):
        hv = torch.cat([h.reshape(-1) for h in torch.autograd.grad(grad @ v, params, retain_graph=True)])
        value = hv.norm().item()
        if value == 0:
            return 0.0
        v = hv / value
    return value


def _flat(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().double().reshape(-1) for p in net.parameters()])


def _load_flat(net: nn.Module, flat: torch.Tensor) -> None:
    k = 0
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(flat[k : k + p.numel()].view_as(p))
            k += p.numel()


def run_mode(
    problem: PhysicsProblem, net0: nn.Module, batch: dict, mode: str, eta: float, steps: int, loss_scale: float = 256.0
) -> tuple[dict, nn.Module]:
    """Gradient descent with step ``eta`` in ``mode`` (weights stored in its storage dtype, loss and
    gradient computed in its compute dtype); per step the fp64 loss f, exact gradient norm |g|, the
    step's total rounding |e| as a gradient error, the relative gradient error delta and |theta|.
    Returns (record, the trained network in its storage dtype). fp16 gradients are computed on the
    loss times ``loss_scale`` and divided after, as a trainer's loss scaling does."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {tuple(MODES)}.")
    w_dtype, c_dtype = MODES[mode]
    master = copy.deepcopy(net0).to(w_dtype)
    exact = copy.deepcopy(net0).double()
    scale = loss_scale if c_dtype == torch.float16 else 1.0
    rows = []
    for _ in range(steps + 1):
        theta = _flat(master)
        _load_flat(exact, theta)
        params64 = list(exact.parameters())
        f = _loss(problem, exact, torch.float64, batch)
        g = _flat_grad(f, params64)
        row = {"loss": f.item(), "grad_norm": g.norm().item(), "theta_norm": theta.norm().item()}
        rows.append(row)
        if len(rows) == steps + 1:
            break
        work = master if c_dtype == w_dtype else copy.deepcopy(master).to(c_dtype)
        ghat = _flat_grad(_loss(problem, work, c_dtype, batch) * scale, list(work.parameters())).double() / scale
        if not torch.isfinite(ghat).all():
            row["nonfinite"] = True
            break
        with torch.no_grad():
            k = 0
            for p in master.parameters():
                step = ghat[k : k + p.numel()].view_as(p).to(w_dtype)
                p.copy_(p - eta * step)  # in the storage dtype: fp16 weights round here
                k += p.numel()
        e = (theta - _flat(master)) / eta - g
        row.update(error_norm=e.norm().item(), delta=((ghat - g).norm() / g.norm()).item())
    return {
        "mode": mode,
        "weights": str(w_dtype).replace("torch.", ""),
        "compute": str(c_dtype).replace("torch.", ""),
        "steps": rows,
    }, master


def summarize(run: dict, eta: float, smoothness: float) -> dict:
    """The bound's quantities for one run: descent inequality (1) per step, the floor (2), what was reached."""
    rows = run["steps"]
    u_w = unit_roundoff(getattr(torch, run["weights"]))
    u_c = unit_roundoff(getattr(torch, run["compute"]))
    stepped = [(a, b) for a, b in zip(rows, rows[1:]) if "error_norm" in a]
    holds = [
        b["loss"] <= a["loss"] - eta / 2 * a["grad_norm"] ** 2 + eta / 2 * a["error_norm"] ** 2 + 1e-12 * abs(a["loss"])
        for a, b in stepped
    ]
    deltas = sorted(a["delta"] for a, _ in stepped) or [math.nan]
    delta = deltas[len(deltas) // 2]
    theta = rows[-1]["theta_norm"]
    # |e| <= delta |g| + u_w |theta'| / eta: the rounding model, checked with the measured delta
    model_holds = [
        a["error_norm"] <= a["delta"] * a["grad_norm"] + u_w * b["theta_norm"] / eta * (1 + 1e-6) for a, b in stepped
    ]
    return {
        "mode": run["mode"],
        "weights": run["weights"],
        "compute": run["compute"],
        "L": smoothness,
        "eta": eta,
        "unit_roundoff_weights": u_w,
        "unit_roundoff_compute": u_c,
        "delta_median": delta,
        "delta_over_u_compute": delta / u_c,
        "floor_assumed": u_w * theta / (eta * (1 - u_c)),
        "floor_measured_delta": u_w * theta / (eta * (1 - delta)) if delta < 1 else math.inf,
        "loss_first": rows[0]["loss"],
        "loss_last": rows[-1]["loss"],
        "grad_first": rows[0]["grad_norm"],
        "grad_last": rows[-1]["grad_norm"],
        "grad_min": min(r["grad_norm"] for r in rows),
        "descent_inequality_holds": sum(holds),
        "steps": len(stepped),
        "rounding_model_holds": sum(model_holds),
        "stalled_steps": sum(1 for a, b in zip(rows, rows[1:]) if b["loss"] >= a["loss"]),
    }


def pretrain(problem: PhysicsProblem, net: nn.Module, batch: dict, steps: int, lr: float = 1e-3) -> nn.Module:
    """``steps`` of fp32 Adam, so that the bound is checked near a minimum, where the floor matters."""
    net = copy.deepcopy(net).float()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        _loss(problem, net, torch.float32, batch).backward()
        opt.step()
    return net


def check_bound(
    problem: PhysicsProblem,
    modes: Sequence[str] = ("fp32", "mixed", "fp16"),
    steps: int = 200,
    seed: int = 0,
    step_fraction: float = 0.5,
    pretrain_steps: int = 1000,
) -> dict:
    """From weights pretrained with ``pretrain_steps`` of fp32 Adam, run gradient descent with
    eta = step_fraction / L (L at those weights) in every mode from the same start;
    {"L", "L_final", "eta", "runs": {mode: per-step rows}, "summary": {mode: summarize()}}.

    L is re-estimated at the end of the fp32 run (``L_final``): the inequality (1) needs eta <= 1/L along
    the whole path, and the count of steps where (1) holds shows whether it did.
    """
    batch = problem.training_data(seed)
    net0 = pretrain(problem, problem.build_model(seed), batch, pretrain_steps)
    L = smoothness_constant(problem, net0, batch, seed=seed)
    eta = step_fraction / L
    runs, nets = {}, {}
    for m in modes:
        runs[m], nets[m] = run_mode(problem, net0, batch, m, eta, steps)
    summary = {m: summarize(r, eta, L) for m, r in runs.items()}
    last = nets[modes[0]]
    return {
        "problem": problem.name,
        "pretrain_steps": pretrain_steps,
        "step_fraction": step_fraction,
        "L": L,
        "L_final": smoothness_constant(problem, last, batch, seed=seed),
        "eta": eta,
        "runs": runs,
        "summary": summary,
    }
