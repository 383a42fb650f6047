"""Radius neighbours and the GNO layer against dense fp64 references."""

import warnings

import pytest
import torch

from lowprec.geometry import GNOLayer, Neighbors, radius_neighbors
from lowprec.precision import get_policy


def _cloud(n, seed, d=3):
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _brute_force(points, queries, r):
    d = ((queries[:, None, :] - points[None, :, :]) ** 2).sum(-1).sqrt()
    return [torch.nonzero(row <= r).flatten().tolist() for row in d]


@pytest.mark.parametrize("method", ["kdtree", "brute"])
def test_neighbors_equal_brute_force(method):
    points, queries = _cloud(300, 0), _cloud(120, 1)
    nbrs = radius_neighbors(points, queries, 0.2, method=method, block=37)
    expected = _brute_force(points, queries, 0.2)
    got = [nbrs.index[nbrs.splits[i] : nbrs.splits[i + 1]].tolist() for i in range(len(queries))]
    assert got == expected
    assert nbrs.n_pairs == sum(map(len, expected)) > 0
    assert torch.equal(nbrs.rows, torch.repeat_interleave(torch.arange(120), nbrs.counts))


def test_neighbors_reject_bad_input():
    points, queries = _cloud(10, 0), _cloud(5, 1)
    bad = points.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="non-finite coordinates"):
        radius_neighbors(bad, queries, 0.1)
    with pytest.raises(ValueError, match="non-finite"):
        radius_neighbors(points, queries.clone().fill_(float("inf")), 0.1)
    with pytest.raises(ValueError, match="positive"):
        radius_neighbors(points, queries, 0.0)
    with pytest.raises(ValueError, match="coordinates per point"):
        radius_neighbors(points, queries[:, :2], 0.1)


def _dense_reference(layer, y, x, f, w, r):
    """Every pair (x_i, y_j) evaluated, masked by |x - y| <= r, in fp64."""
    m, n = x.shape[0], y.shape[0]
    yy, xx = y[None].expand(m, n, -1), x[:, None].expand(m, n, -1)
    z = [yy, xx] + ([f[None].expand(m, n, -1)] if layer.kernel_sees_f else [])
    k = layer.kernel(torch.cat(z, -1))
    if layer.scales_f:
        k = k * f[None]
    if w is not None:
        k = k * w[None, :, None]
    mask = (((xx - yy) ** 2).sum(-1).sqrt() <= r).to(k.dtype)[..., None]
    total = (k * mask).sum(1)
    return total / mask.sum(1).clamp(min=1) if layer.reduction == "mean" else total


