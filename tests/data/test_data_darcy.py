import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

from lowprec.data import DarcyParams, darcy_dataset, darcy_matrix, solve_darcy


def series_solution(s: int, n_terms: int = 1000) -> np.ndarray:
    """u for -Δu = 1 on the unit square, u = 0 on the boundary, at the s x s nodes."""
    x = np.linspace(0, 1, s)
    k = np.arange(1, 2 * n_terms, 2)  # odd m, n
    sines = np.sin(np.pi * np.outer(x, k))
    c = 16 / (np.pi**4 * np.outer(k, k) * (k[:, None] ** 2 + k[None, :] ** 2))
    return sines @ c @ sines.T


def test_constant_coefficient_matches_series_with_second_order_convergence():
    errors = [np.abs(solve_darcy(np.ones((s, s)), 1.0) - series_solution(s)).max() for s in (17, 33, 65)]
    assert errors[-1] < 2e-5
    ratios = [errors[i] / errors[i + 1] for i in range(2)]
    assert all(3.8 < r < 4.2 for r in ratios), ratios


def test_manufactured_solution_variable_coefficient_second_order():
    # u = sin(πx) sin(2πy), a = 1 + x + 2y²: asymmetric in x and y, so a transposed
    # stencil or a wrong face average would not converge.
    def error(s):
        x = np.linspace(0, 1, s)
        X, Y = np.meshgrid(x, x, indexing="ij")
        u = np.sin(np.pi * X) * np.sin(2 * np.pi * Y)
        a = 1 + X + 2 * Y**2
        ux = np.pi * np.cos(np.pi * X) * np.sin(2 * np.pi * Y)
        uy = 2 * np.pi * np.sin(np.pi * X) * np.cos(2 * np.pi * Y)
        f = -(1.0 * ux + 4 * Y * uy) + 5 * np.pi**2 * a * u  # -∇·(a∇u)
        return np.abs(solve_darcy(a, f) - u).max()

    errors = [error(s) for s in (17, 33, 65)]
    assert errors[-1] < 1e-3
    assert all(3.8 < errors[i] / errors[i + 1] < 4.2 for i in range(2)), errors


def test_matrix_is_symmetric_positive_definite():
    a = np.where(np.random.default_rng(0).standard_normal((9, 9)) > 0, 12.0, 3.0)
    A = darcy_matrix(a)
    assert A.shape == (49, 49)
    assert abs(A - A.T).max() == 0
    assert spla.eigsh(A, k=1, which="SA", return_eigenvectors=False)[0] > 0


def test_solution_is_zero_on_boundary_and_positive_inside():
    x, y = DarcyParams(resolution=17, n=3, seed=0).generate(progress=False)
    assert x.shape == y.shape == (3, 1, 17, 17)
    assert set(x.unique().tolist()) == {3.0, 12.0}
    u = y[:, 0]
    for edge in (u[:, 0], u[:, -1], u[:, :, 0], u[:, :, -1]):
        assert (edge == 0).all()
    assert (u[:, 1:-1, 1:-1] > 0).all()


def test_forcing_scales_the_solution_linearly():
    _, y1 = DarcyParams(resolution=17, n=2, forcing=1.0).generate(progress=False)
    _, y5 = DarcyParams(resolution=17, n=2, forcing=5).generate(progress=False)
    np.testing.assert_allclose(y5.numpy(), 5 * y1.numpy(), rtol=1e-6, atol=1e-9)


def test_deterministic_and_first_n_samples_equal_smaller_set():
    big = DarcyParams(resolution=17, n=12, seed=3).generate(progress=False)
    again = DarcyParams(resolution=17, n=12, seed=3).generate(progress=False, workers=1)
    small = DarcyParams(resolution=17, n=5, seed=3).generate(progress=False)
    other = DarcyParams(resolution=17, n=5, seed=4).generate(progress=False)
    for b, a, s in zip(big, again, small):
        assert (b == a).all()
        assert (b[:5] == s).all()
    assert (big[0][:5] != other[0]).any()


def test_same_problems_at_two_resolutions():
    coarse = darcy_dataset(17, 4, seed=1, progress=False)
    fine = darcy_dataset(33, 4, seed=1, progress=False)
    # Same coefficient at shared nodes (a node exactly on the GRF's zero level could in
    # principle flip; it does not for these seeds) ...
    assert (fine.x[..., ::2, ::2] == coarse.x).all()
    # ... and solutions close (they differ by discretization error of a discontinuous a).
    rel = (fine.y[..., ::2, ::2] - coarse.y).norm() / fine.y.norm()
    assert rel < 0.1


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="resolution must be at least 3"):
        DarcyParams(resolution=2)
    with pytest.raises(ValueError, match="values must be two positive"):
        DarcyParams(values=(12.0, -3.0))
    with pytest.raises(ValueError, match="must be positive everywhere"):
        solve_darcy(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="square"):
        solve_darcy(np.ones((5, 6)))


def test_pdebench_setting_coefficients_forcing_and_solution():
    from lowprec.data import DarcyPDEBenchParams, darcy_pdebench_dataset

    ds = darcy_pdebench_dataset(17, 3, seed=0, beta=10.0, progress=False)
    assert ds.x.shape == ds.y.shape == (3, 1, 17, 17) and ds.grid == "nodes"
    torch.testing.assert_close(ds.x.unique(), torch.tensor([0.1, 1.0]))
    assert ds.meta["problem"] == "darcy_pdebench" and ds.meta["beta"] == 10.0
    # u solves the same FD problem with f = beta: linear in beta
    a = DarcyPDEBenchParams(resolution=17).coefficient(1)
    np.testing.assert_allclose(ds.y[1, 0].numpy(), solve_darcy(a, 10.0), rtol=1e-5, atol=1e-7)
    # the bumps are continuous: the same problem at two resolutions
    fine = DarcyPDEBenchParams(resolution=33).coefficient(1)
    assert (fine[::2, ::2] != a).mean() < 0.05


def test_generators_reject_unknown_parameters():
    with pytest.raises(ValueError, match=r"darcy: unknown parameter\(s\) 'forcnig' \(did you mean 'forcing'\?\)"):
        darcy_dataset(9, 2, forcnig=2.0)
