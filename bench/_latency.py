"""Workload 3: from append to follower, at a steady rate, in and across processes.

Each event carries ``time.time_ns()`` from the moment its generation emitted it;
the follower subtracts that from the time it received the chunk. Both ends run on
this machine, so their clocks agree. The figures count the steady part of the run:
the events of the first and last ``latency_settle_seconds`` (every job starting,
every job ending at the same moment, which only a benchmark does) are left out
of them, and reported apart in the JSON.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from dataclasses import dataclass
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
# The follower's answer is one line of JSON holding every tick it received.
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
        """How many progress steps the workload reports."""
        return ctx.repeat * 2

    async def run(self, ctx: BenchContext) -> None:
        """Measure, adding one sample per repetition to each figure."""
        sizes = ctx.sizes
        events = max(1, round(sizes.latency_rate * sizes.latency_seconds))
        settle = round(sizes.latency_rate * sizes.latency_settle_seconds)
        steady = range(settle, events - settle)
        received: dict[str, list[int]] = {"same_process": [], "other_process": []}
        whole: dict[str, list[dict[str, float]]] = {
            "same_process": [],
            "other_process": [],
        }
        cpu: dict[str, list[dict[str, float]]] = {
            "same_process": [],
            "other_process": [],
        }
        for rep in range(ctx.repeat):
            for place, measure in (
                ("same_process", _same_process),
                ("other_process", _other_process),
            ):
                ctx.progress.label(f"latency {rep + 1}/{ctx.repeat}: {place}")
                pace = Pace(sizes.latency_rate, events, sizes.latency_jobs)
                measured = await measure(ctx, pace)
                ticks = measured.ticks
                received[place].append(len(ticks))
                cpu[place].append(
                    {
                        name: round(seconds / len(ticks) * 1e6, 1)
                        for name, seconds in measured.cpu.items()
                    }
                )
                millis = [latency / 1e6 for index, latency in ticks if index in steady]
                self._record(place, millis)
                whole[place].append(_summary([latency / 1e6 for _, latency in ticks]))
                ctx.progress.advance()

        self.result.details.update(
            jobs=sizes.latency_jobs,
            events_per_second_per_job=sizes.latency_rate,
            seconds=sizes.latency_seconds,
            counted_event_indexes=[steady.start, steady.stop],
            expected_per_repetition=sizes.latency_jobs * events,
            received_per_repetition=received,
            including_start_and_end_ms=whole,
            cpu_microseconds_per_event=cpu,
        )

    def _record(self, place: str, millis: list[float]) -> None:
        summary = _summary(millis)
        for name, figure in self.figures[place].items():
            figure.add(summary[name])


def _summary(millis: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(millis, 0.50),
        "p99": percentile(millis, 0.99),
        "max": max(millis, default=float("nan")),
    }


@dataclass(frozen=True, slots=True)
class _Measured:
    """What one run gave: every tick received, and CPU seconds per process."""

    ticks: list[tuple[int, int]]
    cpu: dict[str, float]


async def _same_process(ctx: BenchContext, pace: Pace) -> _Measured:
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
            _collect_garbage()
            cpu = time.process_time()
            pace.start()
            async with asyncio.timeout(_run_seconds(pace)):
                await done
            cpu = time.process_time() - cpu
    finally:
        await store.aclose()
        await delete_prefix(client, prefix)
        await client.aclose()
    return _Measured(stamps.ticks, {"producer_and_followers": cpu})


async def _other_process(ctx: BenchContext, pace: Pace) -> _Measured:
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
            _collect_garbage()
            cpu = time.process_time()
            pace.start()
            # The follower answers once every job has ended for it.
            answer = await _expect_line(child, _run_seconds(pace), None)
            cpu = time.process_time() - cpu
    finally:
        await _end_child(child, patient=bool(answer))
        await store.aclose()
        await delete_prefix(client, prefix)
        await client.aclose()
    report = orjson.loads(answer)
    ticks = [(index, latency) for index, latency in report["ticks"]]
    return _Measured(ticks, {"producer": cpu, "follower": report["cpu_seconds"]})


def _collect_garbage() -> None:
    # What earlier workloads left behind is collected now, not in the window
    # measured; the collections the run itself causes stay in its figures.
    gc.collect()


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
