"""``lowprec bench``: time a training step (or one spectral layer) per policy and backend, print, save JSON and PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._catalog import PRECISION_PRESETS
from .._threads import add_threads_flag
from .settings import NEURALOP_PRECISIONS, BenchConfig

DESCRIPTION = """\
Time one training step of an FNO (forward, backward, Adam) under each precision
policy and spectral backend, over the grid and batch sizes given, with warm-up
and several repeats; report the median time, peak memory (CUDA) or activations
saved for backward (any device), whether the loss stayed finite, and the
relative error of one forward pass against fp64. With neuraloperator installed
(pip install 'lowprec[compare]') its FNO runs in the same configuration in the
same process, and every row shows its speed-up and memory against
neuraloperator in fp32. --mode layer times one spectral layer alone.

The defaults are a GPU-sized configuration (FNO 2D, width 64, 4 layers, 32
modes, batch 8, batch 4 at 1024^2); on a CPU pass small sizes, e.g.
  lowprec bench --device cpu --grids 32,64 --batch 4 --width 16 --layers 2 --modes 8
"""


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip() and v.strip() != "none")


def add_subcommands(subparsers) -> None:
    defaults = BenchConfig  # the class's field defaults: an instance would check the policies, importing torch
    p = subparsers.add_parser(
        "bench",
        help="time a training step or a spectral layer per policy and backend",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--mode",
        choices=("step", "layer"),
        default="step",
        help="step: FNO training step; layer: one spectral layer, forward and backward (default: step)",
    )
    p.add_argument(
        "--model",
        choices=("fno", "sfno", "gino"),
        default="fno",
        help="fno; sfno (spherical layers on a Gauss grid of N x 2N; needs --dim 2); gino (latent grid N^3, "
        "14 N^2 surface points; needs --dim 3; --mode layer times its GNO layer)",
    )
    p.add_argument(
        "--grids",
        type=_ints,
        default=defaults.grids,
        metavar="N,N,...",
        help="grid points per axis (default: 128,256,512,1024)",
    )
    p.add_argument(
        "--batch",
        type=_ints,
        default=None,
        metavar="B[,B,...]",
        help="batch size, one for all grids or one per grid (default: 8, and 4 from 1024 points)",
    )
    p.add_argument("--dim", type=int, default=defaults.dim, help="spatial dimensions, 1-3 (default: 2)")
    p.add_argument("--width", type=int, default=defaults.width, help="hidden channels (default: 64)")
    p.add_argument("--layers", type=int, default=defaults.layers, help="Fourier layers (default: 4)")
    p.add_argument("--modes", type=int, default=defaults.modes, help="modes per axis (default: 32)")
    p.add_argument("--factorization", choices=("dense", "tucker", "cp"), default="dense")
    p.add_argument("--rank", type=float, default=defaults.rank, help="factorization rank (default: 0.05)")
    p.add_argument(
        "--policies",
        type=_names,
        default=defaults.policies,
        metavar="P,P,...",
        help=f"precision policies (default: {','.join(defaults.policies)}; presets: {', '.join(PRECISION_PRESETS)})",
    )
    p.add_argument(
        "--backends",
        type=_names,
        default=(),
        metavar="B,B,...",
        help="run every policy with each of these backends (auto, fft, dft); default: each policy's own",
    )
    p.add_argument(
        "--compare",
        type=_names,
        default=defaults.compare,
        metavar="P,P,...",
        help=f"neuraloperator precisions to run beside ours ({', '.join(NEURALOP_PRECISIONS)}, "
        "or none; default: all four, when neuraloperator is installed)",
    )
    p.add_argument("--compile", action="store_true", help="also run our model under torch.compile")
    p.add_argument("--warmup", type=int, default=defaults.warmup, help="untimed steps first (default: 3)")
    p.add_argument("--repeats", type=int, default=defaults.repeats, help="timed steps (default: 10)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default: auto)")
    add_threads_flag(p)
    p.add_argument("--no-accuracy", action="store_true", help="skip the forward-pass error against fp64")
    p.add_argument(
        "--recompute",
        choices=("off", "on", "both"),
        default="off",
        help="our FNO with per-stage recomputation (FNO(recompute=True)): off, on, or both rows "
        "(step mode; default: off)",
    )
    p.add_argument(
        "--memory-report",
        action="store_true",
        help="print which module saved which tensors for the backward pass, per row (also in the JSON)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        default=None,
        metavar="PATH.json",
        help="where to write the JSON; the PNG goes beside it (default: bench_<mode>_<device>.json)",
    )
    p.set_defaults(func=_bench)


def _bench(args) -> int:
    from .report import bench_table, memory_tables, save
    from .run import resolve_device, run_bench

    # Batch 8, halved at 1024^2 to keep one step's saved activations within one GPU's memory.
    batches = args.batch or tuple(4 if g >= 1024 else 8 for g in args.grids)
    config = BenchConfig(
        mode=args.mode,
        model=args.model,
        grids=args.grids,
        batches=batches,
        dim=args.dim,
        width=args.width,
        layers=args.layers,
        modes=args.modes,
        factorization=args.factorization,
        rank=args.rank,
        policies=args.policies,
        backends=args.backends,
        compare=args.compare,
        compile=args.compile,
        warmup=args.warmup,
        repeats=args.repeats,
        device=args.device,
        threads=args.threads,
        accuracy=not args.no_accuracy,
        seed=args.seed,
        recompute=args.recompute,
        memory_report=args.memory_report,
    )
    out = args.out or f"bench_{config.mode}_{resolve_device(config.device).type}.json"
    from ..config import check_writable

    check_writable(Path(out).resolve().parent, "--out")
    result = run_bench(config, command=config.command(out), log=lambda line: print(line, file=sys.stderr, flush=True))
    print(bench_table(result))
    if config.memory_report:
        print(memory_tables(result))
    json_path, png_path = save(result, out)
    print(f"\nwrote {json_path} and {png_path}")
    return 0
