"""The "did you mean" hint that every name lookup in lowprec (policies, presets, problems, config
keys, modes) appends to its error, so that a typo is answered the same way everywhere; and the
one spelling rule for problem names (hyphens or underscores)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: object, choices: Iterable[str]) -> str | None:
    """The choice ``name`` most likely meant: a case slip first (``Nu`` for ``nu``), then a typo."""
    choices = [str(c) for c in choices]
    text = str(name)
    same_but_case = [c for c in choices if c.lower() == text.lower()]
    if same_but_case:
        return same_but_case[0]
    close = difflib.get_close_matches(text, choices, n=1)
    return close[0] if close else None


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    """``" Did you mean 'x'?"`` for the closest choice, or ``""`` when none is close."""
    match = closest(name, choices)
    return f" Did you mean {match!r}?" if match else ""


def lookup(table: dict, name: object, what: str, build: str):
    """``table[name]``, or a ValueError naming the closest key, every key, and how to ``build`` one instead."""
    if isinstance(name, str) and name in table:
        return table[name]
    raise ValueError(
        f"unknown {what} {name!r}.{did_you_mean(name, table)} Choose one of {', '.join(table)}; "
        f"or build one with {build}."
    )


def problem_key(name: str) -> str:
    """A problem's registry key: hyphens read as underscores, so ``navier-stokes`` names ``navier_stokes``."""
    return name.replace("-", "_") if isinstance(name, str) else name
