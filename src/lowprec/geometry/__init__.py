"""Geometry for neural operators on point clouds: radius neighbours and graph neural operator layers.

    from lowprec.geometry import radius_neighbors, GNOLayer
    nbrs = radius_neighbors(points, queries, radius=0.1)         # CSR: index, splits
    gno = GNOLayer(coord_dim=3, in_channels=8, transform="linear")
    v = gno(points, queries, nbrs, f=features)                    # (M, 8)

Files:
    neighbors.py   radius_neighbors (k-d tree on CPU, blocked cdist on GPU), Neighbors (CSR)
    gno.py         GNOLayer (kernel integral, chunked, fp32 accumulation), KernelMLP
    potential.py   exact potential flow past an ellipsoid (Lamb sec. 114): surface velocity, Cp
    panel.py       constant-strength source panels (Hess and Smith 1967): Cp on a closed body
    mesh.py        panels, vertex normals, signed distance, icospheres, ellipsoids, car-like bodies
"""

from .gno import REDUCTIONS, TRANSFORMS, GNOLayer, KernelMLP
from .neighbors import METHODS, Neighbors, check_points, radius_neighbors

__all__ = [
    "METHODS",
    "REDUCTIONS",
    "TRANSFORMS",
    "GNOLayer",
    "KernelMLP",
    "Neighbors",
    "check_points",
    "radius_neighbors",
]
