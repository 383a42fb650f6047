"""Complex tensor contractions as one real einsum, in the cheapest order.

einsum and bmm have no complex-half kernels (CPU or CUDA), so a complex
contraction in fp16/bf16 has to run on real tensors. We use the 2x2 real
matrix form of a complex number::

    a + ib  ->  [[a, -b],
                 [b,  a]]

Multiplying complex numbers is multiplying these matrices, and a product of
k complex factors with a vector [re, im] is a chain M_1 M_2 ... M_k v. So a
complex einsum over k weight factors and one input becomes a real einsum with
one extra 2x2 index pair per factor: exact, one call, any real dtype, four
real multiplies per complex multiply as usual. Only the (small) weight factors
are expanded to 2x2 form; the (large) input stays a [re, im] pair.

opt_einsum picks the contraction order once per (equation, shapes) and the
plan is cached: Tucker/CP weights are never rebuilt densely when the
factorized order is cheaper. The plan is executed here as a short list of
pairwise ``torch.einsum`` calls rather than by opt_einsum's own executor,
and the planner is marked constant for ``torch.compile``: opt_einsum's code
cannot be traced (it graph-breaks on every call), a list of einsums can.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import opt_einsum
import torch

# Letters for the 2x2 chain; weights and data use i, o, x, y, z, b and upper-case ranks.
_CHAIN = "pqrstuvw"


def complex_matrix(t: torch.Tensor) -> torch.Tensor:
    """(..., 2) [re, im] -> (..., 2, 2) [[re, -im], [im, re]]."""
    re, im = t.unbind(-1)
    return torch.stack((torch.stack((re, -im), -1), torch.stack((im, re), -1)), -2)


@lru_cache(maxsize=256)
def _plan(equation: str, shapes: tuple[tuple[int, ...], ...]) -> opt_einsum.contract.ContractExpression:
    optimize = "optimal" if len(shapes) <= 5 else "auto"
    return opt_einsum.contract_expression(equation, *shapes, optimize=optimize)


@torch.compiler.assume_constant_result
def _steps(equation: str, shapes: tuple[tuple[int, ...], ...]) -> tuple[tuple[tuple[int, ...], str], ...]:
    """The cached plan as ((operand positions, pairwise einsum), ...), in opt_einsum's order."""
    return tuple((tuple(inds), eq) for inds, _, eq, *_ in _plan(equation, shapes).contraction_list)


def _execute(steps: Sequence[tuple[tuple[int, ...], str]], operands: list[torch.Tensor]) -> torch.Tensor:
    # Each step takes the operands at `positions` out of the list and appends their product,
    # as opt_einsum's executor does.
    for positions, eq in steps:
        picked = [operands[k] for k in positions]
        operands = [op for k, op in enumerate(operands) if k not in positions] + [torch.einsum(eq, *picked)]
    return operands[0]


def contract_equation(x_subscripts: str, factors: Sequence[str], out_subscripts: str) -> str:
    """The real einsum equation for out = sum(x * prod(factors)) with complex operands."""
    if len(factors) + 1 > len(_CHAIN):
        raise ValueError(f"at most {len(_CHAIN) - 1} complex factors are supported, got {len(factors)}.")
    chain = _CHAIN[: len(factors) + 1]
    terms = [s + chain[k] + chain[k + 1] for k, s in enumerate(factors)]
    return ",".join(terms + [x_subscripts + chain[-1]]) + "->" + out_subscripts + chain[0]


def complex_contract(
    x: torch.Tensor,
    x_subscripts: str,
    factors: Sequence[tuple[str, torch.Tensor]],
    out_subscripts: str,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Contract a complex input with complex weight factors, all held as real (..., 2) tensors.

    Args:
        x: input, shape (*x_subscripts, 2), e.g. (batch, in, mx, my, 2).
        x_subscripts: einsum letters of ``x`` without the complex axis, e.g. ``"bixy"``.
        factors: (subscripts, tensor (..., 2)) pairs, e.g. ``[("ioxy", W)]``.
        out_subscripts: letters of the result, e.g. ``"boxy"``.
        dtype: real dtype the contraction runs in (fp16/bf16 accumulate in fp32 on tensor cores).

    Returns:
        Real tensor of shape (*out_subscripts, 2) in ``dtype``.
    """
    equation = contract_equation(x_subscripts, [s for s, _ in factors], out_subscripts)
    operands = [complex_matrix(t.to(dtype)) for _, t in factors] + [x.to(dtype)]
    return _execute(_steps(equation, tuple(tuple(op.shape) for op in operands)), operands)


def plan_info(
    x_shape: Sequence[int], x_subscripts: str, factors: Sequence[tuple[str, Sequence[int]]], out_subscripts: str
) -> opt_einsum.contract.PathInfo:
    """opt_einsum's PathInfo (order, FLOPs, largest intermediate) for a contraction of these shapes.

    ``x_shape`` includes the trailing [re, im] axis; ``factors`` holds (subscripts, shape of
    the complex factor, without it) pairs.
    """
    equation = contract_equation(x_subscripts, [s for s, _ in factors], out_subscripts)
    shapes = [tuple(shape) + (2, 2) for _, shape in factors] + [tuple(x_shape)]
    return opt_einsum.contract_path(equation, *shapes, shapes=True)[1]
