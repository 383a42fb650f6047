"""Exact potential flow past an ellipsoid (Lamb, Hydrodynamics, sec. 114): surface velocity and Cp.

An ellipsoid x^2/a^2 + y^2/b^2 + z^2/c^2 = 1 held fixed in a uniform stream U (components
U_i along its axes) has a disturbance potential whose gradient is uniform inside the body,
so its surface velocity is the part tangent to the surface of the vector V with

    V_i = 2 / (2 - alpha_i) * U_i,
    alpha_i = abc * integral_0^inf ds / ((a_i^2 + s) sqrt((a^2 + s)(b^2 + s)(c^2 + s)))
            = (2/3) abc R_D(a_j^2, a_k^2, a_i^2)         (Carlson's symmetric integral, j, k the other axes)

and the pressure coefficient is Cp = 1 - |u|^2 / |U|^2. A sphere has alpha_i = 2/3, so
|u| = 3/2 U sin(theta) and Cp = 1 - 9/4 sin^2(theta). ``alpha_a + alpha_b + alpha_c = 2``.

Orientation: ``rotation`` (3, 3) maps body axes to world axes (world = rotation @ body),
so a body rotated by R in a stream U sees R^T U along its axes.
"""

from __future__ import annotations

import numpy as np
from scipy.special import elliprd


def ellipsoid_alphas(a: float, b: float, c: float) -> np.ndarray:
    """(alpha_a, alpha_b, alpha_c) of the ellipsoid with semi-axes a, b, c (module docstring)."""
    if min(a, b, c) <= 0:
        raise ValueError(f"semi-axes must be positive, got {(a, b, c)}.")
    s = np.array([a, b, c], dtype=np.float64) ** 2
    abc = a * b * c
    return np.array([2 / 3 * abc * elliprd(s[(i + 1) % 3], s[(i + 2) % 3], s[i]) for i in range(3)])


def ellipsoid_surface_velocity(points: np.ndarray, semi_axes, stream, rotation=None) -> np.ndarray:
    """Surface velocity (n, 3), world frame, at ``points`` (n, 3) on the ellipsoid (world frame).

    ``stream``: the free-stream velocity U (3,), world frame. Points are projected onto the
    exact surface along the ray from the centre before the normal is taken, so centroids of
    flat panels slightly inside it are accepted.
    """
    a, b, c = (float(v) for v in semi_axes)
    rot = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
    body = np.asarray(points, dtype=np.float64) @ rot  # world -> body: R^T x, row-wise
    axes2 = np.array([a, b, c]) ** 2
    body = body / np.sqrt((body**2 / axes2).sum(-1, keepdims=True))
    normal = body / axes2
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    v = 2 / (2 - ellipsoid_alphas(a, b, c)) * (rot.T @ np.asarray(stream, dtype=np.float64))
    tangent = v[None] - (normal @ v)[:, None] * normal
    return tangent @ rot.T


def ellipsoid_cp(points: np.ndarray, semi_axes, stream, rotation=None) -> np.ndarray:
    """Pressure coefficient 1 - |u|^2 / |U|^2 at ``points`` (n, 3) on the ellipsoid: (n,)."""
    u = ellipsoid_surface_velocity(points, semi_axes, stream, rotation)
    return 1 - (u**2).sum(-1) / float(np.sum(np.asarray(stream, dtype=np.float64) ** 2))


__all__ = ["ellipsoid_alphas", "ellipsoid_cp", "ellipsoid_surface_velocity"]
