"""Tables and plots of runs: what people would rather look at than read.

matplotlib runs on its non-interactive Agg backend: plots are files, and
nothing here needs a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch


def format_table(rows: Sequence[Mapping], columns: Sequence[tuple[str, str, str]], markdown: bool = False) -> str:
    """A plain-text table, or a Markdown one with ``markdown=True``.

    ``columns``: (key, header, format spec) triples. A column without a format spec holds text
    (``str(value)``) and is left-aligned, one with a spec holds numbers and is right-aligned;
    missing values print '-'.
    """

    def cell(row, key, spec):
        value = row.get(key)
        if value is None:
            return "-"
        return format(value, spec) if spec else str(value)

    body = [[cell(r, k, s) for k, _, s in columns] for r in rows]
    headers = [h for _, h, _ in columns]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(headers)]
    left = [not spec for _, _, spec in columns]

    def line(cells):
        padded = [c.ljust(w) if lft else c.rjust(w) for c, w, lft in zip(cells, widths, left)]
        return "| " + " | ".join(padded) + " |" if markdown else "  ".join(padded).rstrip()

    rule = ("|" + "|".join("-" * (w + 2) for w in widths) + "|") if markdown else "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule] + [line(b) for b in body])


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend: make figures with it, write them with :func:`save_figure`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, title: str = "") -> Path:
    """Title, lay out and write ``fig`` to ``path`` (folders created), then free it.

    Every figure lowprec writes goes through here. A figure made with a layout engine
    (``layout="constrained"``, for colorbars and subfigures) keeps it; others get ``tight_layout``.
    """
    plt = pyplot()
    if title:
        fig.suptitle(title)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_history(histories: Mapping[str, Sequence[Mapping]], path: str | Path, title: str = "") -> Path:
    """Training loss and every test error against epoch, one line per run, log scale.

    Runs that agree draw on top of each other, so each run has its own marker, shrinking from
    the first run (hollow, large) to the last (filled, small): coinciding curves show one marker
    inside another instead of hiding the first run.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    markers = "osD^v<>"
    for i, (name, history) in enumerate(histories.items()):
        epochs = [r["epoch"] for r in history]
        mark = dict(
            marker=markers[i % len(markers)],
            markersize=max(3.0, 9.0 - 2.5 * i),
            fillstyle="none" if i == 0 else "full",
            markevery=max(1, len(epochs) // 12),
        )
        (line,) = axes[0].semilogy(epochs, [r["train_loss"] for r in history], label=name, **mark)
        for key in [k for k in history[0] if k.endswith("_l2")]:
            style = "-" if key == next(k for k in history[0] if k.endswith("_l2")) else "--"
            axes[1].semilogy(
                epochs, [r[key] for r in history], style, color=line.get_color(), label=f"{name} {key[:-3]}", **mark
            )
    axes[0].set(xlabel="epoch", ylabel="training loss", title="training")
    axes[1].set(xlabel="epoch", ylabel="relative L2 error", title="test")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, path, title)


def plot_prediction(
    x: torch.Tensor, y: torch.Tensor, predictions: Mapping[str, torch.Tensor], path: str | Path, title: str = ""
) -> Path:
    """One 2D sample: input, truth, and each prediction with its error.

    x: (C_in, H, W) (first channel shown), y: (C_out, H, W), predictions: name -> (C_out, H, W).
    """
    plt = pyplot()
    n = len(predictions)
    fig, axes = plt.subplots(2, n + 1, figsize=(3.3 * (n + 1), 6.2), squeeze=False)
    truth = y[0].detach().float().cpu()
    vmin, vmax = truth.min().item(), truth.max().item()
    err_max = max((p[0].detach().float().cpu() - truth).abs().max().item() for p in predictions.values()) or 1.0

    def show(ax, image, label, **kw):
        im = ax.imshow(image.numpy(), origin="lower", **kw)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)

    show(axes[0, 0], x[0].detach().float().cpu(), "input", cmap="viridis")
    show(axes[1, 0], truth, "truth", cmap="magma", vmin=vmin, vmax=vmax)
    for k, (name, pred) in enumerate(predictions.items(), start=1):
        p = pred[0].detach().float().cpu()
        rel = ((p - truth).norm() / truth.norm()).item()
        show(axes[0, k], p, f"{name} (rel. L2 {rel:.3g})", cmap="magma", vmin=vmin, vmax=vmax)
        show(axes[1, k], (p - truth).abs(), f"|{name} - truth|", cmap="inferno", vmin=0, vmax=err_max)
    return save_figure(fig, path, title)
