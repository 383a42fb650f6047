"""Surface pressure on 3D bodies in potential flow, for GINO: generated (cached) or read from car-CFD files.

    data = bodies_dataset(resolution=16, n=200, seed=0, kind="car")   # DictDataset
    data.fields["coords"]   (n, V, 3)           surface vertices, inside the latent cube [-1, 1]^3
    data.fields["latent"]   (n, 1, R, R, R)     signed distance to the surface on the latent grid
    data.fields["y"]        (n, 1, V)           pressure coefficient Cp at the vertices
    data.meta["faces"]      (F, 3)              the triangles, shared by every body

``kind``:

* ``"ellipsoid"``: random semi-axes and orientation in a stream along +x; Cp exact
  (:mod:`lowprec.geometry.potential`, Lamb sec. 114), evaluated at the vertices.
* ``"car"``: random car-like bodies (:func:`lowprec.geometry.mesh.car_body`: length, width,
  height, nose and tail roundness, rear slant angle) in a stream along +x; Cp from the
  source-panel method (:mod:`lowprec.geometry.panel`) at the panel centroids, averaged to the
  vertices by area.

Every body maps the vertices of one icosphere (``subdivisions``: 3 gives 642 vertices and
1280 panels, 4 gives 2562 and 5120), so the bodies share their faces and stack into batches.
Sample i depends only on (seed, i). Potential flow has no wake: this is the inviscid
pressure (a stand-in for the CFD of the GINO paper with the same inputs and outputs).

Cache: one HDF5 file per parameter set, named and checked like the other generators
(:mod:`lowprec.data.base`), holding ``vertices`` (n, V, 3), ``faces`` (F, 3), ``normals``
(n, V, 3), ``cp`` (n, V), ``sdf`` (n, R, R, R), float32 but the int64 faces, and the
parameters as attributes; a file for more samples serves any smaller n.

:func:`load_car_cfd` reads neuraloperator's car-CFD layout (``train.txt``, ``test.txt``,
``data/<id>/tri_mesh.ply``, ``data/<id>/press.npy``) into the same fields.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np
import torch

from .base import (
    CacheError,
    PathLike,
    ProblemParams,
    _plain,
    atomic_write,
    load_or_generate,
    open_cache,
)
from .dict_dataset import DictDataset

log = logging.getLogger(__name__)

KINDS = ("ellipsoid", "car")
ARRAYS = ("vertices", "faces", "normals", "cp", "sdf")


@dataclasses.dataclass(frozen=True)
class BodiesParams(ProblemParams):
    """Parameters of a generated set of bodies.

    Attributes:
        resolution: latent grid nodes per axis for the signed distance (R).
        n: number of bodies.
        seed: random seed; body i depends only on (seed, i).
        kind: "ellipsoid" (exact Cp) or "car" (panel method).
        subdivisions: icosphere level of every mesh (3: 642 vertices, 4: 2562).
        speed: free-stream speed along +x (Cp does not depend on it; kept for the record).
    """

    resolution: int = 16
    n: int = 100
    seed: int = 0
    kind: str = "car"
    subdivisions: int = 3
    speed: float = 1.0

    problem: ClassVar[str] = "bodies"
    version: ClassVar[int] = 1
    arrays: ClassVar[tuple[str, ...]] = ARRAYS
    spatial_dims: ClassVar[int] = 3

    def __post_init__(self):
        super().__post_init__()
        if self.kind not in KINDS:
            raise ValueError(f"bodies: kind must be one of {KINDS}, got {self.kind!r}.")
        if not 1 <= self.subdivisions <= 5:
            raise ValueError(f"bodies: subdivisions must be 1..5 (5: 10242 vertices), got {self.subdivisions}.")

    def body(self, i: int) -> dict[str, np.ndarray]:
        """Body i: vertices, faces, normals, Cp at the vertices, signed distance on the grid."""
        from ..geometry.mesh import (
            car_body,
            ellipsoid_mesh,
            faces_to_vertices,
            latent_grid,
            signed_distance,
            vertex_normals,
        )
        from ..geometry.panel import panel_cp
        from ..geometry.potential import ellipsoid_cp

        rng = np.random.default_rng([self.seed, i])
        stream = np.array([self.speed, 0.0, 0.0])
        if self.kind == "ellipsoid":
            from scipy.spatial.transform import Rotation

            axes = np.sort(rng.uniform([0.5, 0.2, 0.15], [0.85, 0.5, 0.4]))[::-1]
            rotation = Rotation.random(random_state=rng).as_matrix()
            vertices, faces = ellipsoid_mesh(axes, self.subdivisions, rotation)
            cp = ellipsoid_cp(vertices, axes, stream, rotation)
        else:
            vertices, faces = car_body(
                length=rng.uniform(1.4, 1.8),
                width=rng.uniform(0.55, 0.85),
                height=rng.uniform(0.4, 0.6),
                front_exponent=rng.uniform(2.0, 3.0),
                rear_exponent=rng.uniform(3.0, 5.0),
                slant_deg=rng.uniform(10, 40),
                slant_start=rng.uniform(0.2, 0.6),
                subdivisions=self.subdivisions,
            )
            cp = faces_to_vertices(panel_cp(vertices, faces, stream), vertices, faces)
        sdf = signed_distance(latent_grid(self.resolution), vertices, faces)
        return {
            "vertices": vertices,
            "faces": faces,
            "normals": vertex_normals(vertices, faces),
            "cp": cp,
            "sdf": sdf.reshape((self.resolution,) * 3),
        }

    def generate(self, progress: bool = True, **speed) -> tuple[torch.Tensor, ...]:
        from tqdm.auto import tqdm

        bodies = [self.body(i) for i in tqdm(range(self.n), desc=f"bodies ({self.kind})", disable=not progress)]
        stacked = {k: np.stack([b[k] for b in bodies]).astype(np.float32) for k in ARRAYS if k != "faces"}
        stacked["faces"] = bodies[0]["faces"]
        return tuple(torch.from_numpy(stacked[k]) for k in ARRAYS)

    def to_dataset(self, arrays: dict[str, torch.Tensor], meta: dict[str, Any]) -> DictDataset:
        return as_dict_dataset(arrays, meta)

    # The cache stores the faces once (every body shares them), so not every array is a stack of samples.
    def write_arrays(self, path: PathLike, arrays: dict[str, torch.Tensor]) -> Path:
        return write_bodies(path, self, arrays)

    def read_arrays(self, path: PathLike) -> dict[str, torch.Tensor]:
        return read_bodies(path, self)


def as_dict_dataset(arrays: dict[str, torch.Tensor], meta: dict[str, Any]) -> DictDataset:
    """GINO's fields (coords, latent, y) from the stored arrays; faces and normals go to ``meta``."""
    fields = {"coords": arrays["vertices"], "latent": arrays["sdf"].unsqueeze(1), "y": arrays["cp"].unsqueeze(1)}
    return DictDataset(fields, grid=None, meta={**meta, "faces": arrays["faces"], "normals": arrays["normals"]})


