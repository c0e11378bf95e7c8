"""Terminal progress of a long run (no ROS here): rollouts (or epochs) done of a budget, ETA,
failures found so far. Every long command shows its progress through :class:`ProgressReporter`.

On a terminal it draws a tqdm bar with the ETA and the failures found so far; when the stream is
not a terminal (a log file, CI) it prints one plain line every ``every`` units and a last one
when the run ends; with ``enabled=False`` (``--no-progress``) it prints
nothing. :class:`EtaClock` is the one place that estimates the time left, for the bar's plain
lines and the browser console alike.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TextIO


def add_progress_argument(p: argparse.ArgumentParser) -> None:
    """``--no-progress``, for a command that shows a :class:`ProgressReporter`."""
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (without a terminal: no progress lines either)")


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``'1:15'``, ``3725`` -> ``'1:02:05'``; ``'?'`` for None."""
    if seconds is None:
        return "?"
    s = int(round(max(0.0, seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class EtaClock:
    """Estimates the time left from the rate seen since the first update.

    A resumed run starts at ``done > 0``: only the rollouts done while watching count.

    :param clock: monotonic clock, seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._start: tuple[float, int] | None = None

    def eta(self, done: int, total: int) -> float | None:
        """Seconds left for ``total - done`` rollouts; None before any progress was seen."""
        now = self.clock()
        if self._start is None or done < self._start[1]:
            self._start = (now, done)
        t0, done0 = self._start
        if done >= total:
            return 0.0
        if done <= done0 or now <= t0:
            return None
        return (total - done) * (now - t0) / (done - done0)


class ProgressReporter:
    """Progress of ``total`` units of work (rollouts, epochs...) on ``stream``.

    Use it as a context manager, or call :meth:`close` at the end.

    :param total: the budget.
    :param desc: what runs, e.g. the campaign's name.
    :param stream: where to write (stderr by default).
    :param enabled: False prints nothing (``--no-progress``).
    :param every: without a terminal, one line every this many units.
    :param unit: what is counted (``rollout``, ``epoch``).
    :param clock: monotonic clock, seconds.
    """

    def __init__(self, total: int, desc: str, stream: TextIO | None = None, enabled: bool = True,
                 every: int = 10, unit: str = "rollout",
                 clock: Callable[[], float] = time.monotonic) -> None:
        if every < 1:
            raise ValueError(f"every={every}: print a line every 1 or more {unit}s")
        self.total, self.desc, self.every, self.unit = int(total), desc, every, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.clock = EtaClock(clock)
        self.done = 0
        self.failures: int | None = None
        self.aborted: int | None = None
        self.fields: dict[str, object] = {}
        self._printed: int | None = None
        self._bar = None

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, done: int, failures: int | None = None, aborted: int | None = None,
               **fields: object) -> None:
        """``done`` units are finished; ``failures``/``aborted`` rollouts so far and any other
        figures worth showing (``loss=0.12``) go beside the count."""
        self.done = done
        if failures is not None:
            self.failures = failures
        if aborted is not None:
            self.aborted = aborted
        self.fields.update(fields)
        eta = self.clock.eta(done, self.total)
        if not self.enabled:
            return
        if self.tty:
            self._draw(done)
            return
        if self._printed is None or done >= self._printed + self.every or (
                done >= self.total and self._printed < self.total):
            self._printed = done
            self._line(eta)

    def _shown(self) -> dict[str, object]:
        shown: dict[str, object] = {}
        if self.failures is not None:
            shown["failures"] = self.failures
        if self.aborted is not None:
            shown["aborted"] = self.aborted
        return shown | self.fields

    def _draw(self, done: int) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=self.total, initial=min(done, self.total), unit=self.unit,
                             desc=self.desc, file=self.stream, dynamic_ncols=True)
        self._bar.set_postfix(self._shown(), refresh=False)
        self._bar.update(min(done, self.total) - self._bar.n)

    def _line(self, eta: float | None) -> None:
        parts = [f"{self.done}/{self.total} {self.unit}s"]
        parts += [f"{v} {k}" if k in ("failures", "aborted") else f"{k} {v}"
                  for k, v in self._shown().items()]
        print(f"{self.desc}: {', '.join(parts)}, ETA {format_duration(eta)}", file=self.stream,
              flush=True)

    def close(self) -> None:
        """End the bar (or print the last plain line if it was not printed yet)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and not self.tty and self._printed != self.done:
            self._printed = self.done
            self._line(self.clock.eta(self.done, self.total))
