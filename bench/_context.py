"""What every workload is given: sizes, the Redis URL, the progress bar."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from ._progress import Progress

__all__ = [
    "FULL",
    "SMOKE",
    "BenchContext",
    "Sizes",
    "WorkloadUnavailable",
    "delete_prefix",
    "event_source",
    "make_event",
]


class WorkloadUnavailable(Exception):
    """A workload cannot run here (a part it needs is missing); the run goes on."""


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each workload is; ``FULL`` is the published run, ``SMOKE`` for CI."""

    append_jobs: int = 100
    append_events: int = 500
    raw_batch: int = 64
    latency_jobs: int = 100
    latency_rate: float = 50.0
    latency_seconds: float = 5.0
    latency_settle_seconds: float = 0.5
    reattach_events: int = 20_000
    reattach_small_events: int = 200
    reattach_timings: int = 15
    scale_steps: tuple[int, ...] = (250, 500, 1000, 2000, 4000, 8000)
    scale_idle_jobs: int = 1000
    scale_echo_delay_ms: int = 2000
    scale_words: int = 200
    memory_events: int = 500
    memory_jobs: int = 2000
    memory_event_jobs: int = 200


FULL = Sizes()
SMOKE = Sizes(
    append_jobs=4,
    append_events=20,
    latency_jobs=4,
    latency_seconds=0.3,
    latency_settle_seconds=0.0,
    reattach_events=200,
    reattach_small_events=20,
    reattach_timings=2,
    scale_steps=(4,),
    scale_idle_jobs=3,
    scale_echo_delay_ms=100,
    scale_words=300,
    memory_events=50,
    memory_jobs=20,
    memory_event_jobs=4,
)

_TEXT = "w%05d lorem ipsum dolor sit amet, co "


def make_event(index: int) -> Any:
    """A text delta of 40 bytes as JSON, like a few streamed tokens.

    A bare string is the shortest event the text aggregator reads as answer text,
    so the manager's aggregation does its usual work on every event.
    """
    return _TEXT % (index % 100_000)


async def event_source(events: Sequence[Any]) -> AsyncIterator[Any]:
    """A generation that emits ``events`` as fast as it is read."""
    for event in events:
        yield event


@dataclass(slots=True)
class BenchContext:
    """Shared by the workloads of one run."""

    redis_url: str
    sizes: Sizes
    repeat: int
    progress: Progress
    smoke: bool = False
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def prefix(self, what: str) -> str:
        """A key prefix no other part of this run (or another run) uses."""
        return f"rb{os.getpid()}{what}{next(self._names)}"


async def delete_prefix(client: Redis, prefix: str) -> None:
    """Delete every key under ``prefix`` (what a workload leaves behind)."""
    batch: list[Any] = []
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            await client.unlink(*batch)
            batch.clear()
    if batch:
        await client.unlink(*batch)
