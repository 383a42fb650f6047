"""Progress reporting for every long command: a tqdm bar on a terminal, plain lines elsewhere.

tqdm redraws its bar with carriage returns; written to a file or a pipe (a batch job's log,
``lowprec demo | tee log``) that becomes thousands of frames on one line. :func:`progress_bar`
returns tqdm's bar where someone watches (a terminal or a notebook) and otherwise a
:class:`LineProgress`, which writes one complete line every ``interval`` seconds and one when
it closes. Both answer the part of tqdm's interface that lowprec uses (iteration, ``update``,
``set_description``, ``set_postfix``, ``write``, ``close``, ``with``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import IO

INTERVAL_S = 30.0


def _interactive(stream) -> bool:
    if "ipykernel" in sys.modules:  # a notebook: tqdm.auto draws a widget there
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    disable: bool = False,
    file: IO[str] | None = None,
    interval: float = INTERVAL_S,
    **tqdm_kwargs,
):
    """A progress bar over ``iterable`` (or ``total`` steps counted by ``update``).

    On a terminal or in a notebook: ``tqdm.auto.tqdm`` (``tqdm_kwargs`` passed on). Otherwise a
    :class:`LineProgress` writing to ``file`` (default ``sys.stderr``) every ``interval`` seconds,
    and once more on closing unless ``leave=False`` (an inner bar). ``disable``: report nothing
    (the bar still counts and iterates).
    """
    stream = sys.stderr if file is None else file
    if disable or not _interactive(stream):
        return LineProgress(
            iterable,
            total=total,
            desc=desc,
            unit=unit,
            disable=disable,
            file=stream,
            interval=interval,
            leave=tqdm_kwargs.get("leave", True),
        )
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=file, dynamic_ncols=True, **tqdm_kwargs)


class LineProgress:
    """tqdm's interface, reported as whole lines: ``desc: n/total unit (p%), t s elapsed, key=value``.

    A line is written when ``interval`` seconds have passed since the last one and, if ``leave``,
    when the bar closes; none contains a carriage return.
    """

    def __init__(
        self, iterable=None, total=None, desc="", unit="it", disable=False, file=None, interval=INTERVAL_S, leave=True
    ):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.disable, self.file, self.interval = disable, sys.stderr if file is None else file, interval
        self.n, self.postfix, self.closed, self.leave = 0, "", False, leave
        self.start = self._last = time.monotonic()

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self):
        return self.total or 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._line()

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        self.desc = desc

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def write(self, s: str, file=None, end: str = "\n") -> None:
        """A message beside the bar; to stdout, as ``tqdm.write``."""
        file = sys.stdout if file is None else file
        file.write(s + end)
        file.flush()

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.n and self.leave:
                self._line()

    def _line(self) -> None:
        if self.disable:
            return
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        percent = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        elapsed = time.monotonic() - self.start
        text = f"{self.desc + ': ' if self.desc else ''}{count} {self.unit}{percent}, {elapsed:.0f} s"
        self.write(text + (f", {self.postfix}" if self.postfix else ""), file=self.file)
