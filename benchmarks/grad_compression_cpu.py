"""Test error of 2-process data-parallel training with the gradients communicated in fp32 and in bf16.

Each case is one ``lowprec train --nproc 2`` run (gloo on the CPU, one thread per process) of an FNO on
Darcy flow, the same run with ``--grad-compression none`` and ``bf16`` at each seed (the seed sets the
initial weights and the batch order; the data are the same), under each ``--parallel`` mode asked for.
The JSON keeps every run's command and per-epoch metrics; the table in
``benchmarks/results/grad_compression.md`` is generated from it by ``benchmarks/make_tables.py``.

    python benchmarks/grad_compression_cpu.py --seeds 0 1 2 --parallel ddp fsdp \
        --out benchmarks/results/grad_compression_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))  # the checkout's lowprec, which the runs use too

# Darcy 33^2, 512 training samples, global batch 16: a run of about a minute on two CPU cores.
SETTINGS = [
    "--problem", "darcy", "--resolution", "33", "--n-train", "512", "--n-test", "128",
    "--epochs", "30", "--batch-size", "8", "--lr", "3e-3",
    "--model", "fno", "--hidden-channels", "24", "--n-modes", "8", "--n-layers", "4",
    "--device", "cpu", "--threads", "1", "--no-progress",
]  # fmt: skip


def run(compression: str, seed: int, parallel: str, work: Path, cache: Path) -> dict:
    out = work / f"{parallel}_{compression}_s{seed}"
    args = [
        "train", "--nproc", "2", *SETTINGS, "--seed", str(seed), "--parallel", parallel,
        "--grad-compression", compression,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    where = ["--out-dir", str(out), "--cache-dir", str(cache)]
    cmd = [sys.executable, "-m", "lowprec", *args, *where]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"lowprec {' '.join(args)} did not finish in {e.timeout:.0f} s") from None
    if done.returncode != 0:
        raise RuntimeError(f"lowprec {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    config = (out / "config.yaml").read_text()
    assert f"grad_compression: {compression}" in config and f"parallel: {parallel}" in config
    return {
        "grad_compression": compression,
        "parallel": parallel,
        "seed": seed,
        "command": "lowprec " + " ".join(args),
        "history": history,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", choices=("ddp", "fsdp"), nargs="+", default=["ddp"])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from lowprec._device import describe_device

    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "machine": f"{describe_device(torch.device('cpu')).split(',')[0]}, {os.cpu_count()} cores",
        "processes": "2 (gloo), 1 thread each",
        "command": "python benchmarks/grad_compression_cpu.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="lowprec_gradcomp_") as tmp:
        work = Path(tmp)
        for parallel in args.parallel:
            for seed in args.seeds:
                for compression in ("none", "bf16"):
                    runs.append(run(compression, seed, parallel, work, work / "cache"))
                    last = runs[-1]["history"][-1]
                    print(f"{parallel} seed {seed} {compression:>4}: test L2 {last['test_33_l2']:.5f}", flush=True)
                    # Written after every run, so a failed run leaves the finished ones.
                    args.out.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
