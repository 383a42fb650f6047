"""Spectral convolutions: truncated transforms, factorized weights, planned contractions.

:class:`SpectralLayer` (``protocol.py``) is what :mod:`lowprec.quant` needs from a spectral layer;
:class:`SpectralConv` implements it, and so may any other (e.g. a spherical convolution).
"""

from .backend import choose_backend, resolve_backend, transform_costs
from .contract import complex_contract, plan_info
from .conv import SpectralConv
from .dft import dft_irfft, dft_matrix, dft_rfft
from .protocol import SpectralLayer, is_spectral_layer
from .reference import spectral_conv_reference
from .sconv import SphericalConv
from .sht import isht, sht
from .transforms import forward_transform, inverse_transform, kept_modes, truncated_irfft, truncated_rfft
from .weights import CPSpectralWeight, DenseSpectralWeight, TuckerSpectralWeight, make_weight

__all__ = [
    "SpectralConv",
    "complex_contract",
    "plan_info",
    "spectral_conv_reference",
    "kept_modes",
    "truncated_rfft",
    "truncated_irfft",
    "make_weight",
    "DenseSpectralWeight",
    "TuckerSpectralWeight",
    "CPSpectralWeight",
    "forward_transform",
    "inverse_transform",
    "dft_rfft",
    "dft_irfft",
    "dft_matrix",
    "choose_backend",
    "resolve_backend",
    "transform_costs",
    "SpectralLayer",
    "is_spectral_layer",
    "SphericalConv",
    "sht",
    "isht",
]
