"""Workloads 1 and 2: append throughput, and Redis commands and round trips per event.

Five ways to write the same events (``jobs`` concurrent jobs of ``events`` events
of 40 bytes) are timed back to back in each repetition, so every ratio compares
numbers taken minutes, not days, apart on the same machine.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis

from ._context import BenchContext, delete_prefix, event_source, make_event
from ._figures import Figure, Target, WorkloadResult
from ._redis_clients import (
    RoundTrips,
    command_calls,
    commands_between,
    counting_client,
    plain_client,
)

__all__ = ["AppendWorkload"]

_USER = "bench-user"
_REFERENCE_TTL = 1200
# How long closing a manager waits for its jobs to end by themselves.
_GRACE_SECONDS = 120.0


@dataclass(slots=True)
class _Run:
    """What one variant did in one repetition."""

    seconds: float
    events: int
    round_trips: int = 0
    commands: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def per_event(self, count: int) -> float:
        return count / self.events


_Variant = Callable[[BenchContext, Redis, str, list[list[Any]]], Awaitable[None]]


class AppendWorkload:
    """Throughput of the memory store, the Redis store three ways, and two baselines."""

    name = "append"
    title = "Append throughput and Redis work per event"

    _REDIS_VARIANTS = ("redis_manager", "redis_per_event", "raw_xadd", "reference")
    _LABELS = {
        "memory_manager": "memory store, GenerationManager",
        "redis_manager": "Redis store, GenerationManager (coalescing)",
        "redis_per_event": "Redis store, one awaited append_chunk per event",
        "raw_xadd": "raw XADD, pipelined in batches of 64 (the limit)",
        "reference": "reference pattern: XADD + XLEN (+ EXPIRE), awaited",
    }

    def __init__(self) -> None:
        self.result = WorkloadResult(self.name, self.title)
        self.rates: dict[str, Figure] = {}
        self.commands: dict[str, Figure] = {}
        self.round_trips: dict[str, Figure] = {}
        for variant, label in self._LABELS.items():
            self.rates[variant] = self.result.figure(
                f"{variant}.events_per_s", f"{label}: throughput", "events/s"
            )
        for variant in self._REDIS_VARIANTS:
            self.commands[variant] = self.result.figure(
                f"{variant}.commands_per_event",
                f"{self._LABELS[variant]}: Redis commands per event",
                "commands/event",
            )
            target = (
                Target("<=", 0.05, "<= 0.05") if variant == "redis_manager" else None
            )
            self.round_trips[variant] = self.result.figure(
                f"{variant}.round_trips_per_event",
                f"{self._LABELS[variant]}: round trips per event",
                "round trips/event",
                target,
            )
        self.vs_raw = self.result.figure(
            "redis_manager_vs_raw_xadd",
            "Redis via manager / raw pipelined XADD",
            "x",
            Target(">=", 1.0, ">= 1.0x"),
        )
        self.vs_reference = self.result.figure(
            "redis_manager_vs_reference",
            "Redis via manager / reference pattern",
            "x",
            Target(">=", 7.0, ">= 7x"),
        )
        self.vs_per_event = self.result.figure(
            "redis_manager_vs_per_event",
            "Redis via manager / one awaited append per event",
            "x",
        )

    def steps(self, ctx: BenchContext) -> int:
        """How many progress steps the workload reports."""
        return ctx.repeat * len(self._LABELS)

    async def run(self, ctx: BenchContext) -> None:
        """Measure, adding one sample per repetition to each figure."""
        sizes = ctx.sizes
        batches = [
            [
                make_event(job * sizes.append_events + i)
                for i in range(sizes.append_events)
            ]
            for job in range(sizes.append_jobs)
        ]
        failures: dict[str, str] = {}
        breakdown: dict[str, dict[str, int]] = {}
        for rep in range(ctx.repeat):
            runs: dict[str, _Run] = {}
            for variant in self._LABELS:
                ctx.progress.label(f"append {rep + 1}/{ctx.repeat}: {variant}")
                try:
                    runs[variant] = await _run_variant(ctx, variant, batches)
                except Exception as exc:
                    # One missing part (say, the Redis store) leaves the others.
                    failures[variant] = f"{type(exc).__name__}: {exc}"
                ctx.progress.advance()

            self._record(runs)
            breakdown.update(
                (variant, dict(run.commands.most_common()))
                for variant, run in runs.items()
                if variant != "memory_manager"
            )

        self._mark_failures(failures)
        self.result.details.update(
            jobs=sizes.append_jobs,
            events_per_job=sizes.append_events,
            event_bytes=len(orjson.dumps(make_event(0))),
            commands_by_name_last_repetition=breakdown,
            failures=failures,
        )

    def _record(self, runs: dict[str, _Run]) -> None:
        for variant, run in runs.items():
            self.rates[variant].add(run.rate)
            if variant in self.commands:
                self.commands[variant].add(run.per_event(sum(run.commands.values())))
                self.round_trips[variant].add(run.per_event(run.round_trips))

        manager = runs.get("redis_manager")
        for other, figure in (
            ("raw_xadd", self.vs_raw),
            ("reference", self.vs_reference),
            ("redis_per_event", self.vs_per_event),
        ):
            if manager is not None and other in runs:
                figure.add(manager.rate / runs[other].rate)

    def _mark_failures(self, failures: dict[str, str]) -> None:
        if not failures:
            return
        if len(failures) == len(self._LABELS):
            raise RuntimeError(next(iter(failures.values())))
        reason = "; ".join(f"{name}: {why}" for name, why in failures.items())
        for figure in self.result.figures:
            if not figure.samples:
                figure.unavailable = reason


async def _run_variant(
    ctx: BenchContext, variant: str, batches: list[list[Any]]
) -> _Run:
    if variant == "memory_manager":
        return await _memory_manager(batches)
    return await _measure(ctx, _VARIANTS[variant], batches)


async def _memory_manager(batches: list[list[Any]]) -> _Run:
    from reattach import JobStatus
    from reattach.manager import GenerationManager
    from reattach.store import MemoryJobStore

    store = MemoryJobStore()
    manager = GenerationManager(store, coalesce=True, shutdown_grace=_GRACE_SECONDS)
    await manager.open()
    started = time.perf_counter()
    await _through_manager(manager, batches)
    seconds = time.perf_counter() - started
    complete = await store.get_job_count_by_status(JobStatus.COMPLETE)
    await store.aclose()
    if complete != len(batches):
        raise RuntimeError(f"{complete} of {len(batches)} jobs completed")
    return _Run(seconds, sum(len(batch) for batch in batches))


async def _through_manager(manager: Any, batches: list[list[Any]]) -> None:
    """Start every job, then close the manager, which waits until all have ended.

    Closing is the wait because it adds no Redis traffic of its own; waiting on
    ``store.wait_finished`` for each job would add a subscription and reads per
    job to what is counted.
    """
    try:
        await asyncio.gather(
            *(manager.start(_USER, event_source(batch)) for batch in batches)
        )
    finally:
        await manager.aclose()


async def _measure(
    ctx: BenchContext, variant: _Variant, batches: list[list[Any]]
) -> _Run:
    """Time one Redis variant, counting its server commands and client round trips."""
    counter = RoundTrips()
    prefix = ctx.prefix("a")
    counted = counting_client(ctx.redis_url, counter)
    plain = plain_client(ctx.redis_url)
    try:
        await counted.ping()
        before = await command_calls(plain)
        counter.count = 0
        started = time.perf_counter()
        await variant(ctx, counted, prefix, batches)
        seconds = time.perf_counter() - started
        trips = counter.count
        after = await command_calls(plain)
        await _check_stored(plain, prefix, sum(len(batch) for batch in batches))
        await delete_prefix(plain, prefix)
    finally:
        await counted.aclose()
        await plain.aclose()
    events = sum(len(batch) for batch in batches)
    return _Run(seconds, events, trips, commands_between(before, after))


async def _check_stored(client: Redis, prefix: str, events: int) -> None:
    """Make sure every event reached Redis: a fast run that lost events is no run."""
    stored = 0
    async for key in client.scan_iter(match=f"{prefix}*", count=1000, _type="stream"):
        stored += await client.xlen(key)
    if stored < events:
        raise RuntimeError(f"only {stored} of {events} events reached Redis")


async def _redis_manager(
    ctx: BenchContext, client: Redis, prefix: str, batches: list[list[Any]]
) -> None:
    from reattach.manager import GenerationManager
    from reattach.store import RedisJobStore

    store = RedisJobStore(client, prefix=prefix)
    manager = GenerationManager(store, coalesce=True, shutdown_grace=_GRACE_SECONDS)
    await manager.open()
    try:
        await _through_manager(manager, batches)
    finally:
        await store.aclose()


async def _redis_per_event(
    ctx: BenchContext, client: Redis, prefix: str, batches: list[list[Any]]
) -> None:
    from reattach import JobStatus
    from reattach.store import RedisJobStore

    store = RedisJobStore(client, prefix=prefix)
    await store.initialize()

    async def one_job(index: int, events: list[Any]) -> None:
        stream_id = f"job{index}"
        await store.create_job(stream_id, _USER)
        for event in events:
            await store.append_chunk(stream_id, event)
        await store.finish(stream_id, JobStatus.COMPLETE)

    try:
        await asyncio.gather(*(one_job(i, batch) for i, batch in enumerate(batches)))
    finally:
        await store.aclose()


async def _raw_xadd(
    ctx: BenchContext, client: Redis, prefix: str, batches: list[list[Any]]
) -> None:
    size = ctx.sizes.raw_batch

    async def one_job(index: int, events: list[Any]) -> None:
        key = f"{prefix}:{{job{index}}}:raw"
        for start in range(0, len(events), size):
            pipe = client.pipeline(transaction=False)
            for event in events[start : start + size]:
                pipe.xadd(key, {"event": orjson.dumps(event)})
            await pipe.execute()

    await asyncio.gather(*(one_job(i, batch) for i, batch in enumerate(batches)))


async def _reference(
    ctx: BenchContext, client: Redis, prefix: str, batches: list[list[Any]]
) -> None:
    # The reference's appendChunk: XADD; then XLEN, and EXPIRE when the stream
    # has just been created; each command awaited before the next.
    async def one_job(index: int, events: list[Any]) -> None:
        key = f"{prefix}:{{job{index}}}:chunks"
        for event in events:
            added = await client.xadd(key, {"event": orjson.dumps(event)})
            if added and await client.xlen(key) == 1:
                await client.expire(key, _REFERENCE_TTL)

    await asyncio.gather(*(one_job(i, batch) for i, batch in enumerate(batches)))


_VARIANTS: dict[str, _Variant] = {
    "redis_manager": _redis_manager,
    "redis_per_event": _redis_per_event,
    "raw_xadd": _raw_xadd,
    "reference": _reference,
}
