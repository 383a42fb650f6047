"""Packages whose public names are imported on first use, so that building the command line imports no torch.

A package's ``__init__`` lists its public names as imports under ``if TYPE_CHECKING:`` (what type
checkers and readers see) and ends with ``lazy_package(__name__)``, which reads that block and imports
each name from its module when it is first looked up (PEP 562; the scheme of Scientific Python's SPEC 1,
whose ``lazy_loader.attach_stub`` reads a stub file the same way)::

    from typing import TYPE_CHECKING

    from .._lazy import lazy_package

    if TYPE_CHECKING:
        from .trainer import Trainer

    lazy_package(__name__)

``lowprec.train.Trainer`` and ``from lowprec.train import Trainer`` work as with eager imports, and so
does everything else (``__all__``, ``dir()``); ``import lowprec.train.settings`` no longer imports
torch through the package.
"""

from __future__ import annotations

import ast
import importlib
import sys
import types


class _LazyPackage(types.ModuleType):
    def __getattr__(self, name: str):
        module = self.__dict__["_lazy_exports"].get(name)
        if module is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, self.__name__), name)
        setattr(self, name, value)
        return value

    def __setattr__(self, name: str, value) -> None:
        # Importing a submodule binds it on its package. A public name spelled like the module that defines it
        # (lowprec.physics.train, the function in physics/train.py) keeps meaning the name, as it did when
        # the package imported it eagerly.
        if (
            isinstance(value, types.ModuleType)
            and value.__name__ == f"{self.__name__}.{name}"
            and self.__dict__["_lazy_exports"].get(name) == f".{name}"
        ):
            value = getattr(value, name)
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.__dict__["_lazy_exports"]))


def _type_checking_imports(tree: ast.Module) -> dict[str, str]:
    """{name: module} of the ``from MODULE import NAME`` statements under ``if TYPE_CHECKING:``."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    for alias in stmt.names:
                        out[alias.asname or alias.name] = "." * stmt.level + (stmt.module or "")
    return out


def lazy_package(name: str) -> None:
    """Make package ``name`` import the names of its ``if TYPE_CHECKING:`` block on first use."""
    package = sys.modules[name]
    loader = package.__spec__.loader if package.__spec__ is not None else None
    source = loader.get_source(name) if loader is not None and hasattr(loader, "get_source") else None
    if source is None:
        raise ImportError(f"{name}: its __init__.py source is needed to find its lazily imported names.")
    exports = _type_checking_imports(ast.parse(source))
    if not exports:
        raise ImportError(f"{name}: no 'from MODULE import NAME' under 'if TYPE_CHECKING:' to import lazily.")
    package.__dict__["_lazy_exports"] = exports
    package.__class__ = _LazyPackage
