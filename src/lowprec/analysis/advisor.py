"""The precision advisor: the cheapest policy whose rounding stays well inside the error already made.

Given an accuracy study (:func:`lowprec.analysis.accuracy_study`) and the
resolution N the user will run at, the budget is

    budget = tolerance * discretization error at N   (and <= tolerance * test error, given a dataset)

and the advisor recommends, among the presets and those presets with their
lifting and projection, their first and last blocks, or all four overridden
to ``full``, the one that saves the fewest activation bytes for backward (the
memory a policy is chosen to save, measured, not assumed) among those whose
precision error at N is within budget. If none is, it recommends ``full``
and says that even fp32 misses the budget where it does.

At an N the study did not measure, the discretization error is extrapolated
from the fitted rate (d(N) = d(N_0) (N_0 / N)^rate from the nearest measured
N_0) and the precision errors are measured at N.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from ..precision import get_policy
from .errors import layer_names, precision_errors
from .spectrum import saved_activation_bytes

# Presets the advisor weighs; stabilized variants change the function, not only its rounding, and
# full_dft costs what full costs.
CANDIDATES = ("bf16", "fp16", "half_bf16", "half", "mixed_bf16", "mixed", "amp_bf16", "amp", "full")


def _override_sets(names: list[str]) -> list[tuple[tuple[str, str], ...]]:
    blocks = [n for n in names if n.rsplit(".", 1)[-1].isdigit()]
    ends = [n for n in names if n not in blocks]
    sets = [tuple((n, "full") for n in ends)] if ends else []
    if blocks:
        first_last = tuple(dict.fromkeys((blocks[0], blocks[-1])))
        sets.append(tuple((n, "full") for n in first_last))
        if ends:
            sets.append(tuple((n, "full") for n in (*first_last, *ends)))
    return sets


def _discretization_at(study: dict, n: int) -> tuple[float, str]:
    errors = {int(k): v for k, v in study["discretization"]["errors"].items() if v is not None}
    if n in errors:
        return errors[n], "measured"
    rate = study["discretization"]["rate"]
    if rate is None or not errors:
        raise ValueError(
            f"the study has no discretization error at N={n} and no rate to extrapolate it; "
            f"choose --resolution among {sorted(errors)}."
        )
    n0 = min(errors, key=lambda m: abs(math.log(m / n)))
    return errors[n0] * (n0 / n) ** rate, f"extrapolated from N={n0} at rate {rate:.2f}"


def advise(
    model: nn.Module,
    make_input: Callable[[int], torch.Tensor],
    study: dict,
    tolerance: float = 0.1,
    resolution: int | None = None,
) -> dict:
    """Recommend a policy (maybe with per-layer overrides) for ``model`` at ``resolution``.

    Returns {"resolution", "discretization_error", "discretization_source", "test_error", "budget",
    "candidates": [{"policy": text, "error", "saved_bytes", "passes"}], "recommended": text, "summary",
    "yaml"}; ``recommended`` is :attr:`PrecisionPolicy.spec` text, which ``get_policy`` and a config's
    ``precision:`` key accept.
    """
    if not tolerance > 0:
        raise ValueError(f"--tolerance must be positive (a fraction such as 0.1), got {tolerance}.")
    measured = [int(k) for k, v in study["discretization"]["errors"].items() if v is not None]
    n = int(resolution or max(measured))
    disc, source = _discretization_at(study, n)
    budget = tolerance * disc
    test_error = study.get("test_error")
    if test_error:
        budget = min(budget, tolerance * test_error)
    x = make_input(n)
    names = layer_names(model)
    policies = [get_policy(p) for p in CANDIDATES]
    policies += [get_policy(p).replace(overrides=s) for p in CANDIDATES[:-1] for s in _override_sets(names)]
    errors = precision_errors(model, x, policies, names=[])
    runner = copy.deepcopy(model).float()
    candidates = []
    for policy in policies:
        error = errors[policy.spec]["total"]
        candidates.append(
            {
                "policy": policy.spec,
                "error": error,
                "saved_bytes": saved_activation_bytes(runner, x[:1], policy),
                "passes": error <= budget,
            }
        )
    passing = [c for c in candidates if c["passes"]]
    if passing:
        best = min(passing, key=lambda c: (c["saved_bytes"], c["error"]))
        full = next(c for c in candidates if c["policy"] == "full")
        summary = (
            f"recommended: {best['policy']} (precision error {best['error']:.2e} <= budget {budget:.2e} = "
            f"{tolerance:g} x {'min(discretization, test) error' if test_error else 'discretization error'} "
            f"at N={n}; keeps {best['saved_bytes'] / 2**20:.2f} MiB of activations for backward per "
            f"sample, full keeps {full['saved_bytes'] / 2**20:.2f} MiB)"
        )
    else:
        best = next(c for c in candidates if c["policy"] == "full")
        summary = (
            f"no policy keeps its precision error below the budget {budget:.2e} at N={n}, not even full "
            f"(error {best['error']:.2e}); recommended: full. Raise --tolerance, or run at a coarser N."
        )
    return {
        "resolution": n,
        "tolerance": tolerance,
        "discretization_error": disc,
        "discretization_source": source,
        "test_error": test_error,
        "budget": budget,
        "candidates": candidates,
        "recommended": best["policy"],
        "summary": summary,
        "yaml": f"# lowprec analyze --advise --tolerance {tolerance:g} at N={n}\ntrain:\n"
        f'  precision: "{best["policy"]}"\n',
    }
