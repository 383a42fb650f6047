"""Record the mixed-precision papers' accuracy claims: FNO trained per policy, tested at 1x and 2x resolution.

Tu et al. (ICLR 2024) report that FNO trained in mixed precision (and with their half -> mixed -> full
schedule) matches full precision in test error, that the tanh stabilizer keeps half precision stable
where hard clipping and 2-sigma clipping do worse, and that zero-shot super-resolution survives. This
script trains the same FNO (same data, same seed) under each setting and appends one JSON line per run:
test L2 and H1 at the training resolution and zero-shot at about twice it, each evaluated under
``full`` and under the run's last policy.

Cases: full, amp, mixed, mixed_tanh, half (tanh), bf16, the paper's schedule (half 25 %, mixed 50 %,
full 25 %), and half with the hardclip and sigma_clip stabilizers. Each run also records the test error of
the trivial predictor (the mean training target), the floor a model that learned anything beats.

The recorded CPU set (2 problems x 9 cases x 3 seeds, about 75 minutes of one idle core; the results
page gives the exact commands, one process per problem and seed):

    python benchmarks/accuracy_claims.py --problems darcy,navier_stokes --seeds 0,1,2 --epochs 10 \\
        --n-train 200 --n-test 50 --width 16 --batch-size 4 --lr 2e-3 --out accuracy_claims.jsonl

At the papers' model size and training length (GPU: native fp16 kernels, so every case costs about what
full does; the grids stay 33^2/32^2 with zero-shot at 65^2/64^2):

    python benchmarks/accuracy_claims.py --problems darcy,navier_stokes --seeds 0,1,2 --epochs 100 \\
        --n-train 1000 --n-test 200 --width 64 --batch-size 16 --lr 1e-3 --device cuda --out accuracy_claims_gpu.jsonl

Each line names its problem, seed, case and sizes, so a partial run is a valid record of what it ran.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
try:
    import lowprec  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT.parent / "src"))

CASES = ("full", "amp", "mixed", "mixed_tanh", "half", "bf16", "paper", "half_hardclip", "half_sigma_clip")
# Per problem: data settings sized for a CPU; the zero-shot grid holds the same problems at ~2x.
PROBLEMS = {
    "darcy": {"problem": "darcy", "resolution": 33, "test_resolutions": (65,), "n_modes": (12, 12)},
    "navier_stokes": {"problem": "navier_stokes", "resolution": 32, "test_resolutions": (64,), "n_modes": (12, 12)},
}


def precision_of(case: str):
    """The TrainConfig.precision of a case: a preset, a stabilizer variant of half, or the schedule."""
    from lowprec.precision import get_policy

    if case == "paper":
        return "paper"
    if case.startswith("half_"):
        stabilizer = case.removeprefix("half_")
        return get_policy("half").replace(name=case, stabilizer=stabilizer)
    return get_policy(case)


def run_one(
    problem: str,
    case: str,
    seed: int,
    epochs: int,
    n_train: int,
    n_test: int,
    width: int,
    cache_dir: str,
    batch_size: int = 16,
    lr: float = 1e-3,
    device: str = "cpu",
) -> dict:
    import dataclasses

    from lowprec.config import build_run, make_config
    from lowprec.train import Trainer
    from lowprec.train.trainer import as_schedule, evaluate

    spec = PROBLEMS[problem]
    cfg = make_config(
        {
            "problem": spec["problem"],
            "resolution": spec["resolution"],
            "test_resolutions": spec["test_resolutions"],
            "n_train": n_train,
            "n_test": n_test,
            "cache_dir": cache_dir,
            "n_modes": spec["n_modes"],
            "hidden_channels": width,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "progress": False,
            "device": device,
        }
    )
    train_cfg = dataclasses.replace(cfg.train, precision=precision_of(case))
    model, train_set, test_sets = build_run(dataclasses.replace(cfg, train=train_cfg), progress=False)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        # No test sets during training: only the final errors are recorded, and evaluating every epoch
        # at 2x resolution would cost a third of the run.
        trainer = Trainer(model, train_set, {}, train_cfg, Path(out))
        history = trainer.fit()
    seconds = time.perf_counter() - start
    last_policy = as_schedule(train_cfg.precision).policy_at(epochs - 1, epochs)
    errors = {}
    for name, test in test_sets.items():
        errors[f"{name}/full"] = evaluate(model, test, "full")
        errors[f"{name}/own"] = (
            errors[f"{name}/full"] if last_policy.name == "full" else evaluate(model, test, last_policy)
        )
    train_res = f"test_{spec['resolution']}"
    errors[f"{train_res}/trivial"] = trivial_errors(train_set, test_sets[train_res])
    return {
        "problem": problem,
        "case": case,
        "seed": seed,
        "epochs": epochs,
        "n_train": n_train,
        "n_test": n_test,
        "width": width,
        "batch_size": batch_size,
        "lr": lr,
        "device": str(next(model.parameters()).device),
        "resolution": spec["resolution"],
        "test_resolutions": list(spec["test_resolutions"]),
        "precision": str(as_schedule(train_cfg.precision)),
        "errors": errors,
        "final_train_loss": history[-1].get("train_loss") if history else None,
        "seconds": round(seconds, 1),
    }


def trivial_errors(train_set, test_set) -> dict:
    """Test L2 and H1 of the trivial predictor, the mean training target, as a floor to judge learning by."""
    from lowprec.train.losses import relative_h1, relative_l2
    from lowprec.train.trainer import is_periodic

    mean = train_set.y.float().mean(0, keepdim=True).expand_as(test_set.y)
    dim = test_set.y.ndim - 2
    return {
        "l2": relative_l2(mean, test_set.y).mean().item(),
        "h1": relative_h1(mean, test_set.y, dim, periodic=is_periodic(test_set)).mean().item(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default="darcy", help=f"comma-separated, of {', '.join(PROBLEMS)}")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--n-train", type=int, default=500)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (a GPU where there is one)")
    parser.add_argument("--cache-dir", default=str(ROOT / "runs" / "cache"))
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "accuracy_claims.jsonl")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    problems, cases = args.problems.split(","), args.cases.split(",")
    for name in problems:
        if name not in PROBLEMS:
            raise SystemExit(f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)}")
    for case in cases:
        if case not in CASES:
            raise SystemExit(f"unknown case {case!r}; choose from {', '.join(CASES)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/accuracy_claims.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for problem in problems:
        for seed in (int(s) for s in args.seeds.split(",")):
            for case in cases:
                row = run_one(
                    problem,
                    case,
                    seed,
                    args.epochs,
                    args.n_train,
                    args.n_test,
                    args.width,
                    args.cache_dir,
                    args.batch_size,
                    args.lr,
                    args.device,
                )
                row["command"] = command
                with args.out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                res = row["errors"]
                print(
                    f"{problem} seed {seed} {case:16s} "
                    + "  ".join(f"{k} L2 {v['l2']:.4f} H1 {v['h1']:.4f}" for k, v in res.items() if k.endswith("/own")),
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
