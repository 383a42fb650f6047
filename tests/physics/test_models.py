import dataclasses

import pytest
import torch

from lowprec.models import pinn as pinn_mod
from lowprec.models.deeponet import DeepONet, PODDeepONet
from lowprec.models.pinn import MLP, PINN, InputTransform


def test_pinn_layer_sizes_and_output_shape():
    net = PINN(2, 1, width=32, depth=3, seed=0)
    assert net.layer_sizes == (2, 32, 32, 32, 1)
    assert net(torch.rand(7, 2)).shape == (7, 1)


def test_input_normalization_maps_domain_to_unit_box():
    tr = InputTransform(2, bounds=((-1.0, 0.0), (1.0, 1.0)))
    z = tr(torch.tensor([[-1.0, 0.0], [1.0, 1.0], [0.0, 0.5]]))
    assert torch.equal(z, torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]))


def test_fourier_features_shape_and_range():
    net = PINN(2, 3, width=16, depth=2, bounds=((0, 0), (1, 1)), fourier_features=8, seed=1)
    assert net.transform.out_dim == 16
    feats = net.transform(torch.rand(5, 2))
    assert feats.shape == (5, 16) and feats.abs().max() <= 1


def test_same_seed_same_weights():
    a, b = PINN(2, 1, seed=3), PINN(2, 1, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown activation 'tanhh'"):
        MLP([2, 4, 1], activation="tanhh")


def test_cpu_half_gemm_matches_native_fp16_kernel(monkeypatch):
    """The fp32-accumulate path computes what the CPU's own fp16 kernel computes, to one rounding."""
    x = torch.randn(300, 64).half()
    w, b = torch.randn(32, 64).half(), torch.randn(32).half()
    fast = pinn_mod.linear(x, w, b)
    monkeypatch.setattr(pinn_mod, "CPU_HALF_GEMM", "native")
    native = pinn_mod.linear(x, w, b)
    assert fast.dtype == native.dtype == torch.float16
    ulp = torch.finfo(torch.float16).eps * fast.float().abs().clamp_min(2**-14)
    assert ((fast.float() - native.float()).abs() <= ulp).all()


def test_deeponet_cartesian_equals_pointwise():
    net = DeepONet(n_sensors=10, coord_dim=2, p=8, branch_width=16, trunk_width=16, seed=0)
    u, y = torch.randn(4, 10), torch.rand(6, 2)
    cart = net(u, y)
    point = net(u, y.expand(4, 6, 2))
    assert cart.shape == (4, 6)
    torch.testing.assert_close(cart, point, rtol=1e-5, atol=1e-6)


def test_deeponet_sensor_count_mismatch_is_a_clear_error():
    net = DeepONet(n_sensors=64, coord_dim=2, p=8, branch_width=16, trunk_width=16)
    with pytest.raises(ValueError, match="built for 64 sensor values.*got 50.*n_sensors=50"):
        net(torch.randn(3, 50), torch.rand(5, 2))


def test_deeponet_points_must_match_coordinate_dim():
    net = DeepONet(n_sensors=4, coord_dim=2, p=8, branch_width=8, trunk_width=8)
    with pytest.raises(ValueError, match=r"points y of shape \(P, 2\)"):
        net(torch.randn(3, 4), torch.rand(5, 3))


def test_pod_deeponet_basis_is_unit_rms_orthogonal_and_reconstructs_low_rank_data():
    P, n = 50, 200
    modes = torch.randn(3, P, dtype=torch.float64)
    outputs = torch.randn(n, 3, dtype=torch.float64) @ modes + 0.5
    net = PODDeepONet.from_outputs(n_sensors=5, outputs=outputs, n_modes=3, branch_width=8, seed=0)
    gram = net.basis.T.double() @ net.basis.double() / P
    torch.testing.assert_close(gram, torch.eye(3, dtype=torch.float64), atol=1e-5, rtol=0)
    # Projection onto the basis reconstructs the (rank-3, shifted) outputs exactly.
    centred = outputs - net.mean.double()
    coef = centred @ net.basis.double() / P
    torch.testing.assert_close(coef @ net.basis.double().T, centred, atol=1e-4, rtol=0)
    assert net(torch.randn(4, 5)).shape == (4, P)
    with pytest.raises(ValueError, match="sensor"):
        net(torch.randn(4, 6))


def test_hammersley_points_fill_the_box_evenly_and_match_deepxde():
    from lowprec.physics import Burgers
    from lowprec.physics.base import Box

    box = Box(("x", "t"), (-1.0, 0.0), (1.0, 1.0))
    pts = box.hammersley(1023)
    # van der Corput in x: k = 1, 2, 3 -> 1/2, 1/4, 3/4 of the way; t evenly spaced k / (n + 1)
    torch.testing.assert_close(pts[:3, 0], torch.tensor([0.0, -0.5, 0.5]))
    torch.testing.assert_close(pts[:, 1], torch.arange(1, 1024) / 1024.0)
    # every one of the 32 x 32 cells holds one point (to the single point k = 1024 left out)
    cells = ((pts[:, 0] + 1) / 2 * 32).long() * 32 + (pts[:, 1] * 32).long()
    assert len(torch.unique(cells)) == 1023
    assert torch.equal(Burgers().training_data(0)["interior"], Burgers().training_data(5)["interior"])
    dde = pytest.importorskip("deepxde", reason="optional [compare] extra: DeepXDE's own Hammersley points")
    g = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 1))
    torch.testing.assert_close(pts, torch.tensor(g.random_points(1023, random="Hammersley"), dtype=torch.float32))


def test_burgers_imposes_the_residual_on_every_training_point():
    from lowprec.physics import Burgers

    prob = Burgers(n_domain=10, n_boundary=4, n_initial=6)
    data = prob.training_data(0)
    assert prob.residual_points(data).shape == (20, 2)
    torch.testing.assert_close(
        dataclasses.replace(prob, residual_everywhere=False).residual_points(data), data["interior"]
    )
