"""``lowprec analyze``: discretization error against precision error for a model, with a plot and JSON."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

DESCRIPTION = """\
Measure, for one model and one family of inputs, the discretization error across
grid resolutions (output at N against the output at the finest N, with the
fitted convergence rate) and the precision error of every policy against the
same weights in fp64 (per block and in total), the resolution where the two
cross, and whether Tu et al.'s claim (precision error <= discretization error)
holds. Writes study.json and errors.png to --out.

The model is a trained run (--run DIR with config.yaml and checkpoint.pt), a
configuration (--config, untrained), or a fresh FNO (--modes/--width/--layers).
Inputs are the run's test set, a dataset file (--data), or a synthetic family
(--inputs smooth|jump|bandlimited; --decay sets the smooth family's spectral
decay). Examples:
  lowprec analyze --inputs jump --resolutions 16,32,64,128
  lowprec analyze --run runs/darcy --advise --tolerance 0.1
"""


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def add_subcommands(subparsers) -> None:
    # Nothing here imports torch: building the parser stays cheap; the defaults resolve in run_analyze.
    p = subparsers.add_parser(
        "analyze",
        help="precision error against discretization error, per layer; advisor",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--run", help="trained run directory (config.yaml, checkpoint.pt)")
    src.add_argument("--config", help="YAML configuration: builds its (untrained) model and data")
    p.add_argument("--data", help="dataset file (.pt/.npz/.h5/.mat) whose inputs are analysed")
    p.add_argument("--inputs", default="smooth", help="synthetic family: smooth, jump or bandlimited (default smooth)")
    p.add_argument("--decay", type=float, default=3.0, help="smooth family: |c_k| ~ k^-decay (default 3)")
    p.add_argument("--batch", type=int, default=2, help="input samples (default 2)")
    p.add_argument("--modes", type=int, default=16, help="fresh FNO: modes per axis (default 16)")
    p.add_argument("--width", type=int, default=32, help="fresh FNO: hidden channels (default 32)")
    p.add_argument("--layers", type=int, default=4, help="fresh FNO: Fourier blocks (default 4)")
    p.add_argument("--dim", type=int, default=2, help="fresh FNO and synthetic inputs: spatial axes (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fresh model and the inputs")
    p.add_argument(
        "--resolutions",
        type=_ints,
        default=None,
        help="grid sizes per axis; the finest is the reference (default 16,32,64,128,256; "
        "with a dataset: its resolution and its subsamplings)",
    )
    p.add_argument(
        "--policies", type=_names, default=None, help="comma-separated presets and fp8_e4m3/fp8_e5m2 (default: all)"
    )
    p.add_argument(
        "--spectrum",
        action="store_true",
        help="also: relative error per Fourier mode |k| for each policy, at the finest measured N",
    )
    p.add_argument(
        "--mode-sweep",
        type=_ints,
        default=None,
        metavar="M,M,...",
        help="also: accuracy, time and saved-activation memory of fresh FNOs with these mode counts",
    )
    p.add_argument(
        "--advise",
        action="store_true",
        help="recommend the cheapest policy (and per-layer overrides) within --tolerance",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.1,
        help="advisor: precision error must stay below this times the discretization (and test) error",
    )
    p.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="advisor: the resolution you will run at (default: the finest measured)",
    )
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--out", default="analysis", help="output directory (default ./analysis)")
    p.set_defaults(func=run_analyze)


def _load_model_and_data(args):
    """(model, dataset or None, grid) from --run / --config / fresh FNO and --data."""
    import torch

    from ..config import build_run, load_config
    from ..data import load_dataset

    data = load_dataset(args.data) if args.data else None
    if args.run or args.config:
        path = Path(args.run) / "config.yaml" if args.run else Path(args.config)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; --run needs a directory written by 'lowprec train'.")
        cfg = load_config(str(path))
        model, _, tests = build_run(cfg, progress=False)
        if args.run:
            from ..train import load_checkpoint

            model.load_state_dict(load_checkpoint(Path(args.run) / "checkpoint.pt")["model"])
        # The finest test set: the most resolutions below it to measure the discretization error at.
        data = data if data is not None else max(tests.values(), key=lambda d: d.resolution[0])
    else:
        from ..models import FNO

        torch.manual_seed(args.seed)
        dim = data.x.ndim - 2 if data is not None else args.dim
        model = FNO(
            (args.modes,) * dim,
            in_channels=data.x.shape[1] if data is not None else 1,
            out_channels=data.y.shape[1] if data is not None else 1,
            hidden_channels=args.width,
            n_layers=args.layers,
            grid_endpoint=data is not None and _grid(data) == "nodes",
        )
    return model.eval(), data


def _grid(data) -> str:
    return getattr(data, "grid", None) or data.meta.get("grid", "nodes")


def _dataset_inputs(data, batch: int, resolutions):
    from .errors import sample_to

    grid = _grid(data)
    full = data.resolution[0]
    x = data.x[:batch].double()

    def make_input(n: int):
        return sample_to(x, n, grid)

    usable = []
    for n in resolutions:
        try:
            sample_to(x[:1, :1], n, grid)
            usable.append(n)
        except ValueError:
            pass
    if full not in usable:
        usable.append(full)
    return make_input, sorted(n for n in usable if n <= full), grid, data.y[:batch].double()


def run_analyze(args) -> int:
    from .inputs import synthetic_inputs
    from .study import DEFAULT_POLICIES, DEFAULT_RESOLUTIONS, accuracy_study, plot_study

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    args.resolutions = args.resolutions or DEFAULT_RESOLUTIONS
    args.policies = args.policies or DEFAULT_POLICIES
    model, data = _load_model_and_data(args)
    if data is not None:
        make_input, resolutions, grid, target = _dataset_inputs(data, args.batch, args.resolutions)
        what = f"dataset {args.data or 'of the run'} ({grid} grid, {data.resolution[0]} points)"
    else:

        def make_input(n: int):
            return synthetic_inputs(args.inputs, n, args.batch, args.dim, args.decay, args.seed)

        resolutions, grid, target = args.resolutions, "periodic", None
        what = f"synthetic {args.inputs} inputs" + (f" (decay {args.decay:g})" if args.inputs == "smooth" else "")
    study = accuracy_study(model, make_input, resolutions, args.policies, grid, target=target)
    study["inputs"] = what
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.spectrum:
        from .spectrum import plot_spectral_errors, spectral_errors

        n = max(int(k) for k, v in study["discretization"]["errors"].items() if v is not None)
        study["spectrum"] = spectral_errors(model, make_input(n), args.policies)
        plot_spectral_errors(study["spectrum"], out / "spectrum.png")
    if args.mode_sweep:
        from .spectrum import mode_sweep

        n = max(study["resolutions"])
        study["mode_sweep"] = mode_sweep(
            args.mode_sweep, make_input(n), args.policies, width=args.width, n_layers=args.layers, seed=args.seed
        )
    if args.advise:
        from .advisor import advise

        study["advice"] = advise(model, make_input, study, args.tolerance, args.resolution)
    (out / "study.json").write_text(json.dumps(study, indent=1, default=str))
    plot = plot_study(study, out / "errors.png", title=what)
    print(format_study(study))
    if args.advise:
        print("\n" + study["advice"]["summary"] + "\n\n" + study["advice"]["yaml"])
    print(f"\nnumbers in {out / 'study.json'}, plot in {plot}")
    return 0


def _fmt(v) -> str:
    if v is None:
        return "-"
    return "inf" if v == math.inf else f"{v:.2e}"


def format_study(study: dict) -> str:
    """Plain-text table: one row per policy, precision error at each N, crossover and verdict."""
    disc = study["discretization"]
    ns = [n for n, e in disc["errors"].items() if e is not None]
    rate = disc["rate"]
    head = f"{'':12s}" + "".join(f"{'N=' + n:>10s}" for n in ns) + f"{'crossover':>12s}  claim"
    lines = [
        f"{study.get('inputs', '')}; reference: {study['reference']}; discretization rate {rate:.2f}"
        if rate is not None
        else f"{study.get('inputs', '')}",
        head,
        f"{'discretiz.':12s}" + "".join(f"{_fmt(disc['errors'][n]):>10s}" for n in ns),
    ]
    for label, entry in study["precision"].items():
        c = entry["crossover"]
        cross = (
            "-"
            if c["resolution"] is None
            else f"{c['resolution']:.0f}" + {"measured": "", "extrapolated": "*", "below_range": "<"}.get(c["kind"], "")
        )
        lines.append(
            f"{label:12s}"
            + "".join(f"{_fmt(entry['errors'].get(n)):>10s}" for n in ns)
            + f"{cross:>12s}  {'holds' if entry['claim_holds'] else 'fails'}"
        )
    lines.append("crossover: * extrapolated from the fitted rate, < at or below the coarsest N")
    if study.get("test_error") is not None:
        lines.append(f"test error of the model (full, finest N): {study['test_error']:.3e}")
    return "\n".join(lines)