def write_bodies(path: PathLike, params: BodiesParams, arrays: dict[str, torch.Tensor]) -> Path:
    """Write the arrays and parameters atomically (faces once: every body shares them)."""
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        for name in ARRAYS:
            f.create_dataset(name, data=arrays[name].numpy())
        f.attrs["problem"] = params.problem
        f.attrs["generator_version"] = params.version
        for key, value in params.as_dict().items():
            f.attrs[key] = value
    return Path(path)


def read_bodies(path: PathLike, params: BodiesParams) -> dict[str, torch.Tensor]:
    """The first ``params.n`` bodies of a cache file, checked: parameters, shapes, finite, face indices."""
    path = Path(path)
    fix = f"Delete {path} and it will be regenerated."
    with open_cache(path, params) as (f, attrs):
        missing = [k for k in ARRAYS if k not in f]
        if missing:
            raise CacheError(f"cache file {path} lacks {missing}. {fix}")
        if int(attrs["n"]) < params.n:
            raise CacheError(f"cache file {path} holds {attrs['n']} bodies, {params.n} requested.")
        arrays = {k: torch.from_numpy(f[k][()] if k == "faces" else f[k][: params.n]) for k in ARRAYS}
    n, v, r = params.n, arrays["vertices"].shape[1], params.resolution
    want = {"vertices": (n, v, 3), "normals": (n, v, 3), "cp": (n, v), "sdf": (n, r, r, r)}
    for name, shape in want.items():
        t = arrays[name]
        if tuple(t.shape) != shape or t.dtype != torch.float32 or not torch.isfinite(t).all():
            raise CacheError(
                f"cache file {path}: {name} is {t.dtype} {tuple(t.shape)}, expected finite float32 {shape}. {fix}"
            )
    faces = arrays["faces"]
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= v:
        raise CacheError(f"cache file {path}: faces {tuple(faces.shape)} do not index {v} vertices. {fix}")
    return arrays


