"""Saved activations and step cost of an FNO training step, with and without per-stage recomputation.

For each grid: lowprec's FNO under each policy, storing activations and with
``FNO(recompute=True)``, beside neuraloperator's FNO in fp32 when it is installed
(``pip install -e ".[compare]"``). Memory is what autograd saves for the backward
pass (``SavedTensorMeter``: exact, device-independent). Cost is the median CPU time of
one training step (forward, fp32 MSE, backward, Adam) measured with
``time.process_time`` on one thread, the cases interleaved step by step: on a shared
machine CPU time tracks the work done far better than wall time does, and a ratio of
two cases measured side by side is what the table reports.

    python benchmarks/memory_cpu.py --grids 64,128,256 --out benchmarks/results/memory_cpu.json

The table in ``benchmarks/results/memory.md`` is generated from the JSON by
``benchmarks/make_tables.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

try:
    import lowprec  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from lowprec._device import describe_device
from lowprec.bench.cases import Shape, neuralop_fno, neuralop_version, our_fno, training_step
from lowprec.bench.timing import saved_mib
from lowprec.precision import get_policy


def _case(model, context, x, y):
    """The bench's own training step (forward in ``context``, fp32 MSE, backward, Adam) and saved-MiB count."""
    step, _ = training_step(model, context, None, x, y)
    return step, lambda: saved_mib(lambda: _forward(model, context, x))


def _forward(model, context, x):
    with context():
        return model(x)


def measure(
    grid: int, policies: list[str], batch: int, width: int, layers: int, modes: int, repeats: int, seed: int
) -> list[dict]:
    import contextlib

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 1, grid, grid, generator=generator)
    y = torch.randn(batch, 1, grid, grid, generator=generator)
    cases = {}
    for name in policies:
        for recompute in (False, True):
            shape = Shape(2, width, layers, modes, grid, batch, recompute=recompute)
            torch.manual_seed(seed)
            policy = get_policy(name)
            cases[("lowprec", name, recompute)] = _case(our_fno(shape), lambda p=policy: p, x, y)
    if neuralop_version():
        torch.manual_seed(seed)
        cases[("neuralop", "full", False)] = _case(
            neuralop_fno(Shape(2, width, layers, modes, grid, batch), "full"), contextlib.nullcontext, x, y
        )
    seconds: dict = {key: [] for key in cases}
    for step, _ in cases.values():  # warm-up: allocations, cached matrices and plans
        step()
    for _ in range(repeats):
        for key, (step, _) in cases.items():
            start = time.process_time()
            step()
            seconds[key].append(time.process_time() - start)
    return [
        {
            "grid": grid,
            "batch": batch,
            "impl": impl,
            "policy": policy,
            "recompute": recompute,
            "saved_mib": saved(),
            "cpu_s": statistics.median(seconds[(impl, policy, recompute)]),
        }
        for (impl, policy, recompute), (_, saved) in cases.items()
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grids", default="64,128,256")
    parser.add_argument("--policies", default="full,bf16")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--modes", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/memory_cpu.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for grid in (int(g) for g in args.grids.split(",")):
        measured = measure(
            grid, args.policies.split(","), args.batch, args.width, args.layers, args.modes, args.repeats, args.seed
        )
        for row in measured:
            print(json.dumps(row), flush=True)
        rows += measured
    meta = {
        "device": describe_device(torch.device("cpu")),
        "torch": torch.__version__,
        "neuraloperator": neuralop_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/memory_cpu.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "config": {k: v for k, v in vars(args).items() if k != "out"},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
