"""The quantization x resolution study: float training, QAT per point, errors at full resolution, Pareto front.

For one (model, data set):

1. train the float model at full resolution (:class:`lowprec.train.Trainer`; checkpointed,
   so an interrupted sweep does not train it again);
2. for every quantization preset and every resolution reduction factor r (inputs and
   outputs subsampled by r along every axis): copy the float model, :func:`quantize_`,
   :func:`calibrate` on the coarse training set, fine-tune it there with the Trainer (QAT;
   the ``float`` preset gets the same fine-tuning, so every point has had the same
   training), then predict on the coarse test inputs, **interpolate the predictions back
   to the full grid** (linear, periodic where the grid is) and score them against the
   full-resolution targets, so every point answers the same question;
3. count BOPs per sample at the coarse grid (:func:`bops`), append the point to a JSONL
   file, and at the end write the Pareto front (no other point has both fewer BOPs and a
   lower MSE), a table and a log-log plot.

The JSONL file starts with a header holding the configuration; a sweep run again with
the same settings skips the points already in the file, one with different settings
is refused (see :func:`open_sweep`). Presets and factors may change between runs (add
points to a finished sweep); nothing else may.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..models.registry import model_kwargs
from .bops import bops
from .config import get_config
from .modules import calibrate, quantize_
from .settings import StudyConfig

# Fields the float model does not depend on.
_QAT_ONLY = {"qat_epochs", "qat_lr", "calib_batches"}


# -- data and models -------------------------------------------------------------------------------


def load_data(cfg: StudyConfig, progress: bool = False):
    """(train set, test set) at full resolution, through lowprec.config's builders (cached generators)."""
    from ..config import DataConfig, build_datasets

    data = DataConfig(
        problem=cfg.dataset,
        problem_params=dict(cfg.problem_params),
        resolution=cfg.resolution,
        n_train=cfg.n_train,
        n_test=cfg.n_test,
        data_seed=cfg.data_seed,
    )
    train, tests = build_datasets(data, progress)
    test = next(iter(tests.values()))
    # A time-series generator may hand back trajectories; the FNO papers' setting is u(t0) -> u(t1).
    train, test = (d.pairs() if not hasattr(d, "x") and hasattr(d, "pairs") else d for d in (train, test))
    return train, test


def check_factors(cfg: StudyConfig, train_set) -> None:
    """Every factor must subsample the grid uniformly, and the coarsest grid must hold the FNO's modes."""
    grid_kind = getattr(train_set, "grid", "nodes")
    for n in train_set.x.shape[2:]:
        cells = n - 1 if grid_kind == "nodes" else n
        bad = [f for f in cfg.factors if cells % int(f)]
        if bad:
            raise ValueError(
                f"resolution factor(s) {bad} do not divide the {grid_kind} grid of {n} points "
                f"({cells} cells): choose factors dividing {cells}, or a resolution such as "
                f"{'65 or 129' if grid_kind == 'nodes' else '256 or 1024'}."
            )
        coarsest = cells // max(cfg.factors) + (grid_kind == "nodes")
        if "n_modes" in model_kwargs(cfg.model, {"n_modes": cfg.n_modes}) and cfg.n_modes > coarsest:
            raise ValueError(
                f"n_modes={cfg.n_modes} does not fit the coarsest grid ({coarsest} points at factor "
                f"{max(cfg.factors)}); use n_modes <= {coarsest}, a finer resolution, or smaller factors."
            )


def build_solver(cfg: StudyConfig, train_set) -> nn.Module:
    """The study's model for ``train_set``'s channels and dimension, with unit-Gaussian normalizers attached."""
    from ..config import ModelConfig, build_model

    nodes = getattr(train_set, "grid", "nodes") == "nodes"
    torch.manual_seed(cfg.seed)
    # Non-periodic (node) grids get domain padding, as in neuraloperator's Darcy setting (for the models that pad).
    return build_model(
        ModelConfig(
            model=cfg.model,
            n_modes=(cfg.n_modes,),
            hidden_channels=cfg.width,
            n_layers=cfg.depth,
            domain_padding=0.1 if nodes else 0.0,
            patch_size=cfg.patch_size,
        ),
        train_set,
    )


