"""Exact ellipsoid flow (Lamb), the source-panel method against it, and the mesh tools."""

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.spatial.transform import Rotation

from lowprec.geometry.mesh import (
    car_body,
    ellipsoid_mesh,
    faces_to_vertices,
    icosphere,
    latent_grid,
    panels,
    signed_distance,
    winding_number,
)
from lowprec.geometry.panel import SourcePanels, panel_cp, triangle_source_velocity
from lowprec.geometry.potential import (
    ellipsoid_alphas,
    ellipsoid_cp,
    ellipsoid_surface_velocity,
)


def test_alphas_against_the_integral_and_closed_forms():
    a, b, c = 1.0, 0.6, 0.3
    integral = [
        a
        * b
        * c
        * quad(lambda s, ai=ai: 1 / ((ai**2 + s) * math.sqrt((a * a + s) * (b * b + s) * (c * c + s))), 0, np.inf)[0]
        for ai in (a, b, c)
    ]
    np.testing.assert_allclose(ellipsoid_alphas(a, b, c), integral, rtol=1e-8)
    np.testing.assert_allclose(ellipsoid_alphas(1, 1, 1), [2 / 3] * 3, rtol=1e-12)
    assert ellipsoid_alphas(a, b, c).sum() == pytest.approx(2.0, rel=1e-12)
    e = math.sqrt(1 - 0.5**2)  # prolate spheroid a=1, b=c=0.5: Lamb's alpha_0
    alpha0 = 2 * (1 - e * e) / e**3 * (math.atanh(e) - e)
    assert ellipsoid_alphas(1, 0.5, 0.5)[0] == pytest.approx(alpha0, rel=1e-10)


def test_sphere_cp_and_rotation_invariance():
    v, _ = icosphere(2)
    theta = np.arccos(v[:, 0])
    np.testing.assert_allclose(ellipsoid_cp(v, (1, 1, 1), (2.0, 0, 0)), 1 - 9 / 4 * np.sin(theta) ** 2, atol=1e-12)
    axes, rot = (0.9, 0.5, 0.3), Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix()
    body, _ = ellipsoid_mesh(axes, 2)
    stream = np.array([0.3, -1.0, 0.5])
    rotated = ellipsoid_cp(body @ rot.T, axes, rot @ stream, rot)
    np.testing.assert_allclose(rotated, ellipsoid_cp(body, axes, stream), atol=1e-12)
    u = ellipsoid_surface_velocity(body @ rot.T, axes, rot @ stream, rot)
    normals = (body / np.array(axes) ** 2) @ rot.T
    assert np.abs((u * normals).sum(-1)).max() < 1e-12  # tangent to the surface


def test_triangle_source_velocity_against_quadrature():
    tri = np.array([[[0.0, 0, 0], [1, 0, 0], [0.2, 0.8, 0]]])
    rng = np.random.default_rng(0)
    uv = rng.random((400_000, 2))
    uv = uv[uv.sum(1) < 1]
    pts = tri[0, 0] + uv[:, :1] * (tri[0, 1] - tri[0, 0]) + uv[:, 1:] * (tri[0, 2] - tri[0, 0])
    area = 0.4
    for x in ([0.3, 0.3, 0.5], [2.0, 1.0, -0.3], [0.1, -0.4, 0.2]):
        r = np.asarray(x) - pts
        expected = (r / np.linalg.norm(r, axis=1, keepdims=True) ** 3).mean(0) * area / (4 * math.pi)
        np.testing.assert_allclose(triangle_source_velocity(np.array([x]), tri)[0], expected, atol=3e-4)


def _panel_error(axes, subdivisions, stream=(1.0, 0, 0), rotation=None):
    v, f = ellipsoid_mesh(axes, subdivisions, rotation)
    centroids, _, _ = panels(v, f)
    cp = panel_cp(v, f, stream)
    return np.abs(cp - ellipsoid_cp(centroids, axes, stream, rotation)).max()


def test_panel_method_converges_to_exact_sphere_and_ellipsoid():
    sphere = [_panel_error((1, 1, 1), s) for s in (1, 2, 3)]
    ellipsoid = [_panel_error((1, 0.5, 0.3), s) for s in (1, 2, 3)]
    assert sphere[0] > sphere[1] > sphere[2] and ellipsoid[0] > ellipsoid[1] > ellipsoid[2]
    assert sphere[2] < 0.03 and ellipsoid[2] < 0.01  # 1280 panels: measured 0.024 and 0.0095


def test_panel_method_oblique_stream_on_rotated_ellipsoid():
    rot = Rotation.from_euler("zyx", [30, 20, -10], degrees=True).as_matrix()
    assert _panel_error((0.9, 0.45, 0.3), 3, (0.8, 0.5, -0.2), rot) < 0.02
    v, f = ellipsoid_mesh((0.9, 0.45, 0.3), 2, rot)
    solver = SourcePanels(v, f)
    vel = solver.velocity(solver.solve((1.0, 0, 0)), (1.0, 0, 0))
    assert np.abs((vel * solver.normals).sum(-1)).max() < 1e-10  # the Neumann condition holds


def test_signed_distance_and_winding_number():
    v, f = icosphere(3)
    pts = np.random.default_rng(1).uniform(-1.5, 1.5, (300, 3))
    sd = signed_distance(pts, v, f)
    r = np.linalg.norm(pts, axis=1)
    # the inscribed polyhedron is within 0.005 of the unit sphere at this level
    np.testing.assert_allclose(sd, r - 1, atol=6e-3)
    w = winding_number(pts, v, f)
    clear = np.abs(r - 1) > 0.01  # not between the polyhedron and the sphere
    np.testing.assert_allclose(w[clear], (r[clear] < 1).astype(float), atol=1e-9)


def test_car_bodies_are_closed_and_smooth():
    import trimesh

    for slant in (10.0, 40.0):
        v, f = car_body(1.8, 0.8, 0.5, 2.0, 5.0, slant, 0.2, subdivisions=3)
        mesh = trimesh.Trimesh(v, f, process=False)
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
        _, _, area = panels(v, f)
        assert area.min() > 1e-5
        cp = panel_cp(v, f)
        assert cp.max() <= 1 + 1e-9 and cp.max() > 0.7  # a stagnation point on the nose
        assert faces_to_vertices(cp, v, f).shape == (len(v),)
    grid = latent_grid(4)
    assert grid.shape == (64, 3) and np.allclose(grid[1], [-1, -1, -1 / 3])
