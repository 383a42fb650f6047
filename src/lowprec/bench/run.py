"""The benchmark loop: every grid, every policy and backend, ours and neuraloperator's, one row each.

A row holds the time of a step (median of the repeats), peak CUDA memory,
the activations saved for backward, whether every loss was finite, the
relative error of one forward pass against fp64 (:mod:`lowprec.bench.accuracy`),
and the ratios to the baseline at the same grid: neuraloperator in fp32 when
it is installed, else our ``full`` policy. A case that fails (out of memory,
an FFT the hardware lacks) becomes a row with its error; the others still run.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import torch

from .. import __version__
from .._device import describe_device, resolve_device
from ..precision import PRESETS, LossScaler, PrecisionPolicy, get_policy
from ..spectral import resolve_backend
from ..spectral.transforms import compute_dtype
from ..train.losses import relative_l2_error
from .accuracy import fp64_copy, layer_error, model_reference
from .cases import (
    Shape,
    activation_dtype,
    layer_step,
    neuralop_context,
    neuralop_fno,
    neuralop_layer,
    neuralop_version,
    our_fno,
    our_layer,
    training_step,
)
from .memory import saved_tensor_report
from .settings import BenchConfig
from .timing import saved_mib, time_step


def backend_used(policy: PrecisionPolicy, shape: Shape, device: torch.device) -> str:
    """The backends the policy's transforms take on this grid: ``dft``, ``fft``, or ``fft/dft`` (forward/inverse)."""
    act = activation_dtype(policy)
    used = [
        resolve_backend(policy.backend, *shape.transform_axes, compute_dtype(d, act), device)
        for d in (policy.transform_dtype, policy.contract_dtype)
    ]
    return used[0] if used[0] == used[1] else "/".join(used)


def _cleanup(device: torch.device) -> None:
    # Free the last case's memory before the next one measures its peak (CUDA only: CPU
    # reports no peak, and a full collection costs half a second once neuralop is imported).
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()


def _guarded(row: dict, work: Callable[[], dict], device: torch.device) -> dict:
    try:
        row.update(work())
    except torch.OutOfMemoryError:
        row["error"] = "out of memory"
    except Exception as err:  # one failed case (e.g. an FFT the hardware lacks) must not stop the others
        row["error"] = f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0][:160]}"
    finally:
        _cleanup(device)
    return row


@dataclass
class _Grid:
    """Inputs shared by every case at one grid, so every row sees the same data and weights."""

    shape: Shape
    x: torch.Tensor
    y: torch.Tensor
    reference: torch.Tensor | None = None
    rows: list = field(default_factory=list)


def _inputs(config: BenchConfig, shape: Shape, device: torch.device) -> _Grid:
    generator = torch.Generator().manual_seed(config.seed)
    channels = shape.width if config.mode == "layer" else 1
    x = torch.randn(shape.batch, channels, *shape.grid_shape, generator=generator).to(device)
    y = torch.randn(shape.batch, 1, *shape.output_shape, generator=generator).to(device)
    return _Grid(shape, x, y)


