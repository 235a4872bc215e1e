"""Workload 3: from append to follower, at a steady rate, in and across processes.

Each event carries ``time.time_ns()`` from the moment its generation emitted it;
the follower subtracts that from the time it received the chunk. Both ends run on
this machine, so their clocks agree.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson

from ._context import BenchContext, delete_prefix
from ._figures import Figure, Target, WorkloadResult, percentile
from ._paced import Pace, Stamps, follow_all, paced_source, wait_ready
from ._redis_clients import plain_client

__all__ = ["LatencyWorkload"]

_USER = "bench-user"
_READY_SECONDS = 60.0
_SLACK_SECONDS = 60.0
# The follower's answer is one line of JSON holding every latency it measured.
_LINE_LIMIT = 1 << 26


class LatencyWorkload:
    """p50, p99 and max latency for a follower in the producing process and another."""

    name = "latency"
    title = "Append-to-follower latency at a steady rate"

    def __init__(self) -> None:
        self.result = WorkloadResult(self.name, self.title)
        self.figures: dict[str, dict[str, Figure]] = {}
        places = {
            "same_process": ("follower in the producing process", 1.0),
            "other_process": ("follower in another process", 2.0),
        }
        for place, (label, goal) in places.items():
            self.figures[place] = {
                "p50": self.result.figure(f"{place}.p50_ms", f"{label}: p50", "ms"),
                "p99": self.result.figure(
                    f"{place}.p99_ms",
                    f"{label}: p99",
                    "ms",
                    Target("<", goal, f"< {goal:g} ms"),
                ),
                "max": self.result.figure(f"{place}.max_ms", f"{label}: max", "ms"),
            }

    def steps(self, ctx: BenchContext) -> int:
        return ctx.repeat * 2

    async def run(self, ctx: BenchContext) -> None:
        sizes = ctx.sizes
        events = max(1, round(sizes.latency_rate * sizes.latency_seconds))
        expected = sizes.latency_jobs * events
        received: dict[str, list[int]] = {"same_process": [], "other_process": []}
        for rep in range(ctx.repeat):
            for place, measure in (
                ("same_process", _same_process),
                ("other_process", _other_process),
            ):
                ctx.progress.label(f"latency {rep + 1}/{ctx.repeat}: {place}")
                pace = Pace(sizes.latency_rate, events, sizes.latency_jobs)
                latencies = await measure(ctx, pace)
                self._record(place, latencies)
                received[place].append(len(latencies))
                ctx.progress.advance()

        self.result.details.update(
            jobs=sizes.latency_jobs,
            events_per_second_per_job=sizes.latency_rate,
            seconds=sizes.latency_seconds,
            expected_per_repetition=expected,
            received_per_repetition=received,
        )

    def _record(self, place: str, latencies: list[int]) -> None:
        millis = [value / 1e6 for value in latencies]
        figures = self.figures[place]
        figures["p50"].add(percentile(millis, 0.50))
        figures["p99"].add(percentile(millis, 0.99))
        figures["max"].add(max(millis, default=float("nan")))


async def _same_process(ctx: BenchContext, pace: Pace) -> list[int]:
    from reattach.manager import GenerationManager
    from reattach.store import RedisJobStore

    prefix = ctx.prefix("l")
    client = plain_client(ctx.redis_url)
    store = RedisJobStore(client, prefix=prefix)
    stamps = Stamps()
    try:
        async with GenerationManager(store) as manager:
            stream_ids = await _start_jobs(manager, pace)
            ready, done = await follow_all(manager, stream_ids, _USER, stamps)
            await wait_ready(ready, done, _READY_SECONDS)
            pace.start()
            async with asyncio.timeout(_run_seconds(pace)):
                await done
    finally:
        await store.aclose()
        await delete_prefix(client, prefix)
        await client.aclose()
    return stamps.latencies


async def _other_process(ctx: BenchContext, pace: Pace) -> list[int]:
    from reattach.manager import GenerationManager
    from reattach.store import RedisJobStore

    prefix = ctx.prefix("r")
    client = plain_client(ctx.redis_url)
    store = RedisJobStore(client, prefix=prefix)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reattach_bench._follower",
        ctx.redis_url,
        prefix,
        _USER,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=_LINE_LIMIT,
    )
    answer = b""
    try:
        async with GenerationManager(store) as manager:
            stream_ids = await _start_jobs(manager, pace)
            await _tell(child, stream_ids)
            await _expect_line(child, _READY_SECONDS, b"ready")
            pace.start()
            async with asyncio.timeout(_run_seconds(pace)):
                await asyncio.gather(*(store.wait_finished(s) for s in stream_ids))
            answer = await _expect_line(child, _SLACK_SECONDS, None)
    finally:
        await _end_child(child, patient=bool(answer))
        await store.aclose()
        await delete_prefix(client, prefix)
        await client.aclose()
    latencies: list[int] = orjson.loads(answer)["latencies"]
    return latencies


async def _start_jobs(manager: Any, pace: Pace) -> list[str]:
    jobs = [await manager.start(_USER, paced_source(pace, n)) for n in range(pace.jobs)]
    return [job.stream_id for job in jobs]


def _run_seconds(pace: Pace) -> float:
    return pace.events / pace.rate + _SLACK_SECONDS


async def _tell(child: asyncio.subprocess.Process, stream_ids: list[str]) -> None:
    assert child.stdin is not None
    child.stdin.write(orjson.dumps(stream_ids) + b"\n")
    await child.stdin.drain()


async def _expect_line(
    child: asyncio.subprocess.Process, seconds: float, expected: bytes | None
) -> bytes:
    assert child.stdout is not None
    async with asyncio.timeout(seconds):
        line = await child.stdout.readline()
    if not line or (expected is not None and line.strip() != expected):
        raise RuntimeError("the follower process failed: " + await _stderr_tail(child))
    return line


async def _stderr_tail(child: asyncio.subprocess.Process) -> str:
    assert child.stderr is not None
    if child.returncode is None:
        child.kill()
    error = await child.stderr.read()
    lines = error.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit status {await child.wait()}"


async def _end_child(child: asyncio.subprocess.Process, *, patient: bool) -> None:
    # After its answer the follower exits by itself; after a failure here it
    # would wait for jobs that never end, so it is stopped at once.
    if child.returncode is None and patient:
        try:
            async with asyncio.timeout(10):
                await child.wait()
        except TimeoutError:
            pass
    if child.returncode is None:
        child.kill()
        await child.wait()
