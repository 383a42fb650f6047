import pytest
import torch

from lowprec.models import FNO, TFNO
from lowprec.precision import PRESETS, get_policy


@pytest.mark.parametrize("modes,grid", [((6,), (24,)), ((6, 6), (16, 20)), ((4, 4, 4), (8, 8, 9))])
def test_shapes_in_1d_2d_3d(modes, grid):
    model = FNO(modes, in_channels=2, out_channels=3, hidden_channels=8, n_layers=2, domain_padding=0.1)
    assert model(torch.randn(2, 2, *grid)).shape == (2, 3, *grid)


def test_output_at_any_resolution_and_consistent_for_smooth_inputs():
    # Zero-shot super-resolution: the same model at 32 and 64 points gives the same function
    # on a band-limited input (coarse points are every other fine point).
    torch.manual_seed(0)
    model = FNO((8,), hidden_channels=16, n_layers=2, positional_embedding=True, grid_endpoint=False).double()
    t64 = torch.arange(64, dtype=torch.float64) / 64
    u = lambda t: torch.sin(2 * torch.pi * t) + 0.3 * torch.cos(4 * torch.pi * t)  # noqa: E731
    fine = model(u(t64).reshape(1, 1, 64))
    coarse = model(u(t64[::2]).reshape(1, 1, 32))
    assert coarse.shape == (1, 1, 32)
    # Only the nonlinearities' aliasing differs between grids.
    assert ((fine[..., ::2] - coarse).norm() / fine.norm()) < 0.05


@pytest.mark.parametrize("policy", list(PRESETS))
def test_every_policy_runs_forward_and_backward(policy):
    model = TFNO((6, 6), hidden_channels=8, n_layers=2, rank=0.3)
    x = torch.randn(2, 1, 16, 16)
    with get_policy(policy):
        out = model(x)
    out.float().pow(2).mean().backward()
    assert torch.isfinite(out).all()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())


def test_tfno_has_far_fewer_parameters():
    dense = FNO((16, 16), hidden_channels=32)
    tucker = TFNO((16, 16), hidden_channels=32, rank=0.05)
    cp = TFNO((16, 16), hidden_channels=32, factorization="cp", rank=0.05)
    count = lambda m: sum(p.numel() for p in m.blocks.parameters())  # noqa: E731
    assert count(tucker) < 0.2 * count(dense) and count(cp) < 0.2 * count(dense)
    with pytest.raises(ValueError, match="factorized"):
        TFNO((4, 4), factorization="dense")


def test_bad_inputs_name_the_fix():
    model = FNO((8, 8), in_channels=1)
    with pytest.raises(ValueError, match=r"expects 1 input channel\(s\), got 3.*in_channels=3"):
        model(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"x.unsqueeze\(1\)"):
        model(torch.randn(2, 16, 16))
    with pytest.raises(ValueError, match="8 modes along spatial axis 0 need a grid of at least 8 points"):
        model(torch.randn(2, 1, 6, 16))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.ones(2, 1, 16, 16, dtype=torch.int64))
    with pytest.raises(ValueError, match="domain padding"):
        FNO((4, 4), domain_padding=1.5)
