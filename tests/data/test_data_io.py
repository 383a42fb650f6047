import h5py
import numpy as np
import pytest
import scipy.io
import torch

from lowprec.data import PDEDataset, detect_layout, inventory, load_dataset, load_trajectories, save_h5, save_npz


def neuraloperator_like(n=6, s=16):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, s, s, generator=g) > 0.5, torch.rand(n, s, s, generator=g)


def test_neuraloperator_pt(tmp_path):
    x, y = neuraloperator_like()
    torch.save({"x": x, "y": y}, tmp_path / "darcy_train_16.pt")
    ds = load_dataset(tmp_path / "darcy_train_16.pt")
    assert ds.x.shape == ds.y.shape == (6, 1, 16, 16)
    assert ds.x.dtype == ds.y.dtype == torch.float32
    assert torch.equal(ds.x[:, 0], x.float()) and torch.equal(ds.y[:, 0], y)
    assert ds.meta["source"].endswith("darcy_train_16.pt")
    assert len(load_dataset(tmp_path / "darcy_train_16.pt", n=2)) == 2


def test_plain_npz_with_user_keys(tmp_path):
    x, y = neuraloperator_like()
    np.savez(tmp_path / "d.npz", coeff=x.numpy(), sol=y.numpy())
    ds = load_dataset(tmp_path / "d.npz", x_key="coeff", y_key="sol")
    assert ds.x.shape == (6, 1, 16, 16) and torch.equal(ds.y[:, 0], y)


def test_plain_h5_pdebench_darcy_layout(tmp_path):
    nu = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32)
    u = np.random.default_rng(1).random((4, 1, 8, 8)).astype(np.float32)
    with h5py.File(tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5", "w") as f:
        f["nu"], f["tensor"], f["x-coordinate"] = nu, u, np.linspace(0, 1, 8)
        f.attrs["beta"] = 1.0
    ds = load_dataset(tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5", x_key="nu", y_key="tensor", n=3)
    assert ds.x.shape == ds.y.shape == (3, 1, 8, 8)
    np.testing.assert_array_equal(ds.x[:, 0].numpy(), nu[:3])


def test_h5_nested_keys_and_1d(tmp_path):
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["fields/a"] = np.ones((5, 32))
        f["fields/u"] = np.zeros((5, 32))
    ds = load_dataset(tmp_path / "b.h5", "fields/a", "fields/u", spatial_dims=1, grid="periodic")
    assert ds.x.shape == (5, 1, 32) and ds.grid == "periodic"


def test_mat_v5_and_v73(tmp_path):
    coeff = np.random.default_rng(0).random((3, 9, 7))
    sol = np.random.default_rng(1).random((3, 9, 7))
    scipy.io.savemat(tmp_path / "v5.mat", {"coeff": coeff, "sol": sol})
    ds = load_dataset(tmp_path / "v5.mat", "coeff", "sol")
    np.testing.assert_allclose(ds.x[:, 0].numpy(), coeff, rtol=1e-6)
    # MATLAB -v7.3 is HDF5, column-major: an N x 9 x 7 array is stored as (7, 9, N).
    with h5py.File(tmp_path / "v73.mat", "w") as f:
        f["coeff"], f["sol"] = coeff.transpose(), sol.transpose()
    ds = load_dataset(tmp_path / "v73.mat", "coeff", "sol", n=2)
    assert ds.x.shape == (2, 1, 9, 7)
    np.testing.assert_allclose(ds.y[:, 0].numpy(), sol[:2], rtol=1e-6)


@pytest.mark.parametrize("save", [save_npz, save_h5])
def test_own_files_round_trip_exactly(tmp_path, save):
    g = torch.Generator().manual_seed(0)
    ds = PDEDataset(
        torch.randn(4, 2, 5, 5, generator=g),
        torch.randn(4, 3, 5, 5, generator=g),
        meta={"problem": "toy", "params": {"values": (1.0, 2.0)}},
        grid="periodic",
    )
    path = save(ds, tmp_path / f"toy{'.npz' if save is save_npz else '.h5'}")
    back = load_dataset(path)
    assert torch.equal(back.x, ds.x) and torch.equal(back.y, ds.y)
    assert back.grid == "periodic" and back.meta["problem"] == "toy"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no data file at .*nope.npz"):
        load_dataset(tmp_path / "nope.npz")


def test_unknown_suffix(tmp_path):
    (tmp_path / "d.csv").write_text("1,2")
    with pytest.raises(ValueError, match=r"unknown suffix '.csv'.*numpy.savez"):
        load_dataset(tmp_path / "d.csv")


def _write_pair(path, suffix, first="coeff", second="sol"):
    a, b = np.zeros((2, 4, 4), np.float32), np.ones((2, 4, 4), np.float32)
    if suffix == ".npz":
        np.savez(path, **{first: a, second: b})
    elif suffix == ".h5":
        with h5py.File(path, "w") as f:
            f[first], f[second] = a, b
    elif suffix == ".pt":
        torch.save({first: torch.from_numpy(a), second: torch.from_numpy(b)}, path)
    else:
        scipy.io.savemat(path, {first: a, second: b})


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".pt", ".mat"])
def test_missing_named_key_lists_present_keys(tmp_path, suffix):
    path = tmp_path / f"d{suffix}"
    _write_pair(path, suffix)
    with pytest.raises(KeyError, match=r"no input array 'inp'; it holds \['coeff', 'sol'\].*x_key="):
        load_dataset(path, x_key="inp", y_key="sol")


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".pt", ".mat"])
def test_unknown_layout_names_the_keys_and_the_fix(tmp_path, suffix):
    path = tmp_path / f"d{suffix}"
    _write_pair(path, suffix, "inputs", "outputs")
    with pytest.raises(
        ValueError,
        match=r"arrays \['inputs', 'outputs'\] are not a layout lowprec "
        r"knows.*pdebench-1d.*x_key=.*x_key='inputs'",
    ):
        load_dataset(path)


