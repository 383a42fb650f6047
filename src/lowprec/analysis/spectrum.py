"""Where in the spectrum rounding hurts: relative error per Fourier mode, and a sweep over kept modes.

Tu et al. observe that low precision damages high frequencies most, which is
why truncating modes makes a Fourier layer robust to it. :func:`spectral_errors`
measures that for one model: the relative error of each policy's output
against fp64, per radial wavenumber bin

    e(k) = sqrt( sum_{k <= |kappa| < k+1} |F(y_policy - y_fp64)(kappa)|^2 )
         / sqrt( sum_{k <= |kappa| < k+1} |F(y_fp64)(kappa)|^2 ),

with kappa the integer wavenumber vector of the grid's DFT (|kappa| <= N/2 per
axis). :func:`mode_sweep` builds FNOs that differ only in the modes they keep and
reports, per mode count, each policy's precision error, the time of one forward
and backward pass and the bytes of activations saved for backward.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..bench.accuracy import fp64_copy
from ..precision import get_policy
from .errors import FP8, run_policy


def radial_bins(grid: Sequence[int]) -> torch.Tensor:
    """Integer bin floor(|kappa|) of every DFT coefficient of a grid, shape grid (long)."""
    axes = [torch.fft.fftfreq(n, 1.0 / n) for n in grid]
    kk = torch.stack(torch.meshgrid(*axes, indexing="ij")).double()
    return kk.norm(dim=0).floor().long()


def spectral_energy_error(y: torch.Tensor, reference: torch.Tensor) -> dict[str, list]:
    """{"k": bins, "error": relative error per bin, "energy": reference energy per bin} of (B, C, *grid) fields.

    Bins where the reference holds no energy (relative to the whole, below fp64 noise) are left out.
    """
    dims = tuple(range(2, reference.ndim))
    ref_hat = torch.fft.fftn(reference.double(), dim=dims)
    diff_hat = torch.fft.fftn(y.double() - reference.double(), dim=dims)
    bins = radial_bins(reference.shape[2:]).flatten()
    n_bins = int(bins.max()) + 1

    def per_bin(t):
        power = t.abs().pow(2).sum(dim=(0, 1)).flatten()
        return torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, power)

    ref_e, diff_e = per_bin(ref_hat), per_bin(diff_hat)
    # Bins whose reference amplitude is below ~1e-13 of the whole hold fp64 FFT noise, not signal.
    keep = ref_e > 1e-26 * ref_e.sum()
    k = torch.arange(n_bins)[keep]
    return {"k": k.tolist(), "error": (diff_e[keep] / ref_e[keep]).sqrt().tolist(), "energy": ref_e[keep].tolist()}


@torch.no_grad()
def spectral_errors(model: nn.Module, x: torch.Tensor, policies: Sequence) -> dict[str, dict]:
    """{policy: {"k", "error", "energy"}} of ``model``'s output on x against its fp64 output."""
    with get_policy("full"):
        reference = fp64_copy(model).eval()(x.double())
    runner = copy.deepcopy(model).float().eval()
    out = {}
    for policy in policies:
        label, y, _ = run_policy(runner, policy, x)
        out[label] = spectral_energy_error(y, reference)
    return out


def plot_spectral_errors(spectrum: dict, path: str | Path) -> Path:
    """Semilog-y PNG of relative error per |k| bin, one line per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .study import line_style

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (label, entry) in enumerate(spectrum.items()):
        ax.semilogy(entry["k"], entry["error"], label=label, ms=3, markevery=8, **line_style(i))
    ax.set_xlabel("wavenumber |k| (radial bin)")
    ax.set_ylabel("relative error in the bin")
    ax.set_title("precision error per frequency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def saved_activation_bytes(model: nn.Module, x: torch.Tensor, policy) -> int:
    """Bytes of the tensors autograd saves for backward in one forward pass under ``policy``.

    Parameters (and their autocast copies, which are weights, not activations) are not counted.
    """
    params = {p.data_ptr() for p in model.parameters()}
    total = 0

    def pack(t):
        nonlocal total
        if t.data_ptr() not in params:
            total += t.numel() * t.element_size()
        return t

    ctx = get_policy("full") if isinstance(policy, str) and policy in FP8 else get_policy(policy)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), ctx:
        model(x.to(ctx.autocast_dtype or torch.float32))
    return total


def mode_sweep(
    modes: Sequence[int],
    x: torch.Tensor,
    policies: Sequence,
    width: int = 32,
    n_layers: int = 4,
    seed: int = 0,
    repeats: int = 3,
) -> list[dict]:
    """Per kept-mode count m (skipped where the grid cannot hold it, m > N/2): fresh FNO (same seed)
    precision error per policy, median seconds of a forward + backward pass, saved-activation bytes.

    Shapes: x (B, 1, *grid). Times are wall-clock on the current device; on a CPU the fp16/bf16
    transforms are emulated (see :mod:`lowprec.precision.emulation`), so they time the emulation.
    """
    from ..models import FNO
    from .errors import precision_errors

    grid = x.shape[2:]
    rows = []
    for m in modes:
        if any(m > n // 2 for n in grid):
            rows.append({"modes": m, "skipped": f"grid {tuple(grid)} holds at most {min(grid) // 2} modes"})
            continue
        torch.manual_seed(seed)
        model = FNO(
            (m,) * len(grid), in_channels=x.shape[1], hidden_channels=width, n_layers=n_layers, grid_endpoint=False
        )
        errors = precision_errors(model, x, policies, names=[])
        row = {"modes": m, "policies": {}}
        for policy in policies:
            label = policy if isinstance(policy, str) and policy in FP8 else get_policy(policy).spec
            if label in FP8:
                row["policies"][label] = {"error": errors[label]["total"]}
                continue
            ctx = get_policy(policy)
            times = []
            for _ in range(repeats):
                model.zero_grad(set_to_none=True)
                start = time.perf_counter()
                with ctx:
                    y = model(x.float().to(ctx.autocast_dtype or torch.float32))
                y.float().square().mean().backward()
                times.append(time.perf_counter() - start)
            row["policies"][label] = {
                "error": errors[label]["total"],
                "seconds": sorted(times)[len(times) // 2],
                "saved_bytes": saved_activation_bytes(model, x, policy),
            }
        rows.append(row)
    return rows


def high_low_ratio(entry: dict, cutoff: int) -> float:
    """Mean relative error of the bins above ``cutoff`` over that of the bins at or below it (NaN if empty)."""
    lo = [e for k, e in zip(entry["k"], entry["error"]) if 0 < k <= cutoff]
    hi = [e for k, e in zip(entry["k"], entry["error"]) if k > cutoff]
    return sum(hi) / len(hi) / (sum(lo) / len(lo)) if lo and hi else math.nan
