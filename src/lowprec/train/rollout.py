"""Autoregressive rollout: a one-step model fed its own predictions, scored against the solver per step.

A model trained on pairs u(t) -> u(t + dt) is applied k times from u(t_0); the error after
k steps is what matters for a surrogate (SFNO's shallow-water experiments roll out for hours).
Reduced precision enters every step and its rounding compounds, so the per-step curve
separates policies that a one-step test error cannot.
"""

from __future__ import annotations

import torch
from torch import nn

from ..precision import PrecisionPolicy, get_policy
from .losses import relative_l2


@torch.no_grad()
def rollout_errors(
    model: nn.Module,
    u: torch.Tensor,
    steps: int,
    policy: str | PrecisionPolicy = "full",
    start: int = 0,
    batch_size: int = 64,
    device: torch.device | None = None,
) -> dict:
    """Relative L2 error after each of ``steps`` autoregressive steps, averaged over trajectories.

    Args:
        model: maps a state (B, C, *grid) to the next one.
        u: trajectories (N, T, C, *grid), e.g. ``Trajectories.u`` of the shallow-water problem;
            scalar trajectories (N, T, *grid) as ``u.unsqueeze(2)``.
        steps: number of steps (T >= start + steps + 1).
        policy: the precision policy every step runs under.
        start: index of the initial snapshot.

    Returns:
        ``{"policy": name, "l2": [error after step 1, ..., step steps], "l2_by_channel": [[...] per
        step], "nonfinite": trajectories whose rollout produced inf/NaN}``; an inf/NaN rollout
        counts as error inf.
    """
    if u.ndim < 4 or u.shape[1] < start + steps + 1:
        raise ValueError(
            f"rollout of {steps} steps from snapshot {start} needs trajectories (N, T >= "
            f"{start + steps + 1}, C, *grid), got shape {tuple(u.shape)}; roll out fewer steps, or "
            "add the channel axis of scalar trajectories with u.unsqueeze(2)."
        )
    policy = get_policy(policy)
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    errors, by_channel, nonfinite = [], [], 0
    try:
        for lo in range(0, u.shape[0], batch_size):
            batch = u[lo : lo + batch_size].to(device)
            state = batch[:, start]
            err, chan = [], []
            for k in range(1, steps + 1):
                with policy:
                    state = model(state).float()
                truth = batch[:, start + k].float()
                e = relative_l2(state, truth)
                e[~torch.isfinite(e)] = float("inf")
                err.append(e)
                chan.append(
                    torch.stack(
                        [relative_l2(state[:, c : c + 1], truth[:, c : c + 1]) for c in range(truth.shape[1])], 1
                    )
                )
            nonfinite += int((~torch.isfinite(err[-1])).sum())
            errors.append(torch.stack(err, 1))
            by_channel.append(torch.stack(chan, 1))
    finally:
        model.train(was_training)
    errors, by_channel = torch.cat(errors), torch.cat(by_channel)
    return {
        "policy": policy.name,
        "l2": errors.mean(0).tolist(),
        "l2_by_channel": by_channel.mean(0).tolist(),
        "nonfinite": nonfinite,
    }


def rollout_study(cfg, precisions, steps: int = 12, start: int = 0, progress: bool = False) -> dict:
    """Train one model per precision setting from ``cfg`` and roll each out on the test trajectories.

    Args:
        cfg: a :class:`lowprec.config.RunConfig` for a time-series problem (e.g. configs/swe_sfno.yaml).
        precisions: policy names or schedule strings (``"paper"``), one model each; a schedule's
            model rolls out under its last policy.
        steps, start: the rollout (see :func:`rollout_errors`).

    Returns:
        ``{precision: rollout_errors(...) + {"test_l2": one-step test error}}``.
    """
    import dataclasses

    from ..config import build_run
    from ..data import PROBLEMS
    from ..data.problems import VIEW_KEYS
    from .trainer import Trainer, as_schedule

    problem = PROBLEMS[cfg.data.problem]
    if problem.trajectories is None:
        raise ValueError(
            f"problem {cfg.data.problem!r} has no time series to roll out; use a time-series problem "
            f"({', '.join(p.name for p in PROBLEMS.values() if p.trajectories)})."
        )
    params = {k: v for k, v in cfg.data.problem_params.items() if k not in VIEW_KEYS}
    traj = problem.trajectories(
        resolution=cfg.data.resolution,
        n=cfg.data.n_test,
        seed=cfg.data.data_seed + 1,
        cache_dir=cfg.data.cache_dir,
        progress=progress,
        **params,
    )
    results = {}
    for precision in precisions:
        run = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision=precision, progress=progress))
        model, train_set, test_sets = build_run(run, progress=progress)
        history = Trainer(model, train_set, test_sets, run.train).fit()
        last_policy = as_schedule(precision).phases[-1][1]
        results[str(precision)] = {
            **rollout_errors(model, traj.u, steps, last_policy, start),
            "test_l2": {k: v for k, v in history[-1].items() if k.endswith("_l2")},
        }
    return results


def main(argv=None) -> int:
    """``python -m lowprec.train.rollout --config configs/swe_sfno.yaml --precisions full mixed bf16 paper``."""
    import argparse
    import json
    from pathlib import Path

    from ..config import load_config

    parser = argparse.ArgumentParser(
        description="Train one model per precision and report its autoregressive rollout error per step."
    )
    parser.add_argument("--config", required=True, help="a run configuration (YAML) for a time-series problem")
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["full", "mixed", "bf16", "paper"],
        help="policies or schedules ('paper': Tu et al.'s, or 'half:0.25,mixed:0.5,full:0.25'); one model each",
    )
    parser.add_argument("--steps", type=int, default=12, help="rollout steps")
    parser.add_argument("--seed", type=int, default=None, help="training seed (default: the config's train.seed)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, {} if args.seed is None else {"seed": args.seed})
    results = rollout_study(cfg, args.precisions, args.steps, progress=cfg.train.progress)
    for name, r in results.items():
        curve = " ".join(f"{e:.3g}" for e in r["l2"])
        print(f"{name:>8}: one-step {r['test_l2']}; rollout rel. L2 per step: {curve}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
