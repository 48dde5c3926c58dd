"""Progress a person can follow: one self-rewriting line per phase of a run (training: step, loss, ETA;
evaluation; generation) on stderr, and a sweep's runs done / total with an ETA.

The line is drawn only when stderr is a terminal and the suite's logging shows progress (not ``-q``): in a CI
log or a redirected file nothing is drawn, so logs keep their one line per event (the runner's log
messages). ``progress_enabled()`` is the one switch; library progress bars (lm-eval's, tqdm) follow it too.
"""

from __future__ import annotations

import logging
import sys
import time

LOGGER = "suite"  # the suite's logger tree (suite.core.log): -q raises it to warnings


def progress_enabled(stream=None) -> bool:
    """Draw progress lines: stderr (or ``stream``) is a terminal and the suite logs at INFO or below."""
    stream = stream or sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty and logging.getLogger(LOGGER).isEnabledFor(logging.INFO)


def format_seconds(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def eta(done: float, total: float | None, elapsed: float) -> float | None:
    """Seconds left at the rate so far (None before the first unit or without a total)."""
    if not total or done <= 0:
        return None
    return elapsed / done * max(0.0, total - done)


class ProgressLine:
    """One line ``label: done/total unit  key value ...  ETA m:ss`` rewritten in place (at most every
    ``interval`` seconds); ``close()`` ends it. Does nothing when progress is not enabled."""

    def __init__(self, label: str, total: int | None, unit: str = "", *, stream=None, interval: float = 0.5,
                 enabled: bool | None = None):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.enabled = progress_enabled(self.stream) if enabled is None else enabled
        self.interval = interval
        self.started = time.monotonic()
        self.done, self.fields = 0, {}
        self._drawn_at, self._width = 0.0, 0

    def text(self) -> str:
        total = f"/{self.total}" if self.total else ""
        fields = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in self.fields.items())
        elapsed = time.monotonic() - self.started
        left = eta(self.done, self.total, elapsed)
        timing = f"ETA {format_seconds(left)}" if self.total and self.done < self.total else \
            f"{format_seconds(elapsed)} elapsed"
        return "  ".join(part for part in (f"{self.label}: {self.done}{total} {self.unit}".rstrip(), fields, timing)
                         if part)

    def update(self, done: int | None = None, advance: int = 0, **fields) -> None:
        self.done = done if done is not None else self.done + advance
        self.fields.update(fields)
        now = time.monotonic()
        if self.enabled and (now - self._drawn_at >= self.interval or (self.total and self.done >= self.total)):
            self._draw()
            self._drawn_at = now

    def _draw(self) -> None:
        text = self.text()
        self.stream.write("\r" + text + " " * max(0, self._width - len(text)))
        self.stream.flush()
        self._width = len(text)

    def close(self) -> None:
        if self.enabled and self._width:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SweepProgress:
    """Runs done / total of a sweep and the ETA at the pace so far, logged after each run (one log line
    per run: readable in CI logs too; hidden by ``-q``)."""

    def __init__(self, total: int, logger: logging.Logger):
        self.total, self.log = total, logger
        self.done, self.started = 0, time.monotonic()

    def run_finished(self, run_id: str, status: str) -> None:
        self.done += 1
        left = eta(self.done, self.total, time.monotonic() - self.started)
        tail = f", ETA {format_seconds(left)}" if self.done < self.total else ""
        self.log.info(f"sweep: {self.done}/{self.total} runs done ({run_id}: {status}){tail}")
