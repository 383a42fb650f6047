"""``lowprec quantize`` (one point) and ``lowprec pareto`` (a resumable sweep).

The top-level CLI registers both through :func:`add_subcommands`. Every field of
:class:`lowprec.quant.settings.StudyConfig` is a flag (``--qat-epochs 3``). Both commands
keep the float model in ``OUT/float/`` (trained once; reused when the settings match).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path

from .._catalog import MODELS
from .._threads import add_threads_flag
from .config import PRESETS

_HELP = {
    "model": f"a registered model: {', '.join(MODELS)} (lowprec.models.available_models())",
    "dataset": "data generator from lowprec.data.GENERATORS (darcy, burgers, ...)",
    "problem_params": "generator parameters, KEY=VALUE (e.g. viscosity=0.01)",
    "resolution": "full grid points per axis (node grids: factors must divide resolution-1, e.g. 65)",
    "n_train": "training samples",
    "n_test": "test samples",
    "data_seed": "seed of the generated training data (test: +1)",
    "width": "FNO hidden channels / UNet first-level features / Transformer embedding width",
    "depth": "FNO layers / UNet down-sampling steps / Transformer blocks",
    "n_modes": "FNO Fourier modes per axis (at most the coarsest grid)",
    "patch_size": "Transformer patch size (points per axis)",
    "epochs": "float training epochs",
    "lr": "float training learning rate",
    "qat_epochs": "fine-tuning epochs of every point (QAT; the float preset gets the same)",
    "qat_lr": "fine-tuning learning rate",
    "batch_size": "batch size of training and fine-tuning",
    "calib_batches": "batches observed by calibration",
    "seed": "seed of weights and batch order",
    "presets": f"quantization presets ({', '.join(PRESETS)})",
    "factors": "resolution reduction factors (inputs and outputs subsampled by each)",
}


def _add_study_flags(parser: argparse.ArgumentParser, swept: bool) -> None:
    from .settings import StudyConfig

    hints = typing.get_type_hints(StudyConfig)
    group = parser.add_argument_group("study settings (defaults in brackets)")
    for f in dataclasses.fields(StudyConfig):
        if f.name in ("presets", "factors") and not swept:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{_HELP.get(f.name, '')} [{f.default if f.default != () else 'none'}]"
        if f.name == "problem_params":
            group.add_argument(
                flag, dest=f.name, nargs="+", metavar="KEY=VALUE", default=argparse.SUPPRESS, help=help_text
            )
        elif f.name == "presets":
            group.add_argument(flag, nargs="+", default=argparse.SUPPRESS, metavar="PRESET", help=help_text)
        elif f.name == "factors":
            group.add_argument(flag, nargs="+", type=int, default=argparse.SUPPRESS, metavar="R", help=help_text)
        else:
            group.add_argument(
                flag,
                dest=f.name,
                type=hints[f.name],
                default=argparse.SUPPRESS,
                metavar=f.name.split("_")[-1].upper(),
                help=help_text,
            )


def _study_config(args):
    import yaml

    from .settings import StudyConfig

    names = {f.name for f in dataclasses.fields(StudyConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    if "problem_params" in values:
        pairs = []
        for item in values["problem_params"]:
            key, sep, text = item.partition("=")
            if not sep:
                raise ValueError(f"--problem-params takes KEY=VALUE pairs, got {item!r}.")
            pairs.append((key.strip(), yaml.safe_load(text)))
        values["problem_params"] = tuple(pairs)
    for key in ("presets", "factors"):
        if key in values:
            values[key] = tuple(values[key])
    return StudyConfig(**values)


def _check_start(cfg, out) -> None:
    """Names, folders and the data set checked before any data is generated or model trained."""
    from ..config import DataConfig, check_data, check_writable

    check_writable(out, "--out")
    check_data(
        DataConfig(
            problem=cfg.dataset,
            resolution=cfg.resolution,
            n_train=cfg.n_train,
            n_test=cfg.n_test,
            data_seed=cfg.data_seed,
        )
    )


def run_quantize(args) -> int:
    """One point: float model (trained or reused), QAT at 1/factor resolution, scores, cost table, int8 check."""
    import torch

    from ..report import format_table
    from .bops import bops
    from .config import get_config
    from .int8 import compare_int8, latency_table
    from .study import check_factors, evaluate_full, load_data, run_point, train_float

    cfg = _study_config(args)
    config = get_config(args.preset)
    cfg = dataclasses.replace(cfg, presets=(config.name,), factors=(args.factor,))
    out = Path(args.out)
    _check_start(cfg, out)
    train_set, test_set = load_data(cfg, args.progress)
    check_factors(cfg, train_set)
    float_model, history = train_float(cfg, train_set, test_set, out / "float", args.progress)
    base = evaluate_full(float_model, test_set, 1)
    print(
        f"float {cfg.model} on {cfg.dataset}, {len(history)} epochs: test MSE {base['mse']:.4e}, "
        f"rel L2 {base['rel_l2']:.4f} (full resolution, before fine-tuning)"
    )
    point, model = run_point(
        cfg, float_model, train_set, test_set, config.name, args.factor, args.progress, return_model=True
    )
    print(
        f"{config.name} at 1/{args.factor} resolution ({point['resolution']}): test MSE {point['mse']:.4e}, "
        f"rel L2 {point['rel_l2']:.4f} at full resolution (interpolation floor {point['interp_mse']:.2e}); "
        f"{point['bops']:.3e} BOPs per sample"
    )
    coarse = train_set.subsample(args.factor) if args.factor > 1 else train_set
    report = bops(model, (1, coarse.x.shape[1], *coarse.x.shape[2:]))
    print("\n" + report.table())
    result = {"point": point, "float": base, "cost": report.to_dict()}
    if args.int8:
        x = (test_set.subsample(args.factor) if args.factor > 1 else test_set).x[: args.int8_batch]
        check = compare_int8(model, x)
        print(
            f"\nint8 kernels (torch._int_mm) in {len(check['converted'])} Linear/Conv layers; max |int8 - "
            f"fake-quant| / max |fake-quant| = {check['max_rel_diff']:.2e} on a batch of {len(x)}"
        )
        print(
            format_table(
                [{k: v * 1e3 for k, v in check["seconds"].items()}],
                [
                    ("float", "whole model fp32 ms", ".1f"),
                    ("fake", "fake-quant ms", ".1f"),
                    ("int8", "int8 Linear/Conv ms", ".1f"),
                ],
            )
        )
        print(latency_table(check))
        result["int8"] = check
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"quantize_{config.name}_r{args.factor}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    torch.save(model.state_dict(), stem.with_suffix(".pt"))
    print(f"\nwrote {stem.with_suffix('.json')} and {stem.with_suffix('.pt')}")
    return 0


def run_pareto(args) -> int:
    """A resumable sweep over presets x resolution factors; JSONL, front, table and plot in --out."""
    from .study import run_sweep, table

    cfg = _study_config(args)
    _check_start(cfg, args.out)
    result = run_sweep(cfg, args.out, progress=args.progress)
    print("\n" + table(result.points))
    span = result.front[-1]["bops"] / result.front[0]["bops"] if result.front else float("nan")
    print(f"\nPareto front: {len(result.front)} of {len(result.points)} points, spanning {span:.0f}x in BOPs.")
    print("wrote " + ", ".join(str(p) for p in result.paths.values()))
    return 0


def add_subcommands(subparsers) -> None:
    """Register ``quantize`` and ``pareto`` on the top-level CLI's subparsers."""
    q = subparsers.add_parser(
        "quantize",
        help="quantization-aware training of one model at one preset and resolution",
        description="Train (or reuse) a float model, quantize it with a preset, calibrate, fine-tune (QAT) at "
        "1/FACTOR resolution, and score it against the full-resolution test targets (predictions "
        "interpolated back). Prints the per-layer MAC/BOP table; --int8 also runs the Linear/Conv "
        "layers on int8 kernels, checks them against the fake-quantized model and times them.",
        epilog="example: lowprec quantize --model fno --dataset darcy --preset w8a8 --factor 2 --int8 --out runs/q",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    q.add_argument("--preset", default="w8a8", help=f"quantization preset: {', '.join(PRESETS)}")
    q.add_argument("--factor", type=int, default=1, help="resolution reduction factor (1, 2, 4, 8)")
    q.add_argument("--int8", action="store_true", help="convert Linear/Conv layers to int8 kernels, check and time")
    q.add_argument("--int8-batch", type=int, default=16, help="test samples used by the int8 check")
    q.add_argument("--out", default="runs/quantize", help="output directory (the float model goes in OUT/float)")
    q.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bars (on a terminal; plain lines in a file or pipe)",
    )
    add_threads_flag(q)
    _add_study_flags(q, swept=False)
    q.set_defaults(func=run_quantize)

    p = subparsers.add_parser(
        "pareto",
        help="sweep quantization presets x resolution factors; Pareto front of error against BOPs",
        description="Train the float model once, then for every preset and resolution factor: quantize, "
        "calibrate, fine-tune at that resolution and score at full resolution. Appends each point to "
        "OUT/pareto.jsonl (a rerun skips finished points; a different configuration is refused), "
        "then writes OUT/front.jsonl, OUT/pareto.md and the log-log plot OUT/pareto.png.",
        epilog="example: lowprec pareto --model fno --dataset darcy --factors 1 2 4 8 --out runs/pareto-fno-darcy",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default="runs/pareto", help="output directory")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bars (on a terminal; plain lines in a file or pipe)",
    )
    add_threads_flag(p)
    _add_study_flags(p, swept=True)
    p.set_defaults(func=run_pareto)
