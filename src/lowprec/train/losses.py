"""Relative L2 and H1 losses for fields shaped (batch, channels, *grid).

Both are relative (divided by the norm of the target), so they do not depend
on the grid size or on the scale of the data, and both are computed in fp32
whatever the prediction's dtype: a reduced-precision model still gets an
accurately measured loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample ||pred - target|| / ||target|| over all but the batch axis; shape (batch,)."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}.")
    diff = (pred.float() - target.float()).flatten(1)
    ref = target.float().flatten(1)
    return diff.norm(dim=1) / ref.norm(dim=1).clamp_min(torch.finfo(torch.float32).tiny)


def relative_l2_error(pred: torch.Tensor, ref: torch.Tensor) -> float:
    """||pred - ref|| / ||ref|| over all entries, in fp64, as a float: the error a run reports.

    :func:`relative_l2` is the per-sample fp32 tensor a loss averages.
    """
    pred, ref = pred.detach().double(), ref.detach().double()
    return float(torch.linalg.vector_norm(pred - ref) / torch.linalg.vector_norm(ref))


def mean_relative_l2_error(pred: torch.Tensor, ref: torch.Tensor) -> float:
    """Mean over rows (functions) of ||pred_i - ref_i|| / ||ref_i||, in fp64: the usual DeepONet metric."""
    pred, ref = pred.detach().double(), ref.detach().double()
    num = torch.linalg.vector_norm(pred - ref, dim=-1)
    den = torch.linalg.vector_norm(ref, dim=-1).clamp_min(1e-300)
    return float((num / den).mean())


def _gradients(u: torch.Tensor, dim: int, lengths: Sequence[float], periodic: bool) -> list[torch.Tensor]:
    grid = u.shape[-dim:]
    out = []
    for k, (n, length) in enumerate(zip(grid, lengths)):
        axis = u.ndim - dim + k
        if periodic:
            h = length / n
            out.append((torch.roll(u, -1, axis) - torch.roll(u, 1, axis)) / (2 * h))
        else:
            h = length / (n - 1)
            out.append(torch.gradient(u, spacing=h, dim=axis)[0])
    return out


def relative_h1(
    pred: torch.Tensor, target: torch.Tensor, dim: int, lengths: Sequence[float] = None, periodic: bool = False
) -> torch.Tensor:
    """Per-sample relative H1 error; shape (batch,).

    sqrt(||e||^2 + ||grad e||^2) / sqrt(||v||^2 + ||grad v||^2), with e = pred - target,
    v = target, and derivatives by central finite differences (one-sided at the ends
    of node grids, wrapped round on periodic ones) over a domain of side ``lengths``
    (default 1 on every axis).
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}.")
    lengths = lengths or [1.0] * dim
    e, v = pred.float() - target.float(), target.float()

    def sq_norm(u):
        total = u.flatten(1).pow(2).sum(1)
        for g in _gradients(u, dim, lengths, periodic):
            total = total + g.flatten(1).pow(2).sum(1)
        return total

    return (sq_norm(e) / sq_norm(v).clamp_min(torch.finfo(torch.float32).tiny)).sqrt()


class RelativeL2Loss:
    """Mean over the batch of the per-sample relative L2 error."""

    name = "l2"

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return relative_l2(pred, target).mean()


class RelativeH1Loss:
    """Mean over the batch of the per-sample relative H1 error on ``dim`` spatial axes."""

    name = "h1"

    def __init__(self, dim: int, lengths: Sequence[float] = None, periodic: bool = False):
        self.dim, self.lengths, self.periodic = dim, lengths, periodic

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return relative_h1(pred, target, self.dim, self.lengths, self.periodic).mean()


def make_loss(name: str, dim: int, periodic: bool = False):
    """``"l2"`` or ``"h1"``."""
    if name == "l2":
        return RelativeL2Loss()
    if name == "h1":
        return RelativeH1Loss(dim, periodic=periodic)
    raise ValueError(f"unknown loss {name!r}; choose 'l2' (relative L2) or 'h1' (relative H1).")
