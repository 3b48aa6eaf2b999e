"""Progress of long loops: a tqdm bar on a terminal, plain lines in a log file.

A tqdm bar redraws itself with carriage returns, which a log file (output redirected, a batch job,
``nohup``) keeps as one endless line of frames. :func:`progress` is the one place every command
shows progress: on a terminal it returns the tqdm bar, otherwise a :class:`PlainProgress` that
writes one plain line every ``interval_s`` seconds (10 s; the environment variable
``POSEKERNEL_PROGRESS_INTERVAL_S`` changes it) and one at the end, each with the count, the rate
and the time left::

    rooms: 3/10 room (30%), 0.25 room/s, 12 s elapsed, about 28 s left, frames_per_s=0.06

Both take the same calls: iterate over it, or ``update(n)``, ``set_postfix(**values)`` and
``close()`` (or use it as a context manager).
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable

__all__ = ["INTERVAL_ENV", "PlainProgress", "progress"]

INTERVAL_ENV = "POSEKERNEL_PROGRESS_INTERVAL_S"
DEFAULT_INTERVAL_S = 10.0


def _interval_s() -> float:
    """Seconds between plain lines: :data:`INTERVAL_ENV` when it holds a number >= 0, else 10."""
    text = os.environ.get(INTERVAL_ENV)
    try:
        value = float(text) if text is not None else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if math.isfinite(value) and value >= 0 else DEFAULT_INTERVAL_S


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):      # no isatty, or a closed stream
        return False


def _duration(seconds: float) -> str:
    """``12 s``, ``3 min 05 s``, ``2 h 07 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class PlainProgress:
    """Progress as plain lines, at most one every ``interval_s`` seconds, and one at :meth:`close`
    (unless the last line already showed the final count).

    No carriage returns and no redrawing: each line stands alone in a log. ``clock`` (seconds,
    monotonic) is injectable for tests.
    """

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", enabled: bool = True, interval_s: float | None = None, stream=None,
                 clock: Callable[[], float] = time.monotonic):
        if total is None and iterable is not None:
            try:
                total = len(iterable)        # type: ignore[arg-type]
            except TypeError:
                total = None
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.enabled = enabled
        self.interval_s = _interval_s() if interval_s is None else float(interval_s)
        self.stream = stream
        self.clock = clock
        self.n = 0
        self.postfix = ""
        self.started = clock()
        self.last_line = self.started
        self.written_n: int | None = None      # the count the last line showed (None: no line yet)
        self.closed = False

    # -- the tqdm calls the project uses ------------------------------------------------------------
    def __iter__(self):
        if self.iterable is None:
            raise TypeError("PlainProgress without an iterable: call update() instead")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.enabled and not self.closed and self.clock() - self.last_line >= self.interval_s:
            self._write()

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.enabled and self.written_n != self.n:     # the last line already says where it ended
            self._write()

    # -- the line ------------------------------------------------------------------------------------
    def line(self) -> str:
        """The current line: counts, rate, elapsed time and, with a total, the time left."""
        elapsed = self.clock() - self.started
        count = f"{self.n}/{self.total} {self.unit}" if self.total is not None else f"{self.n} {self.unit}"
        if self.total:
            count += f" ({100 * self.n / self.total:.0f}%)"
        parts = [count]
        rate = self.n / elapsed if elapsed > 0 else None
        if rate:
            parts.append(f"{rate:.3g} {self.unit}/s" if rate >= 1 else f"{1 / rate:.3g} s/{self.unit}")
        parts.append(f"{_duration(elapsed)} elapsed")
        if self.total is not None and self.n < self.total and rate:
            parts.append(f"about {_duration((self.total - self.n) / rate)} left")
        if self.postfix:
            parts.append(self.postfix)
        return f"{self.desc}: " * bool(self.desc) + ", ".join(parts)

    def _write(self) -> None:
        self.last_line = self.clock()
        self.written_n = self.n
        stream = self.stream if self.stream is not None else sys.stderr
        print(self.line(), file=stream, flush=True)


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True, leave: bool = True, interval_s: float | None = None, stream=None):
    """A progress display over ``iterable`` (or of ``total`` steps counted with ``update``).

    On a terminal (``stream``, default standard error, is a TTY) a tqdm bar; otherwise a
    :class:`PlainProgress` that writes a line every ``interval_s`` seconds and at the end.
    ``enabled=False`` shows nothing; ``leave=False`` lets a tqdm bar vanish when done.
    """
    target = stream if stream is not None else sys.stderr
    if enabled and _is_terminal(target):
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=stream)
    return PlainProgress(iterable, total=total, desc=desc, unit=unit, enabled=enabled, interval_s=interval_s,
                         stream=stream)
