"""The ``lowprec`` command: a thin layer over the library; each command's work lives in its module."""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys
from pathlib import Path

from . import __version__
from ._threads import add_threads_flag, configure_threads

# Sub-commands: name -> (module that registers it through add_subcommands(subparsers) and runs it, help).
# The parser lists them without importing anything: a module is imported when its command is parsed,
# so `lowprec --help` stays fast and a command pays only for its own imports. Building a parser imports no
# torch either (every `--help` prints at once): a module's add_subcommands reads torch-free settings
# (train/settings.py...) and lowprec._catalog, and imports the rest in the function that runs the command.
PLUGINS = {
    "pinn": ("lowprec.physics.cli", "train a physics-informed neural network in fp32, fp16, mixed or bf16 precision"),
    "deeponet": (
        "lowprec.physics.cli",
        "train a DeepONet (data-driven, POD or physics-informed) in fp32, fp16, mixed or bf16",
    ),
    "data": ("lowprec.data.cli", "generate, describe and plot PDE data sets"),
    "bench": ("lowprec.bench.cli", "time a training step or a spectral layer per policy and backend"),
    "quantize": ("lowprec.quant.cli", "quantization-aware training of one model at one preset and resolution"),
    "pareto": (
        "lowprec.quant.cli",
        "sweep quantization presets x resolution factors; Pareto front of error against BOPs",
    ),
    "analyze": (
        "lowprec.analysis.cli",
        "precision error against discretization error, per layer; the precision advisor",
    ),
}


