import pytest
import torch

from lowprec.data import PDEDataset, Trajectories, cut


def make(n=3, T=7, s=8, grid="periodic"):
    u = torch.arange(n * T * s, dtype=torch.float32).reshape(n, T, s)
    return Trajectories(u, torch.arange(T) * 0.5, grid=grid, meta={"problem": "toy"})


def test_pairs_are_views_with_times():
    traj = make()
    ds = traj.pairs(t_in=2, t_out=3, start=1)
    assert isinstance(ds, PDEDataset) and ds.grid == "periodic"
    assert ds.x.shape == (3, 2, 8) and ds.y.shape == (3, 3, 8)
    assert torch.equal(ds.x, traj.u[:, 1:3]) and torch.equal(ds.y, traj.u[:, 3:6])
    assert ds.meta["t_x"] == [0.5, 1.0] and ds.meta["t_y"] == [1.5, 2.0, 2.5] and ds.meta["problem"] == "toy"
    rest = traj.pairs(t_in=1)
    assert rest.y.shape == (3, 6, 8)


def test_windows_for_autoregressive_training():
    traj = make()
    ds = traj.windows(t_in=2, t_out=1, stride=2)
    # starts 0, 2, 4 per trajectory, trajectory-major
    assert ds.x.shape == (9, 2, 8) and ds.y.shape == (9, 1, 8)
    assert torch.equal(ds.x[4], traj.u[1, 2:4]) and torch.equal(ds.y[4], traj.u[1, 4:5])
    assert ds.meta["view"]["windows_per_trajectory"] == 3
    one_step = traj.windows()
    assert len(one_step) == 3 * 6
    assert torch.equal(cut(traj, 2, 1, 0, 2).x, ds.x)


def test_split_subset_subsample():
    traj = make(n=5, s=16)
    train, test = traj.split(3)
    assert len(train) == 3 and len(test) == 2 and torch.equal(test.u, traj.u[3:])
    coarse = traj.subsample(2, time_stride=3)
    assert coarse.u.shape == (5, 3, 8) and coarse.t.tolist() == [0.0, 1.5, 3.0]
    with pytest.raises(ValueError, match=r"stride 3 does not divide s \(periodic grid\) = 16"):
        traj.subsample(3)
    with pytest.raises(ValueError, match="cannot split 5 trajectories"):
        traj.split(5)


def test_bad_windows_and_inputs():
    traj = make()
    with pytest.raises(ValueError, match=r"cannot cut t_in=5 input and t_out=3 output snapshots .* T=7"):
        traj.pairs(5, 3)
    with pytest.raises(ValueError, match="needs t_out"):
        cut(traj, 1, None, 0, 1)
    with pytest.raises(ValueError, match="u has 7 snapshots .* t has 6 times"):
        Trajectories(traj.u, torch.arange(6))
    with pytest.raises(ValueError, match="must increase strictly"):
        Trajectories(traj.u, torch.zeros(7))
    bad = traj.u.clone()
    bad[1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="u contains 1 NaN values in sample 1"):
        Trajectories(bad, traj.t)
