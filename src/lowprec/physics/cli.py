"""``lowprec pinn PROBLEM`` and ``lowprec deeponet PROBLEM``.

The top-level CLI registers these with :func:`add_subcommands`; each parsed
namespace carries ``func``, to be called as ``args.func(args)`` (returns the
exit code).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from .. import _catalog
from .._threads import add_threads_flag

PRECISIONS = ("fp32", "fp16", "mixed", "bf16", "mixed_then_fp32")
COMPARED = PRECISIONS[:4]  # --compare's default: the paper's four modes
_KIND_HELP = {
    "pinn": "train a physics-informed neural network in fp32, fp16, mixed or bf16 precision",
    "deeponet": "train a DeepONet (data-driven, POD or physics-informed) in fp32, fp16, mixed or bf16",
}


def _problem_epilog(kind: str) -> str:
    lines = ["problems and their parameters (change with --set KEY=VALUE):"]
    for name, problem in _catalog.PHYSICS_PROBLEMS.items():
        if problem["kind"] != kind:
            continue
        params = ", ".join(f"{key}={value}" for key, value in problem["params"].items())
        lines.append(f"  {name}: {problem['title']}, {problem['default_steps']} steps by default\n      {params}")
    lines += [
        "",
        "examples:",
        f"  lowprec {kind} {'burgers' if kind == 'pinn' else 'advection'} --precision mixed --steps 2000",
        f"  lowprec {kind} {'burgers' if kind == 'pinn' else 'advection'} --compare --steps 3000 --out runs/cmp",
        "",
        "On CPU, fp16 is emulated: fp16/mixed timings are not representative of a GPU (bf16 is native).",
    ]
    return "\n".join(lines)


def add_subcommands(subparsers) -> None:
    """Register the ``pinn`` and ``deeponet`` sub-commands on an argparse subparsers object."""
    for kind in ("pinn", "deeponet"):
        p = subparsers.add_parser(
            kind,
            help=_KIND_HELP[kind],
            description=_KIND_HELP[kind] + ".",
            epilog=_problem_epilog(kind),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("problem", help="problem name (listed below; hyphens or underscores)")
        p.add_argument(
            "--precision", choices=PRECISIONS, default="mixed", help="training mode of a single run (default: mixed)"
        )
        p.add_argument(
            "--compare", action="store_true", help="run every mode (--modes) on the same seed and print one table"
        )
        p.add_argument(
            "--modes",
            default=",".join(COMPARED),
            help=f"modes for --compare (default: {','.join(COMPARED)}; also mixed_then_fp32: mixed, "
            "then fp32 for the last 10%% of steps)",
        )
        p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the problem's)")
        p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: 1e-3)")
        p.add_argument("--seed", type=int, default=0, help="seed of weights, data and batches (default: 0)")
        p.add_argument(
            "--seeds",
            type=int,
            default=1,
            help="with --compare: run seeds SEED .. SEED+N-1 and average the errors (default: 1)",
        )
        p.add_argument(
            "--lr-decay",
            type=float,
            default=None,
            help="final lr / initial lr, exponential decay (default: the problem's)",
        )
        p.add_argument(
            "--out",
            metavar="DIR",
            default=None,
            help="write table.md, results.json, curves.png and solution.png here, and each run's checkpoints "
            "and metrics.jsonl under DIR/runs/MODE_seedSEED",
        )
        p.add_argument(
            "--resume",
            action="store_true",
            help="continue the runs in --out DIR from their checkpoints (same problem and settings)",
        )
        p.add_argument("--eval-every", type=int, default=0, help="steps between error evaluations")
        p.add_argument(
            "--adam-eps",
            type=float,
            default=None,
            help="Adam epsilon (default: the mode's: 1e-4 for fp16, 1e-8 otherwise)",
        )
        p.add_argument(
            "--loss-scaling",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="dynamic loss scaling (default: on for fp16 and mixed)",
        )
        p.add_argument(
            "--residual-guard",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="power-of-two residual scaling against fp16 overflow (default: on for fp16 and mixed)",
        )
        p.add_argument(
            "--set",
            dest="params",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="problem parameter, repeatable, e.g. --set nu=0.01 --set n_domain=1000",
        )
        p.add_argument(
            "--peer",
            action="store_true",
            help="with --compare on burgers: also train DeepXDE's PINN (float32 and its mixed); "
            "needs pip install 'lowprec[compare]'",
        )
        p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
        p.add_argument("--log-every", type=int, default=0, help="print progress every N steps (0: quiet)")
        add_threads_flag(p)
        p.set_defaults(func=run, kind=kind)


def _parse_params(cls, items: Sequence[str]) -> dict:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. --set nu=0.01.")
        if key not in fields:
            raise ValueError(f"{cls.title} has no parameter {key!r}; its parameters are {', '.join(fields)}.")
        kind = str(fields[key].type)
        try:
            if kind == "bool":
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                out[key] = value.lower() in ("true", "1", "yes")
            elif kind == "int":
                out[key] = int(value)
            elif kind == "float":
                out[key] = float(value)
            else:
                out[key] = value
        except ValueError:
            raise ValueError(f"--set {key}={value}: {key} takes a {kind}.") from None
        default = fields[key].default
        if kind in ("int", "float") and isinstance(default, (int, float)) and default > 0 and not out[key] > 0:
            raise ValueError(f"--set {key}={value}: {key} must be positive (default {default}).")
    return out


def run(args: argparse.Namespace) -> int:
    from .._hints import problem_key
    from . import PHYSICS_PROBLEMS, get_problem
    from .compare import compare, comparison_table, run_dir, save
    from .train import PhysicsTrainConfig, train

    args.problem = problem_key(args.problem)
    try:
        problem = get_problem(args.problem, kind=args.kind)  # validates the name first
        problem = get_problem(
            args.problem, kind=args.kind, **_parse_params(PHYSICS_PROBLEMS[args.problem], args.params)
        )
        for flag, value in (
            ("--steps", args.steps),
            ("--lr", args.lr),
            ("--lr-decay", args.lr_decay),
            ("--adam-eps", args.adam_eps),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"{flag} {value}: must be positive (leave it out for the default).")
        if args.out:
            from ..config import check_writable

            check_writable(args.out, "--out")
        config = PhysicsTrainConfig(
            steps=problem.default_steps if args.steps is None else args.steps,
            lr=problem.default_lr if args.lr is None else args.lr,
            lr_decay=args.lr_decay,
            seed=args.seed,
            eval_every=args.eval_every,
            adam_eps=args.adam_eps,
            loss_scaling=args.loss_scaling,
            residual_guard=args.residual_guard,
            log_every=args.log_every,
            progress=not args.log_every,
        )
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        bad = [m for m in modes if m not in PRECISIONS]
        if bad:
            raise ValueError(f"--modes: unknown mode(s) {bad}; choose from {', '.join(PRECISIONS)}.")
        if args.seeds < 1:
            raise ValueError(f"--seeds {args.seeds}: run at least one seed.")
        if args.resume and not args.out:
            raise ValueError("--resume continues the runs saved in --out DIR; give the --out of the run to resume.")
        if args.peer and not args.compare:
            raise ValueError("--peer adds DeepXDE rows to the --compare table; add --compare.")
    except ValueError as exc:
        print(f"lowprec {args.kind}: error: {exc}", file=sys.stderr)
        return 2

    if args.compare:
        seeds = list(range(args.seed, args.seed + args.seeds))
        print(
            f"{problem.describe()}\ntraining {len(modes)} modes x {len(seeds)} seed(s) x {config.steps} steps...",
            flush=True,
        )
        results, peers = compare(
            problem,
            modes,
            config,
            device=args.device,
            peer=args.peer,
            seeds=seeds,
            out_dir=args.out,
            resume=args.resume,
        )
        table = comparison_table(results, peers)
        print(table)
        if args.out:
            for path in save(results, peers, args.out, table):
                print(f"wrote {path}")
        return 0

    # A failed run still reports: its table, metrics and failure record are written like a finished one's.
    result = train(
        problem,
        args.precision,
        dataclasses.replace(config, on_nonfinite="stop"),
        device=args.device,
        out_dir=run_dir(args.out, args.precision, args.seed) if args.out else None,
        resume=args.resume,
    )
    table = comparison_table([result])
    print(table)
    if args.out:
        for path in save([result], [], args.out, table):
            print(f"wrote {path}")
    if result.failure:
        print(f"lowprec {args.kind}: error: {result.failure}", file=sys.stderr)
        return 1
    return 0
