import pytest
import torch

from lowprec.models.transformer import MatMul, Transformer


@pytest.mark.parametrize("dim,grid,patch", [(1, (37,), 8), (1, (64,), 4), (2, (17, 9), 4), (2, (16, 16), 2)])
def test_shapes_on_any_grid(dim, grid, patch):
    model = Transformer(dim, in_channels=2, out_channels=3, patch_size=patch, embed_dim=16, depth=2, heads=2)
    assert model(torch.randn(2, 2, *grid)).shape == (2, 3, *grid)


def test_attention_is_over_patches_and_its_products_are_modules():
    model = Transformer(2, 1, 1, patch_size=4, embed_dim=16, depth=1, heads=2)
    seen = {}
    for name, m in model.named_modules():
        if isinstance(m, MatMul):
            m.register_forward_hook(lambda mod, args, out, name=name: seen.setdefault(name, out.shape) and None)
    model(torch.randn(3, 1, 16, 12))
    assert seen["blocks.0.attention.scores"] == (3, 2, 12, 12)  # (batch, heads, tokens, tokens): 4 x 3 patches
    assert Transformer.tokens((16, 12), 4) == 12


def test_patches_are_local_and_gradients_flow():
    torch.manual_seed(0)
    model = Transformer(1, 1, 1, patch_size=4, embed_dim=16, depth=1, heads=2)
    x = torch.randn(1, 1, 32, requires_grad=True)
    model(x)[0, 0, 5].backward()  # one output point depends on every input through attention
    assert (x.grad.abs() > 0).sum() > 16
    assert all(p.grad is not None for p in model.parameters())


def test_bad_input_names_the_fix():
    with pytest.raises(ValueError, match="expects input"):
        Transformer(1, 1, 1)(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="divisible by heads"):
        Transformer(2, embed_dim=30, heads=4)
