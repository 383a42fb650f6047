import numpy as np
import pytest

from lowprec.data.grf import cosine_basis, evaluate_cosine_series, grf_scales, sample_grf


def test_same_seed_same_field_at_every_resolution():
    coarse = sample_grf(np.random.default_rng([7, 3]), 33)
    fine = sample_grf(np.random.default_rng([7, 3]), 65)
    assert coarse.shape == (33, 33) and fine.shape == (65, 65)
    np.testing.assert_allclose(fine[::2, ::2], coarse, rtol=0, atol=1e-12)
    finer = sample_grf(np.random.default_rng([7, 3]), 129)
    np.testing.assert_allclose(finer[::4, ::4], coarse, rtol=0, atol=1e-12)


def test_different_seeds_differ_and_field_is_mean_zero():
    a = sample_grf(np.random.default_rng(0), 33)
    b = sample_grf(np.random.default_rng(1), 33)
    assert np.abs(a - b).max() > 0.1
    # No constant mode: the exact integral over the square is 0; over many samples the
    # node average is small next to the field's spread.
    fields = np.stack([sample_grf(np.random.default_rng(i), 17) for i in range(200)])
    assert abs(fields.mean()) < 0.1 * fields.std()


def test_scales_follow_the_covariance_formula():
    c = grf_scales(8, alpha=2.0, tau=3.0, ndim=2)
    assert c[0, 0] == 0.0
    assert c[1, 2] == pytest.approx(3.0 * (np.pi**2 * 5 + 9.0) ** -1.0)
    assert c[2, 1] == c[1, 2]


def test_series_evaluation_matches_pointwise_cosines():
    rng = np.random.default_rng(0)
    coef = rng.standard_normal((5, 4, 3))[:3, :3, :3]
    field = evaluate_cosine_series(coef, 6)
    x = np.arange(6) / 5
    phi = lambda k, t: 1.0 if k == 0 else np.sqrt(2) * np.cos(k * np.pi * t)  # noqa: E731
    i, j, k = 1, 4, 5
    expected = sum(
        coef[a, b, c] * phi(a, x[i]) * phi(b, x[j]) * phi(c, x[k]) for a in range(3) for b in range(3) for c in range(3)
    )
    assert field[i, j, k] == pytest.approx(expected)
    assert cosine_basis(6, 3).shape == (6, 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="resolution must be at least 2"):
        cosine_basis(1, 4)
    with pytest.raises(ValueError, match="n_modes must be at least 2"):
        grf_scales(1)


def test_periodic_field_is_resolution_consistent_real_and_periodic():
    from lowprec.data.grf import periodic_field, periodic_grf_coefficients

    c = periodic_grf_coefficients(np.random.default_rng([1, 2]), 7, 2.5, 7.0, 1.0, ndim=2)
    assert c.shape == (15, 15) and c[7, 7] == 0
    np.testing.assert_allclose(c, np.conj(c[::-1, ::-1]))  # Hermitian: a real field
    f16, f48 = periodic_field(c, 16), periodic_field(c, 48)
    np.testing.assert_allclose(f48[::3, ::3], f16, atol=1e-13)
    # Pointwise evaluation of Σ ĝ_k e^{2πik·x} at one node.
    k = np.arange(-7, 8)
    x, y = 5 / 16, 11 / 16
    direct = (c * np.exp(2j * np.pi * (k[:, None] * x + k[None, :] * y))).sum()
    assert abs(direct.imag) < 1e-12 and f16[5, 11] == pytest.approx(direct.real, abs=1e-12)


def test_periodic_field_has_the_covariance_of_its_spectrum():
    from lowprec.data.grf import periodic_grf_scales, sample_periodic_grf

    # Var g(x) = Σ_k σ² (4π²k² + τ²)^(-α) for the 1D FNO Burgers field (σ=25, τ=5, α=2).
    fields = np.stack(
        [sample_periodic_grf(np.random.default_rng([0, i]), 32, 15, 2.0, 5.0, 25.0, 1) for i in range(3000)]
    )
    expected = (periodic_grf_scales(15, 2.0, 5.0, 25.0, 1) ** 2).sum()
    assert fields.var() == pytest.approx(expected, rel=0.05)
    assert abs(fields.mean()) < 0.05 * fields.std()
    # neighbouring covariance follows Σ scale² cos(2πk/32)
    k = np.arange(-15, 16)
    lag1 = (periodic_grf_scales(15, 2.0, 5.0, 25.0, 1) ** 2 * np.cos(2 * np.pi * k / 32)).sum()
    assert (fields * np.roll(fields, 1, axis=1)).mean() == pytest.approx(lag1, rel=0.05)


def test_periodic_bad_arguments():
    from lowprec.data.grf import periodic_grf_scales

    with pytest.raises(ValueError, match="need alpha > 0"):
        periodic_grf_scales(4, -1.0, 1.0, 1.0, 1)