def upsample(pred: torch.Tensor, grid, periodic: bool) -> torch.Tensor:
    """Linear interpolation of (B, C, *coarse) onto ``grid``: node grids end to end, periodic grids wrapping round.

    Coarse points are every r-th fine point, so they are reproduced exactly.
    """
    grid = tuple(grid)
    if tuple(pred.shape[2:]) == grid:
        return pred
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[pred.ndim - 2]
    if not periodic:
        return F.interpolate(pred, size=grid, mode=mode, align_corners=True)
    for axis in range(2, pred.ndim):  # repeat the first point at the end: the period's right end
        pred = torch.cat([pred, pred.narrow(axis, 0, 1)], dim=axis)
    out = F.interpolate(pred, size=tuple(n + 1 for n in grid), mode=mode, align_corners=True)
    return out[(slice(None), slice(None), *(slice(0, n) for n in grid))]


@torch.no_grad()
def evaluate_full(model: nn.Module, test_set, factor: int, batch_size: int = 50) -> dict:
    """MSE and mean relative L2 of ``model`` run on the test inputs subsampled by ``factor``,
    its predictions interpolated back to the full grid, against the full-resolution targets.

    Also ``interp_mse``: the MSE of the true coarse targets interpolated back, the floor
    that resolution reduction alone sets.
    """
    from ..train import relative_l2

    device = next(model.parameters()).device
    periodic = getattr(test_set, "grid", "nodes") == "periodic"
    index = (slice(None), slice(None)) + (slice(None, None, factor),) * (test_set.x.ndim - 2)
    was_training = model.training
    model.eval()
    sq, rel, floor, n = 0.0, [], 0.0, 0
    try:
        for start in range(0, len(test_set.x), batch_size):
            x = test_set.x[start : start + batch_size].to(device)
            y = test_set.y[start : start + batch_size].to(device)
            pred = upsample(model(x[index]).float(), y.shape[2:], periodic)
            err = (pred - y).flatten(1)
            sq += err.pow(2).sum().item()
            n += err.numel()
            rel.append(relative_l2(pred, y))
            floor += (upsample(y[index], y.shape[2:], periodic) - y).pow(2).sum().item()
    finally:
        model.train(was_training)
    return {"mse": sq / n, "rel_l2": torch.cat(rel).mean().item(), "interp_mse": floor / n}


# -- training --------------------------------------------------------------------------------------


def _float_identity(cfg: StudyConfig) -> dict:
    return {k: v for k, v in cfg.identity().items() if k not in _QAT_ONLY}


def check_float_dir(cfg: StudyConfig, out_dir: Path) -> None:
    """Refuse ``out_dir`` when it holds a float model trained with other settings (writes nothing).

    The Trainer checks its own settings on resume; the model's and the data's are checked here.
    """
    stamp = out_dir / "float.json"
    if not stamp.is_file():
        return
    saved, wanted = json.loads(stamp.read_text()), _float_identity(cfg)
    diffs = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in wanted.items() if saved.get(k) != v]
    if diffs:
        raise ValueError(
            f"{out_dir} holds a float model trained with other settings ({'; '.join(diffs)}); "
            "use the original settings, or another --out directory."
        )


def train_float(cfg: StudyConfig, train_set, test_set, out_dir: Path | None, progress: bool = False):
    """Train (or resume, or load) the float model with lowprec's Trainer; returns (model, history)."""
    from ..train import TrainConfig, Trainer
    from ..train.checkpoint import has_checkpoint

    if out_dir is not None:
        check_float_dir(cfg, out_dir)
        stamp = out_dir / "float.json"
        if not stamp.is_file():
            out_dir.mkdir(parents=True, exist_ok=True)
            stamp.write_text(json.dumps(_float_identity(cfg), indent=1) + "\n")
    model = build_solver(cfg, train_set)
    tc = TrainConfig(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=cfg.seed,
        device="cpu",
        progress=progress,
        loss="l2",
    )
    trainer = Trainer(model, train_set, {"test": test_set}, tc, out_dir)
    if out_dir is not None and has_checkpoint(out_dir):
        trainer.resume(out_dir)
    if trainer.epoch < cfg.epochs:
        trainer.fit()
    return trainer.model, trainer.history


