"""The DFT-as-GEMM backend against the FFT backend and the fp64 reference; the backend choice."""

import math

import pytest
import torch
from torch.func import functional_call

from lowprec.precision import PrecisionPolicy, get_policy, stabilize
from lowprec.spectral import (
    SpectralConv,
    choose_backend,
    dft_irfft,
    dft_matrix,
    dft_rfft,
    resolve_backend,
    spectral_conv_reference,
    transform_costs,
    transforms,
    truncated_irfft,
    truncated_rfft,
)

# 1D/2D/3D; odd, even and prime sizes; all modes kept (Nyquist included) and few kept.
CASES = [
    ((13,), (5,)),
    ((16,), (16,)),
    ((17,), (17,)),
    ((12, 9), (6, 5)),
    ((7, 11), (7, 11)),
    ((16, 10), (8, 10)),
    ((5, 7, 6), (4, 3, 6)),
]
TOL = {torch.float32: 1e-5, torch.float16: 3e-3, torch.bfloat16: 3e-2}
# Policies whose whole spectral path runs in one dtype, autocast off so only the layer rounds.
POLICIES = {dtype: PrecisionPolicy(str(dtype), None, dtype, dtype) for dtype in TOL}


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("grid,modes", CASES)
def test_dft_transforms_equal_the_fft_ones_in_fp64(grid, modes):
    x = torch.randn(2, 3, *grid, dtype=torch.float64)
    spectrum = truncated_rfft(x, modes, torch.float64)
    assert torch.allclose(dft_rfft(x, modes, torch.float64), spectrum, atol=1e-13)
    s = torch.randn_like(spectrum)
    assert torch.allclose(
        dft_irfft(s, grid, modes, torch.float64), truncated_irfft(s, grid, modes, torch.float64), atol=1e-12
    )


def _layer_and_grads(layer, policy, x):
    names = [n for n, _ in layer.named_parameters()]
    params = {n: p.detach().clone().requires_grad_() for n, p in layer.named_parameters()}
    x = x.detach().clone().requires_grad_()
    with policy:
        y = functional_call(layer, params, (x,))
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(y.dtype)
    y.backward(g)
    return y, [x.grad] + [params[n].grad for n in names]


@pytest.mark.parametrize("grid,modes", CASES)
@pytest.mark.parametrize("factorization", ["dense", "tucker", "cp"])
def test_backends_equal_each_other_and_the_reference_forward_and_backward_fp64(grid, modes, factorization):
    layer = SpectralConv(3, 2, modes, factorization=factorization, rank=0.5).double()
    x = torch.randn(2, 3, *grid, dtype=torch.float64)
    ref = spectral_conv_reference(x, layer.weight.to_dense().detach(), modes)
    y_fft, g_fft = _layer_and_grads(layer, get_policy("full").replace(backend="fft"), x)
    y_dft, g_dft = _layer_and_grads(layer, get_policy("full").replace(backend="dft"), x)
    assert rel(y_dft, ref) < 1e-12 and rel(y_fft, ref) < 1e-12
    for a, b in zip(g_dft, g_fft):
        assert rel(a, b) < 1e-12


@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("grid,modes", [CASES[0], CASES[3], CASES[4], CASES[6]])
@pytest.mark.parametrize("factorization", ["dense", "tucker", "cp"])
def test_dft_in_every_dtype_matches_fp64_forward_and_backward(dtype, grid, modes, factorization):
    layer = SpectralConv(4, 4, modes, factorization=factorization, rank=0.5)
    x = torch.randn(2, 4, *grid)
    reference_y, reference_grads = _layer_and_grads(
        layer.double(), get_policy("full").replace(backend="fft"), x.double()
    )
    layer.float()
    y, grads = _layer_and_grads(layer, POLICIES[dtype].replace(backend="dft"), x.to(dtype))
    assert y.dtype == dtype
    assert rel(y, reference_y) < TOL[dtype]
    for a, b in zip(grads, reference_grads):
        assert rel(a, b) < 2 * TOL[dtype]


