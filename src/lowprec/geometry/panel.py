"""Constant-strength source panels (Hess and Smith 1967): potential flow past a closed body, Cp on its surface.

The body is a closed outward-oriented triangle mesh held in a uniform stream U. The
disturbance is a source sheet of constant density sigma_j on each triangle; its velocity is

    u(x) = sum_j sigma_j / (4 pi) * integral over panel j of (x - y) / |x - y|^3 dA(y),

and the exterior Neumann condition n_i . (U + u) = 0 holds at every panel centroid c_i.
On its own panel a source sheet has normal velocity sigma_i / 2 (the jump to the exterior
side) and, at the centroid of a flat triangle, an in-plane velocity that vanishes for an
equilateral one and is neglected here. Influence of panel j on point x:

* ``|x - c_j| >= near * sqrt(A_j)``: a point source of strength A_j at the centroid
  (its error falls as (size / distance)^2);
* nearer: a quadrature over the triangle split into ``quad**2`` equal sub-triangles,
  one point each, so neighbouring panels are integrated, not lumped.

The dense system (F x F) is solved by LU; the surface velocity and Cp = 1 - |u + U|^2/|U|^2
are evaluated at the centroids. Memory and work grow as F^2 (F^3 / 3 for the solve), about
a second for 2k panels; rows are assembled in blocks so the F x F x 3 geometry never exists.

Validated against the exact sphere and ellipsoids (:mod:`lowprec.geometry.potential`):
see ``tests/geometry/test_panel.py`` and ``docs/gino.md`` for the errors as the mesh refines.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from .mesh import panels


def triangle_source_velocity(x: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Exact velocity at x (n, 3) of unit source density on triangles tri (n, 3, 3), pairwise: (n, 3).

    (x - y) / |x - y|^3 is the gradient in y of 1/|x - y|, so over a flat triangle its in-plane
    part is, by the divergence theorem in the plane, sum over edges of nu_k * integral ds / |x - y|
    = nu_k ln((r_k + r_k+1 + d_k) / (r_k + r_k+1 - d_k)) (nu_k the edge's outward in-plane normal,
    r the distances to its ends, d its length); the normal part is the solid angle the triangle
    subtends (Van Oosterom and Strackee 1983). Divided by 4 pi. On the triangle's own plane the
    normal part is 0 here (the principal value); the one-sided limit adds +-1/2.
    """
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    normal = np.cross(e1, e2)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    rel = tri - x[:, None, :]  # vertex - x
    r = np.linalg.norm(rel, axis=-1)
    u = np.zeros_like(x)
    for k in range(3):
        a, b = tri[:, k], tri[:, (k + 1) % 3]
        edge = b - a
        d = np.linalg.norm(edge, axis=-1)
        nu = np.cross(edge, normal) / d[:, None]  # outward for counter-clockwise vertices about the normal
        rs = r[:, k] + r[:, (k + 1) % 3]
        u += nu * np.log((rs + d) / np.maximum(rs - d, 1e-300))[:, None]
    a, b, c = rel[:, 0], rel[:, 1], rel[:, 2]
    det = (a * np.cross(b, c)).sum(-1)
    den = (
        r[:, 0] * r[:, 1] * r[:, 2] + (a * b).sum(-1) * r[:, 2] + (b * c).sum(-1) * r[:, 0] + (c * a).sum(-1) * r[:, 1]
    )
    solid = 2 * np.arctan2(det, den)  # signed: negative on the side the normal points to
    u -= solid[:, None] * normal
    return u / (4 * np.pi)


