import math

import pytest
import torch
from torch.utils.data import DataLoader

from lowprec.data import PDEDataset


def make(n=10, s=9, grid="nodes"):
    x = torch.arange(n * s * s, dtype=torch.float32).reshape(n, 1, s, s)
    return PDEDataset(x, -x.repeat(1, 2, 1, 1), meta={"problem": "toy"}, grid=grid)


def test_basic_access_and_dataloader():
    ds = make()
    assert len(ds) == 10 and ds.resolution == (9, 9)
    assert ds.in_channels == 1 and ds.out_channels == 2
    x0, y0 = ds[3]
    assert x0.shape == (1, 9, 9) and y0.shape == (2, 9, 9)
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 1, 9, 9) and yb.shape == (4, 2, 9, 9)
    assert "toy" in repr(ds)


def test_split_and_subset():
    ds = make()
    train, test = ds.split(7)
    assert len(train) == 7 and len(test) == 3
    assert torch.equal(test.x, ds.x[7:]) and train.meta == ds.meta
    train, test = ds.split(4, 2)
    assert torch.equal(test.x, ds.x[4:6])
    assert torch.equal(ds.subset([0, 2]).x, ds.x[[0, 2]])
    with pytest.raises(ValueError, match="cannot split 10 samples"):
        ds.split(10)
    with pytest.raises(ValueError, match="cannot split 10 samples"):
        ds.split(8, 5)


def test_subsample_node_grid():
    ds = make(s=17)
    coarse = ds.subsample(2)
    assert coarse.resolution == (9, 9)
    assert torch.equal(coarse.x[..., -1, -1], ds.x[..., -1, -1])  # boundary kept
    assert ds.subsample(4).resolution == (5, 5)
    assert ds.subsample((2, 4)).resolution == (9, 5)
    with pytest.raises(ValueError, match=r"stride 3 does not divide s - 1.* = 16.*Strides that work: \[2, 4, 8, 16\]"):
        ds.subsample(3)


def test_subsample_periodic_grid():
    ds = make(s=16, grid="periodic")
    assert ds.subsample(2).resolution == (8, 8)
    with pytest.raises(ValueError, match="does not divide s \\(periodic grid\\) = 16"):
        ds.subsample(3)
    with pytest.raises(ValueError, match="does not divide s - 1"):
        make(s=16).subsample(2)


def test_nonfinite_values_are_located():
    x = torch.zeros(20, 1, 4, 4)
    y = torch.zeros(20, 1, 4, 4)
    y[17, 0, 1, :3] = float("nan")
    with pytest.raises(ValueError, match=r"y contains 3 NaN values in sample 17; .*isfinite"):
        PDEDataset(x, y)
    x[2, 0, 0, 0] = float("inf")
    x[5, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"x contains 1 NaN and 1 inf values in 2 samples \(first: \[2, 5\]\)"):
        PDEDataset(x, y)


@pytest.mark.parametrize(
    "x, y, match",
    [
        (torch.zeros(3, 1, 4, 4), torch.zeros(4, 1, 4, 4), "x has 3 samples but y has 4"),
        (torch.zeros(3, 1, 4, 4), torch.zeros(3, 1, 4, 5), r"x grid \(4, 4\) differs from y grid \(4, 5\)"),
        (torch.zeros(3, 4, dtype=torch.float32), torch.zeros(3, 4), r"unsqueeze\(1\)"),
        (torch.zeros(3, 1, 4, dtype=torch.bool), torch.zeros(3, 1, 4), r"dtype torch.bool.*x.float\(\)"),
    ],
)
def test_bad_tensors_raise(x, y, match):
    with pytest.raises(ValueError, match=match):
        PDEDataset(x, y)


def test_bad_grid_and_type():
    with pytest.raises(ValueError, match="grid must be one of"):
        PDEDataset(torch.zeros(2, 1, 3), torch.zeros(2, 1, 3), grid="cells")
    with pytest.raises(TypeError, match="torch.as_tensor"):
        PDEDataset([[0.0]], torch.zeros(2, 1, 3))


def test_fourier_resample_is_exact_for_band_limited_periodic_fields():
    def field(s):
        x = torch.arange(s, dtype=torch.float64) / s
        X, Y = x[:, None], x[None, :]
        return torch.sin(2 * math.pi * 3 * X) * torch.cos(2 * math.pi * 2 * Y) + 0.5 * torch.cos(2 * math.pi * 5 * Y)

    ds = PDEDataset(field(24)[None, None].repeat(2, 1, 1, 1), field(24)[None, None].repeat(2, 1, 1, 1), grid="periodic")
    for size in (16, 13, 40):
        out = ds.resample(size)
        assert out.resolution == (size, size) and out.grid == "periodic"
        torch.testing.assert_close(out.y[0, 0], field(size), atol=1e-12, rtol=0)
    # one size per axis; a band-limited field survives down to 11 points per axis and back up
    there_and_back = ds.resample((12, 33)).resample(24)
    torch.testing.assert_close(there_and_back.x[1, 0], field(24), atol=1e-12, rtol=0)


def test_linear_resample_keeps_node_grid_endpoints_and_linear_fields():
    x = torch.linspace(0, 1, 9, dtype=torch.float64)
    lin = (2 * x[:, None] + 3 * x[None, :])[None, None]
    ds = PDEDataset(lin, lin)
    out = ds.resample(17)
    x17 = torch.linspace(0, 1, 17, dtype=torch.float64)
    torch.testing.assert_close(out.x[0, 0], 2 * x17[:, None] + 3 * x17[None, :])
    assert ds.resample(5, method="cubic").resolution == (5, 5)


def test_resample_errors():
    with pytest.raises(ValueError, match="Fourier resampling assumes a periodic field"):
        make().resample(5, method="fourier")
    with pytest.raises(ValueError, match="this data set is periodic. Use method='fourier'"):
        make(s=8, grid="periodic").resample(5, method="linear")
    with pytest.raises(ValueError, match="unknown resampling method 'nearest'"):
        make().resample(5, method="nearest")
