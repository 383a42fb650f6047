"""The spectral layer against an fp64 naive-DFT reference, under every policy."""

import logging

import pytest
import torch
from torch.func import functional_call

from lowprec.precision import PRESETS, emulation, get_policy, stabilize
from lowprec.spectral import SpectralConv, plan_info, spectral_conv_reference, truncated_irfft, truncated_rfft
from lowprec.spectral.contract import _plan

# (grid, modes): 1D/2D/3D, odd and even sizes, all modes kept and few kept.
CASES = [
    ((17,), (6,)),
    ((16,), (16,)),
    ((12, 9), (6, 5)),
    ((11, 13), (11, 13)),
    ((16, 16), (8, 8)),
    ((8, 7, 10), (4, 4, 6)),
]
# Relative L2 tolerance by the lowest dtype a policy uses (errors measured ~1e-7, 6e-4, 6e-3).
TOL = {torch.float32: 1e-5, torch.float16: 3e-3, torch.bfloat16: 3e-2}


def lowest(policy):
    dtypes = [policy.transform_dtype, policy.contract_dtype]
    for dt in (torch.bfloat16, torch.float16):
        if dt in dtypes:
            return dt
    return torch.float32


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("grid,modes", CASES)
@pytest.mark.parametrize("factorization", ["dense", "tucker", "cp"])
def test_fp64_equals_reference(grid, modes, factorization):
    layer = SpectralConv(3, 4, modes, factorization=factorization, rank=0.5).double()
    x = torch.randn(2, 3, *grid, dtype=torch.float64)
    ref = spectral_conv_reference(x, layer.weight.to_dense().detach(), modes)
    assert rel(layer(x), ref) < 1e-12


# One preset per distinct spectral path: presets that differ only in autocast or loss scaling
# run the same layer arithmetic on an fp32 input.
SPECTRAL_PATHS = list(
    {
        (p.transform_dtype, p.contract_dtype, p.stabilizer, p.backend): name for name, p in reversed(PRESETS.items())
    }.values()
)


@pytest.mark.parametrize("policy", SPECTRAL_PATHS)
@pytest.mark.parametrize("grid,modes", CASES)
@pytest.mark.parametrize("factorization", ["dense", "tucker", "cp"])
def test_every_policy_matches_reference_within_its_dtype(policy, grid, modes, factorization):
    policy = get_policy(policy)
    layer = SpectralConv(3, 4, modes, factorization=factorization, rank=0.5)
    x = torch.randn(2, 3, *grid)
    ref = spectral_conv_reference(
        stabilize(x.double(), policy.stabilizer), layer.weight.to_dense().detach().to(torch.complex128), modes
    )
    with policy:
        y = layer(x)
    assert y.dtype == torch.float32 and y.shape == ref.shape
    assert rel(y, ref) < TOL[lowest(policy)]


@pytest.mark.parametrize("backend", ["fft", "dft"])
@pytest.mark.parametrize("factorization", ["dense", "tucker", "cp"])
@pytest.mark.parametrize("grid,modes", [((9,), (4,)), ((6, 5), (4, 3)), ((4, 5, 6), (2, 3, 4))])
def test_gradients_match_finite_differences(factorization, grid, modes, backend):
    layer = SpectralConv(2, 2, modes, factorization=factorization, rank=0.6).double()
    policy = get_policy("full").replace(backend=backend)
    x = torch.randn(1, 2, *grid, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in layer.named_parameters()]

    def run(x, *ps):  # weights perturbed through a functional call
        with policy:
            return functional_call(layer, dict(zip(names, ps)), (x,))

    ps = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())
    # fast_mode checks random projections of the Jacobian: the same test of the backward
    # formulas, without one forward pass per input entry.
    assert torch.autograd.gradcheck(run, (x, *ps), fast_mode=True)


def test_amp_keeps_the_spectral_path_in_fp32():
    # Under autocast, a layer that inherited its input dtype would run in fp16; ours must not.
    layer = SpectralConv(4, 4, (6, 6))
    x = torch.randn(2, 4, 20, 20)
    with get_policy("full"):
        full = layer(x.half().float())
    with get_policy("amp"):
        amp = layer(x.half())  # what a Linear under autocast would hand over
    assert amp.dtype == torch.float16
    assert rel(amp.float(), full) < 1e-3  # only the output's cast to fp16 differs


