"""Which layer saved which tensor for the backward pass: a per-module breakdown of activation memory.

:class:`lowprec.train.metrics.SavedTensorMeter` counts the bytes autograd keeps
between the forward and the backward pass; this module says where they come
from. Every tensor autograd saves passes through a ``saved_tensors_hooks`` pack
hook; the hook records the tensor's dtype, shape and storage size, and, from
the Python call stack at that moment, the innermost module whose ``forward``
was running and the function that saved it (``conv._conv_forward``,
``dft.dft_rfft``, ``_GeluPointwise.forward`` ...). Tensors are counted once per
storage, exactly as the meter counts them, so the report's total equals the
meter's.

The call stack is read rather than module hooks registered because hooks would
change what is measured: :func:`lowprec.models.layers.gelu_pointwise` takes its
plain path for observed layers.

Usage::

    report = saved_tensor_report(lambda: model(x).float().pow(2).mean(), model, policy)
    print(report.table())          # module, saved by, dtype, count, MiB, share
    report.total_mib               # == SavedTensorMeter's mib for the same forward
"""

from __future__ import annotations

import contextlib
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..report import format_table
from ..spectral import dft


@dataclass
class SavedTensorReport:
    """Saved tensors grouped by (module, saving function, dtype, kind).

    ``rows``: dicts with ``module`` (its name in the model, ``<model>`` for the root and
    ``<outside>`` for the loss), ``op``, ``dtype``, ``kind`` (``"parameter"`` where the
    saved tensor is a model parameter or buffer itself, ``"constant"`` for a cached
    transform matrix, both memory that exists anyway, else ``"activation"``), ``count``,
    ``bytes``, ``example_shape``.
    """

    rows: list[dict] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(r["bytes"] for r in self.rows)

    @property
    def total_mib(self) -> float:
        return self.total_bytes / 2**20

    def by_module(self) -> dict[str, int]:
        """Bytes per module, largest first."""
        totals: dict[str, int] = defaultdict(int)
        for r in self.rows:
            totals[r["module"]] += r["bytes"]
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

    def table(self, top: int | None = None) -> str:
        """The rows as a text table, largest first, with each row's share of the total."""
        total = self.total_bytes or 1
        rows = [
            {
                **r,
                "mib": r["bytes"] / 2**20,
                "share": 100 * r["bytes"] / total,
                "shape": "x".join(map(str, r["example_shape"])),
            }
            for r in self.rows[:top]
        ]
        columns = [
            ("module", "module", ""),
            ("op", "saved by", ""),
            ("dtype", "dtype", ""),
            ("kind", "kind", ""),
            ("count", "n", "d"),
            ("shape", "e.g. shape", ""),
            ("mib", "MiB", ".2f"),
            ("share", "%", ".1f"),
        ]
        return format_table(rows, columns) + f"\ntotal {self.total_mib:.2f} MiB"


def _caller(frame, modules: dict[int, str]) -> tuple[str, str]:
    """(innermost running module's name, innermost function outside autograd's own code) for a pack hook."""
    op, module = "", None
    while frame is not None:
        code = frame.f_code
        path = Path(code.co_filename)
        if not op and path.name == "checkpoint.py" and "utils" in path.parts:
            op = "recompute: stage input"
        elif not op and "autograd" not in path.parts and path.name != Path(__file__).name:
            op = f"{path.stem}.{getattr(code, 'co_qualname', code.co_name)}"
        owner = frame.f_locals.get("self")
        if isinstance(owner, nn.Module) and id(owner) in modules:
            module = modules[id(owner)]
            break
        frame = frame.f_back
    return (module if module is not None else "<outside>"), op


def saved_tensor_report(
    forward: Callable[[], object], model: nn.Module, context: contextlib.AbstractContextManager | None = None
) -> SavedTensorReport:
    """Run ``forward()`` (inside ``context``, e.g. a precision policy) and break down what autograd saved.

    ``forward`` builds the graph (a model call, usually with its loss); ``model`` names the
    modules. The graph is dropped afterwards: this measures, it does not train.
    """
    modules = {id(m): (name or "<model>") for name, m in model.named_modules()}
    parameters = {p.untyped_storage().data_ptr() for p in (*model.parameters(), *model.buffers())}
    groups: dict[tuple[str, str, str, str], dict] = {}
    seen: set = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = (storage.data_ptr(), t.device)
        if key not in seen:
            seen.add(key)
            module, op = _caller(sys._getframe(1), modules)
            dtype = str(t.dtype).replace("torch.", "")
            kind = (
                "parameter" if key[0] in parameters else "constant" if key[0] in dft.cached_storages() else "activation"
            )
            group = groups.setdefault(
                (module, op, dtype, kind),
                {
                    "module": module,
                    "op": op,
                    "dtype": dtype,
                    "kind": kind,
                    "count": 0,
                    "bytes": 0,
                    "example_shape": tuple(t.shape),
                },
            )
            group["count"] += 1
            group["bytes"] += storage.nbytes()
        return t

    with context if context is not None else contextlib.nullcontext():
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = forward()
    del out
    return SavedTensorReport(sorted(groups.values(), key=lambda r: -r["bytes"]))