def _seeded(build: Callable[[], torch.nn.Module], seed: int, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build().to(device)


# -- our cases ----------------------------------------------------------------------------------
def _ours(
    config: BenchConfig,
    grid: _Grid,
    policy: PrecisionPolicy,
    compiled: bool,
    device: torch.device,
    recompute: bool = False,
) -> dict:
    shape = dataclasses.replace(grid.shape, recompute=recompute)
    row = {
        "impl": "lowprec" + ("+compile" if compiled else "") + ("+recompute" if recompute else ""),
        "policy": policy.name,
        "backend": f"{policy.backend}->{backend_used(policy, shape, device)}",
    }

    def work() -> dict:
        out = {}
        if config.mode == "step":
            model = _seeded(lambda: our_fno(shape), config.seed, device)
            if config.accuracy and not compiled:
                with torch.no_grad(), policy:
                    out["rel_error"] = relative_l2_error(model(grid.x[:2]), _model_reference(config, grid, device))
            run = torch.compile(model, dynamic=False) if compiled else model
            scaler = LossScaler() if policy.loss_scaling else None
            step, stats = training_step(run, lambda: policy, scaler, grid.x, grid.y)
            timing = time_step(step, device, config.warmup, config.repeats)
            out["skipped_steps"] = stats["skipped"]

            def forward():
                with policy:
                    return run(grid.x)
        else:
            layer = _seeded(lambda: our_layer(shape), config.seed, device)
            if config.accuracy and not compiled:
                out["rel_error"] = layer_error(layer, policy, grid.x[:2])
            run = torch.compile(layer, dynamic=False) if compiled else layer
            x = grid.x.to(activation_dtype(policy))
            timing = time_step(layer_step(run, lambda: policy, x), device, config.warmup, config.repeats)

            def forward():
                with policy:
                    return run(x.detach().requires_grad_())

        out.update(_timing_fields(timing, shape))
        out["saved_mib"] = saved_mib(forward)
        if config.memory_report:
            out["memory_report"] = saved_tensor_report(forward, run).rows
        return out

    return _guarded(row, work, device)


def _model_reference(config: BenchConfig, grid: _Grid, device: torch.device) -> torch.Tensor:
    if grid.reference is None:
        model = _seeded(lambda: our_fno(grid.shape), config.seed, device)
        grid.reference = model_reference(model, grid.x[:2])
    return grid.reference


# -- neuraloperator's cases ---------------------------------------------------------------------
def _neuralop(config: BenchConfig, grid: _Grid, precision: str, device: torch.device) -> dict:
    shape = grid.shape
    row = {"impl": "neuralop", "policy": precision, "backend": "fft"}
    context = lambda: neuralop_context(precision, device)  # noqa: E731

    def work() -> dict:
        out = {}
        if config.mode == "step":
            model = _seeded(lambda: neuralop_fno(shape, precision), config.seed, device)
            if config.accuracy:
                out["rel_error"] = _neuralop_error(model, lambda: neuralop_fno(shape, "full"), context, grid.x[:2])
            step, _ = training_step(model, context, None, grid.x, grid.y)
            timing = time_step(step, device, config.warmup, config.repeats)
            forward = lambda: _call(model, context, grid.x)  # noqa: E731
        else:
            layer = _seeded(lambda: neuralop_layer(shape, precision), config.seed, device)
            if config.accuracy:
                out["rel_error"] = _neuralop_error(layer, lambda: neuralop_layer(shape, "full"), context, grid.x[:2])
            timing = time_step(layer_step(layer, context, grid.x), device, config.warmup, config.repeats)
            forward = lambda: _call(layer, context, grid.x.detach().requires_grad_())  # noqa: E731
        out.update(_timing_fields(timing, shape))
        out["saved_mib"] = saved_mib(forward)
        if config.memory_report:
            out["memory_report"] = saved_tensor_report(forward, model if config.mode == "step" else layer).rows
        return out

    return _guarded(row, work, device)


def _call(module, context, x):
    with context():
        return module(x)


@torch.no_grad()
def _neuralop_error(module, build_full, context, x) -> float | None:
    # The same weights in a fp64 copy of the full-precision module.
    full = build_full().to(x.device)
    full.load_state_dict(module.state_dict())
    reference = fp64_copy(full)(x.double())
    try:
        return relative_l2_error(_call(module, context, x), reference)
    except RuntimeError:
        return None  # the timing run reports the error


def _timing_fields(timing, shape: Shape) -> dict:
    return {
        "ms": timing.ms,
        "ms_min": timing.ms_min,
        "samples_per_s": 1e3 * shape.batch / timing.ms,
        "warmup_s": timing.warmup_s,
        "peak_mib": timing.peak_mib,
        "finite": timing.finite,
    }


# -- the loop -----------------------------------------------------------------------------------
def _add_ratios(rows: list[dict]) -> None:
    """Speed-up and memory ratio of every row against the grid's baseline row."""

    def ok(row):
        return row is not None and "error" not in row

    neuralop = next((r for r in rows if r["impl"] == "neuralop" and r["policy"] == "full"), None)
    ours = next((r for r in rows if r["impl"] == "lowprec" and r["policy"] == "full"), None)
    base = neuralop if ok(neuralop) else ours if ok(ours) else None
    if base is None:
        return
    name = f"{base['impl']}:{base['policy']}"
    memory = "peak_mib" if base.get("peak_mib") else "saved_mib"
    for row in rows:
        if not ok(row):
            continue
        row["baseline"] = name
        row["speedup"] = base["ms"] / row["ms"]
        if row.get(memory) and base.get(memory):
            row["memory_ratio"] = row[memory] / base[memory]


def run_bench(config: BenchConfig, command: str = "", log: Callable[[str], None] = print) -> dict:
    """Run every case of ``config``; return {"meta": ..., "rows": [...]} (see :func:`lowprec.bench.report.save`)."""
    device = resolve_device(config.device)
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _run(config, device, command, log)
    finally:
        torch.set_num_threads(threads)


def _run(config: BenchConfig, device: torch.device, command: str, log: Callable[[str], None]) -> dict:
    version = neuralop_version() if config.compare and config.model == "fno" else None
    compare = config.compare if version else ()
    notes = []
    if config.compare and not version:
        notes.append("neuraloperator is not installed (pip install 'lowprec[compare]'): no comparison rows.")
    backends = config.backends or (None,)
    rows = []
    for index in range(len(config.grids)):
        grid = _inputs(config, config.shape(index), device)
        for name in config.policies:
            for backend in backends:
                policy = get_policy(name) if backend is None else get_policy(name).replace(backend=backend)
                for compiled in (False, True) if config.compile else (False,):
                    for recompute in config.recompute_options:
                        if compiled:
                            torch._dynamo.reset()
                        grid.rows.append(_ours(config, grid, policy, compiled, device, recompute))
                        log(_progress(grid.rows[-1], grid.shape))
        for precision in compare:
            grid.rows.append(_neuralop(config, grid, precision, device))
            log(_progress(grid.rows[-1], grid.shape))
        _add_ratios(grid.rows)
        for row in grid.rows:
            rows.append({"grid": grid.shape.grid, "batch": grid.shape.batch, **row})
        del grid
        _cleanup(device)
    meta = {
        "mode": config.mode,
        "lowprec": __version__,
        "torch": torch.__version__,
        "neuraloperator": version,
        "device": describe_device(device),
        "device_type": device.type,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "config": dataclasses.asdict(config),
        "notes": notes,
        "policies": {name: PRESETS[name].to_dict() for name in config.policies if name in PRESETS},
    }
    return {"meta": meta, "rows": rows}


def _progress(row: dict, shape: Shape) -> str:
    what = f"  {shape.grid}^{shape.dim} batch {shape.batch} {row['impl']}:{row['policy']} [{row['backend']}]"
    if "error" in row:
        return f"{what}: {row['error']}"
    return f"{what}: {row['ms']:.2f} ms" + ("" if row["finite"] else " (non-finite loss)")