def bodies_dataset(
    resolution: int = 16,
    n: int = 100,
    seed: int = 0,
    *,
    cache_dir: PathLike | None = None,
    cache: bool = True,
    progress: bool = True,
    **params,
) -> DictDataset:
    """Generated bodies with Cp (module docstring); ``params`` are :class:`BodiesParams` fields."""
    params.pop("device", None), params.pop("batch_size", None)  # speed settings of the torch solvers
    return load_or_generate(
        BodiesParams.from_kwargs(resolution=resolution, n=n, seed=seed, **params),
        cache_dir,
        cache=cache,
        progress=progress,
    )


def save_bodies(data: DictDataset, path: PathLike) -> Path:
    """Write a bodies DictDataset (from bodies_dataset or load_car_cfd) to HDF5: the arrays and the parameters."""
    p = data.meta.get("params", {})
    with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("vertices", data=data.fields["coords"].numpy())
        f.create_dataset("faces", data=np.asarray(data.meta["faces"]))
        f.create_dataset("normals", data=np.asarray(data.meta["normals"]))
        f.create_dataset("cp", data=data.y[:, 0].numpy())
        f.create_dataset("sdf", data=data.fields["latent"][:, 0].numpy())
        f.attrs["problem"] = data.meta.get("problem", "bodies")
        for key, value in p.items():
            f.attrs[key] = value
        f.attrs["n"] = len(data)
    return Path(path)


