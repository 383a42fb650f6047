import pytest
import torch

from lowprec.data import RangeNormalizer, UnitGaussianNormalizer


def data(s=16):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 2, s, s, generator=g, dtype=torch.float64)
    x[:, 0] = 3 + 2 * x[:, 0]
    x[:, 1] = -1 + 0.1 * x[:, 1]
    return x.float()


def test_unit_gaussian_per_channel_round_trip():
    x = data()
    norm = UnitGaussianNormalizer(2).fit(x)
    assert norm.mean.shape == (2,)
    torch.testing.assert_close(norm.mean, torch.tensor([3.0, -1.0]), atol=0.05, rtol=0)
    z = norm.encode(x)
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=(0, 2, 3), unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(norm.decode(z), x, atol=1e-5, rtol=1e-5)
    assert torch.equal(norm(x), z)


def test_statistics_are_resolution_invariant():
    norm = UnitGaussianNormalizer(2).fit(data(16))
    z = norm.encode(data(33))  # fitted at 16², applied at 33²: works, same per-channel map
    assert z.shape == (50, 2, 33, 33)
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(2), atol=0.05, rtol=0)


def test_state_dict_round_trip_and_low_precision_input():
    norm = UnitGaussianNormalizer(2).fit(data())
    fresh = UnitGaussianNormalizer(2)
    fresh.load_state_dict(norm.state_dict())
    x = data()
    torch.testing.assert_close(fresh.encode(x), norm.encode(x))
    assert norm.encode(x.half()).dtype == torch.float32  # buffers fp32: promotion


def test_errors():
    norm = UnitGaussianNormalizer(2)
    with pytest.raises(RuntimeError, match="before fit"):
        norm.encode(data())
    with pytest.raises(ValueError, match="expected \\(N, 2, \\*grid\\)"):
        norm.fit(torch.zeros(4, 3, 8))
    norm.fit(data())
    with pytest.raises(ValueError, match="built for 2 channels"):
        norm.decode(torch.zeros(4, 3, 8))


def test_constant_channel_does_not_divide_by_zero():
    x = torch.full((4, 1, 5, 5), 7.0)
    z = UnitGaussianNormalizer(1).fit(x).encode(x)
    assert torch.isfinite(z).all() and z.abs().max() == 0


def test_range_normalizer():
    x = torch.where(torch.rand(10, 1, 9, 9) > 0.5, 12.0, 3.0)
    norm = RangeNormalizer(1, low=-1, high=1).fit(x)
    z = norm.encode(x)
    assert z.min() == pytest.approx(-1) and z.max() == pytest.approx(1, abs=1e-6)
    torch.testing.assert_close(norm.decode(z), x)
    fresh = RangeNormalizer(1, low=-1, high=1)
    fresh.load_state_dict(norm.state_dict())
    torch.testing.assert_close(fresh.encode(x), z)
    with pytest.raises(ValueError, match="high > low"):
        RangeNormalizer(1, low=1, high=0)
