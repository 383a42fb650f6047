"""Spherical convolution (the layer of SFNO, Bonev et al. 2023) whose precision follows the active policy.

    y = isht( W . sht( stabilize(x) )[l <= lmax, m <= mmax] )

The planar :class:`lowprec.spectral.SpectralConv` with the Fourier transform replaced by the
spherical harmonic transform of :mod:`lowprec.spectral.sht`, read the same way from the policy:

1. the stabilizer bounds the input;
2. the forward SHT runs in ``policy.transform_dtype`` (longitude on ``policy.backend``);
3. the channel contraction and the inverse SHT run in ``policy.contract_dtype``;
4. the output is returned in the input's dtype. Autocast is off inside.

Weights (complex, stored as real tensors, dense, Tucker or CP as in
:mod:`lowprec.spectral.weights`):

* ``weight_sharing="degree"`` (SFNO's default, the Driscoll-Healy convolution theorem): one
  (in x out) matrix per degree l, shared by every order m, so the layer commutes with
  rotations about the poles' axis and acts as a convolution on the sphere;
* ``weight_sharing="none"``: one matrix per (l, m), as the planar layer keeps per mode.

Any grid of the layer's kind with enough points for its degrees works (see
:func:`lowprec.spectral.sht.check_sizes`), so a model trained at 32x64 evaluates at 64x128.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..precision.policy import PrecisionPolicy, current_policy
from ..precision.stabilizers import stabilize
from .backend import dft_macs, fft_macs, resolve_backend
from .contract import complex_contract, plan_info
from .protocol import Factors, Tap
from .sht import _isht, _sht, check_grid, check_sizes
from .transforms import compute_dtype
from .weights import Rank, make_weight

WEIGHT_SHARING = ("degree", "none")


class SphericalConv(nn.Module):
    """Spectral layer on the sphere: (batch, in, nlat, nlon) -> (batch, out, nlat, nlon).

    Args:
        in_channels, out_channels: channel counts.
        n_modes: degrees and orders kept, ``(n_l, n_m)`` (lmax = n_l - 1, mmax = n_m - 1, n_m <= n_l),
            or one int for both; counts, as :class:`SpectralConv` counts modes.
        factorization: ``"dense"``, ``"tucker"`` or ``"cp"``.
        rank: factorization rank, a fraction of the dense parameter count or explicit.
        grid: ``"equiangular"`` or ``"legendre-gauss"`` (the input's grid, at any resolution).
        weight_sharing: ``"degree"`` (weights per l, shared over m) or ``"none"`` (per (l, m)).

    The signature starts as SpectralConv's, so ``FNO(..., conv_module=partial(SphericalConv,
    grid=...))`` builds spherical blocks.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: int | Sequence[int],
        factorization: str = "dense",
        rank: Rank = 0.05,
        grid: str = "equiangular",
        weight_sharing: str = "degree",
    ):
        super().__init__()
        n_modes = (n_modes, n_modes) if isinstance(n_modes, int) else tuple(int(m) for m in n_modes)
        if len(n_modes) != 2 or not 1 <= n_modes[1] <= n_modes[0]:
            raise ValueError(
                f"SphericalConv keeps n_modes=(n_l, n_m) degrees and orders with 1 <= n_m <= n_l, got {n_modes}."
            )
        if weight_sharing not in WEIGHT_SHARING:
            raise ValueError(f"unknown weight_sharing {weight_sharing!r}; choose one of {WEIGHT_SHARING}.")
        self.in_channels, self.out_channels, self.n_modes = in_channels, out_channels, n_modes
        self.lmax, self.mmax = n_modes[0] - 1, n_modes[1] - 1
        self.grid, self.weight_sharing, self.factorization = check_grid(grid), weight_sharing, factorization
        kept = n_modes[:1] if weight_sharing == "degree" else n_modes
        self.weight = make_weight(factorization, in_channels, out_channels, kept, rank)

    dim = 2

    # -- the spectral-layer protocol (lowprec.spectral.SpectralLayer): quantize_ and bops read these
    @property
    def spectrum_shape(self) -> tuple[int, ...]:
        """Degrees and orders kept: the spectrum is (batch, channels, lmax + 1, mmax + 1, 2)."""
        return (self.lmax + 1, self.mmax + 1)

    def weight_factors(self) -> list[tuple[str, torch.Tensor]]:
        """The weight's (einsum subscripts, real (..., 2) tensor) factors; degree weights have no m axis."""
        return self.weight.factors()

    def transform_macs(
        self, grid: Sequence[int], inverse: bool, policy: PrecisionPolicy, dtype: torch.dtype, device: torch.device
    ) -> tuple[int, str]:
        """Real MACs of one SHT (or inverse) of one field on ``grid`` = (nlat, nlon), and its label.

        Longitude: the truncated FFT or DFT of each latitude row (orders 0..mmax), by the
        backend the policy picks; latitude: for each order, the [re, im] pair times the
        (nlat x (lmax + 1)) Legendre matrix, 2 nlat (lmax + 1) (mmax + 1) MACs.
        """
        nlat, nlon = grid
        modes = (2 * self.mmax,)
        step_dtype = compute_dtype(policy.contract_dtype if inverse else policy.transform_dtype, dtype)
        backend = resolve_backend(policy.backend, (nlon,), modes, step_dtype, device)
        along = dft_macs((nlon,), modes, inverse) if backend == "dft" else fft_macs((nlon,))
        legendre = 2 * nlat * (self.lmax + 1) * (self.mmax + 1)
        return nlat * along + legendre, f"sht-{backend}"

    def mixing_macs(self, batch: int) -> tuple[int, str]:
        """Real MACs of the per-(l, m) channel mixing of ``batch`` samples, and how they were counted."""
        factors = self.weight_factors()
        if len(factors) == 1:
            return 4 * batch * self.in_channels * self.out_channels * math.prod(self.spectrum_shape), ""
        info = plan_info(
            (batch, self.in_channels, *self.spectrum_shape, 2),
            "bixy",
            [(s, tuple(t.shape[:-1])) for s, t in factors],
            "boxy",
        )
        return int(info.opt_cost) // 2, "factorized: opt_einsum count"

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, n_modes={self.n_modes}, grid={self.grid}, "
            f"weight_sharing={self.weight_sharing}, factorization={self.factorization}"
        )

    def check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects input (batch, {self.in_channels}, nlat, nlon), got {tuple(x.shape)}."
            )
        try:
            check_sizes(x.shape[2], x.shape[3], self.lmax, self.mmax, self.grid)
        except ValueError as err:
            raise ValueError(f"{type(self).__name__} with n_modes={self.n_modes}: {err}") from None

    def forward(self, x: torch.Tensor, factors: Factors | None = None, tap: Tap | None = None) -> torch.Tensor:
        """(batch, in, nlat, nlon) -> (batch, out, nlat, nlon) under the active policy.

        ``factors`` and ``tap(stage, tensor)`` as in :meth:`SpectralConv.forward` (stages
        ``"input"``, ``"spectrum"``, ``"mixed"``, ``"output"``).
        """
        self.check_input(x)
        tap = tap or (lambda stage, t: t)
        policy = current_policy()
        nlat, nlon = x.shape[2:]
        transform_dtype = compute_dtype(policy.transform_dtype, x.dtype)
        contract_dtype = compute_dtype(policy.contract_dtype, x.dtype)
        with torch.autocast(x.device.type, enabled=False):
            h = tap("input", stabilize(x, policy.stabilizer))
            spectrum = tap("spectrum", _sht(h, self.lmax, self.mmax, self.grid, transform_dtype, policy.backend))
            # spectrum (b, i, l, m, 2); degree weights carry "iox" and broadcast over m ("y").
            mixed = tap(
                "mixed", complex_contract(spectrum, "bixy", factors or self.weight_factors(), "boxy", contract_dtype)
            )
            y = tap("output", _isht(mixed, nlat, nlon, self.grid, contract_dtype, policy.backend))
        return y.to(x.dtype)