@pytest.mark.parametrize("dtype", list(TOL), ids=str)
def test_dft_and_emulated_fft_agree_within_dtype_tolerance(dtype):
    layer = SpectralConv(4, 4, (6, 5))
    x = torch.randn(2, 4, 14, 11)
    with POLICIES[dtype].replace(backend="dft"):
        a = layer(x)
    with POLICIES[dtype].replace(backend="fft"):
        b = layer(x)
    assert rel(a, b) < 2 * TOL[dtype]


def test_dft_matrices_are_cached_per_size_modes_dtype_and_device():
    a = dft_matrix("rfft", 20, 6, torch.float32, torch.device("cpu"))
    assert dft_matrix("rfft", 20, 6, torch.float32, "cpu") is a
    assert dft_matrix("rfft", 20, 6, torch.bfloat16, "cpu") is not a
    assert a.shape == (20, 8) and dft_matrix("ifft", 20, 6, torch.float32, "cpu").shape == (12, 40)
    with pytest.raises(ValueError, match="unknown DFT matrix kind"):
        dft_matrix("dct", 20, 6, torch.float32, "cpu")


# -- backend choice -----------------------------------------------------------------------------
def test_fp16_on_cuda_takes_the_dft_where_cufft_cannot_run():
    # Pure selection logic: no CUDA needed to ask about a CUDA device.
    for grid in [(500, 500), (512, 500), (96,), (64, 64, 48)]:
        modes = (16,) * len(grid)
        assert choose_backend(grid, modes, torch.float16, "cuda") == "dft"
        assert resolve_backend("auto", grid, modes, torch.float16, torch.device("cuda", 0)) == "dft"
    # Even where the FFT would be cheaper (every mode kept), it cannot run: DFT.
    assert choose_backend((500, 500), (500, 500), torch.float16, "cuda") == "dft"
    assert choose_backend((512, 512), (512, 512), torch.float16, "cuda") == "fft"


def test_no_fft_in_bf16_anywhere_nor_in_fp16_on_cpu():
    for device in ("cpu", "cuda"):
        assert choose_backend((512, 512), (512, 512), torch.bfloat16, device) == "dft"
    assert choose_backend((512, 512), (512, 512), torch.float16, "cpu") == "dft"


def test_cost_model_takes_the_dft_for_few_modes_and_the_fft_for_most():
    for n in (128, 256, 512, 1024):
        assert choose_backend((n, n), (32, 32), torch.float32, "cuda") == "dft"
        assert choose_backend((n, n), (32, 32), torch.float16, "cuda") == "dft"
        assert choose_backend((n, n), (n, n), torch.float32, "cuda") == "fft"
    costs = transform_costs((512, 512), (32, 32), torch.float32, "cuda")
    assert costs["fft"] > 2 * costs["dft"]  # 32 of 512 modes kept: the DFT does a fraction of the FFT's work
    # Tensor cores make the DFT's margin larger in half precision.
    half = transform_costs((512, 512), (32, 32), torch.float16, "cuda")
    assert half["fft"] / half["dft"] > costs["fft"] / costs["dft"]


def test_the_backend_can_be_forced(monkeypatch):
    calls = []
    monkeypatch.setattr(transforms, "dft_rfft", lambda *a: calls.append("dft") or dft_rfft(*a))
    monkeypatch.setattr(transforms, "truncated_rfft", lambda *a: calls.append("fft") or truncated_rfft(*a))
    layer = SpectralConv(2, 2, (4, 4))
    x = torch.randn(1, 2, 16, 16)
    for backend in ("fft", "dft"):
        with get_policy("full").replace(backend=backend):
            layer(x)
        assert calls.pop() == backend
    with get_policy("full_dft"):
        layer(x)
    assert calls.pop() == "dft"
    with get_policy("half_bf16"):  # auto: no bf16 FFT exists
        layer(x.bfloat16())
    assert calls.pop() == "dft"


