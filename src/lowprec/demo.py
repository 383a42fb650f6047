"""``lowprec demo``: Darcy flow, one FNO trained in full precision and in the reduced-precision
policies that pay off on this machine, side by side.

Everything it needs is generated here (the Darcy solver in
:mod:`lowprec.data.darcy`, cached on disk). Every run starts from the same
weights and sees the same batches, so the only difference is the precision
policy. The test sets hold the same problems at the training resolution and
at twice it, so the table also shows zero-shot super-resolution.

Which policies run (:func:`demo_policies`): on a GPU, ``full``, ``mixed`` (fp16
tensor cores, FFT in fp32) and ``bf16`` (bf16 activations end to end, spectral
transforms as matrix products). On a CPU with native bf16 products
(AVX512-BF16, AMX, Arm BF16), ``full`` and ``bf16``. On a CPU without them no
reduced-precision policy is faster (fp16 has no fast CPU kernels and its FFT is
emulated; bf16 is widened to fp32), so ``mixed`` is shown for its accuracy and
activation memory, which carry over to a GPU, and its time is labelled as not
doing so.

Sized to finish in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from ._device import cpu_native_bf16, describe_device, fast_policies, resolve_device
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
# Tiny: the whole demo in seconds (tests, a first look); the data is the same problem.
SIZES = {
    "default": {},
    "tiny": dict(
        resolution=17,
        test_resolutions=[33],
        n_train=20,
        n_test=8,
        n_modes=[6],
        hidden_channels=16,
        n_layers=2,
        epochs=2,
        batch_size=5,
    ),
}

COLUMNS = [
    ("policy", "policy", ""),
    ("l2", "test L2", ".4f"),
    ("l2_hi", "test L2 {hi} (zero-shot)", ".4f"),
    ("h1", "test H1", ".4f"),
    ("ms_per_step", "ms/step", ".1f"),
    ("samples_per_s", "samples/s", ".1f"),
    ("seconds", "time s (train+eval)", ".1f"),
    ("activation_mib", "saved activations MiB", ".2f"),
    ("peak_memory_mib", "peak GPU MiB", ".0f"),
]


def demo_policies(device: torch.device, native_bf16="detect") -> tuple[tuple[str, ...], str]:
    """The policies the demo compares on ``device``, ``full`` first, and a sentence saying why.

    ``native_bf16``: :func:`lowprec._device.cpu_native_bf16`'s answer (default: detect it).
    """
    if device.type == "cuda":
        return ("full", *fast_policies(device)), (
            "on a GPU: mixed (fp16 tensor cores, FFT in fp32) and bf16 (bf16 end to end, DFT backend) against full."
        )
    if native_bf16 == "detect":
        native_bf16 = cpu_native_bf16()
    fast = fast_policies(device, native_bf16)
    if fast:
        how = "a bf16 matrix product measured faster than fp32" if native_bf16 == "measured" else native_bf16
        return ("full", *fast), (
            f"this CPU multiplies bf16 natively ({how}), so the policy that can be faster here is bf16: "
            "activations in bf16 end to end, spectral transforms as matrix products. fp16 ('mixed') has no "
            "fast CPU kernels and is left to GPUs."
        )
    return ("full", "mixed"), (
        "this CPU has no native bf16 or fp16 products (no AVX512-BF16, AMX or Arm BF16), so no reduced-precision "
        "policy is faster here than full. 'mixed' is shown for its test error and activation memory, which carry "
        "over to a GPU; its time does not (fp16 runs on emulated kernels here)."
    )


def run_demo(overrides: dict = None, policies=None, echo=print, size: str = "default") -> dict:
    """Train the demo FNO under each policy; print the table, write plots and results.json.

    ``overrides``: configuration keys replacing the demo's (e.g. ``{"epochs": 2}``), applied after
    ``size`` (a key of :data:`SIZES`). ``policies``: default :func:`demo_policies` for the device.
    Returns the results dict written to ``results.json``.
    """
    if size not in SIZES:
        raise ValueError(f"demo size {size!r} is not one of {', '.join(SIZES)}.")
    cfg = make_config({**DEMO, **SIZES[size], **(overrides or {})})
    out = Path(cfg.out_dir)
    device = resolve_device(cfg.train.device)
    reason = "policies chosen on the command line."
    if policies is None:
        policies, reason = demo_policies(device)
    for policy in policies:
        get_policy(policy)  # an unknown name fails here, not after the first run has trained
    res, hi = cfg.data.resolution, (cfg.data.test_resolutions or (cfg.data.resolution,))[-1]
    echo(
        f"lowprec demo on {describe_device(device)}\n"
        f"Darcy flow, train {cfg.data.n_train} samples at {res}x{res}, test at {res}x{res} and "
        f"{hi}x{hi}; FNO width {cfg.model.hidden_channels}, {cfg.model.n_layers} layers, "
        f"{cfg.model.n_modes} modes; {cfg.train.epochs} epochs; policies: {', '.join(policies)}\n"
        f"why these: {reason}"
    )
    progress = cfg.train.progress
    train_set, test_sets = build_datasets(cfg.data, progress)
    names = list(test_sets)
    steps_per_epoch = -(-len(train_set.x) // cfg.train.batch_size)
    rows, histories, models = [], {}, {}
    for policy in policies:
        torch.manual_seed(cfg.train.seed)
        model = build_model(cfg.model, train_set, cfg.data.normalize)
        trainer = Trainer(model, train_set, test_sets, replace(cfg.train, precision=policy), out / policy)
        start = time.perf_counter()
        history = trainer.fit()
        seconds = time.perf_counter() - start
        last = history[-1]
        # The first epoch pays for warm-up (allocator, kernel selection); later epochs are the rate.
        timed = history[1:] or history
        epoch_seconds = sorted(r["seconds"] for r in timed)[len(timed) // 2]
        rows.append(
            {
                "policy": policy,
                "l2": last[f"{names[0]}_l2"],
                "l2_hi": last[f"{names[-1]}_l2"],
                "h1": last[f"{names[0]}_h1"],
                "ms_per_step": 1e3 * epoch_seconds / steps_per_epoch,
                "samples_per_s": len(train_set.x) / epoch_seconds,
                "seconds": seconds,
                "activation_mib": last["activation_mib"],
                "peak_memory_mib": max((r["peak_memory_mib"] or 0) for r in history) or None,
            }
        )
        histories[policy], models[policy] = history, trainer.model
    columns = [
        (k, h.format(hi=f"{hi}x{hi}"), f) for k, h, f in COLUMNS if k != "peak_memory_mib" or device.type == "cuda"
    ]
    echo("\n" + format_table(rows, columns))
    full = rows[0]
    for low in rows[1:]:
        ratio = low["l2"] / full["l2"]
        speed = full["ms_per_step"] / low["ms_per_step"]
        echo(
            f"{low['policy']} vs {full['policy']}: test error x{ratio:.3f} "
            f"({'within' if ratio <= 1.10 else 'outside'} 10%), saved activations "
            f"x{low['activation_mib'] / full['activation_mib']:.2f}, "
            f"{f'{speed:.2f}x faster' if speed >= 1 else f'{1 / speed:.2f}x slower'} per step"
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
    curves_png = plot_history(histories, out / "curves.png", f"lowprec demo: {' vs '.join(policies)}")
    results = {
        "config": cfg.to_dict(),
        "device": str(device),
        "device_name": describe_device(device),
        "policies_reason": reason,
        "torch": torch.__version__,
        "rows": rows,
        "error_ratio": rows[-1]["l2"] / full["l2"],
        "plots": [str(pred_png), str(curves_png)],
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    echo(f"\nwrote {pred_png}, {curves_png} and {out / 'results.json'}")
    return results
