"""How far each policy's forward pass lands from an fp64 reference, for the same weights and input.

Relative L2 error ``|y - y_ref| / |y_ref|`` of one forward pass. The
reference runs the same weights in fp64: for a spectral layer, the naive-DFT
sums of :mod:`lowprec.spectral.reference` (independent of both backends); for
a whole model, an fp64 copy under ``full`` (its transforms are exact to
~1e-14, as the tests check against the same naive sums). Stabilizers change
the function, not just its rounding, so a tanh policy is compared with the
reference of the tanh-ed layer (layer mode) but with the plain model (model
mode, where its effect is part of what a user gets).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..precision import PrecisionPolicy, get_policy, stabilize
from ..spectral import SpectralConv, SphericalConv, spectral_conv_reference
from ..train.losses import relative_l2_error


def fp64_copy(model: nn.Module) -> nn.Module:
    """A copy with every parameter in fp64 (complex ones, as neuraloperator's, in complex128)."""
    model = copy.deepcopy(model)
    for p in model.parameters():
        p.data = p.data.to(torch.complex128 if p.is_complex() else torch.float64)
    for b in model.buffers():
        if b.is_floating_point() or b.is_complex():
            b.data = b.data.to(torch.complex128 if b.is_complex() else torch.float64)
    return model


@torch.no_grad()
def model_reference(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with get_policy("full"):
        return fp64_copy(model)(x.double())


@torch.no_grad()
def layer_error(layer: nn.Module, policy: PrecisionPolicy, x: torch.Tensor) -> float:
    """Error of ``layer`` under ``policy`` on x (fp32; fed in the policy's activation dtype).

    A Fourier layer's reference is the naive fp64 DFT; any other layer's is its fp64 copy under
    ``full``, fed the stabilized input where the layer stabilizes (a spherical layer: exact to
    ~1e-13 against scipy's harmonics, tests/spectral/test_sconv.py).
    """
    if isinstance(layer, SpectralConv):
        h = stabilize(x.double(), policy.stabilizer)
        reference = spectral_conv_reference(h, layer.weight.to_dense().detach().to(torch.complex128), layer.n_modes)
    else:
        h = stabilize(x.double(), policy.stabilizer) if isinstance(layer, SphericalConv) else x.double()
        with get_policy("full"):
            reference = fp64_copy(layer)(h)
    with policy:
        y = layer(x.to(policy.autocast_dtype or torch.float32))
    return relative_l2_error(y, reference)
