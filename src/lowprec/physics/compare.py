"""Run one problem in every training mode on the same seeds; print one table, draw the curves.

Every mode starts from the same fp32 initial weights (cast to its dtypes) and
sees the same training data and batch order, so the differences in the table
come from precision. A single seed still leaves the chaotic part of training:
two modes that round differently end in different places of Adam's
oscillation, which moves the final error by several percent either way (an
fp32 run with a different seed moves it as much). ``seeds`` averages that out,
as Hayford et al. did over 10 seeds.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from .._device import describe_device
from ..report import format_table, pyplot, save_figure
from .base import PhysicsProblem
from .modes import dtype_name, get_mode
from .train import PhysicsTrainConfig, RunResult, train

DEFAULT_MODES = ("fp32", "fp16", "mixed", "bf16")


def compare(
    problem: PhysicsProblem,
    modes: Sequence = DEFAULT_MODES,
    config: PhysicsTrainConfig = PhysicsTrainConfig(),
    device: str = "cpu",
    peer: bool = False,
    seeds: Sequence[int] | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
) -> tuple[list[RunResult], list[dict]]:
    """Train ``problem`` in each mode for each seed; return (results, peer rows).

    ``seeds``: default ``[config.seed]``. Results are ordered seed-major. A
    failing mode (non-finite loss) is recorded, not raised: the table shows
    where it failed. ``peer``: also run DeepXDE's Burgers in float32 and its
    "mixed" (Burgers only; see :mod:`lowprec.physics.peer`), on the first seed.
    ``out_dir``: each run checkpoints in its :func:`run_dir`; with ``resume`` an
    interrupted comparison continues each run from its checkpoint (finished runs are not repeated).
    """
    seeds = [config.seed] if seeds is None else list(seeds)
    results = []
    for seed in seeds:
        cfg = dataclasses.replace(config, on_nonfinite="stop", seed=seed)
        data = problem.training_data(seed)
        for mode in modes:
            where = None if out_dir is None else run_dir(out_dir, get_mode(mode).name, seed)
            results.append(train(problem, get_mode(mode), cfg, device=device, data=data, out_dir=where, resume=resume))
    peers = run_peers(problem, dataclasses.replace(config, seed=seeds[0])) if peer else []
    return results, peers


def run_dir(out_dir: str | os.PathLike, mode: str, seed: int) -> Path:
    """Where one run of a comparison (or a single run) under ``out_dir`` keeps its checkpoints and metrics."""
    return Path(out_dir) / "runs" / f"{mode}_seed{seed}"


def run_peers(problem: PhysicsProblem, config: PhysicsTrainConfig) -> list[dict]:
    from .burgers import Burgers
    from .peer import PEER_PRECISIONS, PeerUnavailable, run_deepxde_burgers

    if type(problem) is not Burgers:
        return [{"precision": "-", "failure": f"no DeepXDE peer for {problem.name}; only burgers has one"}]
    rows = []
    for precision in PEER_PRECISIONS:
        try:
            rows.append(
                run_deepxde_burgers(
                    precision, config.steps, config.lr, config.seed, problem.nu, problem.width, problem.depth
                )
            )
        except PeerUnavailable as exc:
            return [{"precision": "-", "failure": str(exc)}]
    return rows


def _pct(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _mean(xs: Iterable[float]) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return sum(xs) / len(xs) if xs else math.nan


def machine_note(device: str) -> str:
    return f"{describe_device(device)}, torch {torch.__version__}"


def by_mode(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    """Group runs by mode name, in first-seen order."""
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.mode.name, []).append(r)
    return groups


def mean_error(runs: Sequence[RunResult]) -> float:
    """Mean final error over the runs that finished (nan if none did)."""
    return _mean(r.error for r in runs if not r.failure)


def comparison_table(results: Sequence[RunResult], peers: Iterable[dict] = ()) -> str:
    """The comparison as a Markdown table with its caption and notes (one row per mode, seeds averaged)."""
    if not results:
        return "(no runs)"
    first = results[0]
    p, cfg = first.problem, first.config
    groups = by_mode(results)
    seeds = sorted({r.config.seed for r in results})
    multi = len(seeds) > 1
    ref_err = mean_error(groups.get("fp32", []))
    inverse = "field_error" in first.final
    error_name = ("rel. error" if inverse else "rel. L2 error") + (f", mean of {len(seeds)} seeds" if multi else "")
    seed_txt = f"seeds {', '.join(map(str, seeds))}" if multi else f"seed {seeds[0]}"
    decay = p.default_lr_decay if cfg.lr_decay is None else cfg.lr_decay
    lr_txt = f"Adam lr {cfg.lr:g}" + (f" decaying to {cfg.lr * decay:g}" if decay != 1 else "")
    head = f"{p.title}: {cfg.steps} steps, {lr_txt}, {seed_txt}; {machine_note(first.device)}"
    cols = [
        "mode",
        f"final {error_name}",
        "vs fp32",
        "ms/step",
        "peak MiB",
        "state KiB",
        "grad underflow",
        "stalled updates",
        "residual rounding",
        "skipped",
        "status",
    ]
    rows = []
    for name, runs in groups.items():
        err = mean_error(runs)
        ratio = err / ref_err if ref_err > 0 else math.nan
        failed = [r for r in runs if r.failure]
        if not failed:
            status = "ok"
        elif not multi:
            r = failed[0]
            status = f"non-finite at step {r.failed_step}"
            if "loss term(s)" in r.failure:
                status += " (" + r.failure.split("loss term(s) ")[1].split(" not finite")[0] + ")"
        else:
            status = f"{len(failed)}/{len(runs)} failed (steps {', '.join(str(r.failed_step) for r in failed)})"
        cell = _num(err, ".4f")
        if multi:
            ok = [r.error for r in runs if not r.failure]
            cell += f" ± {statistics.stdev(ok):.4f}" if len(ok) > 1 else ""
        if inverse:
            cell += f" (field {_mean(r.final.get('field_error', math.nan) for r in runs):.3f})"
        rows.append(
            [
                name,
                cell,
                _num(ratio, ".2f") + ("x" if not math.isnan(ratio) else ""),
                _num(statistics.median([r.ms_per_step for r in runs]), ".1f"),
                _num(_mean(r.peak_mib for r in runs), ".2f"),
                _num(runs[0].state_mib * 1024, ".1f"),
                _pct(_mean(r.late_mean("underflow") for r in runs)),
                _pct(_mean(r.late_mean("stalled") for r in runs)),
                _pct(_mean(r.final.get("residual_rounding", math.nan) for r in runs)),
                str(sum(r.skipped_steps for r in runs)),
                status,
            ]
        )
    for peer in peers:
        name = f"deepxde {peer.get('precision', '-')}"
        if "error" in peer:
            ratio = peer["error"] / ref_err if ref_err > 0 else math.nan
            note = "ok" if "failure" not in peer else "non-finite loss"
            if multi:
                note += f" (seed {seeds[0]} only)"
            rows.append(
                [
                    name,
                    f"{peer['error']:.4f}",
                    _num(ratio, ".2f") + "x",
                    _num(peer["ms_per_step"], ".1f"),
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    note,
                ]
            )
        else:
            rows.append([name, "-", "-", "-", "-", "-", "-", "-", "-", "-", peer.get("failure", "?")])
    table = format_table([dict(zip(cols, row)) for row in rows], [(c, c, "") for c in cols], markdown=True)
    out = [head, "", table]
    modes = "; ".join(runs[0].mode.describe() for runs in groups.values())
    notes = [
        "",
        f"Modes: {modes}.",
        "grad underflow: share of weight-gradient entries that are 0 or round to 0, as the backward pass "
        "computed them (loss scale included); stalled updates: share of weights an update leaves unchanged "
        "when the weight is stored in fp16 (bf16 for the bf16 row) - for fp32/mixed/bf16, what pure fp16 "
        "would have lost. Both: mean over the last 10% of steps. skipped: steps dropped by the loss scaler.",
        "residual rounding: at the final weights, the rms of the loss residuals' rounding error in the compute "
        "dtype (fp16 for the fp32 row: what mixed would make of them) over the residuals' rms: how much of what "
        "the loss minimizes the compute dtype cannot resolve; the gradient is off by about as much.",
        "Errors are measured with the working copy in the compute dtype (fp32 after an fp32 finish); "
        "ms/step: median; peak MiB: "
        + (
            "CUDA allocator peak."
            if first.device.startswith("cuda")
            else "persistent state plus the peak of one profiled training step (CPU)."
        ),
    ]
    for name, runs in groups.items():
        if runs[0].mode.fp32_finish:
            notes.append(
                f"{name} runs its last {runs[0].mode.fp32_finish:.0%} of steps in fp32: its diagnostics "
                "(last 10% of steps) show that phase, its ms/step is the median over both phases."
            )
    if not first.device.startswith("cuda"):
        notes.append(
            "CPU timings are not representative of a GPU: on CPU, fp16 matrix products run as fp32 "
            "products of fp16 operands (a tensor core's arithmetic, not its speed) and elementwise ops in "
            "PyTorch's CPU fp16 kernels; bf16 runs natively. "
            "The fp16 peaks include those products' fp32 temporaries, which a GPU does not allocate. "
            "The paper's speed and memory gains need a GPU."
        )
    if inverse:
        notes.append(
            "Inverse problem: the error is that of the recovered coefficient; the field error is in parentheses."
        )
    if not math.isnan(ref_err):
        verdict = []
        for name in ("mixed", "mixed_then_fp32"):
            if name in groups and not math.isnan(mean_error(groups[name])):
                rel = mean_error(groups[name]) / ref_err - 1
                verdict.append(f"{name} vs fp32: {rel:+.1%} ({'within' if rel <= 0.10 else 'NOT within'} 10%)")
        if "fp16" in groups:
            fp16 = groups["fp16"]
            if all(r.failure for r in fp16):
                verdict.append(f"fp16 failed (step {', '.join(str(r.failed_step) for r in fp16)})")
            else:
                verdict.append(f"fp16 vs fp32: {mean_error(fp16) / ref_err - 1:+.1%}")
        notes.append("Result: " + "; ".join(verdict) + ".")
        n_seeds = min(len(runs) for runs in groups.values())
        if n_seeds < 3:
            # A single run's end point depends on the seed and even on the CPU (different kernels round
            # differently), while means over a few seeds agree; a verdict on so few seeds says more about
            # the seed than about the precision.
            notes.append(
                f"This verdict rests on {n_seeds} seed{'s' if n_seeds > 1 else ''}: single-run end "
                "points of these problems swing by more than 10 % between seeds and hosts; compare "
                "means over --seeds 3 or more."
            )
    return "\n".join(out + notes)


def plot_curves(results: Sequence[RunResult], path: str) -> None:
    """Loss, error and residual rounding, stalled-update share and gradient underflow against step, one line
    per mode."""
    plt = pyplot()
    seed0 = results[0].config.seed
    results = [r for r in results if r.config.seed == seed0]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    (ax_loss, ax_err), (ax_stall, ax_uf) = axes
    for r in results:
        label = r.mode.name + (f" (failed @ {r.failed_step})" if r.failure else "")
        steps = [h.step for h in r.history if not h.skipped]
        ax_loss.semilogy(steps, [h.loss for h in r.history if not h.skipped], lw=0.8, label=label)
        (line,) = ax_err.semilogy([e["step"] for e in r.evals], [e["error"] for e in r.evals], "-o", ms=2, label=label)
        ax_err.semilogy(
            [e["step"] for e in r.evals],
            [e.get("residual_rounding", math.nan) for e in r.evals],
            "--",
            lw=0.8,
            color=line.get_color(),
        )
        for ax, key in ((ax_stall, "stalled"), (ax_uf, "underflow")):
            vals = [getattr(h, key) for h in r.history if not h.skipped]
            k = max(1, len(vals) // 100)  # running mean over 1% of the run, for readability
            smooth = [sum(vals[max(0, i - k) : i + 1]) / len(vals[max(0, i - k) : i + 1]) for i in range(len(vals))]
            ax.plot(steps, [100 * v for v in smooth], lw=1, label=label)
    ax_loss.set(title="training loss", xlabel="step")
    ax_err.set(title="error against the reference (-o), residual rounding (--)", xlabel="step")
    ax_stall.set(title="updates too small to change an fp16 weight (%)", xlabel="step")
    ax_uf.set(title="gradient entries that underflow (%)", xlabel="step")
    for ax in axes.ravel():
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path, f"{results[0].problem.title}, {results[0].config.steps} steps, seed {seed0}")


def plot_solutions(results: Sequence[RunResult], path: str, data: dict) -> None:
    """Each mode's prediction against the reference, one row per mode (first seed; ``data`` is its data)."""
    plt = pyplot()
    seed0 = results[0].config.seed
    results = [r for r in results if r.config.seed == seed0]
    fig = plt.figure(figsize=(12, 3.2 * len(results)), layout="constrained")
    subfigs = fig.subfigures(len(results), 1) if len(results) > 1 else [fig]
    for sub, r in zip(subfigs, results):
        sub.suptitle(f"{r.mode.name}, seed {seed0}: error {r.error:.4f}", fontsize=10)
        if r.failure and not math.isfinite(r.error):
            sub.text(0.5, 0.5, f"failed at step {r.failed_step}", ha="center")
            continue
        r.problem.plot_solution(sub, r.working, r.mode.compute_dtype, r.mode.name, data)
    save_figure(fig, path)


def save(
    results: Sequence[RunResult], peers: Sequence[dict], out_dir: str, table: str, data: dict | None = None
) -> list[str]:
    """Write table.md, results.json, curves.png and solution.png under ``out_dir``; return the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, n) for n in ("table.md", "results.json", "curves.png", "solution.png")]
    with open(paths[0], "w") as f:
        f.write(table + "\n")
    with open(paths[1], "w") as f:
        json.dump(
            {
                "machine": machine_note(results[0].device),
                "date": datetime.date.today().isoformat(),
                "runs": [r.summary() for r in results],
                "peers": list(peers),
            },
            f,
            indent=1,
            default=str,
        )
    plot_curves(results, paths[2])
    if data is None:
        data = results[0].problem.training_data(results[0].config.seed)
    plot_solutions(results, paths[3], data)
    return paths


__all__ = [
    "compare",
    "comparison_table",
    "plot_curves",
    "plot_solutions",
    "save",
    "by_mode",
    "mean_error",
    "DEFAULT_MODES",
    "dtype_name",
]