class UsageError(SystemExit):
    """Bad input found before any work: main prints ``error: <message>`` (one line) and exits with status 2."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


class _LazyParser(argparse.ArgumentParser):
    """A sub-command's parser whose arguments are added by ``populate(self)`` on first use."""

    def __init__(self, *args, populate=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._populate = populate

    def _ready(self) -> None:
        if self._populate is not None:
            populate, self._populate = self._populate, None
            populate(self)

    def parse_known_args(self, args=None, namespace=None):
        self._ready()
        return super().parse_known_args(args, namespace)

    def format_help(self):
        self._ready()
        return super().format_help()

    def format_usage(self):
        self._ready()
        return super().format_usage()

    def error(self, message):
        # One line, not argparse's usage block: the usage is one --help away.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _OnePlugin:
    """Stands in for a subparsers object: the plugin's ``add_parser(name, ...)`` call for ``name`` fills ``target``."""

    def __init__(self, name: str, target: argparse.ArgumentParser):
        self.name, self.target = name, target

    def add_parser(self, name, **kwargs):
        if name != self.name:
            return argparse.ArgumentParser(add_help=False)  # a sibling command of the same module: not needed
        for key in ("description", "epilog", "formatter_class", "usage"):
            if key in kwargs:
                setattr(self.target, key, kwargs[key])
        return self.target


def _plugin(name: str, module: str):
    def populate(parser: argparse.ArgumentParser) -> None:
        importlib.import_module(module).add_subcommands(_OnePlugin(name, parser))

    return populate


# Settings a resumed run may change without changing its result: (section, key).
_RESUMABLE = {("train", "device"), ("train", "progress"), ("train", "eval_batch_size"), ("", "out_dir")}


def _settings(cfg) -> dict:
    """{(section, key): value} of a RunConfig, as saved in config.yaml."""
    flat = cfg.to_dict()
    return {(s, k): v for s, values in flat.items() if isinstance(values, dict) for k, v in values.items()} | {
        ("", k): v for k, v in flat.items() if not isinstance(v, dict)
    }


def _train(args) -> int:
    import yaml

    from .config import RunConfig, check_run, check_writable, flag_overrides, load_config
    from .train import distributed
    from .train.checkpoint import has_checkpoint

    overrides = flag_overrides(args)
    out = Path(overrides.get("out_dir") or (load_config(args.config).out_dir if args.config else RunConfig.out_dir))
    if args.nproc is not None and not distributed.launched_by_torchrun():
        cfg = load_config(args.config or (str(out / "config.yaml") if args.resume else None), overrides)
        distributed.Ranks(0, max(args.nproc, 1)).check_dataset(cfg.data.n_train)  # before starting anything
        return distributed.launch(
            distributed.without_flags(args.argv, ("--nproc", "--max-restarts")), args.nproc, args.max_restarts
        )
    saved = out / "config.yaml"
    # A worker restarted by torchrun's elastic agent continues from the last checkpoint, if there is one yet.
    args.resume = args.resume or (distributed.elastic_restart() and has_checkpoint(out))
    if args.resume:
        if not saved.is_file():
            raise UsageError(
                f"--resume given but {out} holds no run (no config.yaml); start a run there without --resume first."
            )
        # As documented, `--out-dir DIR --resume` alone continues DIR's run with its saved settings.
        cfg = load_config(args.config or str(saved), overrides)
        before, now = _settings(load_config(str(saved))), _settings(cfg)
        changed = [
            f"{s}.{k}" if s else k for (s, k), v in now.items() if (s, k) not in _RESUMABLE and before.get((s, k)) != v
        ]
        if changed:
            raise UsageError(
                f"resuming {out} with settings that differ from the saved run ({', '.join(changed)}); "
                f"resume with the same settings (see {saved}), or start a new run elsewhere."
            )
    else:
        cfg = load_config(args.config, overrides)
        if has_checkpoint(out):
            raise UsageError(
                f"{out} already holds a run; continue it with --resume, or choose another "
                "--out-dir (nothing is overwritten)."
            )
    check_writable(out, "--out-dir")
    check_run(cfg)
    from .config import build_run
    from .report import plot_history
    from .train import Trainer

    ranks = distributed.init_from_env(cfg.train.device)
    # Rank 0 generates (and caches) the data first; the other ranks then read the cache.
    model, train_set, test_sets = distributed.rank_zero_first(
        ranks, lambda: build_run(cfg, progress=cfg.train.progress and ranks.is_writer)
    )
    trainer = Trainer(model, train_set, test_sets, cfg.train, out)
    if args.resume:
        trainer.resume(out)  # every rank loads the same checkpoint
    if not ranks.is_writer:
        trainer.fit()
        distributed.shutdown()
        return 0
    if args.resume:
        print(f"resumed {out} after epoch {trainer.epoch}")
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    history = trainer.fit()
    distributed.shutdown()
    plot = plot_history({str(trainer.schedule): history}, out / "curves.png")
    last = history[-1] if history else {}
    bad = [
        f"{k}={v}"
        for k, v in last.items()
        if (k == "train_loss" or k.endswith("_l2")) and isinstance(v, float) and not math.isfinite(v)
    ]
    if bad:
        print(
            f"error: the run ended non-finite after epoch {last['epoch']} ({', '.join(bad)}; "
            f"{last.get('skipped_steps', 0)} step(s) of that epoch skipped); see the overflow warnings above for "
            f"the layer and the remedies. Metrics in {out / 'metrics.jsonl'}.",
            file=sys.stderr,
        )
        return 1
    print(
        f"\nfinished {len(history)} epochs; metrics in {out / 'metrics.jsonl'}, curves in {plot}, "
        f"checkpoints in {out} (checkpoint.pt is the latest)"
    )
    return 0


def _demo(args) -> int:
    from .config import flag_overrides
    from .demo import run_demo

    run_demo(flag_overrides(args), policies=args.policies, size=args.size)
    return 0


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    from .config import add_config_flags

    parser.add_argument("--config", help="YAML configuration file")
    parser.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train data-parallel in N processes on this machine (torchrun's elastic agent; GPUs: one per "
        "process, NCCL; CPU: gloo); batch_size is per process",
    )
    parser.add_argument(
        "--max-restarts",
        type=int,
        default=0,
        metavar="N",
        help="with --nproc: restart all processes up to N times when one fails; they resume from the last "
        "checkpoint in --out-dir (default: 0)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run saved in --out-dir (its config.yaml and newest good checkpoint)",
    )
    add_config_flags(parser)
    add_threads_flag(parser)


def _add_demo_flags(parser: argparse.ArgumentParser) -> None:
    from .config import add_config_flags

    parser.add_argument(
        "--size",
        choices=("default", "tiny"),
        default="default",
        help="tiny: a 17x17 problem trained for 2 epochs, done in seconds (default: default)",
    )
    parser.add_argument(
        "--policies",
        nargs="+",
        metavar="POLICY",
        help="policies to compare, full first (default: those that pay off on this device)",
    )
    add_config_flags(parser)
    add_threads_flag(parser)


def build_parser() -> argparse.ArgumentParser:
    """The ``lowprec`` parser; each sub-command's arguments (and imports) are added when it is parsed."""
    parser = _LazyParser(prog="lowprec", description="Neural PDE solvers trained and run in reduced precision.")
    parser.add_argument("--version", action="version", version=f"lowprec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_LazyParser)

    sub.add_parser(
        "train",
        help="train a neural operator from a YAML config (flags override its keys)",
        description="Train a neural operator. Settings come from --config (YAML, flat or in "
        "data/model/train sections) and are overridden by flags.",
        populate=_add_train_flags,
    ).set_defaults(func=_train)
    sub.add_parser(
        "demo",
        help="Darcy flow: train an FNO in full and in reduced precision, compare",
        description="Generate a small Darcy flow data set, train the same FNO under 'full' "
        "and the reduced-precision policies that pay off on this device (GPU: "
        "mixed and bf16; CPU: bf16 where it has native bf16, else mixed for "
        "accuracy only), print a table of test error, time and memory, and save "
        "plots. Any configuration key can be overridden.",
        populate=_add_demo_flags,
    ).set_defaults(func=_demo)
    for name, (module, help_text) in PLUGINS.items():
        sub.add_parser(name, help=help_text, populate=_plugin(name, module))
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `train --nproc` starts workers with these
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    try:
        if "threads" in vars(args):  # every command that computes has --threads
            args.threads = configure_threads(args.threads)
        return args.func(args)
    except BrokenPipeError:
        # `lowprec data info FILE | head`: the reader left; that is not an error.
        sys.stderr.close()
        return 0
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        raise
    except (ValueError, KeyError, FileNotFoundError, FloatingPointError) as err:
        # Bad input: one clear line, not a traceback (use -v for the traceback).
        if args.verbose:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
