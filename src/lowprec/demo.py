"""``lowprec demo``: Darcy flow, one FNO trained in full and in mixed precision, side by side.

Everything it needs is generated here (the Darcy solver in
:mod:`lowprec.data.darcy`, cached on disk). Both runs start from the same
weights and see the same batches, so the only difference is the precision
policy. The test sets hold the same problems at the training resolution and
at twice it, so the table also shows zero-shot super-resolution.

Sized to finish in a few minutes on 2 CPU cores. On a CPU the fp16 parts run
slowly (no native fp16 kernels; the FFT is emulated by rounding through
fp16), so the CPU times say nothing about GPU speed; the errors and the
activation memory are meaningful everywhere.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from .config import build_datasets, build_model, make_config
from .precision import get_policy
from .report import format_table, plot_history, plot_prediction
from .train import Trainer

DEMO = dict(
    problem="darcy",
    resolution=33,
    test_resolutions=[65],
    n_train=200,
    n_test=50,
    data_seed=0,
    model="fno",
    n_modes=[12],
    hidden_channels=32,
    n_layers=4,
    domain_padding=0.1,
    epochs=12,
    batch_size=10,
    lr=3e-3,
    weight_decay=1e-4,
    scheduler="cosine",
    loss="l2",
    seed=0,
    out_dir="lowprec-demo",
)
POLICIES = ("full", "mixed")

COLUMNS = [
    ("policy", "policy", ""),
    ("l2", "test L2", ".4f"),
    ("l2_hi", "test L2 {hi} (zero-shot)", ".4f"),
    ("h1", "test H1", ".4f"),
    ("seconds", "train time s", ".1f"),
    ("samples_per_s", "samples/s", ".1f"),
    ("activation_mib", "activations MiB", ".2f"),
    ("peak_memory_mib", "peak GPU MiB", ".0f"),
]


def run_demo(overrides: dict = None, policies=POLICIES, echo=print) -> dict:
    """Train the demo FNO under each policy; print the table, write plots and results.json.

    ``overrides``: configuration keys replacing the demo's (e.g. ``{"epochs": 2}``).
    Returns the results dict written to ``results.json``.
    """
    cfg = make_config({**DEMO, **(overrides or {})})
    out = Path(cfg.out_dir)
    res, hi = cfg.data.resolution, (cfg.data.test_resolutions or (cfg.data.resolution,))[-1]
    echo(
        f"lowprec demo: Darcy flow, train {cfg.data.n_train} samples at {res}x{res}, test at {res}x{res} and "
        f"{hi}x{hi}; FNO width {cfg.model.hidden_channels}, {cfg.model.n_layers} layers, "
        f"{cfg.model.n_modes} modes; {cfg.train.epochs} epochs; policies: {', '.join(policies)}"
    )
    progress = cfg.train.progress
    train_set, test_sets = build_datasets(cfg.data, progress)
    names = list(test_sets)
    rows, histories, models = [], {}, {}
    for policy in policies:
        torch.manual_seed(cfg.train.seed)
        model = build_model(cfg.model, train_set, cfg.data.normalize)
        trainer = Trainer(model, train_set, test_sets, replace(cfg.train, precision=policy), out / policy)
        start = time.perf_counter()
        history = trainer.fit()
        seconds = time.perf_counter() - start
        last = history[-1]
        rows.append(
            {
                "policy": policy,
                "l2": last[f"{names[0]}_l2"],
                "l2_hi": last[f"{names[-1]}_l2"],
                "h1": last[f"{names[0]}_h1"],
                "seconds": seconds,
                "samples_per_s": sum(r["samples_per_s"] for r in history) / len(history),
                "activation_mib": last["activation_mib"],
                "peak_memory_mib": max((r["peak_memory_mib"] or 0) for r in history) or None,
            }
        )
        histories[policy], models[policy] = history, trainer.model
    columns = [(k, h.format(hi=f"{hi}x{hi}"), f) for k, h, f in COLUMNS]
    table = format_table(rows, columns)
    device = trainer.device
    echo("\n" + table)
    full, low = rows[0], rows[-1]
    ratio = low["l2"] / full["l2"]
    echo(
        f"\n{low['policy']} vs {full['policy']}: test error x{ratio:.3f} "
        f"({'within' if ratio <= 1.10 else 'outside'} 10%), activation memory x"
        f"{low['activation_mib'] / full['activation_mib']:.2f}, time x{low['seconds'] / full['seconds']:.2f}"
    )
    if device.type == "cpu":
        echo(
            "note: on a CPU, fp16 matrix products and convolutions have no fast kernels and the fp16 FFT is "
            "emulated, so these times do not predict GPU speed; errors and activation memory do carry over."
        )
    # Plots: one sample of the high-resolution test set, and the learning curves.
    hi_set = test_sets[names[-1]]
    x, y = hi_set.x[:1].to(device), hi_set.y[:1]
    predictions = {}
    for policy, model in models.items():
        model.eval()
        with torch.no_grad(), get_policy(policy):
            predictions[policy] = model(x)[0].float().cpu()
    pred_png = plot_prediction(
        hi_set.x[0], y[0], predictions, out / "prediction.png", f"Darcy flow at {hi}x{hi} (trained at {res}x{res})"
    )
    curves_png = plot_history(histories, out / "curves.png", "lowprec demo: full vs mixed precision")
    results = {
        "config": cfg.to_dict(),
        "device": str(device),
        "torch": torch.__version__,
        "rows": rows,
        "error_ratio": ratio,
        "plots": [str(pred_png), str(curves_png)],
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    echo(f"\nwrote {pred_png}, {curves_png} and {out / 'results.json'}")
    return results
