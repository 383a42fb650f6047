"""The benchmark's outputs: a printed table, a JSON file, a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = [  # (key, header, format spec; none: text)
    ("grid", "grid", "d"),
    ("batch", "batch", "d"),
    ("impl", "impl", ""),
    ("policy", "policy", ""),
    ("backend", "backend", ""),
    ("ms", "ms", ".2f"),
    ("ms_min", "min ms", ".2f"),
    ("samples_per_s", "samples/s", ".1f"),
    ("peak_mib", "peak MiB", ".0f"),
    ("saved_mib", "saved MiB", ".1f"),
    ("rel_error", "rel.err", ".1e"),
    ("speedup", "speed-up x", ".2f"),
    ("memory_ratio", "memory x", ".2f"),
    ("finite", "finite", ""),
    ("error", "error", ""),
]


def bench_table(result: dict) -> str:
    """The benchmark's rows as a text table, with a header naming the setup and notes on the columns."""
    from ..report import format_table

    meta, rows = result["meta"], result["rows"]
    cfg = meta["config"]
    what = (
        "one training step (forward, backward, Adam)"
        if meta["mode"] == "step"
        else "one spectral layer (forward and backward)"
    )
    head = (
        f"lowprec bench: {what}; {cfg['dim']}D, width {cfg['width']}"
        + (f", {cfg['layers']} layers" if meta["mode"] == "step" else "")
        + f", {cfg['modes']} modes, {cfg['factorization']} weights\n"
        f"device {meta['device']}; torch {meta['torch']}; neuraloperator {meta['neuraloperator'] or '-'}; "
        f"ms: median of {cfg['repeats']} after {cfg['warmup']} warm-up\n"
    )
    shown = [dict(r, finite=None if r.get("finite") is None else "yes" if r["finite"] else "NaN/inf") for r in rows]
    columns = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    base = next((r["baseline"] for r in rows if r.get("baseline")), None)
    notes = (
        [
            f"speed-up and memory: against {base} at the same grid (memory: "
            + ("peak CUDA memory" if meta["device_type"] == "cuda" else "activations saved for backward")
            + "); rel.err: one forward pass against fp64, same weights and input."
        ]
        if base
        else []
    )
    notes += meta.get("notes", [])
    return head + format_table(shown, columns) + ("\n" + "\n".join(notes) if notes else "")


def memory_tables(result: dict, top: int = 12) -> str:
    """For every row with a memory report: its largest saved-tensor groups (see :mod:`lowprec.bench.memory`)."""
    from .memory import SavedTensorReport

    parts = []
    for row in result["rows"]:
        if row.get("memory_report"):
            parts.append(
                f"\nsaved for backward: {row['grid']}^{result['meta']['config']['dim']} batch {row['batch']} "
                f"{row['impl']}:{row['policy']}\n" + SavedTensorReport(row["memory_report"]).table(top)
            )
    return "\n".join(parts)


def save(result: dict, path: str | Path) -> tuple[Path, Path]:
    """Write ``path`` (JSON) and a PNG beside it (same name, .png); return both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    png = path.with_suffix(".png")
    plot(result, png)
    return path, png


def plot(result: dict, path: str | Path) -> Path:
    """Time per step and memory against grid size, one line per implementation, policy and backend."""
    import matplotlib.ticker

    from ..report import pyplot, save_figure

    plt = pyplot()
    meta, rows = result["meta"], [r for r in result["rows"] if "error" not in r]
    memory = "peak_mib" if meta["device_type"] == "cuda" else "saved_mib"
    series: dict[str, list] = {}
    for row in rows:
        series.setdefault(f"{row['impl']}:{row['policy']} [{row['backend']}]", []).append(row)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), layout="constrained")
    colors = plt.get_cmap("tab20").colors
    for k, (label, points) in enumerate(series.items()):
        points.sort(key=lambda r: r["grid"])
        grids = [r["grid"] for r in points]
        style = dict(
            color=colors[k % len(colors)],
            marker="o",
            label=label,
            linestyle="--" if label.startswith("neuralop") else "-",
        )
        axes[0].plot(grids, [r["ms"] for r in points], **style)
        axes[1].plot(grids, [r.get(memory) or float("nan") for r in points], **style)
    dim = meta["config"]["dim"]
    grids = sorted({r["grid"] for r in rows})
    for ax, ylabel in zip(
        axes, ["ms per step (median)", "peak CUDA memory (MiB)" if memory == "peak_mib" else "activations saved (MiB)"]
    ):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(grids, [f"{g}^{dim}" for g in grids])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("grid")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="outside right center")
    fig.suptitle(f"lowprec bench ({meta['mode']}) on {meta['device']}, torch {meta['torch']}", fontsize=9)
    return save_figure(fig, path)
