"""DictDataset: samples as named tensors, for models whose inputs are more than one grid field.

    fields["y"]:       (N, C_out, *points)  the target, read by the loss and the metrics
    fields[name]:      (N, ...)             every other field is an input, passed by name

A point-cloud model (GINO) takes ``{"x": features, "coords": positions, "y": target}``;
:class:`lowprec.train.Trainer` calls it as ``model(x=..., coords=...)`` and scores its
output against ``y``. ``dataset[i]`` is ``{name: fields[name][i]}``, so a plain
``DataLoader`` batches it into dicts too. Unlike neuraloperator's ``DictDataset`` (a list
of per-sample dicts), the fields are stacked tensors, indexed a batch at a time.

``grid`` says whether ``y`` lives on a grid: ``None`` for points (the relative L2 error
only), ``"nodes"`` or ``"periodic"`` when y is (N, C, *grid), which makes the H1 loss
and metric available as for :class:`~lowprec.data.PDEDataset`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from .dataset import GRIDS, _check_finite

TARGET = "y"


class DictDataset(Dataset):
    """N samples of named tensors; ``fields["y"]`` is the target, the others the model's inputs.

    Args:
        fields: name -> tensor (N, ...), the same N for all; ``"y"`` floating, (N, C, ...) with a
            channel axis. Names must be valid Python identifiers (the model receives them as
            keyword arguments).
        grid: ``None`` (y on points), ``"nodes"`` or ``"periodic"`` (y on a grid).
        meta: free-form description, copied into derived data sets.

    Raises ValueError, naming the field and the fix, when y is missing, N disagree, a name is
    not an identifier, or a floating field holds NaN/inf.
    """

    def __init__(self, fields: Mapping[str, torch.Tensor], grid: str | None = None, meta: dict | None = None):
        fields = dict(fields)
        if TARGET not in fields:
            raise ValueError(
                f"a DictDataset needs the target under the name {TARGET!r}; got fields "
                f"{sorted(fields)}. Rename the target field to {TARGET!r}."
            )
        if len(fields) < 2:
            raise ValueError(f"a DictDataset needs at least one input field besides {TARGET!r}.")
        for name, t in fields.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(
                    f"field name {name!r} is not a Python identifier; the model receives inputs as "
                    "keyword arguments, so use names like 'coords' or 'x_in'."
                )
            if not isinstance(t, torch.Tensor):
                raise TypeError(
                    f"field {name!r} must be a torch.Tensor, got {type(t).__name__}; convert with torch.as_tensor."
                )
            if t.ndim < 1 or t.shape[0] != fields[TARGET].shape[0]:
                raise ValueError(
                    f"field {name!r} has shape {tuple(t.shape)} but {TARGET!r} has "
                    f"{fields[TARGET].shape[0]} samples; every field is (N, ...) with the same N."
                )
            if t.is_floating_point():
                _check_finite(name, t)
        y = fields[TARGET]
        if not y.is_floating_point() or y.ndim < 2:
            raise ValueError(
                f"the target {TARGET!r} must be a floating tensor (N, C, ...), got {y.dtype} of shape "
                f"{tuple(y.shape)}; add a channel axis with y.unsqueeze(1)."
            )
        if grid is not None and grid not in GRIDS:
            raise ValueError(f"grid must be None (points) or one of {GRIDS}, got {grid!r}.")
        self.fields, self.grid = fields, grid
        self.meta: dict[str, Any] = dict(meta or {})

    def __len__(self) -> int:
        return self.fields[TARGET].shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {name: t[i] for name, t in self.fields.items()}

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(v.shape[1:])}" for k, v in self.fields.items())
        return f"DictDataset(n={len(self)}, {shapes}, grid={self.grid!r})"

    @property
    def y(self) -> torch.Tensor:
        """The target field (N, C, ...)."""
        return self.fields[TARGET]

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the input fields, in order."""
        return tuple(k for k in self.fields if k != TARGET)

    def batch(self, index: slice | torch.Tensor) -> dict[str, torch.Tensor]:
        """The samples at ``index`` (a slice or index tensor) as {name: tensor (B, ...)}."""
        return {name: t[index] for name, t in self.fields.items()}

    def subset(self, indices: slice | Sequence[int] | torch.Tensor) -> DictDataset:
        """Samples selected by a slice, index list or boolean mask (views for slices)."""
        index = indices if isinstance(indices, slice) else torch.as_tensor(indices)
        new = DictDataset.__new__(DictDataset)  # slices of validated tensors are valid
        new.fields, new.grid, new.meta = self.batch(index), self.grid, dict(self.meta)
        return new

    def split(self, n_train: int, n_test: int | None = None) -> tuple[DictDataset, DictDataset]:
        """First n_train samples and the n_test after them (default: the rest)."""
        n = len(self)
        n_test = n - n_train if n_test is None else n_test
        if n_train < 1 or n_test < 1 or n_train + n_test > n:
            raise ValueError(
                f"cannot split {n} samples into n_train={n_train} and n_test={n_test}: both must be "
                f"at least 1 and together at most {n}."
            )
        return self.subset(slice(0, n_train)), self.subset(slice(n_train, n_train + n_test))