def _point_sources(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Velocity at x (n, 3) of sources of strength weight (k,) at y (k, 3), pairwise: (n, k, 3)."""
    r = x[:, None, :] - y[None, :, :]
    d = np.linalg.norm(r, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = weight[None] / (4 * math.pi * d**3)
    return r * np.where(d > 0, g, 0.0)[..., None]


class SourcePanels:
    """The influence of every panel of a mesh on every centroid (module docstring).

    ``solve(stream)`` returns sigma; ``velocity(sigma, stream)`` the surface velocity at the
    centroids; ``cp(stream)`` both and the pressure coefficient.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, near: float = 3.0, block: int = 1024):
        self.vertices, self.faces = np.asarray(vertices, np.float64), np.asarray(faces, np.int64)
        self.centroids, self.normals, self.areas = panels(self.vertices, self.faces)
        if not np.all(self.areas > 0):
            raise ValueError(
                f"the mesh has {int((self.areas <= 0).sum())} degenerate (zero-area) triangles; "
                "remove them before the panel solve."
            )
        f = len(self.faces)
        self.block = block
        # near pairs (i, j): point i within near * sqrt(A_j) of centroid j; integrated by quadrature
        size = np.sqrt(self.areas)
        tree = cKDTree(self.centroids)
        lists = tree.query_ball_point(self.centroids, r=near * size.max())
        rows = np.repeat(np.arange(f), [len(item) for item in lists])
        cols = np.concatenate([np.asarray(item, dtype=np.int64) for item in lists])
        keep = (np.linalg.norm(self.centroids[rows] - self.centroids[cols], axis=-1) < near * size[cols]) & (
            rows != cols
        )
        self.near_rows, self.near_cols = rows[keep], cols[keep]
        self.near_velocity = triangle_source_velocity(
            self.centroids[self.near_rows], self.vertices[self.faces[self.near_cols]]
        )
        # own panel at its centroid: the in-plane principal value (zero for an equilateral triangle)
        own = triangle_source_velocity(self.centroids, self.vertices[self.faces])
        self.self_velocity = own - (own * self.normals).sum(-1, keepdims=True) * self.normals

    def influence(self, start: int, stop: int) -> np.ndarray:
        """Velocity at centroids start:stop of unit source density on every panel: (stop - start, F, 3)."""
        u = _point_sources(self.centroids[start:stop], self.centroids, self.areas)
        sel = (self.near_rows >= start) & (self.near_rows < stop)
        u[self.near_rows[sel] - start, self.near_cols[sel]] = self.near_velocity[sel]
        u[np.arange(stop - start), np.arange(start, stop)] = self.self_velocity[start:stop]  # + sigma n / 2 below
        return u

    def solve(self, stream) -> np.ndarray:
        """Source densities sigma (F,) making the normal velocity vanish at every centroid."""
        f = len(self.faces)
        a = np.empty((f, f))
        for s in range(0, f, self.block):
            e = min(s + self.block, f)
            a[s:e] = np.einsum("nkd,nd->nk", self.influence(s, e), self.normals[s:e])
        a[np.arange(f), np.arange(f)] = 0.5
        return np.linalg.solve(a, -self.normals @ np.asarray(stream, np.float64))

    def velocity(self, sigma: np.ndarray, stream) -> np.ndarray:
        """Surface velocity U + u (F, 3) at the centroids; its normal part is the solve's residual."""
        stream = np.asarray(stream, np.float64)
        out = np.empty((len(self.faces), 3))
        for s in range(0, len(self.faces), self.block):
            e = min(s + self.block, len(self.faces))
            out[s:e] = stream + np.einsum("nkd,k->nd", self.influence(s, e), sigma)
        return out + 0.5 * sigma[:, None] * self.normals

    def cp(self, stream) -> np.ndarray:
        """Pressure coefficient 1 - |U + u|^2 / |U|^2 at the centroids (F,)."""
        v = self.velocity(self.solve(stream), stream)
        return 1 - (v**2).sum(-1) / float(np.sum(np.asarray(stream, np.float64) ** 2))


def panel_cp(vertices: np.ndarray, faces: np.ndarray, stream=(1.0, 0.0, 0.0), **kw) -> np.ndarray:
    """Cp (F,) at the panel centroids of a closed body in the stream (see :class:`SourcePanels`)."""
    return SourcePanels(vertices, faces, **kw).cp(stream)


__all__ = ["SourcePanels", "panel_cp"]
