import h5py
import numpy as np
import pytest
import scipy.io
import torch

from lowprec.data import PDEDataset, load_dataset, save_h5, save_npz


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
    ds = PDEDataset(torch.randn(4, 2, 5, 5, generator=g), torch.randn(4, 3, 5, 5, generator=g),
                    meta={"problem": "toy", "params": {"values": (1.0, 2.0)}}, grid="periodic")
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


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".pt", ".mat"])
def test_missing_key_lists_present_keys(tmp_path, suffix):
    a, b = np.zeros((2, 4, 4), np.float32), np.ones((2, 4, 4), np.float32)
    path = tmp_path / f"d{suffix}"
    if suffix == ".npz":
        np.savez(path, coeff=a, sol=b)
    elif suffix == ".h5":
        with h5py.File(path, "w") as f:
            f["coeff"], f["sol"] = a, b
    elif suffix == ".pt":
        torch.save({"coeff": torch.from_numpy(a), "sol": torch.from_numpy(b)}, path)
    else:
        scipy.io.savemat(path, {"coeff": a, "sol": b})
    with pytest.raises(KeyError, match=r"no input array 'x'; it holds \['coeff', 'sol'\].*x_key="):
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
