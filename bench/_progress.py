"""A one-line progress bar on stderr, redrawn in place; silent when not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 28
_REDRAW_SECONDS = 0.1


class Progress:
    """Counts finished steps out of a total and shows what runs now.

    Draws nothing when ``enabled`` is false, so callers never need to check.
    """

    def __init__(self, total: int, *, enabled: bool, stream: TextIO | None = None):
        self.total = max(1, total)
        self.done = 0
        self.enabled = enabled
        self._stream = stream if stream is not None else sys.stderr
        self._label = ""
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn_width = 0

    @classmethod
    def for_terminal(cls, total: int, *, quiet: bool) -> Progress:
        """A bar that draws only when stderr is a terminal and ``quiet`` is off."""
        return cls(total, enabled=not quiet and sys.stderr.isatty())

    def label(self, text: str) -> None:
        """Say what runs now."""
        self._label = text
        self._draw(force=True)

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` more as done."""
        self.done = min(self.total, self.done + steps)
        self._draw(force=False)

    def tick(self) -> None:
        """Redraw the clock while a long step runs (rate-limited)."""
        self._draw(force=False)

    def close(self) -> None:
        """Erase the bar so the report starts on a clean line."""
        if self.enabled and self._drawn_width:
            self._stream.write("\r" + " " * self._drawn_width + "\r")
            self._stream.flush()
        self._drawn_width = 0

    def _draw(self, *, force: bool) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < _REDRAW_SECONDS:
            return
        self._drawn_at = now
        line = self._line(now)
        padding = " " * max(0, self._drawn_width - len(line))
        self._stream.write("\r" + line + padding)
        self._stream.flush()
        self._drawn_width = len(line)

    def _line(self, now: float) -> str:
        fraction = self.done / self.total
        filled = round(fraction * _WIDTH)
        elapsed = int(now - self._started)
        bar = "#" * filled + "." * (_WIDTH - filled)
        clock = f"{elapsed // 60:02d}:{elapsed % 60:02d}"
        return f"[{bar}] {fraction:4.0%} {clock} {self._label}"[:100]
