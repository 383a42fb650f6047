"""Closed triangle meshes: panel quantities, vertex normals, signed distance, ellipsoids and car-like bodies.

A mesh is ``(vertices (V, 3) float64, faces (F, 3) int64)`` with faces oriented outward
(counter-clockwise seen from outside), closed and without boundary. Generated bodies all
map the vertices of one icosphere, so every body of a data set shares its faces: sample i
differs from sample j only in vertex positions, which is what lets a batch stack them.

Signed distance (negative inside) is computed here, not with trimesh (whose
``signed_distance`` needs the optional ``rtree``): the distance to the nearest triangle
(exact point-triangle distance) signed by the generalized winding number (the solid angle
the closed mesh subtends, / 4 pi: 1 inside, 0 outside; Jacobson et al. 2013), which is
robust for closed meshes. trimesh makes the icosphere and checks watertightness.
"""

from __future__ import annotations

import math

import numpy as np


def icosphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere: 10 * 4^s + 2 vertices, 20 * 4^s faces (s=3: 642 / 1280; s=4: 2562 / 5120)."""
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=subdivisions)
    return np.asarray(m.vertices, dtype=np.float64), np.asarray(m.faces, dtype=np.int64)


def panels(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centroids (F, 3), unit normals (F, 3), areas (F,)) of the triangles."""
    p = vertices[faces]
    cross = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    area2 = np.linalg.norm(cross, axis=-1)
    return p.mean(1), cross / area2[:, None], area2 / 2


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit normals at the vertices (V, 3)."""
    p = vertices[faces]
    cross = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    n = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(n, faces[:, k], cross)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


def faces_to_vertices(values: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted average of per-face values (F,) at the vertices (V,)."""
    _, _, area = panels(vertices, faces)
    num, den = np.zeros(len(vertices)), np.zeros(len(vertices))
    for k in range(3):
        np.add.at(num, faces[:, k], area * values)
        np.add.at(den, faces[:, k], area)
    return num / den


