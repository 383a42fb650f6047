import pytest
import torch

from lowprec.models.unet import UNet


@pytest.mark.parametrize("dim,grid", [(1, (37,)), (1, (64,)), (2, (17, 9)), (2, (32, 32))])
def test_shapes_on_any_grid(dim, grid):
    model = UNet(dim, in_channels=2, out_channels=3, features=4, depth=3)
    assert model(torch.randn(2, 2, *grid)).shape == (2, 3, *grid)


def test_pdebench_layout_and_gradients():
    model = UNet(2, 1, 1, features=8, depth=4)
    assert len(model.encoders) == 4 and model.bottleneck[0].out_channels == 8 * 16
    assert isinstance(model.upconvs[0], torch.nn.ConvTranspose2d) and model.upconvs[0].stride == (2, 2)
    x = torch.randn(2, 1, 20, 20)
    model(x).pow(2).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bad_input_names_the_fix():
    with pytest.raises(ValueError, match=r"expects input \(batch, 1, N1, N2\), got shape \(2, 3, 8, 8\)"):
        UNet(2, 1, 1, features=4)(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="1 or 2 spatial axes"):
        UNet(3)
