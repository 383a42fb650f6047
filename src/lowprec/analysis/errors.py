"""Discretization error against precision error of one model, per resolution, per layer and in total.

Tu et al. (ICLR 2024) bound the error a Fourier neural operator makes because
it sees its input function only on an N-point grid (discretization error) and
the error half precision adds on top (precision error), and argue that the
second is asymptotically no larger than the first. Both are measured here for
the same weights and the same continuous inputs:

* discretization error at N: ``|y_N - S_N y_ref| / |S_N y_ref|``, where y_N is
  the model's output (fp64 weights, fp64 arithmetic) on the input sampled at
  N, y_ref its output at the finest resolution (or an exact reference) and
  S_N samples a fine grid at the coarse grid's points (stride N_fine / N on
  periodic grids, (N_fine - 1) / (N - 1) on node grids). Its fitted slope on
  log-log axes is the convergence rate.
* precision error of a policy at N: ``|y_N^policy - y_N^fp64| / |y_N^fp64|``,
  the same weights run in fp32 under the policy against fp64, on the same
  grid: pure rounding, no discretization in it. Per layer, the same ratio for
  each block's output (captured with forward hooks), so it includes the
  error carried in from the layers before.

All errors are relative L2 norms over the whole batch (float).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..bench.accuracy import fp64_copy
from ..precision import PrecisionPolicy, get_policy
from ..train.losses import relative_l2_error

FP8 = {"fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}
GRIDS = ("periodic", "nodes")
# Below this a discretization error is rounding, not discretization; it carries no rate.
ROUNDING_LEVEL = 1e-13


def sample_to(y: torch.Tensor, resolution: int, grid: str = "periodic") -> torch.Tensor:
    """The points of the coarse (resolution,)*d grid taken from the fine field y: (B, C, *fine) -> (B, C, *coarse).

    Periodic grids x_i = i / N need N_fine divisible by N; node grids x_i = i / (N - 1) need
    N_fine - 1 divisible by N - 1 (e.g. 2^k + 1 points).
    """
    if grid not in GRIDS:
        raise ValueError(f"unknown grid {grid!r}; choose one of {GRIDS}.")
    index = []
    for fine in y.shape[2:]:
        num, den = (fine, resolution) if grid == "periodic" else (fine - 1, resolution - 1)
        if den < 1 or num % den:
            hint = "powers of two" if grid == "periodic" else "2^k + 1 points"
            raise ValueError(
                f"a {grid} grid of {fine} points does not contain the points of a {resolution}-point "
                f"grid; choose resolutions that nest ({hint})."
            )
        index.append(slice(None, None, num // den))
    return y[(slice(None), slice(None), *index)]


def convergence_rate(resolutions: Sequence[int], errors: Sequence[float | None]) -> float | None:
    """Least-squares slope r of log(error) = c - r log(N) over the errors above rounding level (None if < 2)."""
    pts = [(math.log(n), math.log(e)) for n, e in zip(resolutions, errors) if e is not None and e > ROUNDING_LEVEL]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return -sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


@torch.no_grad()
def discretization_errors(
    model: nn.Module,
    make_input: Callable[[int], torch.Tensor],
    resolutions: Sequence[int],
    grid: str = "periodic",
    reference: Callable[[int], torch.Tensor] | None = None,
) -> dict[int, float | None]:
    """{N: discretization error} of ``model`` in fp64 for the input ``make_input(N)``.

    Without ``reference`` the finest resolution is the reference (its own entry is None);
    ``reference(N)`` may instead give the exact output on the N-grid.
    """
    resolutions = sorted(set(int(n) for n in resolutions))
    ref_model = fp64_copy(model).eval()
    with get_policy("full"):
        if reference is None:
            finest = ref_model(make_input(resolutions[-1]).double())
        out = {}
        for n in resolutions:
            if reference is None and n == resolutions[-1]:
                out[n] = None
                continue
            y = ref_model(make_input(n).double())
            target = reference(n).double() if reference is not None else sample_to(finest, n, grid)
            out[n] = relative_l2_error(y, target)
    return out


def layer_names(model: nn.Module) -> list[str]:
    """Names of the blocks whose outputs are compared: each parameterised child, descending into
    ModuleLists/Sequentials and into wrappers whose children hold one (``Normalized(FNO)``)."""
    names = []

    def walk(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            lists = (nn.ModuleList, nn.Sequential)
            if isinstance(child, lists) or any(isinstance(g, lists) for g in child.children()):
                walk(child, full + ".")
            elif any(True for _ in child.parameters()):
                names.append(full)

    walk(model, "")
    return names


def capture(model: nn.Module, x: torch.Tensor, names: Sequence[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(output, {name: that module's output}) of one forward pass, outputs detached."""
    seen: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    handles = []
    for name in names:

        def hook(module, args, output, name=name):
            if isinstance(output, torch.Tensor):
                seen[name] = output.detach()

        handles.append(modules[name].register_forward_hook(hook))
    try:
        y = model(x)
    finally:
        for h in handles:
            h.remove()
    return y.detach(), seen


