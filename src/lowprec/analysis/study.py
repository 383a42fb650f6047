"""One accuracy study: discretization error and every policy's precision error over resolutions.

:func:`accuracy_study` returns a JSON-ready dict (every number measured);
:func:`plot_study` draws both errors against N on log-log axes.

Reading the result: the discretization error falls with N at the fitted
``rate``; a policy's precision error is roughly flat in N. Where the flat line
lies below the falling one, rounding is the smaller error and the reduced
precision costs nothing a finer grid would not cost more; the ``crossover``
resolution is where they meet, beyond which rounding dominates. Tu et al.'s
claim "holds" for a policy on these inputs when its precision error stays
at or below the discretization error at every measured resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from ..precision import PRESETS, get_policy
from ..train.losses import relative_l2_error
from .errors import FP8, convergence_rate, crossover, discretization_errors, layer_names, precision_errors

DEFAULT_POLICIES = tuple(PRESETS) + tuple(FP8)
# Finest 256: an FNO (width 32, 4 layers) over 16..128 under every preset plus the fp8 emulations takes
# about 15 s of CPU (docs/analysis.md); the 256 grid only runs once, in fp64, as the reference.
DEFAULT_RESOLUTIONS = (16, 32, 64, 128, 256)


def _name(policy) -> str:
    return policy if isinstance(policy, str) and policy in FP8 else get_policy(policy).spec


def accuracy_study(
    model: nn.Module,
    make_input: Callable[[int], torch.Tensor],
    resolutions: Sequence[int] = DEFAULT_RESOLUTIONS,
    policies: Sequence = DEFAULT_POLICIES,
    grid: str = "periodic",
    reference: Callable[[int], torch.Tensor] | None = None,
    target: torch.Tensor | None = None,
) -> dict:
    """Measure both errors of ``model`` on ``make_input(N)`` for every N in ``resolutions``.

    Args:
        model: any module mapping (B, C, *grid) -> (B, C', *grid); its weights are reused as they are.
        make_input: N -> input tensor on the N-grid (same continuous functions at every N).
        resolutions: grid sizes; without ``reference`` the finest is the reference and gets no
            precision error (it has no discretization error to compare with).
        policies: preset names, policies, ``"fp8_e4m3"``/``"fp8_e5m2"``.
        grid: ``"periodic"`` or ``"nodes"`` (how a fine grid is sampled at coarse points).
        reference: N -> exact output on the N-grid, if known.
        target: the true outputs at the finest resolution (a dataset's y), for the model's test error.

    Returns:
        {"resolutions", "layers", "discretization": {"errors": {N: e}, "rate"}, "precision": {policy:
        {"errors": {N: e}, "layers": {N: {layer: e}}, "ratio": {N: precision / discretization},
        "crossover": {...}, "claim_holds": bool}}, "test_error": float or None}. N keys are strings.
    """
    resolutions = sorted(set(int(n) for n in resolutions))
    if len(resolutions) < 2 and reference is None:
        raise ValueError(
            f"need at least two resolutions (a coarse one and the finest as reference), got "
            f"{resolutions}; or pass reference= for an exact output."
        )
    disc = discretization_errors(model, make_input, resolutions, grid, reference)
    measured = [n for n in resolutions if disc[n] is not None]
    names = layer_names(model)
    per_n = {n: precision_errors(model, make_input(n), policies, names) for n in measured}
    labels = [_name(p) for p in policies]
    precision = {}
    for label in labels:
        errs = [per_n[n][label]["total"] for n in measured]
        entry = {
            "errors": {str(n): e for n, e in zip(measured, errs)},
            "layers": {str(n): per_n[n][label]["layers"] for n in measured},
            "ratio": {str(n): (e / disc[n] if disc[n] else None) for n, e in zip(measured, errs)},
            "crossover": crossover(measured, [disc[n] for n in measured], errs),
            "claim_holds": all(e <= disc[n] for n, e in zip(measured, errs)),
        }
        bad = {str(n): per_n[n][label]["nonfinite_layer"] for n in measured if "nonfinite_layer" in per_n[n][label]}
        if bad:
            entry["nonfinite_layer"] = bad
        precision[label] = entry
    test_error = None
    if target is not None:
        with torch.no_grad(), get_policy("full"):
            test_error = relative_l2_error(model.float().eval()(make_input(resolutions[-1]).float()), target)
    return {
        "resolutions": resolutions,
        "reference": "exact" if reference is not None else f"output at N={resolutions[-1]}",
        "grid": grid,
        "layers": names,
        "discretization": {
            "errors": {str(n): disc[n] for n in resolutions},
            "rate": convergence_rate(measured, [disc[n] for n in measured]),
        },
        "precision": precision,
        "test_error": test_error,
    }


def line_style(i: int) -> dict:
    """A color and marker for the i-th policy that no other of the first 20 shares."""
    import matplotlib.pyplot as plt

    return {"color": plt.get_cmap("tab20").colors[(2 * i + i // 10) % 20], "marker": "os^vD<>"[i % 7]}


def plot_study(study: dict, path: str | Path, title: str = "") -> Path:
    """Log-log PNG: discretization error (black) and each policy's precision error against N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8))
    d = {int(n): e for n, e in study["discretization"]["errors"].items() if e}
    rate = study["discretization"]["rate"]
    ax.loglog(
        list(d),
        list(d.values()),
        "k-o",
        lw=2.5,
        label="discretization" + (f" (rate {rate:.2f})" if rate is not None else ""),
    )
    for i, (label, entry) in enumerate(study["precision"].items()):
        pts = {int(n): e for n, e in entry["errors"].items() if e and e != float("inf")}
        if pts:
            ax.loglog(list(pts), list(pts.values()), "--", ms=4, label=label, **line_style(i))
    ax.set_xticks(sorted(d) or [int(n) for n in study["resolutions"]])
    ax.set_xticklabels([str(n) for n in (sorted(d) or study["resolutions"])])
    ax.minorticks_off()
    ax.set_xlabel("grid points per axis N")
    ax.set_ylabel("relative L2 error")
    ax.set_title(title or "precision error vs discretization error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
