"""Radius neighbours between two point sets, in CSR form.

    nbrs = radius_neighbors(points, queries, radius)    # points (N, d), queries (M, d)
    nbrs.index[nbrs.splits[i]:nbrs.splits[i + 1]]        # the points within radius of query i
    nbrs.rows                                            # (n_pairs,) the query of each pair

Two searches, chosen by device (``method="auto"``):

* ``"kdtree"`` (CPU tensors): scipy's ``cKDTree.query_ball_point``. A k-d tree finds the
  pairs in O((N + M) log N + pairs) and never forms the M x N distance matrix. On one CPU
  thread, 3586 random points against a 16^3 grid (radius 1.5 cells) took 0.05 s against the
  blocked brute force's 0.8 s, and 0.2-0.7 s against 7.3 s at 32^3.
* ``"brute"`` (CUDA tensors, or asked for): ``torch.cdist`` on blocks of queries, so the
  distance block (block x N) bounds the memory and the work stays on the device instead
  of a round trip through scipy; a GPU evaluates the dense block faster than a tree walk.

Both return the neighbours of each query in increasing point index, so the two agree
exactly (tested against each other and a dense reference). A pair is in when
``|x - y| <= radius`` (closed ball, scipy's convention), so the two searches can differ
only for a pair at distance within rounding of the radius.

Bad input: coordinates that are not finite raise ValueError (a NaN is within no radius,
and a tree built on one returns garbage); a radius that is not positive raises too.
Queries with no point within the radius get an empty row (``splits[i] == splits[i+1]``):
an integral over them is a sum over nothing, zero (see :class:`lowprec.geometry.GNOLayer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

METHODS = ("auto", "kdtree", "brute")


@dataclass(frozen=True)
class Neighbors:
    """Radius neighbours in CSR form.

    Attributes:
        index: (n_pairs,) int64, indices into the points, grouped by query.
        splits: (M + 1,) int64 row pointer: query i's neighbours are ``index[splits[i]:splits[i+1]]``.
    """

    index: torch.Tensor
    splits: torch.Tensor

    @property
    def n_queries(self) -> int:
        return self.splits.numel() - 1

    @property
    def n_pairs(self) -> int:
        return self.index.numel()

    @property
    def counts(self) -> torch.Tensor:
        """(M,) number of neighbours of each query."""
        return self.splits[1:] - self.splits[:-1]

    @property
    def rows(self) -> torch.Tensor:
        """(n_pairs,) the query each pair belongs to (CSR rows expanded, COO form)."""
        return torch.repeat_interleave(torch.arange(self.n_queries, device=self.splits.device), self.counts)

    def to(self, device) -> Neighbors:
        return Neighbors(self.index.to(device), self.splits.to(device))


def check_points(name: str, points: torch.Tensor, dim: int | None = None) -> None:
    """Raise ValueError unless ``points`` is (n, d) floating and finite."""
    if not isinstance(points, torch.Tensor) or points.ndim != 2 or not points.is_floating_point():
        shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise ValueError(f"{name} must be a floating tensor (n_points, dim), got {shape}.")
    if dim is not None and points.shape[1] != dim:
        raise ValueError(f"{name} has {points.shape[1]} coordinates per point, expected {dim} (the other set's).")
    if not torch.isfinite(points).all():
        bad = (~torch.isfinite(points)).any(dim=1).nonzero()[:5].flatten().tolist()
        raise ValueError(
            f"{name} holds non-finite coordinates (points {bad}...); a NaN or inf point has no "
            "neighbours. Remove or repair those points before the neighbour search."
        )


def radius_neighbors(
    points: torch.Tensor, queries: torch.Tensor, radius: float, method: str = "auto", block: int = 4096
) -> Neighbors:
    """For each query, the points within ``radius`` (closed ball), as :class:`Neighbors` on the queries' device.

    Args:
        points: (N, d) the set searched (the "y" of a kernel integral).
        queries: (M, d) the points asking (the "x").
        radius: search radius, in the coordinates' units.
        method: ``"auto"`` (``"kdtree"`` on CPU, ``"brute"`` on CUDA), ``"kdtree"`` or ``"brute"``.
        block: queries per distance block of the brute-force search (memory ~ block x N).
    """
    check_points("points", points)
    check_points("queries", queries, points.shape[1])
    if not (radius > 0 and np.isfinite(radius)):
        raise ValueError(f"radius must be a positive finite number, got {radius}.")
    if method not in METHODS:
        raise ValueError(f"unknown neighbour search {method!r}; choose one of {METHODS}.")
    if method == "auto":
        method = "kdtree" if queries.device.type == "cpu" else "brute"
    if method == "kdtree":
        return _kdtree(points, queries, radius)
    return _brute(points, queries, radius, block)


def _kdtree(points: torch.Tensor, queries: torch.Tensor, radius: float) -> Neighbors:
    from scipy.spatial import cKDTree

    tree = cKDTree(points.detach().cpu().double().numpy())
    found = tree.query_ball_point(queries.detach().cpu().double().numpy(), r=radius, return_sorted=True)
    counts = np.fromiter((len(f) for f in found), dtype=np.int64, count=len(found))
    index = (
        np.concatenate([np.asarray(f, dtype=np.int64) for f in found]) if counts.sum() else np.zeros(0, dtype=np.int64)
    )
    splits = np.concatenate([[0], np.cumsum(counts)])
    return Neighbors(torch.from_numpy(index).to(queries.device), torch.from_numpy(splits).to(queries.device))


def _brute(points: torch.Tensor, queries: torch.Tensor, radius: float, block: int) -> Neighbors:
    p, q = points.detach().double(), queries.detach().double()
    index, counts = [], []
    for start in range(0, q.shape[0], block):
        inside = torch.cdist(q[start : start + block], p, compute_mode="donot_use_mm_for_euclid_dist") <= radius
        counts.append(inside.sum(dim=1))
        index.append(inside.nonzero()[:, 1])  # row-major: grouped by query, points in increasing order
    counts_all = torch.cat(counts) if counts else torch.zeros(0, dtype=torch.int64, device=q.device)
    splits = torch.cat([torch.zeros(1, dtype=torch.int64, device=q.device), torch.cumsum(counts_all, 0)])
    index_all = torch.cat(index) if index else torch.zeros(0, dtype=torch.int64, device=q.device)
    return Neighbors(index_all.to(queries.device), splits.to(queries.device))


__all__ = ["METHODS", "Neighbors", "check_points", "radius_neighbors"]
