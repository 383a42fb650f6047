"""Models by name: the one place that maps ``model: fno`` in a config to a constructor.

    @register_model("sfno", "spherical-fno")
    class SFNO(nn.Module):
        def __init__(self, n_modes, in_channels=1, out_channels=1, hidden_channels=32, n_layers=4): ...

    build_model("sfno", n_modes=(16, 32), in_channels=3, out_channels=3)
    available_models()   # ('fno', 'sfno', 'tfno', 'transformer', 'unet')

A builder is a class or a function returning an ``nn.Module``. Names are
case-insensitive and ``-`` and ``_`` are the same letter, so ``navier-stokes``
and ``Navier_Stokes`` name one entry.

:func:`lowprec.config.build_model` calls a builder with the settings of
:data:`MODEL_SETTINGS` that its signature names (all of them if it takes
``**kwargs``), so a new model reads the config's vocabulary by naming its
parameters after it; settings left at ``None`` are not passed, so the builder's
own defaults apply. :func:`model_kwargs` does that selection.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from torch import nn

from .._hints import did_you_mean

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

# What the config path may pass: from the data, then ModelConfig's fields (n_modes one entry per axis).
MODEL_SETTINGS = (
    "dim",
    "in_channels",
    "out_channels",
    "grid_endpoint",
    "n_modes",
    "hidden_channels",
    "n_layers",
    "factorization",
    "rank",
    "domain_padding",
    "positional_embedding",
    "channel_mlp_expansion",
    "patch_size",
    "recompute",
    "sphere_grid",
)

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}  # canonical name -> builder
_ALIASES: dict[str, str] = {}  # normalised name or alias -> canonical name


def normalize_name(name: str) -> str:
    """``"Navier-Stokes"`` -> ``"navier_stokes"``: lower case, hyphens as underscores, no surrounding spaces."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"a model name is a non-empty string, got {name!r}.")
    return name.strip().lower().replace("-", "_")


def register_model(name: str, *aliases: str) -> Callable[[Builder], Builder]:
    """Decorator: register a model class or builder function under ``name`` (and ``aliases``).

    Returns the builder unchanged. Registering a taken name for another builder raises;
    registering the same builder again (a module imported twice) does nothing.
    """
    keys = [normalize_name(n) for n in (name, *aliases)]

    def decorate(builder: Builder) -> Builder:
        if not callable(builder):
            raise TypeError(f"register_model({name!r}) decorates a class or function, got {builder!r}.")
        for key in keys:
            taken = _ALIASES.get(key)
            if taken is not None and _BUILDERS[taken] is not builder and not _same(_BUILDERS[taken], builder):
                raise ValueError(
                    f"model name {key!r} is already registered for {_describe(_BUILDERS[taken])}; choose another name."
                )
        _BUILDERS[keys[0]] = builder
        for key in keys:
            _ALIASES[key] = keys[0]
        return builder

    return decorate


def _same(a: Callable, b: Callable) -> bool:
    # A re-executed module (importlib.reload, a test collecting it twice) makes new objects of the same definition.
    return (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", None),
        getattr(b, "__qualname__", None),
    )


def _describe(builder: Callable) -> str:
    return f"{getattr(builder, '__module__', '?')}.{getattr(builder, '__qualname__', builder)!s}"


def available_models() -> tuple[str, ...]:
    """The registered names (without aliases), sorted."""
    return tuple(sorted(_BUILDERS))


def resolve_model(name: str) -> str:
    """The canonical registered name for ``name`` or one of its aliases; one ValueError listing the known ones."""
    key = normalize_name(name)
    if key not in _ALIASES:
        raise ValueError(
            f"unknown model {name!r}.{did_you_mean(key, _ALIASES)} Registered models: "
            f"{', '.join(available_models())}; add one with lowprec.models.register_model."
        )
    return _ALIASES[key]


def build_model(name: str, /, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name`` (or an alias) with ``kwargs``, passed on unchanged."""
    return _BUILDERS[resolve_model(name)](**kwargs)


def model_kwargs(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``settings`` that model ``name``'s builder takes, ``None`` values left out.

    A class whose ``__init__`` forwards ``**kwargs`` to its base's (``TFNO`` to ``FNO``) takes
    the base's parameters too; a function taking ``**kwargs`` gets every setting.
    """
    named, takes_any = _parameters(_BUILDERS[resolve_model(name)])
    return {k: v for k, v in settings.items() if (takes_any or k in named) and v is not None}


def _parameters(builder: Callable) -> tuple[set[str], bool]:
    """(names of the keyword parameters, whether any keyword is taken) of a builder."""
    functions = (
        [
            vars(c)["__init__"]
            for c in builder.__mro__
            if "__init__" in vars(c) and c is not nn.Module and c is not object
        ]
        if isinstance(builder, type)
        else [builder]
    )
    named: set[str] = set()
    for function in functions:
        params = inspect.signature(function).parameters.values()
        named |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return named, False
    return named, not isinstance(builder, type)


__all__ = [
    "MODEL_SETTINGS",
    "available_models",
    "build_model",
    "model_kwargs",
    "normalize_name",
    "register_model",
    "resolve_model",
]
