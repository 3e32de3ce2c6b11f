"""Progress of long work, with one switch for every bar.

Library code wraps its long loops in :func:`progress`, or counts towards a total with
:class:`Progress` (which can also log a rate-limited line with the speed and the time left,
for work that should leave a trace in a log file, such as PPO training). Bars are drawn by
tqdm on **stderr**, never stdout, so a command's printed results stay clean.

Whether bars show is decided once for every bar, in this order:

1. :func:`set_progress` (``True`` or ``False``; ``None`` returns to the automatic choice),
   called by an entry point: the CLI's ``-q``, the API, a notebook;
2. the environment variable ``DEADSTOCK_PROGRESS`` (``0``/``false``/``no``/``off`` hide them,
   anything else shows them);
3. otherwise bars show when stderr is a terminal, so logs and captured output carry none.

An entry point that also logs to stderr while bars are drawn can route its handlers through
``tqdm.contrib.logging.logging_redirect_tqdm`` so that log lines do not break a bar.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")

#: Environment variable that shows (``1``) or hides (``0``) every progress bar.
PROGRESS_ENV = "DEADSTOCK_PROGRESS"
_OFF_WORDS = frozenset({"0", "false", "no", "off"})

# The switch set by an entry point (None = decide from the environment and the terminal).
_forced: bool | None = None


def set_progress(enabled: bool | None) -> None:
    """Show (``True``) or hide (``False``) every progress bar; ``None`` restores the automatic
    choice (see the module docstring). Meant for entry points, not library code."""
    global _forced
    _forced = None if enabled is None else bool(enabled)


def progress_enabled() -> bool:
    """Whether progress bars are shown now."""
    if _forced is not None:
        return _forced
    env = os.environ.get(PROGRESS_ENV)
    if env is not None and env.strip():
        return env.strip().lower() not in _OFF_WORDS
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


def _bar(iterable: Iterable[Any] | None, desc: str, total: float | None, unit: str) -> tqdm:
    return tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        file=sys.stderr,
        disable=not progress_enabled(),
        leave=False,
        dynamic_ncols=True,
        smoothing=0.1,
    )


def progress(
    iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it"
) -> Iterator[T]:
    """Iterate over ``iterable`` with a progress bar on stderr (when bars are enabled).

    Parameters
    ----------
    iterable : iterable
    desc : str
        What is being done, shown before the bar (``"risk: fitting models"``).
    total : int, optional
        Number of items, when ``iterable`` has no ``len``.
    unit : str
        Name of one item.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with _bar(iterable, desc, total, unit) as bar:
        yield from bar


def format_seconds(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"`` or ``"1 h 02 min"``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """A count towards ``total``: a bar on stderr and, optionally, a log line every
    ``log_every`` seconds with the count, the speed and the time left.

    Parameters
    ----------
    total : int
        The count at which the work is done.
    desc : str
        What is being counted for (``"ppo"``); starts every log line.
    unit : str
        Name of one count (``"step"``).
    logger : logging.Logger, optional
        Where the rate-limited lines go (at INFO). ``None`` logs nothing.
    log_every : float
        Seconds between two log lines (the first comes after ``log_every`` seconds, so a
        short job logs nothing); the final line is logged by :meth:`close` when any was.
    start : int
        Count already done (a resumed job); the speed counts only what is done here.

    Examples
    --------
    >>> with Progress(1000, desc="work", unit="step") as p:
    ...     for _ in range(10):
    ...         p.update(100)
    """

    def __init__(
        self,
        total: int,
        *,
        desc: str,
        unit: str = "it",
        logger: logging.Logger | None = None,
        log_every: float = 30.0,
        start: int = 0,
    ) -> None:
        self.total = int(total)
        self.desc = desc
        self.unit = unit
        self.logger = logger
        self.log_every = float(log_every)
        self.start = int(start)
        self.count = int(start)
        self._t0 = time.perf_counter()
        self._last_log = self._t0
        self._logged = False
        self._bar = _bar(None, desc, self.total, unit)
        if self.start:
            self._bar.update(self.start)

    def update(self, n: int = 1) -> None:
        """Add ``n`` to the count."""
        self.count += int(n)
        self._bar.update(int(n))
        if self.logger is not None:
            now = time.perf_counter()
            if now - self._last_log >= self.log_every:
                self._last_log = now
                self._log(now)

    def set_count(self, count: int) -> None:
        """Set the count (when the caller knows the count rather than the increment)."""
        if count > self.count:
            self.update(count - self.count)

    def line(self, now: float | None = None) -> str:
        """``"ppo: 40,960/200,000 steps (20 %), 1,234 steps/s, 2 min 09 s left"``."""
        now = time.perf_counter() if now is None else now
        elapsed = max(now - self._t0, 1e-9)
        done = self.count - self.start
        rate = done / elapsed
        share = self.count / self.total if self.total else 1.0
        text = (
            f"{self.desc}: {self.count:,}/{self.total:,} {self.unit}s ({share:.0%}), "
            f"{rate:,.0f} {self.unit}s/s"
        )
        left = self.total - self.count
        if left > 0 and rate > 0:
            text += f", {format_seconds(left / rate)} left"
        elif left <= 0:
            text += f", done in {format_seconds(elapsed)}"
        return text

    def _log(self, now: float) -> None:
        assert self.logger is not None
        self._logged = True
        self.logger.info("%s", self.line(now))

    def close(self) -> None:
        """Close the bar; log the final line when progress lines were logged."""
        self._bar.close()
        if self.logger is not None and self._logged:
            self._log(time.perf_counter())
            self._logged = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
