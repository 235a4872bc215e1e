"""Paced generations whose events carry the time they were emitted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Pace", "Stamps", "follow_all", "paced_source", "wait_ready"]

HELLO = "hello"
TICK = "tick"


@dataclass(slots=True)
class Pace:
    """A shared start signal and the schedule every paced job keeps."""

    rate: float
    events: int
    jobs: int
    go: asyncio.Event = field(default_factory=asyncio.Event)
    started_at: float = 0.0

    def start(self) -> None:
        """Release every job; event ``i`` of job ``j`` is due at a fixed time."""
        self.started_at = asyncio.get_running_loop().time()
        self.go.set()

    def due(self, job: int, index: int) -> float:
        """When (loop time) event ``index`` of job ``job`` is to be emitted."""
        # Jobs are spread evenly over one period so that the load is steady
        # rather than 100 events at once every 20 ms.
        phase = job / (self.jobs * self.rate)
        return self.started_at + phase + index / self.rate


async def paced_source(pace: Pace, job: int) -> AsyncIterator[Any]:
    """Say hello, wait for the start, then emit ``pace.events`` stamped ticks."""
    loop = asyncio.get_running_loop()
    yield {"event": HELLO, "data": job}
    await pace.go.wait()
    for index in range(pace.events):
        delay = pace.due(job, index) - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        yield {"event": TICK, "data": {"t": time.time_ns(), "i": index}}


@dataclass(slots=True)
class Stamps:
    """For each tick a follower received: its index in its job and its latency (ns).

    The latency runs from the event's stamp to its arrival at the follower.
    """

    ticks: list[tuple[int, int]] = field(default_factory=list)
    hellos: int = 0
    cpu_seconds: float = 0.0

    def receive(self, event: Any) -> None:
        """Note one received event; the time is read first, before anything else."""
        now = time.time_ns()
        name = event.get("event") if isinstance(event, dict) else None
        if name == TICK:
            data = event["data"]
            self.ticks.append((data["i"], now - data["t"]))
        elif name == HELLO:
            self.hellos += 1


async def follow_all(
    manager: Any, stream_ids: list[str], user_id: str, stamps: Stamps
) -> tuple[asyncio.Event, asyncio.Future[list[None]]]:
    """Follow every job; return "every hello arrived" and "every job ended"."""
    ready = asyncio.Event()

    async def follow(stream_id: str) -> None:
        async for chunk in manager.subscribe(stream_id, user_id, after=0):
            stamps.receive(chunk.event)
            if stamps.hellos == len(stream_ids):
                ready.set()

    done = asyncio.gather(*(follow(stream_id) for stream_id in stream_ids))
    return ready, done


async def wait_ready(
    ready: asyncio.Event, done: asyncio.Future[list[None]], seconds: float
) -> None:
    """Wait until every follower has its hello; raise a follower's error at once."""
    waiter: asyncio.Future[Any] = asyncio.ensure_future(ready.wait())
    either: list[asyncio.Future[Any]] = [waiter, done]
    try:
        async with asyncio.timeout(seconds):
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if done.done():
        done.result()