def _point_triangle_distance(q: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Distance from points q (n, 1, 3) to triangles (1, F, 3): (n, F). Ericson, Real-Time Collision Detection 5.1.5."""
    ab, ac, ap = b - a, c - a, q - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = q - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = q - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    denom = va + vb + vc
    with np.errstate(divide="ignore", invalid="ignore"):
        v, w = vb / denom, vc / denom
        closest = a + ab * v[..., None] + ac * w[..., None]  # interior
        # edges
        t_ab = np.clip(d1 / (d1 - d3), 0, 1)
        t_ac = np.clip(d2 / (d2 - d6), 0, 1)
        t_bc = np.clip((d4 - d3) / ((d4 - d3) + (d5 - d6)), 0, 1)
    on_ab = a + ab * np.nan_to_num(t_ab)[..., None]
    on_ac = a + ac * np.nan_to_num(t_ac)[..., None]
    on_bc = b + (c - b) * np.nan_to_num(t_bc)[..., None]
    inside = (va >= 0) & (vb >= 0) & (vc >= 0)
    dist = np.linalg.norm(q - closest, axis=-1)
    edge = np.minimum(
        np.minimum(np.linalg.norm(q - on_ab, axis=-1), np.linalg.norm(q - on_ac, axis=-1)),
        np.linalg.norm(q - on_bc, axis=-1),
    )
    return np.where(inside & np.isfinite(dist), dist, edge)


def winding_number(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, block: int = 256) -> np.ndarray:
    """Generalized winding number of a closed mesh at points (n,): 1 inside, 0 outside (Van Oosterom-Strackee)."""
    out = np.empty(len(points))
    tri = vertices[faces][None]  # (1, F, 3, 3)
    for s in range(0, len(points), block):
        r = tri - points[s : s + block, None, None, :]
        n = np.linalg.norm(r, axis=-1)
        a, b, c = r[..., 0, :], r[..., 1, :], r[..., 2, :]
        det = (a * np.cross(b, c)).sum(-1)
        den = (
            n[..., 0] * n[..., 1] * n[..., 2]
            + (a * b).sum(-1) * n[..., 2]
            + (b * c).sum(-1) * n[..., 0]
            + (c * a).sum(-1) * n[..., 1]
        )
        out[s : s + block] = np.arctan2(det, den).sum(-1) / (2 * math.pi)
    return out


def signed_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Signed distance (n,) from points to a closed outward-oriented mesh: negative inside.

    Exact, with two shortcuts that change no value: the nearest triangle is sought among those
    whose centroid lies within d_c + R of the point (d_c: the nearest centroid's distance, an
    upper bound on the distance; R: the largest centroid-to-vertex distance), and the winding
    number is evaluated only inside the mesh's bounding box (everything outside is outside).
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, np.float64)
    tri = vertices[faces]
    centroids = tri.mean(1)
    reach = np.linalg.norm(tri - centroids[:, None], axis=-1).max()
    tree = cKDTree(centroids)
    d_c, _ = tree.query(points)
    lists = tree.query_ball_point(points, d_c + reach + 1e-12)
    rows = np.repeat(np.arange(len(points)), [len(item) for item in lists])
    cols = np.concatenate([np.asarray(item, dtype=np.int64) for item in lists])
    dist = np.full(len(points), np.inf)
    for s in range(0, len(rows), 1 << 16):
        r, c = rows[s : s + (1 << 16)], cols[s : s + (1 << 16)]
        d = _point_triangle_distance(points[r], tri[c, 0], tri[c, 1], tri[c, 2])
        np.minimum.at(dist, r, d)
    low, high = vertices.min(0), vertices.max(0)
    boxed = np.all((points >= low) & (points <= high), axis=1)
    inside = np.zeros(len(points), dtype=bool)
    if boxed.any():
        inside[boxed] = winding_number(points[boxed], vertices, faces) > 0.5
    return np.where(inside, -dist, dist)


def latent_grid(resolution: int, domain: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """(R^3, 3) nodes of the latent cube, ``indexing="ij"`` order (as :class:`lowprec.models.GINO`)."""
    axis = np.linspace(domain[0], domain[1], resolution)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)


def ellipsoid_mesh(semi_axes, subdivisions: int = 3, rotation=None) -> tuple[np.ndarray, np.ndarray]:
    """An icosphere scaled to the semi-axes (and rotated: world = rotation @ body)."""
    v, f = icosphere(subdivisions)
    v = v * np.asarray(semi_axes, dtype=np.float64)
    return (v if rotation is None else v @ np.asarray(rotation).T), f


def _smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """min(a, b) rounded over a width k (polynomial smooth minimum): no crease, so no folded panels."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0, 1)
    return b + (a - b) * h - k * h * (1 - h)


def car_body(
    length: float,
    width: float,
    height: float,
    front_exponent: float,
    rear_exponent: float,
    slant_deg: float,
    slant_start: float,
    subdivisions: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """A closed car-like body on the icosphere's topology; x forward, z up, centred at the origin.

    Each icosphere direction d is moved to the superellipsoid |x/A|^p + |y/W|^p + |z/H|^p = 1
    along d (a star-shaped surface: closed, no folds), with A the front half-length and
    exponent (rounded nose, p ~ 2-3) for x > 0 and the rear ones (boxier, p ~ 3-5) for x < 0.
    The roof behind ``slant_start`` (a fraction of the rear half-length, measured from the
    centre) is lowered to a plane sloping down at ``slant_deg`` (the rear window of a
    hatchback / Ahmed body), joined by a smooth minimum. Lengths are half-extents.
    """
    d, faces = icosphere(subdivisions)
    half = length / 2
    front = d[:, 0] > 0
    p = np.where(front, front_exponent, rear_exponent)
    ext = np.stack([np.full(len(d), half), np.full(len(d), width / 2), np.full(len(d), height / 2)], -1)
    scale = ((np.abs(d) / ext) ** p[:, None]).sum(-1) ** (-1 / p)
    v = d * scale[:, None]
    x0 = -slant_start * half
    roof = height / 2 - np.tan(np.radians(slant_deg)) * np.maximum(0.0, x0 - v[:, 0])
    top = v[:, 2] > 0
    lowered = _smooth_min(v[:, 2], np.maximum(roof, 0.25 * height / 2), 0.1 * height)
    v[:, 2] = np.where(top, np.minimum(v[:, 2], lowered), v[:, 2])
    return v, faces


__all__ = [
    "car_body",
    "ellipsoid_mesh",
    "faces_to_vertices",
    "icosphere",
    "latent_grid",
    "panels",
    "signed_distance",
    "vertex_normals",
    "winding_number",
]