def test_shape_mismatch(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 8, 8)), y=np.zeros((3, 16, 16)))
    with pytest.raises(ValueError, match=r"x \('x'\) has shape \(3, 1, 8, 8\) and y \('y'\) \(3, 1, 16, 16\)"):
        load_dataset(tmp_path / "d.npz")
    np.savez(tmp_path / "e.npz", x=np.zeros((3, 8)), y=np.zeros((3, 8)))
    with pytest.raises(ValueError, match="Pass spatial_dims="):
        load_dataset(tmp_path / "e.npz")


def test_nonfinite_values_raise_or_are_dropped(tmp_path):
    y = np.zeros((5, 4, 4))
    y[3, 1, 1] = np.nan
    np.savez(tmp_path / "d.npz", x=np.zeros((5, 4, 4)), y=y)
    with pytest.raises(ValueError, match="y contains 1 NaN values in sample 3"):
        load_dataset(tmp_path / "d.npz")
    with pytest.warns(UserWarning, match="dropped 1 of 5 samples"):
        ds = load_dataset(tmp_path / "d.npz", drop_nonfinite=True)
    assert len(ds) == 4


def test_corrupt_files(tmp_path):
    for name in ("d.npz", "d.h5", "d.pt"):
        (tmp_path / name).write_bytes(b"garbage")
        with pytest.raises(ValueError, match="d\\.(npz|h5|pt)"):
            load_dataset(tmp_path / name)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="holds a list; expected a dict"):
        load_dataset(tmp_path / "list.pt")


# ------------------------------------------------------------------ published layouts, written by hand


def series(n=4, T=12, X=16, seed=0):
    return np.random.default_rng(seed).standard_normal((n, T, X)).astype(np.float32)


def test_pdebench_1d_layout(tmp_path):
    u = series()
    path = tmp_path / "1D_Burgers_Sols_Nu0.001.hdf5"
    with h5py.File(path, "w") as f:
        f["tensor"] = u
        f["x-coordinate"] = (np.arange(16) + 0.5) / 16
        f["t-coordinate"] = np.arange(13) * 0.01  # PDEBench: one more than the snapshots
        f.attrs["Nu"] = 0.001
    assert detect_layout(path) == "pdebench-1d"
    traj = load_trajectories(path)
    assert np.array_equal(traj.u.numpy(), u) and traj.grid == "periodic"
    np.testing.assert_allclose(traj.t.numpy(), np.arange(12) * 0.01)
    assert traj.meta["viscosity"] == pytest.approx(0.001 / np.pi)
    ds = load_dataset(path)  # default view: first 10 snapshots in, the rest out
    assert np.array_equal(ds.x.numpy(), u[:, :10]) and np.array_equal(ds.y.numpy(), u[:, 10:])
    steps = load_dataset(path, t_in=1, t_out=1, window_stride=1, n=2)
    assert len(steps) == 2 * 11 and np.array_equal(steps.y[12].numpy(), u[1, 2:3])


def test_pdebench_darcy_layout_is_recognised(tmp_path):
    nu = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32)
    u = np.random.default_rng(1).random((4, 1, 8, 8)).astype(np.float32)
    path = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    with h5py.File(path, "w") as f:
        f["nu"], f["tensor"], f["x-coordinate"], f["y-coordinate"] = nu, u, np.linspace(0, 1, 8), np.linspace(0, 1, 8)
        f.attrs["beta"] = 1.0
    ds = load_dataset(path)
    assert detect_layout(path) == "pdebench-darcy" and ds.meta["beta"] == 1.0
    assert np.array_equal(ds.x[:, 0].numpy(), nu) and np.array_equal(ds.y.numpy(), u)


def test_pdebench_groups_layout(tmp_path):
    u = series(n=3, T=11, X=20)
    path = tmp_path / "1D_diff-sorp_NA_NA.h5"
    with h5py.File(path, "w") as f:
        for i in range(3):
            f[f"{i:04d}/data"] = u[i][..., None]
            f[f"{i:04d}/grid/x"] = (np.arange(20) + 0.5) / 20
            f[f"{i:04d}/grid/t"] = np.linspace(0, 500, 11)
    assert detect_layout(path) == "pdebench-groups"
    traj = load_trajectories(path, n=2)
    assert np.array_equal(traj.u.numpy(), u[:2]) and traj.grid == "nodes"
    np.testing.assert_allclose(traj.t.numpy(), np.linspace(0, 500, 11))
    ds = load_dataset(path)
    assert ds.x.shape == (3, 10, 20) and np.array_equal(ds.y[:, 0].numpy(), u[:, 10])