def test_transforms_invert_each_other_when_all_modes_are_kept():
    x = torch.randn(2, 3, 10, 7, dtype=torch.float64)
    spectrum = truncated_rfft(x, (10, 7), torch.float64)
    assert spectrum.shape == (2, 3, 10, 4, 2)
    assert torch.allclose(truncated_irfft(spectrum, (10, 7), (10, 7), torch.float64), x, atol=1e-12)


def test_resolution_invariance_of_the_coefficients():
    # norm="forward": a band-limited field sampled at 16 or 32 points has the same kept coefficients.
    def field(n):
        t = torch.arange(n, dtype=torch.float64) / n
        return (torch.sin(2 * torch.pi * t) + 0.5 * torch.cos(6 * torch.pi * t)).reshape(1, 1, n)

    a = truncated_rfft(field(16), (8,), torch.float64)
    b = truncated_rfft(field(32), (8,), torch.float64)
    assert torch.allclose(a, b, atol=1e-12)


def test_too_many_modes_and_wrong_shapes_raise():
    layer = SpectralConv(3, 3, (16, 16))
    with pytest.raises(ValueError, match="16 modes along spatial axis 0 need a grid of at least 16 points, got 12"):
        layer(torch.randn(1, 3, 12, 20))
    with pytest.raises(ValueError, match=r"expects input \(batch, 3, N1, N2\)"):
        layer(torch.randn(1, 2, 32, 32))
    with pytest.raises(ValueError, match=r"expects input"):
        layer(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="unknown factorization"):
        SpectralConv(3, 3, (4, 4), factorization="tt")
    with pytest.raises(ValueError, match="1, 2 or 3 spatial axes"):
        SpectralConv(3, 3, (4, 4, 4, 4))


def test_contraction_plan_is_cached_per_shape():
    layer = SpectralConv(4, 4, (6, 6), factorization="tucker", rank=0.3)
    x = torch.randn(2, 4, 16, 16)
    _plan.cache_clear()
    layer(x)
    layer(x)
    info = _plan.cache_info()
    assert info.misses == 1 and info.hits == 1
    layer(torch.randn(3, 4, 16, 16))
    assert _plan.cache_info().misses == 2


def test_factorized_plan_does_not_rebuild_the_dense_weight_when_that_is_dearer():
    # Tucker with a tiny rank: contracting the factors one by one beats forming W first.
    factors = [("ABCD", (2, 2, 2, 2)), ("iA", (64, 2)), ("oB", (64, 2)), ("xC", (16, 2)), ("yD", (9, 2))]
    info = plan_info((8, 64, 16, 9, 2), "bixy", factors, "boxy")
    dense = plan_info((8, 64, 16, 9, 2), "bixy", [("ioxy", (64, 64, 16, 9))], "boxy")
    assert info.opt_cost < dense.opt_cost


def test_forced_fft_in_half_on_cpu_is_emulated_and_says_so(caplog):
    caplog.set_level(logging.WARNING, logger="lowprec")
    emulation._LOGGED.clear()
    layer = SpectralConv(2, 2, (4,))
    with get_policy("half").replace(backend="fft"):
        layer(torch.randn(1, 2, 16))
        layer(torch.randn(1, 2, 16))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("forward FFT in float16 is emulated" in m for m in messages) == 1
    assert sum("inverse FFT in float16 is emulated" in m for m in messages) == 1


def test_auto_backend_never_emulates(caplog):
    # No FFT runs in fp16 on CPU: "auto" takes the DFT, which computes in fp16 for real.
    caplog.set_level(logging.WARNING, logger="lowprec")
    emulation._LOGGED.clear()
    with get_policy("half"):
        SpectralConv(2, 2, (4,))(torch.randn(1, 2, 16))
    assert not any("emulated" in r.getMessage() for r in caplog.records)


def test_weights_are_stored_real():
    for fac in ("dense", "tucker", "cp"):
        layer = SpectralConv(3, 3, (4, 4), factorization=fac)
        assert all(not p.is_complex() and p.shape[-1] == 2 for p in layer.parameters())
