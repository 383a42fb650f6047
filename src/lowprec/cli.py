"""The ``lowprec`` command: a thin layer over the library; each command's work lives in its module."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

import yaml

from . import __version__
from ._threads import add_threads_flag, configure_threads

# Modules that register further sub-commands through add_subcommands(subparsers).
PLUGINS = ("lowprec.physics.cli", "lowprec.data.cli", "lowprec.bench.cli", "lowprec.quant.cli")


def _train(args) -> int:
    from .config import build_run, flag_overrides, load_config
    from .report import plot_history
    from .train import Trainer

    cfg = load_config(args.config, flag_overrides(args))
    out = Path(cfg.out_dir)
    saved = out / "config.yaml"
    if args.resume:
        if not saved.is_file():
            raise SystemExit(f"error: --resume given but {out} holds no run (no config.yaml); "
                             "start a run there without --resume first.")
        before = load_config(str(saved))
        changed = {k for k, v in before.to_dict().items() if v != cfg.to_dict()[k]}
        if changed - {"out_dir"}:
            raise SystemExit(f"error: resuming {out} with settings that differ from the saved run in "
                             f"section(s) {sorted(changed)}; resume with the same settings (see {saved}).")
    elif (out / "checkpoint.pt").exists():
        raise SystemExit(f"error: {out} already holds a run; continue it with --resume, or choose another "
                         "--out-dir (nothing is overwritten).")
    model, train_set, test_sets = build_run(cfg, progress=cfg.train.progress)
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    trainer = Trainer(model, train_set, test_sets, cfg.train, out)
    if args.resume:
        trainer.resume(out)
        print(f"resumed {out} after epoch {trainer.epoch}")
    history = trainer.fit()
    plot = plot_history({str(trainer.schedule): history}, out / "curves.png")
    print(f"\nfinished {len(history)} epochs; metrics in {out / 'metrics.jsonl'}, curves in {plot}, "
          f"checkpoint in {out / 'checkpoint.pt'}")
    return 0


def _demo(args) -> int:
    from .config import flag_overrides
    from .demo import run_demo

    run_demo(flag_overrides(args), policies=args.policies, size=args.size)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .config import add_config_flags

    parser = argparse.ArgumentParser(
        prog="lowprec", description="Neural PDE solvers trained and run in reduced precision.")
    parser.add_argument("--version", action="version", version=f"lowprec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a neural operator from a YAML config (flags override its keys)",
                           description="Train a neural operator. Settings come from --config (YAML, flat or in "
                                       "data/model/train sections) and are overridden by flags.")
    train.add_argument("--config", help="YAML configuration file")
    train.add_argument("--resume", action="store_true", help="continue the run saved in --out-dir")
    add_config_flags(train)
    add_threads_flag(train)
    train.set_defaults(func=_train)

    demo = sub.add_parser("demo", help="Darcy flow: train an FNO in full and in reduced precision, compare",
                          description="Generate a small Darcy flow data set, train the same FNO under 'full' "
                                      "and the reduced-precision policies that pay off on this device (GPU: "
                                      "mixed and bf16; CPU: bf16 where it has native bf16, else mixed for "
                                      "accuracy only), print a table of test error, time and memory, and save "
                                      "plots. Any configuration key can be overridden.")
    demo.add_argument("--size", choices=("default", "tiny"), default="default",
                      help="tiny: a 17x17 problem trained for 2 epochs, done in seconds (default: default)")
    demo.add_argument("--policies", nargs="+", metavar="POLICY",
                      help="policies to compare, full first (default: those that pay off on this device)")
    add_config_flags(demo)
    add_threads_flag(demo)
    demo.set_defaults(func=_demo)

    for name in PLUGINS:
        importlib.import_module(name).add_subcommands(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    try:
        if "threads" in vars(args):  # every command that computes has --threads
            args.threads = configure_threads(args.threads)
        return args.func(args)
    except BrokenPipeError:
        # `lowprec data info FILE | head`: the reader left; that is not an error.
        sys.stderr.close()
        return 0
    except (ValueError, KeyError, FileNotFoundError, FloatingPointError) as err:
        # Bad input: one clear line, not a traceback (use -v for the traceback).
        if args.verbose:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
