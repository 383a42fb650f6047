"""Spectral convolutions: truncated transforms, factorized weights, planned contractions."""

from .contract import complex_contract, plan_info
from .conv import SpectralConv
from .reference import spectral_conv_reference
from .transforms import kept_modes, truncated_irfft, truncated_rfft
from .weights import CPSpectralWeight, DenseSpectralWeight, TuckerSpectralWeight, make_weight

__all__ = [
    "SpectralConv", "complex_contract", "plan_info", "spectral_conv_reference", "kept_modes",
    "truncated_rfft", "truncated_irfft", "make_weight", "DenseSpectralWeight", "TuckerSpectralWeight",
    "CPSpectralWeight",
]