def run_point(
    cfg: StudyConfig,
    float_model: nn.Module,
    train_set,
    test_set,
    preset: str,
    factor: int,
    progress: bool = False,
    return_model: bool = False,
):
    """Quantize a copy of ``float_model`` with ``preset``, fine-tune at 1/``factor`` resolution, score at full.

    Returns the point (a dict, one JSONL line), and the fine-tuned model with ``return_model``.
    """
    from ..train import TrainConfig, Trainer

    config = get_config(preset)
    start = time.perf_counter()
    coarse = train_set.subsample(factor) if factor > 1 else train_set
    model = quantize_(copy.deepcopy(float_model), config)
    if not config.is_float:
        calibrate(model, coarse, n_batches=cfg.calib_batches, batch_size=cfg.batch_size)
    if cfg.qat_epochs:
        # No weight decay: it would pull the log-scales towards 0 (scales towards 1).
        tc = TrainConfig(
            epochs=cfg.qat_epochs,
            batch_size=cfg.batch_size,
            lr=cfg.qat_lr,
            weight_decay=0.0,
            seed=cfg.seed + 1,
            device="cpu",
            progress=progress,
            loss="l2",
        )
        Trainer(model, coarse, {}, tc).fit()
    scores = evaluate_full(model, test_set, factor)
    grid = tuple(coarse.x.shape[2:])
    cost = bops(model, (1, coarse.x.shape[1], *grid))
    point = {
        "model": cfg.model,
        "dataset": cfg.dataset,
        "preset": config.name,
        "factor": int(factor),
        "resolution": "x".join(map(str, grid)),
        "w_bits": config.weight_bits,
        "a_bits": config.activation_bits,
        **scores,
        "bops": cost.bops,
        "macs": cost.macs,
        "seconds": time.perf_counter() - start,
    }
    return (point, model) if return_model else point


# -- the sweep file --------------------------------------------------------------------------------


def open_sweep(path: Path, cfg: StudyConfig) -> list[dict]:
    """Points already in ``path`` (none for a new file); refuses a file from another configuration.

    Writes nothing: the header of a new file is written by :func:`start_sweep` once every
    setting has been checked, so that a rejected run leaves the folder as it was.
    """
    if not path.is_file() or not path.read_text().strip():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not lines or "header" not in lines[0]:
        raise ValueError(f"{path} is not a lowprec sweep file (no header line); point --out at a new directory.")
    saved, current = lines[0]["header"], cfg.identity()
    diffs = [f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in current if saved.get(k) != current[k]]
    diffs += [f"{k}: {saved[k]!r} -> (absent)" for k in saved if k not in current]
    if diffs:
        raise ValueError(
            f"sweep file {path} was written by a different configuration ({'; '.join(diffs)}). "
            "Rerun with the original settings to resume it, or choose another --out directory."
        )
    return lines[1:]


def start_sweep(path: Path, cfg: StudyConfig) -> None:
    """Write the header line of a new sweep file (an existing one is left alone)."""
    if not path.is_file() or not path.read_text().strip():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"header": cfg.identity()}) + "\n")


def append_point(path: Path, point: dict) -> None:
    """Append one JSON line and fsync, so a killed sweep keeps every finished point."""
    with open(path, "a") as f:
        f.write(json.dumps(point) + "\n")
        f.flush()
        os.fsync(f.fileno())


def pareto_front(points: list[dict], x: str = "bops", y: str = "mse") -> list[dict]:
    """Points no other point beats on both ``x`` and ``y`` (lower is better), by increasing ``x``."""
    front, best = [], math.inf
    for p in sorted(points, key=lambda p: (p[x], p[y])):
        if p[y] < best:
            front.append(p)
            best = p[y]
    return front


COLUMNS = [
    ("model", "model", ""),
    ("dataset", "data", ""),
    ("preset", "preset", ""),
    ("factor", "r", "d"),
    ("resolution", "grid", ""),
    ("mse", "MSE", ".3e"),
    ("rel_l2", "rel L2", ".4f"),
    ("interp_mse", "interp. floor", ".2e"),
    ("bops", "BOPs", ".3e"),
    ("front", "front", ""),
]


