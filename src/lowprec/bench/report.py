"""The benchmark's outputs: a printed table, a JSON file, a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = [  # (header, key, format)
    ("grid", "grid", "{}"),
    ("batch", "batch", "{}"),
    ("impl", "impl", "{}"),
    ("policy", "policy", "{}"),
    ("backend", "backend", "{}"),
    ("ms", "ms", "{:.2f}"),
    ("min ms", "ms_min", "{:.2f}"),
    ("samples/s", "samples_per_s", "{:.1f}"),
    ("peak MiB", "peak_mib", "{:.0f}"),
    ("saved MiB", "saved_mib", "{:.1f}"),
    ("rel.err", "rel_error", "{:.1e}"),
    ("speed-up", "speedup", "{:.2f}x"),
    ("memory", "memory_ratio", "{:.2f}x"),
    ("finite", "finite", "{}"),
]


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    if key == "finite":
        return "yes" if value else "NaN/inf"
    return fmt.format(value)


def format_table(result: dict) -> str:
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
    columns = [c for c in COLUMNS if any(r.get(c[1]) is not None for r in rows)]
    cells = [[h for h, _, _ in columns]]
    for row in rows:
        line = [_cell(row, key, fmt) for _, key, fmt in columns]
        if "error" in row:
            line.append(row["error"])
        cells.append(line)
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    left = {"impl", "policy", "backend"}
    text = [
        "  ".join(
            [c.ljust(w) if key in left else c.rjust(w) for c, w, (_, key, _) in zip(line, widths, columns)]
            + line[len(columns) :]
        )
        for line in cells
    ]
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
    return head + "\n".join(t.rstrip() for t in text) + ("\n" + "\n".join(notes) if notes else "")


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    meta, rows = result["meta"], [r for r in result["rows"] if "error" not in r]
    memory = "peak_mib" if meta["device_type"] == "cuda" else "saved_mib"
    series: dict[str, list] = {}
    for row in rows:
        series.setdefault(f"{row['impl']}:{row['policy']} [{row['backend']}]", []).append(row)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
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
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="center right")
    fig.subplots_adjust(left=0.06, right=0.78, wspace=0.3)
    fig.suptitle(f"lowprec bench ({meta['mode']}) on {meta['device']}, torch {meta['torch']}", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