@pytest.mark.parametrize("transform", ["linear_kernelonly", "linear", "nonlinear_kernelonly", "nonlinear"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_gno_equals_dense_reference(transform, reduction):
    torch.manual_seed(0)
    y, x, r = _cloud(80, 2), _cloud(50, 3), 0.3
    c = 4
    layer = GNOLayer(
        3,
        c if transform != "linear_kernelonly" else 0,
        c if transform != "linear_kernelonly" else 5,
        hidden=(16,),
        transform=transform,
        reduction=reduction,
        chunk_size=97,
    ).double()
    f = torch.randn(80, layer.in_channels, dtype=torch.float64) if layer.in_channels else None
    w = torch.rand(80, dtype=torch.float64)
    got = layer(y, x, radius_neighbors(y, x, r), f, w)
    torch.testing.assert_close(got, _dense_reference(layer, y, x, f, w, r), rtol=1e-12, atol=1e-12)


def test_gno_gradcheck():
    torch.manual_seed(0)
    layer = GNOLayer(3, 2, hidden=(5,), transform="nonlinear", chunk_size=7).double()
    y, x = _cloud(12, 4).requires_grad_(), _cloud(6, 5).requires_grad_()
    f = torch.randn(12, 2, dtype=torch.float64, requires_grad=True)
    w = torch.rand(12, dtype=torch.float64, requires_grad=True)
    nbrs = radius_neighbors(y.detach(), x.detach(), 0.6)
    assert nbrs.n_pairs > 7  # several chunks, so the recomputing (checkpointed) path is the one checked
    assert torch.autograd.gradcheck(lambda *a: layer(a[0], a[1], nbrs, a[2], a[3]), (y, x, f, w))
    assert torch.autograd.gradcheck(
        lambda *p: torch.func.functional_call(
            layer, dict(zip([n for n, _ in layer.named_parameters()], p)), (y.detach(), x.detach(), nbrs, f.detach())
        ),
        tuple(p.detach().requires_grad_() for p in layer.parameters()),
    )


def test_chunking_changes_nothing_but_memory():
    torch.manual_seed(0)
    y, x = _cloud(200, 6).float(), _cloud(100, 7).float()
    f = torch.randn(200, 8)
    nbrs = radius_neighbors(y, x, 0.35)
    outs, grads = [], []
    for chunk in (nbrs.n_pairs + 1, 1000, 333):
        layer = GNOLayer(3, 8, hidden=(32,), chunk_size=chunk)
        torch.manual_seed(1)
        layer.load_state_dict(GNOLayer(3, 8, hidden=(32,)).state_dict())
        fr = f.clone().requires_grad_()
        out = layer(y, x, nbrs, fr)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append(torch.cat([fr.grad.flatten(), *[p.grad.flatten() for p in layer.parameters()]]))
    for o, g in zip(outs[1:], grads[1:]):
        torch.testing.assert_close(o, outs[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(g, grads[0], rtol=1e-4, atol=1e-4)


def _saved_float_bytes(layer, y, x, nbrs, f):
    """Bytes of floating tensors autograd holds from forward to backward (distinct storages)."""
    storages = {}

    def pack(t):
        if t.is_floating_point():
            s = t.untyped_storage()
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = layer(y, x, nbrs, f)
    out.sum().backward()
    return sum(storages.values())


def test_saved_activations_flat_beyond_one_chunk():
    """Held memory grows with the pairs within one chunk and stays flat beyond (bytes, not time)."""
    torch.manual_seed(0)
    y, x = _cloud(400, 8).float(), _cloud(400, 9).float()
    f = torch.randn(400, 8, requires_grad=True)
    chunk = 2000
    layer = GNOLayer(3, 8, hidden=(64, 64), chunk_size=chunk)
    held = {}
    for r in (0.08, 0.12, 0.2, 0.3, 0.4):
        nbrs = radius_neighbors(y, x, r)
        held[nbrs.n_pairs] = _saved_float_bytes(layer, y, x, nbrs, f)
    pairs = sorted(held)
    small = [p for p in pairs if p <= chunk]
    large = [p for p in pairs if p > 2 * chunk]
    assert small and len(large) >= 2 and large[-1] > 4 * large[0] / 2
    # within one chunk every activation is kept: at least the two hidden layers' outputs per pair
    assert held[small[0]] >= small[0] * 2 * 64 * 4
    # beyond: the same bytes whatever the pair count, and below what one chunk's activations need
    assert len({held[p] for p in large}) == 1
    assert held[large[-1]] < large[-1] * 64 * 4


def test_empty_neighbourhoods():
    layer = GNOLayer(3, 2, hidden=(4,))
    y = torch.zeros(3, 3)
    x = torch.tensor([[0.0, 0.0, 0.05], [5.0, 5.0, 5.0]])  # the second query sees nothing
    f = torch.randn(3, 2)
    out = layer(y, x, radius_neighbors(y, x, 0.1), f)
    assert torch.equal(out[1], torch.zeros(2)) and out[0].abs().sum() > 0
    with pytest.raises(ValueError, match="no query point has a neighbour"):
        layer(y, x[1:], radius_neighbors(y, x[1:], 0.1), f)


def test_gno_shape_errors():
    layer = GNOLayer(3, 2, hidden=(4,))
    y, x = torch.rand(5, 3), torch.rand(4, 3)
    nbrs = radius_neighbors(y, x, 1.0)
    with pytest.raises(ValueError, match="needs f of shape"):
        layer(y, x, nbrs, None)
    with pytest.raises(ValueError, match="rows but x has"):
        layer(y, x[:2], nbrs, torch.rand(5, 2))
    with pytest.raises(ValueError, match="in_channels must be >= 1"):
        GNOLayer(3, 0, transform="linear")


@pytest.mark.parametrize("policy", ["amp", "mixed", "amp_bf16", "bf16", "fp16"])
def test_gno_under_policy_accumulates_in_fp32(policy):
    """The kernel runs in the policy's dtype; the neighbour sum is exact up to one final rounding."""
    torch.manual_seed(0)
    y, x = _cloud(300, 10).float(), _cloud(200, 11).float()
    f = torch.randn(300, 8)
    nbrs = radius_neighbors(y, x, 0.3)
    layer = GNOLayer(3, 8, hidden=(32,), reduction="mean", chunk_size=500)
    ref = layer.double()(y.double(), x.double(), nbrs, f.double())
    layer = layer.float()
    low = get_policy(policy).autocast_dtype
    with get_policy(policy):
        out = layer(y, x, nbrs, f)
    assert out.dtype == low
    # the kernel's rounding, averaged over ~100 neighbours; a low-precision sum would add sqrt(n) eps
    eps = torch.finfo(low).eps
    err = (out.double() - ref).norm() / ref.norm()
    assert err < 4 * eps, err
    # the integrand itself rounded in the low dtype: the same layer without fp32 accumulation is worse
    with get_policy(policy):
        k = layer.integrand(y, x, f, None, nbrs.index, nbrs.rows)
    naive = torch.zeros(200, 8, dtype=low).index_add_(0, nbrs.rows, k) / nbrs.counts.clamp(min=1)[:, None]
    assert (naive.double() - ref).norm() / ref.norm() > err


def test_fp16_overflow_is_reported():
    layer = GNOLayer(3, 1, hidden=(2,), reduction="sum")
    y, x = torch.zeros(4, 3), torch.zeros(1, 3)
    f = torch.full((4, 1), 3e4)
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        layer.kernel.layers[-1].bias.fill_(1.0)
    with get_policy("fp16"), pytest.raises(OverflowError, match="past fp16"):
        layer(y, x, radius_neighbors(y, x, 0.1), f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Neighbors(torch.zeros(0, dtype=torch.long), torch.zeros(1, dtype=torch.long)).n_queries == 0
