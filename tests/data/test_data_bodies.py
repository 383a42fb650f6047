"""Bodies in potential flow: generator, cache, CLI, and the car-CFD reader."""

import h5py
import numpy as np
import pytest
import torch

from lowprec.data import GENERATORS, PROBLEMS, CacheError, CacheMismatchError
from lowprec.data.bodies import BodiesParams, bodies_dataset, load_bodies, load_car_cfd
from lowprec.geometry.mesh import ellipsoid_mesh, latent_grid, signed_distance
from lowprec.geometry.potential import ellipsoid_cp


def test_ellipsoids_carry_exact_cp_and_signed_distance(_cache_in_tmp):
    data = bodies_dataset(resolution=8, n=2, seed=3, kind="ellipsoid", subdivisions=1, progress=False)
    assert data.fields["coords"].shape == (2, 42, 3) and data.fields["latent"].shape == (2, 1, 8, 8, 8)
    assert data.y.shape == (2, 1, 42) and tuple(data.meta["faces"].shape) == (80, 3)
    params = BodiesParams(resolution=8, n=2, seed=3, kind="ellipsoid", subdivisions=1)
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng([3, 1])  # body 1, drawn as the generator draws it
    axes = np.sort(rng.uniform([0.5, 0.2, 0.15], [0.85, 0.5, 0.4]))[::-1]
    rot = Rotation.random(random_state=rng).as_matrix()
    v, f = ellipsoid_mesh(axes, 1, rot)
    np.testing.assert_allclose(data.fields["coords"][1].numpy(), v, atol=1e-6)
    np.testing.assert_allclose(data.y[1, 0].numpy(), ellipsoid_cp(v, axes, (1.0, 0, 0), rot), atol=1e-6)
    sdf = signed_distance(latent_grid(8), v, f).reshape(8, 8, 8)
    np.testing.assert_allclose(data.fields["latent"][1, 0].numpy(), sdf, atol=1e-6)
    assert params.cache_path().exists()


def test_cache_serves_fewer_and_checks_on_load(_cache_in_tmp):
    first = bodies_dataset(resolution=6, n=2, seed=0, kind="car", subdivisions=1, progress=False)
    again = bodies_dataset(resolution=6, n=1, seed=0, kind="car", subdivisions=1, progress=False)
    assert torch.equal(again.y, first.y[:1]) and "source" in again.meta
    assert first.y.min() < 0 < first.y.max() and first.fields["latent"].min() < 0
    path = BodiesParams(resolution=6, n=2, seed=0, kind="car", subdivisions=1).cache_path()
    with h5py.File(path, "r+") as f:
        f["cp"][0, 0] = np.nan
    with pytest.raises(CacheError, match="expected finite float32"):
        bodies_dataset(resolution=6, n=2, seed=0, kind="car", subdivisions=1, progress=False)
    with h5py.File(path, "r+") as f:
        f.attrs["subdivisions"] = 2
    with pytest.raises(CacheMismatchError, match="subdivisions"):
        bodies_dataset(resolution=6, n=2, seed=0, kind="car", subdivisions=1, progress=False)


def test_registered_and_bad_parameters():
    assert "bodies" in PROBLEMS and GENERATORS["bodies"] is bodies_dataset
    with pytest.raises(ValueError, match="kind must be one of"):
        BodiesParams(kind="boat")
    with pytest.raises(ValueError, match="did you mean 'subdivisions'"):
        bodies_dataset(resolution=6, n=1, subdivision=1)


def test_cli_generate_writes_hdf5(tmp_path, capsys):
    from lowprec.cli import main

    out = tmp_path / "bodies.h5"
    assert (
        main(
            [
                "data",
                "generate",
                "bodies",
                "--n",
                "1",
                "--res",
                "6",
                "--kind",
                "ellipsoid",
                "--subdivisions",
                "1",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "coords (1, 42, 3)" in capsys.readouterr().out
    with h5py.File(out) as f:
        assert f["vertices"].shape == (1, 42, 3) and f["faces"].shape == (80, 3) and f["sdf"].shape == (1, 6, 6, 6)
    back = load_bodies(out)
    cached = bodies_dataset(resolution=6, n=1, kind="ellipsoid", subdivisions=1, progress=False)
    for name in ("coords", "latent", "y"):
        assert torch.equal(back.fields[name], cached.fields[name])
    assert back.meta["params"]["kind"] == "ellipsoid" and torch.equal(back.meta["faces"], cached.meta["faces"])


def _write_car_cfd(root, ids, press_extra=0):
    import trimesh

    (root / "data").mkdir(parents=True)
    (root / "train.txt").write_text(",".join(ids[:2]))
    (root / "test.txt").write_text(",".join(ids[2:]) + "\n")
    for k, i in enumerate(ids):
        axes = (2.0 + k, 1.0, 0.8)  # in metres, off centre: the reader normalises
        v, f = ellipsoid_mesh(axes, 1)
        v = v + np.array([1.0, 0.0, 0.5])
        (root / "data" / i).mkdir()
        trimesh.Trimesh(v, f, process=False).export(root / "data" / i / "tri_mesh.ply")
        press = ellipsoid_cp(v - np.array([1.0, 0.0, 0.5]), axes, (1.0, 0, 0))
        np.save(root / "data" / i / "press.npy", np.concatenate([press, np.zeros(press_extra)]))
    return root


def test_car_cfd_reader(tmp_path):
    root = _write_car_cfd(tmp_path / "car", ["001", "002", "004"])
    train = load_car_cfd(root, "train", resolution=9)
    test = load_car_cfd(root, "test", resolution=9)
    assert len(train) == 2 and len(test) == 1 and train.meta["ids"] == ["001", "002"]
    coords = torch.cat([train.fields["coords"], test.fields["coords"]])
    assert coords.abs().max() <= 0.9 + 1e-6 and coords.abs().max() > 0.89  # one scale for the whole set
    x = coords[..., 0]
    assert (x.amax(1) - x.amin(1)).tolist() == pytest.approx([4 * 0.9 / 4, 6 * 0.9 / 4, 8 * 0.9 / 4], rel=1e-5)
    v, _ = ellipsoid_mesh((2.0, 1.0, 0.8), 1)
    np.testing.assert_allclose(train.y[0, 0].numpy(), ellipsoid_cp(v, (2.0, 1.0, 0.8), (1.0, 0, 0)), atol=1e-6)
    assert train.fields["latent"].min() < 0 < train.fields["latent"].max()


def test_car_cfd_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.txt is missing"):
        load_car_cfd(tmp_path)
    root = _write_car_cfd(tmp_path / "car", ["1", "2", "3"], press_extra=96)
    with pytest.raises(ValueError, match=r"press.npy has 138 values but tri_mesh.ply has 42 vertices"):
        load_car_cfd(root)
