"""Spectral convolution (the Fourier layer of FNO) whose precision follows the active policy.

    y = irfft( W . rfft( stabilize(x) )[lowest modes] )

The layer reads :func:`lowprec.precision.current_policy` on every call:

1. the stabilizer (tanh, hardclip, sigma_clip or none) bounds the input;
2. the forward transform runs in ``policy.transform_dtype``;
3. the per-mode channel contraction and the inverse transform run in
   ``policy.contract_dtype``, the contraction as one real einsum (see
   :mod:`lowprec.spectral.contract`);
4. the output is returned in the input's dtype.

Each transform runs on ``policy.backend``: the FFT, the DFT as matrix
products, or (``"auto"``) whichever :mod:`lowprec.spectral.backend` picks for
this grid, these modes and that dtype. Both give the same result to rounding.

Autocast is switched off inside the layer: the dtypes are the policy's, set
explicitly, never inherited from whatever the previous layer emitted.

Under ``torch.compile`` the policy lookup is traced, not a graph break: Dynamo
guards on the active policy's fields, so entering another policy recompiles
rather than reusing the last one's dtypes. With the DFT backend the layer has
no complex tensor and Inductor compiles all of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..precision.policy import PrecisionPolicy, current_policy
from ..precision.stabilizers import stabilize
from .backend import dft_macs, fft_macs, resolve_backend
from .contract import complex_contract, plan_info
from .transforms import check_modes, compute_dtype, forward_transform, inverse_transform, kept_modes
from .weights import SPATIAL, Rank, make_weight


class SpectralConv(nn.Module):
    """Fourier layer over d = len(n_modes) spatial axes (1, 2 or 3).

    Args:
        in_channels, out_channels: channel counts.
        n_modes: modes kept per spatial axis (see :mod:`lowprec.spectral.transforms`).
        factorization: ``"dense"``, ``"tucker"`` or ``"cp"``.
        rank: factorization rank, a fraction of the dense parameter count or explicit.

    Shapes:
        input (batch, in_channels, *grid) -> output (batch, out_channels, *grid), any grid with
        n_modes[k] <= grid[k].

    It implements :class:`lowprec.spectral.SpectralLayer`, which :mod:`lowprec.quant` reads.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: int | Sequence[int],
        factorization: str = "dense",
        rank: Rank = 0.05,
    ):
        super().__init__()
        n_modes = (n_modes,) if isinstance(n_modes, int) else tuple(int(m) for m in n_modes)
        if not 1 <= len(n_modes) <= 3:
            raise ValueError(f"SpectralConv supports 1, 2 or 3 spatial axes, got n_modes={n_modes}.")
        if any(m < 1 for m in n_modes):
            raise ValueError(f"n_modes must be positive, got {n_modes}.")
        self.in_channels, self.out_channels, self.n_modes = in_channels, out_channels, n_modes
        self.factorization = factorization
        self.weight = make_weight(factorization, in_channels, out_channels, kept_modes(n_modes), rank)
        spatial = SPATIAL[: len(n_modes)]
        self._x_subscripts, self._out_subscripts = "bi" + spatial, "bo" + spatial

    @property
    def dim(self) -> int:
        return len(self.n_modes)

    @property
    def spectrum_shape(self) -> tuple[int, ...]:
        """Modes kept per axis: the spectrum is (batch, channels, *spectrum_shape, 2)."""
        return kept_modes(self.n_modes)

    def weight_factors(self) -> list[tuple[str, torch.Tensor]]:
        """The weight's (einsum subscripts, real (..., 2) tensor) factors (:mod:`lowprec.spectral.weights`)."""
        return self.weight.factors()

    def transform_macs(
        self, grid: Sequence[int], inverse: bool, policy: PrecisionPolicy, dtype: torch.dtype, device: torch.device
    ) -> tuple[int, str]:
        """Real MACs of one transform of one field on ``grid`` by the backend ``policy`` picks, and that backend.

        The forward transform runs in the policy's transform dtype, the inverse in its contraction
        dtype (see :meth:`forward`); FFT: :func:`~lowprec.spectral.backend.fft_macs`, DFT:
        :func:`~lowprec.spectral.backend.dft_macs`.
        """
        step_dtype = compute_dtype(policy.contract_dtype if inverse else policy.transform_dtype, dtype)
        backend = resolve_backend(policy.backend, tuple(grid), self.n_modes, step_dtype, device)
        return (dft_macs(grid, self.n_modes, inverse) if backend == "dft" else fft_macs(grid)), backend

    def mixing_macs(self, batch: int) -> tuple[int, str]:
        """Real MACs of the per-mode channel mixing of ``batch`` samples, and how they were counted.

        Dense: 4 B in out prod(kept modes); Tucker/CP: opt_einsum's count for the planned order (flops / 2).
        """
        kept, factors = self.spectrum_shape, self.weight_factors()
        if len(factors) == 1:
            return 4 * batch * self.in_channels * self.out_channels * math.prod(kept), ""
        info = plan_info(
            (batch, self.in_channels, *kept, 2),
            self._x_subscripts,
            [(s, tuple(t.shape[:-1])) for s, t in factors],
            self._out_subscripts,
        )
        return int(info.opt_cost) // 2, "factorized: opt_einsum count"

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, n_modes={self.n_modes}, factorization={self.factorization}"

    def check_input(self, x: torch.Tensor) -> None:
        if x.ndim != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects input (batch, {self.in_channels}, "
                f"{', '.join('N' + str(k + 1) for k in range(self.dim))}), got {tuple(x.shape)}."
            )
        check_modes(self.n_modes, x.shape[2:])

    def forward(
        self,
        x: torch.Tensor,
        factors: Sequence[tuple[str, torch.Tensor]] | None = None,
        tap: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """(batch, in, *grid) -> (batch, out, *grid) under the active policy.

        ``factors`` replaces the weight's own (subscripts, tensor) factors, and ``tap(stage,
        tensor)`` may replace the tensor at each stage: ``"input"`` (after the stabilizer),
        ``"spectrum"``, ``"mixed"`` (after the contraction) and ``"output"``. Both exist for
        wrappers such as :class:`lowprec.quant.QuantSpectralConv`, which fake-quantize there.
        """
        self.check_input(x)
        tap = tap or (lambda stage, t: t)
        policy = current_policy()
        grid = x.shape[2:]
        transform_dtype = compute_dtype(policy.transform_dtype, x.dtype)
        contract_dtype = compute_dtype(policy.contract_dtype, x.dtype)
        with torch.autocast(x.device.type, enabled=False):
            h = tap("input", stabilize(x, policy.stabilizer))
            spectrum = tap("spectrum", forward_transform(h, self.n_modes, transform_dtype, policy.backend))
            mixed = tap(
                "mixed",
                complex_contract(
                    spectrum, self._x_subscripts, factors or self.weight_factors(), self._out_subscripts, contract_dtype
                ),
            )
            y = tap("output", inverse_transform(mixed, grid, self.n_modes, contract_dtype, policy.backend))
        return y.to(x.dtype)