def table(points: list[dict]) -> str:
    from ..report import format_table

    front = {(p["preset"], p["factor"]) for p in pareto_front(points)}
    rows = [
        {**p, "front": "*" if (p["preset"], p["factor"]) in front else ""}
        for p in sorted(points, key=lambda p: (p["factor"], -p["bops"]))
    ]
    return format_table(rows, COLUMNS)


def plot_front(points: list[dict], path: Path, title: str = "") -> Path:
    """Log-log plot of MSE against BOPs: a colour per preset, a marker per factor, the front as a line."""
    from ..report import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    presets = list(dict.fromkeys(p["preset"] for p in points))
    markers = dict(zip(sorted({p["factor"] for p in points}), "os^Dvp*h"))
    colors = {name: plt.cm.viridis(k / max(len(presets) - 1, 1)) for k, name in enumerate(presets)}
    for p in points:
        ax.loglog(p["bops"], p["mse"], markers[p["factor"]], color=colors[p["preset"]], ms=8, alpha=0.85)
    front = pareto_front(points)
    ax.loglog([p["bops"] for p in front], [p["mse"] for p in front], "k--", lw=1.2, label="Pareto front")
    ax.loglog([p["bops"] for p in front], [p["mse"] for p in front], "o", mfc="none", mec="red", ms=14, mew=1.5)
    for name in presets:
        ax.plot([], [], "s", color=colors[name], label=name)
    for f, m in markers.items():
        ax.plot([], [], m, color="gray", label=f"resolution / {f}")
    ax.set(xlabel="bit operations per sample (BOPs)", ylabel="test MSE at full resolution", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return save_figure(fig, path)


@dataclass
class SweepResult:
    points: list
    front: list
    paths: dict = field(default_factory=dict)
    float_history: list = field(default_factory=list)


def run_sweep(cfg: StudyConfig, out_dir: str | Path, progress: bool = False, echo=print) -> SweepResult:
    """Run (or resume) the sweep in ``out_dir``: ``pareto.jsonl``, ``front.jsonl``, ``pareto.md``, ``pareto.png``."""
    out = Path(out_dir)
    path = out / "pareto.jsonl"
    done = open_sweep(path, cfg)
    finished = {(p["preset"], p["factor"]) for p in done}
    train_set, test_set = load_data(cfg, progress)
    check_factors(cfg, train_set)
    check_float_dir(cfg, out / "float")
    start_sweep(path, cfg)
    todo = [
        (get_config(p).name, int(f))
        for f in cfg.factors
        for p in cfg.presets
        if (get_config(p).name, int(f)) not in finished
    ]
    points = list(done)
    history = []
    if todo:
        float_model, history = train_float(cfg, train_set, test_set, out / "float", progress)
        echo(
            f"float {cfg.model} on {cfg.dataset}: {len(history)} epochs, test rel L2 {history[-1]['test_l2']:.4f}"
            if history
            else "float model loaded"
        )
        for preset, factor in todo:
            point = run_point(cfg, float_model, train_set, test_set, preset, factor, progress)
            append_point(path, point)
            points.append(point)
            echo(
                f"  {preset:>6} r={factor}: MSE {point['mse']:.3e}  rel L2 {point['rel_l2']:.4f}  "
                f"BOPs {point['bops']:.3e}  ({point['seconds']:.0f} s)"
            )
    selected = [
        p
        for p in points
        if p["preset"] in {get_config(q).name for q in cfg.presets} and p["factor"] in {int(f) for f in cfg.factors}
    ]
    front = pareto_front(selected)
    front_path = out / "front.jsonl"
    front_path.write_text("".join(json.dumps(p) + "\n" for p in front))
    (out / "pareto.md").write_text(table(selected) + "\n")
    plot = plot_front(selected, out / "pareto.png", f"{cfg.model} on {cfg.dataset} ({cfg.resolution} points/axis)")
    return SweepResult(
        selected, front, {"points": path, "front": front_path, "table": out / "pareto.md", "plot": plot}, history
    )