@pytest.mark.parametrize("v73", [False, True])
def test_fno_mat_burgers_and_navier_stokes(tmp_path, v73):
    rng = np.random.default_rng(0)
    a, u = rng.standard_normal((3, 32)), rng.standard_normal((3, 32))
    w0, w = rng.standard_normal((2, 8, 8)), rng.standard_normal((2, 8, 8, 12))  # (N, X, Y, T)
    burgers, ns = tmp_path / "burgers_data_R10.mat", tmp_path / "ns_V1e-3_N5000_T50.mat"
    if v73:  # HDF5 with MATLAB's column-major order: every array's axes reversed
        with h5py.File(burgers, "w") as f:
            f["a"], f["u"] = a.T, u.T
        with h5py.File(ns, "w") as f:
            f["a"], f["u"], f["t"] = w0.transpose(), w.transpose(), np.arange(1, 13)[:, None]
    else:
        scipy.io.savemat(burgers, {"a": a, "u": u})
        scipy.io.savemat(ns, {"a": w0, "u": w, "t": np.arange(1, 13)[None]})
    ds = load_dataset(burgers)
    assert detect_layout(burgers) == "fno-burgers" and ds.grid == "periodic"
    np.testing.assert_allclose(ds.x[:, 0].numpy(), a, rtol=1e-6)
    np.testing.assert_allclose(ds.y[:, 0].numpy(), u, rtol=1e-6)
    traj = load_trajectories(ns)
    assert detect_layout(ns) == "fno-navier-stokes" and traj.u.shape == (2, 13, 8, 8)
    np.testing.assert_allclose(traj.u[:, 0].numpy(), w0, rtol=1e-6)
    np.testing.assert_allclose(traj.u[:, 1:].numpy(), np.moveaxis(w, -1, 1), rtol=1e-6)
    pairs = load_dataset(ns)  # the FNO paper's x = ω(t=1..10), y = ω(t=11..)
    np.testing.assert_allclose(pairs.x.numpy(), np.moveaxis(w[..., :10], -1, 1), rtol=1e-6)
    assert pairs.y.shape == (2, 2, 8, 8) and pairs.meta["t_x"][0] == 1.0
    assert len(load_dataset(ns, n=1)) == 1


def test_own_trajectories_and_pdebench_writers_round_trip(tmp_path):
    from lowprec.data import (
        Trajectories,
        save_pdebench_1d,
        save_pdebench_darcy,
        save_pdebench_groups,
        save_trajectories,
    )

    u = torch.from_numpy(series(n=3, T=12, X=16))
    traj = Trajectories(u, torch.arange(12) * 0.25, grid="periodic", meta={"problem": "toy"})
    own = save_trajectories(traj, tmp_path / "own.h5", default_view={"t_in": 2, "t_out": 3, "t_start": 1})
    back = load_trajectories(own)
    assert torch.equal(back.u, u) and torch.equal(back.t, traj.t) and back.meta["problem"] == "toy"
    ds = load_dataset(own)
    assert torch.equal(ds.x, u[:, 1:3]) and torch.equal(ds.y, u[:, 3:6])
    one_d = load_trajectories(save_pdebench_1d(traj, tmp_path / "p.hdf5", {"Nu": 0.01}))
    assert torch.equal(one_d.u, u) and torch.allclose(one_d.t, traj.t)
    groups = load_trajectories(save_pdebench_groups(traj, tmp_path / "g.h5"))
    assert torch.equal(groups.u, u)
    pairs = PDEDataset(u[:, :1].reshape(3, 1, 4, 4), u[:, 1:2].reshape(3, 1, 4, 4))
    darcy = load_dataset(save_pdebench_darcy(pairs, tmp_path / "d.hdf5", beta=0.1))
    assert torch.equal(darcy.x, pairs.x) and torch.equal(darcy.y, pairs.y) and darcy.meta["beta"] == 0.1


def test_inventory_reads_no_arrays_and_names_formats(tmp_path):
    np.savez(tmp_path / "d.npz", inputs=np.zeros((5, 3, 4), np.float32), outputs=np.ones((5, 3, 4)))
    inv = inventory(tmp_path / "d.npz")
    assert inv["format"] == "npz" and inv["arrays"]["inputs"] == ((5, 3, 4), "float32")


def test_time_series_file_with_a_vector_field_is_refused(tmp_path):
    with h5py.File(tmp_path / "swe.h5", "w") as f:
        f["0000/data"] = np.zeros((5, 8, 8, 3), np.float32)
        f["0000/grid/t"] = np.arange(5.0)
    with pytest.raises(ValueError, match=r"samples have 3 variables.*one scalar field"):
        load_trajectories(tmp_path / "swe.h5")


def test_pairs_file_is_not_a_time_series(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 4, 4)), y=np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="holds input/output pairs, not time series"):
        load_trajectories(tmp_path / "d.npz")
