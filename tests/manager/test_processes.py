"""Managers in real, separate processes sharing one Redis (standalone and Cluster)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reattach import Chunk, GenerationManager, JobStatus, RedisJobStore

from ..redis_servers import RedisCluster, RedisServer
from ..store.conftest import redis_client
from .sources import delta

ROOT = Path(__file__).resolve().parents[2]
LEASE = 1.0


@pytest.fixture(params=["redis", "cluster"])
def redis_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def follower(
    redis_backend: str, request: pytest.FixtureRequest, key_prefix: str
) -> AsyncIterator[GenerationManager]:
    """A manager in this process: the other process that follows and aborts."""
    client = redis_client(redis_backend, request)
    store = RedisJobStore(client, prefix=key_prefix)
    async with store, GenerationManager(store, lease_ttl=LEASE) as manager:
        yield manager
    await client.aclose()


class Producer:
    """A producing process running tests/manager/worker.py."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def said(self) -> str:
        """The next line the worker prints ("" once it has exited)."""
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        return line.decode().strip()


@pytest.fixture
async def start_producer(
    redis_backend: str,
    request: pytest.FixtureRequest,
    key_prefix: str,
) -> AsyncIterator[Any]:
    processes: list[asyncio.subprocess.Process] = []

    async def start(
        stream_id: str, *, events: int = 0, pace: float = 0.002
    ) -> Producer:
        if redis_backend == "redis":
            server: RedisServer = request.getfixturevalue("redis_standalone")
            port, extra = server.port, []
        else:
            cluster: RedisCluster = request.getfixturevalue("redis_cluster_nodes")
            port, extra = cluster.nodes[0].port, ["--cluster"]
        command = [
            sys.executable, "-m", "tests.manager.worker",
            "--port", str(port), "--prefix", key_prefix, "--stream-id", stream_id,
            "--events", str(events), "--pace", str(pace),
            "--lease-ttl", str(LEASE), *extra,
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        processes.append(process)
        producer = Producer(process)
        async with asyncio.timeout(30):
            assert await producer.said() == "started"
        return producer

    yield start
    for process in processes:
        if process.returncode is None:
            process.kill()
        async with asyncio.timeout(30):
            await process.wait()


async def follow_some(
    manager: GenerationManager, stream_id: str, after: int, limit: int
) -> list[Chunk]:
    chunks: list[Chunk] = []
    async with asyncio.timeout(30):
        async for chunk in manager.subscribe(stream_id, "alice", after=after):
            chunks.append(chunk)
            if len(chunks) >= limit:
                break
    return chunks


async def test_200_random_reattaches_from_another_process_lose_and_double_nothing(
    follower: GenerationManager, start_producer: Any
) -> None:
    await start_producer("long-job", events=1500, pace=0.001)
    rng = random.Random(2026)
    received: dict[int, Any] = {}
    for _ in range(200):
        cursor = rng.randint(0, len(received))
        got = await follow_some(follower, "long-job", cursor, rng.randint(1, 40))
        assert [c.seq for c in got] == list(range(cursor + 1, cursor + 1 + len(got)))
        for chunk in got:
            assert received.setdefault(chunk.seq, chunk.event) == chunk.event
    rest = await follow_some(follower, "long-job", len(received), 10_000)
    for chunk in rest:
        received[chunk.seq] = chunk.event
    events = [received[seq] for seq in range(1, len(received) + 1)]
    assert events[:-1] == [delta(i) for i in range(1500)]
    assert events[-1]["data"]["status"] == "complete"


async def test_abort_in_this_process_stops_the_source_in_the_producing_one(
    follower: GenerationManager, start_producer: Any
) -> None:
    producer = await start_producer("to-abort")
    await follow_some(follower, "to-abort", 0, 5)
    started = time.monotonic()
    assert await follower.abort("to-abort", "alice")
    async with asyncio.timeout(5):
        assert await producer.said() == "cleaned-up"
    took = time.monotonic() - started
    # The bell reaches the producer at once; the bound leaves room for a slow CI.
    assert took < 2.0, f"the source stopped {took:.2f} s after the abort"
    rest = await follow_some(follower, "to-abort", 0, 100_000)
    assert rest[-1].event["data"]["status"] == "aborted"
    assert sum(chunk.is_terminal for chunk in rest) == 1
    async with asyncio.timeout(10):
        assert await producer.process.wait() == 0


async def test_a_killed_producer_ends_its_job_with_an_error_within_two_leases(
    follower: GenerationManager, start_producer: Any
) -> None:
    producer = await start_producer("to-kill")
    seen = await follow_some(follower, "to-kill", 0, 3)
    producer.process.send_signal(signal.SIGKILL)
    async with asyncio.timeout(10):
        await producer.process.wait()
    killed = time.monotonic()
    async with asyncio.timeout(4 * LEASE + 5):
        rest = [
            chunk
            async for chunk in follower.subscribe(
                "to-kill", "alice", after=seen[-1].seq
            )
        ]
    took = time.monotonic() - killed
    assert rest[-1].event["data"]["status"] == "error"
    assert took <= 2 * LEASE + 0.5, f"ended {took:.2f} s after the kill"
    state = await follower.status("to-kill", "alice")
    assert state.job.status is JobStatus.ERROR
    assert await producer.said() == ""
