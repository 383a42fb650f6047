"""Check the rounding bound of gradient descent (Hayford et al. 2024, Theorem 1) on the diffusion PINN.

Writes the per-step record and the summary of each precision mode to a JSON file and plots loss and
gradient norm against the step, with each mode's predicted floor G*; the Markdown table is generated
from the JSON by ``python benchmarks/make_tables.py`` (generator ``pinn_bound``). What each number
means: ``docs/analysis.md`` and :mod:`lowprec.analysis.pinn_bound`.

    python benchmarks/pinn_bound.py --out benchmarks/results/analysis/pinn_bound.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
try:
    import lowprec  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT.parent / "src"))


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(10, 4))
    for i, (mode, run) in enumerate(result["runs"].items()):
        color = f"C{i}"
        ax_loss.semilogy([r["loss"] for r in run["steps"]], color=color, label=mode)
        ax_grad.semilogy([r["grad_norm"] for r in run["steps"]], color=color, label=f"|grad f| {mode}")
        ax_grad.axhline(result["summary"][mode]["floor_measured_delta"], color=color, ls="--", label=f"floor G* {mode}")
    ax_loss.set(xlabel="gradient-descent step", ylabel="loss (fp64)", title="loss")
    ax_grad.set(xlabel="gradient-descent step", ylabel="norm", title="exact gradient norm and floor (2)")
    for ax in (ax_loss, ax_grad):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="fp32,mixed,fp16", help="comma-separated: fp32, mixed, fp16, bf16")
    parser.add_argument("--steps", type=int, default=200, help="gradient-descent steps per mode")
    parser.add_argument("--pretrain-steps", type=int, default=1500, help="fp32 Adam steps before the check")
    parser.add_argument("--step-fraction", type=float, default=0.5, help="eta = this / L")
    parser.add_argument("--width", type=int, default=20)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "pinn_bound.json")
    args = parser.parse_args(argv)

    import torch

    from lowprec.analysis.pinn_bound import check_bound
    from lowprec.physics import get_problem

    torch.set_num_threads(args.threads)
    problem = get_problem("diffusion", width=args.width, depth=args.depth, n_domain=200, n_boundary=40, n_initial=40)
    start = time.perf_counter()
    result = check_bound(
        problem, tuple(args.modes.split(",")), args.steps, args.seed, args.step_fraction, args.pretrain_steps
    )
    result["command"] = "python benchmarks/pinn_bound.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result["problem_params"] = problem.params() if hasattr(problem, "params") else {}
    result["host"] = {
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "torch": torch.__version__,
        "seconds": round(time.perf_counter() - start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=None, separators=(",", ":")) + "\n")
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps(result["summary"], indent=1))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