def load_bodies(path: PathLike) -> DictDataset:
    """Read a file written by :func:`save_bodies` (``lowprec data generate bodies --out``), checked."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        missing = [k for k in ARRAYS if k not in f]
        if missing:
            raise ValueError(f"{path} is not a bodies file: it lacks {missing} (expected {list(ARRAYS)}).")
        arrays = {k: torch.from_numpy(f[k][()]) for k in ARRAYS}
        attrs = {k: _plain(v) for k, v in f.attrs.items()}
    n, v = arrays["vertices"].shape[:2]
    for name in ("vertices", "normals", "cp", "sdf"):
        t = arrays[name]
        if t.shape[0] != n or (name != "sdf" and t.shape[1] != v) or not torch.isfinite(t).all():
            raise ValueError(
                f"{path}: {name} {tuple(t.shape)} does not match {n} bodies of {v} vertices, or is not finite."
            )
    meta = {"problem": attrs.pop("problem", "bodies"), "source": str(path), "params": attrs}
    return as_dict_dataset({k: t.float() if k != "faces" else t for k, t in arrays.items()}, meta)


# ------------------------------------------------------------------------------ neuraloperator's car-CFD layout


def _ids(root: Path, split: str) -> list[str]:
    text = (root / f"{split}.txt").read_text()
    return [s.strip() for s in text.replace("\n", ",").split(",") if s.strip()]


def load_car_cfd(
    root: PathLike,
    split: str = "train",
    n: int | None = None,
    resolution: int = 16,
    margin: float = 0.9,
    item_prefix: str = "",
) -> DictDataset:
    """Read neuraloperator's car-CFD layout into GINO's fields (coords, latent, y).

    Layout (neuraloperator ``CarCFDDataset`` / ``MeshDataModule``)::

        root/train.txt, root/test.txt      one line of comma-separated ids, e.g. 001,002,004
        root/data/<prefix><id>/tri_mesh.ply    the surface mesh
        root/data/<prefix><id>/press.npy       pressure at the vertices (V,)

    The meshes are centred on the set's bounding box (over both splits) and scaled by one
    factor into ``margin`` times the cube [-1, 1]^3 (one factor keeps their shape; GINO's
    loader stretches each axis to [0, 1] instead). ``latent`` is the signed distance on a
    ``resolution``^3 grid of the cube. Every mesh must have the same vertex count (a
    DictDataset stacks them); ShapeNet car's press.npy holds 3682 values for 3586 vertices,
    from which GINO's code keeps press[:16] and press[112:]: do that when writing the files.
    """
    import trimesh

    from ..geometry.mesh import latent_grid, signed_distance, vertex_normals

    root = Path(root).expanduser()
    for need in ("train.txt", "test.txt", "data"):
        if not (root / need).exists():
            raise FileNotFoundError(
                f"{root} is not in neuraloperator's car-CFD layout: {need} is missing "
                "(expected train.txt, test.txt and data/<id>/{tri_mesh.ply, press.npy})."
            )
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    every = _ids(root, "train") + _ids(root, "test")
    ids = _ids(root, split)[:n]

    def mesh(i):
        m = trimesh.load(root / "data" / f"{item_prefix}{i}" / "tri_mesh.ply", process=False, force="mesh")
        return np.asarray(m.vertices, np.float64), np.asarray(m.faces, np.int64)

    bounds = np.array([[v.min(0), v.max(0)] for v, _ in map(mesh, every)])
    low, high = bounds[:, 0].min(0), bounds[:, 1].max(0)
    centre, scale = (low + high) / 2, margin / ((high - low).max() / 2)
    grid = latent_grid(resolution)
    coords, sdf, cp, normals, faces0 = [], [], [], [], None
    for i in ids:
        v, f = mesh(i)
        press = np.load(root / "data" / f"{item_prefix}{i}" / "press.npy").reshape(-1)
        if len(press) != len(v):
            raise ValueError(
                f"car-CFD sample {i}: press.npy has {len(press)} values but tri_mesh.ply has {len(v)} "
                "vertices; write one pressure per vertex (for ShapeNet car keep press[:16] and "
                "press[112:], as GINO's code does)."
            )
        if coords and len(v) != coords[0].shape[0]:
            raise ValueError(
                f"car-CFD sample {i} has {len(v)} vertices, sample {ids[0]} {coords[0].shape[0]}: "
                "a DictDataset stacks equal point counts; load the samples one at a time "
                "(batch size 1) or resample the meshes to one vertex count."
            )
        v = (v - centre) * scale
        coords.append(v)
        sdf.append(signed_distance(grid, v, f).reshape((resolution,) * 3))
        cp.append(press)
        normals.append(vertex_normals(v, f))
        faces0 = f if faces0 is None else faces0

    def as_t(a):
        return torch.from_numpy(np.stack(a).astype(np.float32))

    arrays = {
        "vertices": as_t(coords),
        "sdf": as_t(sdf),
        "cp": as_t(cp),
        "normals": as_t(normals),
        "faces": torch.from_numpy(faces0),
    }
    meta = {
        "problem": "car_cfd",
        "source": str(root),
        "split": split,
        "ids": ids,
        "centre": centre.tolist(),
        "scale": float(scale),
        "params": {"resolution": resolution},
    }
    return as_dict_dataset(arrays, meta)


__all__ = [
    "ARRAYS",
    "KINDS",
    "BodiesParams",
    "as_dict_dataset",
    "bodies_dataset",
    "load_bodies",
    "load_car_cfd",
    "read_bodies",
    "save_bodies",
    "write_bodies",
]