def round_fp8(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Round through a float8 dtype with a per-tensor scale that maps max|t| to the format's largest value,
    as fp8 GEMM recipes do (without it most values would underflow e4m3). Keeps t's dtype."""
    if t.is_complex():
        return torch.view_as_complex(round_fp8(torch.view_as_real(t), dtype).contiguous())
    amax = t.detach().abs().max()
    if amax == 0 or not torch.isfinite(amax):
        return t
    scale = torch.finfo(dtype).max / amax
    return (t * scale).to(dtype).to(t.dtype) / scale


def fp8_emulated(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A copy of ``model`` whose GEMM inputs are rounded through ``dtype``: every parameter, and the input of
    every Linear, ConvNd and SpectralConv (the forward DFT's GEMM). Accumulation stays fp32, as in fp8 kernels;
    elementwise work (activations, residual sums) stays fp32 too. Run it under ``full``."""
    from ..spectral import SpectralConv

    model = copy.deepcopy(model).float()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(round_fp8(p, dtype))
    gemm = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, SpectralConv)
    for module in model.modules():
        if isinstance(module, gemm):
            module.register_forward_pre_hook(lambda m, args: (round_fp8(args[0], dtype), *args[1:]))
    return model


def _all_fp64(policy: PrecisionPolicy) -> bool:
    return (
        policy.autocast_dtype is None
        and policy.transform_dtype == torch.float64
        and policy.contract_dtype == torch.float64
    )


def _first_nonfinite(layers: dict[str, torch.Tensor], names: Sequence[str]) -> str | None:
    for name in names:
        t = layers.get(name)
        if t is not None and not torch.isfinite(t).all():
            return name
    return None


@torch.no_grad()
def run_policy(
    model: nn.Module, policy, x: torch.Tensor, names: Sequence[str] = ()
) -> tuple[str, torch.Tensor, dict[str, torch.Tensor]]:
    """(label, output, {name: block output}) of fp32 ``model`` under ``policy`` (a preset, a policy or an fp8
    name); an all-fp64 policy runs an fp64 copy, so that it is the reference itself."""
    if isinstance(policy, str) and policy in FP8:
        label, net, ctx = policy, fp8_emulated(model, FP8[policy]), get_policy("full")
    else:
        ctx = get_policy(policy)
        label, net = ctx.spec, model
        if _all_fp64(ctx):
            net = fp64_copy(model)  # parameters follow the policy: an fp64 policy runs fp64 weights
    # fp32 input, as a trainer feeds it: autocast rounds it where the policy says so.
    with ctx:
        y, layers = capture(net, x.to(torch.float64 if _all_fp64(ctx) else torch.float32), names)
    return label, y, layers


@torch.no_grad()
def precision_errors(
    model: nn.Module, x: torch.Tensor, policies: Sequence[str | PrecisionPolicy], names: Sequence[str] | None = None
) -> dict[str, dict]:
    """{policy label: {"total": error, "layers": {name: error}}} of ``model`` on x against fp64.

    The label is the preset name, or :attr:`PrecisionPolicy.spec` for a policy with overrides.

    Policies are preset names, :class:`PrecisionPolicy` objects, or ``"fp8_e4m3"`` / ``"fp8_e5m2"``
    (:func:`fp8_emulated`). A policy whose output is not finite gets ``"total": inf`` and
    ``"nonfinite_layer"``, the first block whose output was not finite.
    """
    names = list(layer_names(model) if names is None else names)
    with get_policy("full"):
        ref_out, ref_layers = capture(fp64_copy(model).eval(), x.double(), names)
    runner = copy.deepcopy(model).float().eval()
    out = {}
    for policy in policies:
        label, y, layers = run_policy(runner, policy, x, names)
        entry = {"layers": {n: relative_l2_error(layers[n], ref_layers[n]) for n in names if n in layers}}
        if torch.isfinite(y).all():
            entry["total"] = relative_l2_error(y, ref_out)
        else:
            entry["total"] = math.inf
            entry["nonfinite_layer"] = _first_nonfinite(layers, names) or "output"
        out[label] = entry
    return out


def crossover(resolutions: Sequence[int], discretization: Sequence[float | None], precision: Sequence[float]) -> dict:
    """Where the precision error reaches the discretization error, as N grows.

    Returns {"resolution": N* or None, "kind": ...}: ``"measured"`` (interpolated on log-log axes between
    the two resolutions that bracket it), ``"below_range"`` (precision error already >= discretization
    error at the coarsest N), ``"extrapolated"`` (from the fitted rate and the precision error at the
    finest measured N), or ``"none"`` (no rate to extrapolate with).
    """
    pts = [(n, d, p) for n, d, p in zip(resolutions, discretization, precision) if d is not None and d > 0]
    if not pts:
        return {"resolution": None, "kind": "none"}
    for i, (n, d, p) in enumerate(pts):
        if p >= d:
            if i == 0:
                return {"resolution": n, "kind": "below_range"}
            n0, d0, p0 = pts[i - 1]
            # log(d) - log(p) changes sign between n0 and n: find its zero linearly in log N.
            g0, g1 = math.log(d0) - math.log(p0), math.log(d) - math.log(p)
            t = g0 / (g0 - g1)
            return {"resolution": math.exp(math.log(n0) + t * (math.log(n) - math.log(n0))), "kind": "measured"}
    rate = convergence_rate([q[0] for q in pts], [q[1] for q in pts])
    n_last, d_last, p_last = pts[-1]
    if rate is None or rate <= 0 or p_last <= 0:
        return {"resolution": None, "kind": "none"}
    return {"resolution": n_last * (d_last / p_last) ** (1 / rate), "kind": "extrapolated"}
