"""Workload 6: memory per stored event in Redis and per job in the memory store."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import orjson
from redis.asyncio import Redis

from ._context import BenchContext, delete_prefix, make_event
from ._figures import WorkloadResult
from ._redis_clients import plain_client

__all__ = ["FootprintWorkload"]

_USER = "bench-user"
_BATCH = 50


class FootprintWorkload:
    """Redis bytes per event (``MEMORY USAGE``); process bytes per job (tracemalloc)."""

    name = "memory"
    title = "Memory per event and per job"

    def __init__(self) -> None:
        self.result = WorkloadResult(self.name, self.title)
        fig = self.result.figure
        self.log_bytes = fig(
            "redis.log_bytes_per_event", "Redis: job log, bytes per event", "B/event"
        )
        self.job_bytes = fig(
            "redis.job_bytes_per_event",
            "Redis: every key of the job, bytes per event",
            "B/event",
        )
        self.raw_bytes = fig(
            "redis.raw_stream_bytes_per_event",
            "Redis: plain XADD stream of the same events, bytes per event",
            "B/event",
        )
        self.empty_job = fig(
            "memory_store.bytes_per_job",
            "memory store: a running job without events",
            "B/job",
        )
        self.full_job = fig(
            "memory_store.bytes_per_job_with_events",
            "memory store: a job with its events",
            "B/job",
        )
        self.per_event = fig(
            "memory_store.bytes_per_event",
            "memory store: per stored event",
            "B/event",
        )

    def steps(self, ctx: BenchContext) -> int:
        """How many progress steps the workload reports."""
        return ctx.repeat * 2

    async def run(self, ctx: BenchContext) -> None:
        """Measure, adding one sample per repetition to each figure."""
        sizes = ctx.sizes
        failures: dict[str, str] = {}
        for rep in range(ctx.repeat):
            for part, measure in (
                ("Redis", self._redis),
                ("memory store", self._memory_store),
            ):
                ctx.progress.label(f"memory {rep + 1}/{ctx.repeat}: {part}")
                try:
                    await measure(ctx)
                except Exception as exc:
                    # The Redis part and the memory-store part stand alone.
                    failures[part] = f"{type(exc).__name__}: {exc}"
                ctx.progress.advance()

        if len(failures) == 2:
            raise RuntimeError("; ".join(failures.values()))
        for figure in self.result.figures:
            if not figure.samples and failures:
                figure.unavailable = "; ".join(failures.values())

        self.result.details.update(
            events_per_job=sizes.memory_events,
            event_bytes=len(orjson.dumps(make_event(0))),
            empty_jobs=sizes.memory_jobs,
            jobs_with_events=sizes.memory_event_jobs,
        )

    async def _redis(self, ctx: BenchContext) -> None:
        from reattach.store import RedisJobStore

        events = [make_event(i) for i in range(ctx.sizes.memory_events)]
        prefix = ctx.prefix("m")
        client = plain_client(ctx.redis_url)
        store = RedisJobStore(client, prefix=prefix)
        try:
            await store.initialize()
            await store.create_job("job", _USER)
            for start in range(0, len(events), _BATCH):
                await store.append_chunks("job", events[start : start + _BATCH])
            sizes = await _key_sizes(client, prefix)
            raw = await _raw_stream_bytes(client, f"{prefix}raw", events)
        finally:
            await store.aclose()
            await delete_prefix(client, prefix)
            await client.aclose()

        log = sum(size for key, size in sizes.items() if key.endswith(":log"))
        if log == 0:
            raise RuntimeError(f"no log key found among {sorted(sizes)}")
        self.log_bytes.add(log / len(events))
        self.job_bytes.add(sum(sizes.values()) / len(events))
        self.raw_bytes.add(raw / len(events))
        self.result.details["redis_keys_bytes"] = sizes

    async def _memory_store(self, ctx: BenchContext) -> None:
        from reattach.store import MemoryJobStore

        sizes = ctx.sizes
        empty = await _traced_bytes(MemoryJobStore(), sizes.memory_jobs, 0)
        full = await _traced_bytes(
            MemoryJobStore(), sizes.memory_event_jobs, sizes.memory_events
        )
        self.empty_job.add(empty)
        self.full_job.add(full)
        self.per_event.add((full - empty) / sizes.memory_events)


async def _key_sizes(client: Redis, prefix: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        name = key.decode() if isinstance(key, bytes) else str(key)
        # SAMPLES 0 makes MEMORY USAGE count every element, not an estimate.
        size = await client.memory_usage(key, samples=0)
        sizes[name] = int(size or 0)
    return sizes


async def _raw_stream_bytes(client: Redis, key: str, events: list[Any]) -> int:
    pipe = client.pipeline(transaction=False)
    for event in events:
        pipe.xadd(key, {"event": orjson.dumps(event)})
    await pipe.execute()
    return int(await client.memory_usage(key, samples=0) or 0)


async def _traced_bytes(store: Any, jobs: int, events: int) -> float:
    """Bytes the store's Python objects grow by per job, traced by tracemalloc.

    Events are made inside the traced span, as they would arrive from a model,
    so whatever the store keeps of them is counted.
    """
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for index in range(jobs):
            stream_id = f"job{index}"
            await store.create_job(stream_id, _USER)
            for start in range(0, events, _BATCH):
                batch = [
                    make_event(i) for i in range(start, min(events, start + _BATCH))
                ]
                await store.append_chunks(stream_id, batch)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        await store.aclose()
    return (after - before) / jobs