def test_unknown_backend_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"unknown spectral backend 'cufft'.*'auto', 'fft', 'dft'"):
        PrecisionPolicy(backend="cufft")
    with pytest.raises(ValueError, match="unknown spectral backend"):
        resolve_backend("cufft", (8,), (4,), torch.float32, "cpu")


# -- overflow safety of the FFT path ------------------------------------------------------------
def test_fft_splits_its_normalization_so_fp16_partial_sums_stay_small(monkeypatch):
    # cuFFT sums before torch normalizes: at 512^2 a field of ones would hold 262144 > 65504
    # in fp16. The native fp16 FFT is fed x / sqrt(N), so nothing it holds exceeds
    # sqrt(N) max|x|. Only there: elsewhere the extra product would cost a saved tensor.
    assert transforms.prescale(torch.float16, True, (512, 512)) == 1 / 512
    assert transforms.prescale(torch.float16, False, (512, 512)) == 1.0  # emulated: fp32 inside
    assert transforms.prescale(torch.float32, True, (512, 512)) == 1.0
    # The mechanics, checked in fp32 on CPU with the split forced (a GPU test runs it in fp16).
    monkeypatch.setattr(transforms, "prescale", lambda dtype, native, grid: math.prod(grid) ** -0.5)
    seen = []
    rfftn = torch.fft.rfftn
    monkeypatch.setattr(
        torch.fft, "rfftn", lambda *a, **k: seen.append(rfftn(*a, **k).abs().max().item()) or rfftn(*a, **k)
    )
    n = 512
    x = torch.ones(1, 1, n, n)
    x[..., 0, 0] = 3.0
    spectrum = truncated_rfft(x, (8, 8), torch.float32)
    assert seen and seen[0] <= n * 3 < 65504
    monkeypatch.undo()
    assert torch.allclose(spectrum, truncated_rfft(x, (8, 8), torch.float32), atol=1e-7)


@pytest.mark.gpu
def test_native_fp16_fft_does_not_overflow_at_512():
    x = torch.ones(1, 1, 512, 512, device="cuda")
    spectrum = truncated_rfft(x, (8, 8), torch.float16)
    assert spectrum.dtype == torch.float16 and torch.isfinite(spectrum).all()
    assert abs(spectrum[0, 0, 0, 0, 0].item() - 1.0) < 1e-2


@pytest.mark.gpu
@pytest.mark.parametrize("grid", [(100, 100), (128, 96)])
def test_fp16_on_cuda_non_power_of_two_runs_and_matches_the_reference(grid):
    layer = SpectralConv(4, 4, (8, 8)).cuda()
    x = torch.randn(2, 4, *grid, device="cuda")
    ref = spectral_conv_reference(x.double().cpu(), layer.weight.to_dense().detach().cpu(), (8, 8))
    with get_policy("fp16"):
        y = layer(x.half())
    assert rel(y.cpu(), ref) < TOL[torch.float16]
    with get_policy("half"):
        y = layer(x.half())
    assert (
        rel(
            y.cpu(),
            spectral_conv_reference(torch.tanh(x.double()).cpu(), layer.weight.to_dense().detach().cpu(), (8, 8)),
        )
        < TOL[torch.float16]
    )


def test_stabilize_is_shared_by_both_backends():
    # The stabilizer acts before either transform: the same function whichever backend runs.
    layer = SpectralConv(2, 2, (4,))
    x = 3 * torch.randn(1, 2, 12)
    ref = spectral_conv_reference(stabilize(x.double(), "tanh"), layer.weight.to_dense().detach(), (4,))
    for backend in ("fft", "dft"):
        with get_policy("full").replace(stabilizer="tanh", backend=backend):
            assert rel(layer(x), ref) < 1e-5
