"""Workload 4: what reattaching costs, by where the cursor is and how long the log is.

Three finished jobs are produced through a GenerationManager on Redis: a long one
and a short one of text deltas, and a long one with only the short one's text
(the rest are progress events), so that status() can be compared at equal content
size too. They are read from a second manager with its own client, as a follower
that lands on another process would be. The log cap is raised above the long
job's length so that a cursor at 0 replays every chunk.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ._context import BenchContext, Sizes, delete_prefix, event_source, make_event
from ._figures import Figure, Target, WorkloadResult
from ._redis_clients import plain_client

__all__ = ["ReattachWorkload"]

_USER = "bench-user"


@dataclass(frozen=True, slots=True)
class _Follow:
    """One reattach: seconds to the first chunk, to the terminal one, and chunks."""

    first: float
    total: float
    chunks: int


class ReattachWorkload:
    """Time to first chunk and in total from three cursors; status() by log length."""

    name = "reattach"
    title = "Reattach cost on a long job"

    def __init__(self) -> None:
        self.result = WorkloadResult(self.name, self.title)
        fig = self.result.figure
        self.follow: dict[str, tuple[Figure, Figure]] = {}
        for where in ("start", "middle", "end"):
            self.follow[where] = (
                fig(
                    f"long.{where}.first_chunk_ms",
                    f"long job, cursor at {where}: first chunk",
                    "ms",
                ),
                fig(
                    f"long.{where}.total_ms", f"long job, cursor at {where}: all", "ms"
                ),
            )
        self.short_end = fig(
            "short.end.total_ms", "short job, cursor at end: all", "ms"
        )
        self.end_ratio = fig(
            "end_long_vs_short",
            "reattach at end: long job / short job",
            "x",
            Target("<=", 2.0, "<= 2x"),
        )
        self.status_long = fig("long.status_ms", "status(), long job", "ms")
        self.status_short = fig("short.status_ms", "status(), short job", "ms")
        self.status_ratio = fig(
            "status_long_vs_short",
            "status(): long job / short job",
            "x",
            Target("<=", 2.0, "<= 2x"),
        )
        self.status_quiet = fig(
            "long_small_content.status_ms",
            "status(), long job whose content is the short job's size",
            "ms",
        )
        self.status_quiet_ratio = fig(
            "status_long_small_content_vs_short",
            "status(): long job, same content size / short job",
            "x",
            Target("<=", 2.0, "<= 2x"),
        )

    def steps(self, ctx: BenchContext) -> int:
        """How many progress steps the workload reports."""
        return 1 + ctx.repeat

    async def run(self, ctx: BenchContext) -> None:
        """Measure, adding one sample per repetition to each figure."""
        from reattach import Limits
        from reattach.manager import GenerationManager
        from reattach.store import RedisJobStore

        sizes = ctx.sizes
        prefix = ctx.prefix("j")
        limits = Limits(max_chunks=max(16, sizes.reattach_events * 2))
        writer_client = plain_client(ctx.redis_url)
        reader_client = plain_client(ctx.redis_url)
        writer = RedisJobStore(writer_client, prefix=prefix, limits=limits)
        reader = RedisJobStore(reader_client, prefix=prefix, limits=limits)
        try:
            ctx.progress.label("reattach: writing the long job")
            async with GenerationManager(writer) as producer:
                jobs = {
                    "long": await _produce(producer, _text(sizes.reattach_events)),
                    "short": await _produce(
                        producer, _text(sizes.reattach_small_events)
                    ),
                    "quiet": await _produce(producer, _quiet(sizes)),
                }
            ctx.progress.advance()
            async with GenerationManager(reader) as follower:
                for rep in range(ctx.repeat):
                    ctx.progress.label(f"reattach {rep + 1}/{ctx.repeat}")
                    await self._once(ctx, follower, jobs)
                    ctx.progress.advance()

                for name, stream_id in jobs.items():
                    state = await follower.status(stream_id, _USER)
                    content = len(orjson.dumps(state.content))
                    self.result.details[f"{name}_content_bytes"] = content
        finally:
            await writer.aclose()
            await reader.aclose()
            await delete_prefix(writer_client, prefix)
            await writer_client.aclose()
            await reader_client.aclose()

        self.result.details.update(
            long_events=sizes.reattach_events,
            short_events=sizes.reattach_small_events,
            max_chunks=limits.max_chunks,
            timings_per_repetition=sizes.reattach_timings,
        )

    async def _once(
        self, ctx: BenchContext, manager: Any, jobs: dict[str, str]
    ) -> None:
        long_id, short_id = jobs["long"], jobs["short"]
        timings = ctx.sizes.reattach_timings
        last = (await manager.status(long_id, _USER)).last_seq
        cursors = {"start": 0, "middle": last // 2, "end": last - 1}
        for where, cursor in cursors.items():
            # A full replay is long enough to time once; short ones are repeated.
            times = 1 if where == "start" else timings
            runs = [await _follow(manager, long_id, cursor) for _ in range(times)]
            first, total = self.follow[where]
            first.add(statistics.median(run.first for run in runs) * 1e3)
            total.add(statistics.median(run.total for run in runs) * 1e3)

        short_last = (await manager.status(short_id, _USER)).last_seq
        short = [
            await _follow(manager, short_id, short_last - 1) for _ in range(timings)
        ]
        short_total = statistics.median(run.total for run in short) * 1e3
        self.short_end.add(short_total)
        self.end_ratio.add(self.follow["end"][1].samples[-1] / short_total)

        long_status = await _time(lambda: manager.status(long_id, _USER), timings)
        short_status = await _time(lambda: manager.status(short_id, _USER), timings)
        self.status_long.add(long_status * 1e3)
        self.status_short.add(short_status * 1e3)
        self.status_ratio.add(long_status / short_status)
        quiet = await _time(lambda: manager.status(jobs["quiet"], _USER), timings)
        self.status_quiet.add(quiet * 1e3)
        self.status_quiet_ratio.add(quiet / short_status)


def _text(events: int) -> list[Any]:
    return [make_event(i) for i in range(events)]


def _quiet(sizes: Sizes) -> list[Any]:
    """As many events as the long job, but only the short job's worth of text.

    The rest are progress events, which the text aggregator passes over, so the
    content status() returns is the size of the short job's.
    """
    text = _text(sizes.reattach_small_events)
    rest = sizes.reattach_events - len(text)
    return text + [{"event": "progress", "data": i} for i in range(rest)]


async def _produce(manager: Any, batch: list[Any]) -> str:
    job = await manager.start(_USER, event_source(batch))
    await manager.store.wait_finished(job.stream_id)
    return str(job.stream_id)


async def _follow(manager: Any, stream_id: str, cursor: int) -> _Follow:
    started = time.perf_counter()
    first = 0.0
    count = 0
    async for _chunk in manager.subscribe(stream_id, _USER, after=cursor):
        count += 1
        if count == 1:
            first = time.perf_counter() - started
    return _Follow(first, time.perf_counter() - started, count)


async def _time(call: Callable[[], Awaitable[Any]], times: int) -> float:
    """The median of ``times`` timed calls, in seconds."""
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)
