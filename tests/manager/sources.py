"""Sources (async generators of events) that the manager tests run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any


def delta(index: int) -> dict[str, Any]:
    """The ``index``-th text delta of a test generation."""
    return {"event": "message_delta", "data": {"text": f"w{index} "}}


def text_of(count: int) -> str:
    return "".join(f"w{index} " for index in range(count))


async def deltas(count: int, *, pace: float = 0.0) -> AsyncIterator[dict[str, Any]]:
    """``count`` text deltas, ``pace`` seconds apart (0: as fast as possible)."""
    for index in range(count):
        if pace:
            await asyncio.sleep(pace)
        yield delta(index)


class Endless:
    """A source that emits until it is cancelled, and records that it was."""

    def __init__(self, pace: float = 0.005) -> None:
        self.pace = pace
        self.started = asyncio.Event()
        self.cleaned_up = asyncio.Event()
        self.emitted = 0

    async def run(self) -> AsyncIterator[dict[str, Any]]:
        try:
            while True:
                yield delta(self.emitted)
                self.emitted += 1
                self.started.set()
                await asyncio.sleep(self.pace)
        finally:
            self.cleaned_up.set()


async def failing(after: int, message: str) -> AsyncIterator[dict[str, Any]]:
    """``after`` deltas, then an exception with ``message``."""
    for index in range(after):
        yield delta(index)
    raise RuntimeError(message)
