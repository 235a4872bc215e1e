"""The Redis store through Redis Sentinel: real master, replica and Sentinel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from reattach import BackendUnavailable, Chunk, JobStatus, RedisJobStore

from ..redis_servers import RedisSentinel, RedisServer, free_port

FINAL = {"event": "final", "data": {"status": "complete", "error": None}}
# How long an append may stay refused while the Sentinel moves the master.
_SWITCH_SECONDS = 30.0
# Pause between two tries of a refused append, as an application would back off.
_RETRY_SECONDS = 0.02


@pytest.fixture
def sentinel(redis_sentinel_nodes: RedisSentinel) -> RedisSentinel:
    """The session's Sentinel setup, once its master has an in-sync replica.

    The master refuses writes without one (``min-replicas-to-write``), and a
    failover earlier in the session leaves the former master syncing for a moment.
    """
    redis_sentinel_nodes.wait_healthy()
    return redis_sentinel_nodes


def text(label: str) -> dict[str, str]:
    return {"event": "text", "data": label}


class Follower:
    """A task following one job from cursor 0 through its terminal chunk."""

    def __init__(self, store: RedisJobStore, stream_id: str) -> None:
        self.chunks: list[Chunk] = []
        self._arrived = asyncio.Condition()
        self.task = asyncio.create_task(self._follow(store, stream_id))

    async def _follow(self, store: RedisJobStore, stream_id: str) -> None:
        async with asyncio.timeout(60):
            async for chunk in store.follow(stream_id, after=0):
                async with self._arrived:
                    self.chunks.append(chunk)
                    self._arrived.notify_all()

    @property
    def seq(self) -> int:
        """The seq of the last chunk received, 0 before the first."""
        return self.chunks[-1].seq if self.chunks else 0

    async def wait_for(self, seq: int) -> None:
        """Wait until the follower has received ``seq``."""
        async with asyncio.timeout(10), self._arrived:
            await self._arrived.wait_for(lambda: self.seq >= seq)


def client_count(server: RedisServer) -> int:
    """Connections to ``server`` other than the ``redis-cli`` that asks."""
    lines = server.cli("CLIENT", "LIST").splitlines()
    return sum(1 for line in lines if "cmd=client|list" not in line)


def wait_client_count(server: RedisServer, expected: int) -> None:
    """Poll ``CLIENT LIST`` until ``server`` has ``expected`` other connections."""
    deadline = time.monotonic() + 10
    while client_count(server) != expected:
        assert time.monotonic() < deadline, server.cli("CLIENT", "LIST")
        time.sleep(0.02)


async def test_follow_through_sentinel(
    sentinel: RedisSentinel, key_prefix: str
) -> None:
    writer = RedisJobStore.from_url(sentinel.url, prefix=key_prefix)
    reader = RedisJobStore.from_url(sentinel.url, prefix=key_prefix)
    async with writer, reader:
        await writer.create_job("job-1", "alice")
        assert await writer.append_chunks("job-1", [text("a"), text("b")]) == 2
        follower = Follower(reader, "job-1")
        await follower.wait_for(2)
        assert await writer.append_chunks("job-1", [text("c")]) == 3
        assert await writer.finish("job-1", JobStatus.COMPLETE)
        await follower.task

    expected = [text("a"), text("b"), text("c"), FINAL]
    assert follower.chunks == [
        Chunk(seq, event) for seq, event in enumerate(expected, 1)
    ]


async def test_from_url_closes_what_it_made(
    sentinel: RedisSentinel, key_prefix: str
) -> None:
    master = sentinel.master()
    sentinels_before = client_count(sentinel.sentinel)
    masters_before = client_count(master)
    store = RedisJobStore.from_url(sentinel.url, prefix=key_prefix)
    async with store:
        await store.create_job("job-1", "alice")
        assert client_count(sentinel.sentinel) > sentinels_before
        assert client_count(master) > masters_before

    await store.aclose()  # a second close does nothing
    wait_client_count(sentinel.sentinel, sentinels_before)
    wait_client_count(master, masters_before)


async def test_unknown_service_is_unavailable(sentinel: RedisSentinel) -> None:
    url = f"redis+sentinel://127.0.0.1:{sentinel.sentinel_port}/no-such-service"
    store = RedisJobStore.from_url(url, retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises(BackendUnavailable, match="no-such-service"):
            await store.initialize()
    finally:
        await store.aclose()


async def test_unreachable_sentinel_is_unavailable() -> None:
    url = f"redis+sentinel://127.0.0.1:{free_port()}/reattach-master"
    # No retries: redis-py would otherwise try again for a few seconds.
    once = Retry(NoBackoff(), 0)
    store = RedisJobStore.from_url(url, retry=once, sentinel_kwargs={"retry": once})
    try:
        with pytest.raises(BackendUnavailable, match="reattach-master"):
            await store.initialize()
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:26379",
        "redis+sentinel://127.0.0.1:26379/",
        "redis+sentinel://127.0.0.1/mymaster",
        "redis+sentinel://127.0.0.1:port/mymaster",
        "redis+sentinel://:26379/mymaster",
        "redis+sentinel://127.0.0.1:26379,/mymaster",
        "redis+sentinel://127.0.0.1:26379/mymaster/db",
        "redis+sentinel://127.0.0.1:26379/mymaster/0/extra",
        "redis+sentinel://:secret@127.0.0.1:26379/mymaster",
        "redis+sentinel://127.0.0.1:26379/mymaster?db=1",
    ],
)
def test_bad_sentinel_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"redis\+sentinel|host:port"):
        RedisJobStore.from_url(url)


def test_sentinel_url_is_no_cluster() -> None:
    with pytest.raises(ValueError, match="Cluster"):
        RedisJobStore.from_url("redis+sentinel://h:1/m", cluster=True)


async def test_sentinel_url_options(sentinel: RedisSentinel, key_prefix: str) -> None:
    # The first Sentinel does not answer: the store asks the next one.
    hosts = f"[::1]:{free_port()},127.0.0.1:{sentinel.sentinel_port}"
    url = f"redis+sentinel://{hosts}/{sentinel.service}/3"
    once = {"retry": Retry(NoBackoff(), 0)}
    store = RedisJobStore.from_url(url, prefix=key_prefix, sentinel_kwargs=once)
    async with store:
        await store.create_job("job-1", "alice")
        key = f"{key_prefix}:{{job-1}}:job"
        assert sentinel.master().cli("-n", "3", "EXISTS", key).strip() == "1"
        assert sentinel.master().cli("-n", "0", "EXISTS", key).strip() == "0"


async def append_until_acknowledged(
    store: RedisJobStore, acknowledged: dict[int, str], tries: list[str]
) -> None:
    """Append one event, trying again while Redis refuses; note its seq.

    Each try carries its own label, so a refused try that still landed in the
    log would show up there beside the acknowledged one.
    """
    deadline = time.monotonic() + _SWITCH_SECONDS
    while True:
        label = f"try{len(tries)}"
        tries.append(label)
        try:
            seq = await store.append_chunks("job-1", [text(label)])
        except BackendUnavailable:
            if time.monotonic() > deadline:
                raise
        else:
            assert seq not in acknowledged
            acknowledged[seq] = label
            return

        await asyncio.sleep(_RETRY_SECONDS)


async def read_until(store: RedisJobStore, done: asyncio.Event) -> int:
    """Read the job's log again and again until ``done``; how many reads."""
    count = 0
    while not done.is_set():
        await store.read_chunks("job-1")
        count += 1

    return count


@pytest.fixture
async def two_stores(
    sentinel: RedisSentinel, key_prefix: str
) -> AsyncIterator[tuple[RedisJobStore, RedisJobStore]]:
    """A writer and a reader on the Sentinel URL, as two processes."""
    writer = RedisJobStore.from_url(sentinel.url, prefix=key_prefix)
    reader = RedisJobStore.from_url(sentinel.url, prefix=key_prefix)
    async with writer, reader:
        yield writer, reader


async def test_failover_keeps_every_acknowledged_append(
    sentinel: RedisSentinel, two_stores: tuple[RedisJobStore, RedisJobStore]
) -> None:
    writer, reader = two_stores
    old_master = sentinel.master()
    await writer.create_job("job-1", "alice")
    acknowledged: dict[int, str] = {}
    tries: list[str] = []
    for _ in range(5):
        await append_until_acknowledged(writer, acknowledged, tries)

    follower = Follower(reader, "job-1")
    await follower.wait_for(5)
    switching = asyncio.Event()
    # Reads never stop during the switch, so some are cut off when the Sentinel
    # closes the former master's connections: the client must take them on.
    reads = asyncio.create_task(read_until(reader, switching))

    new_master = await asyncio.to_thread(sentinel.failover)
    assert new_master.port != old_master.port
    for _ in range(10):
        await append_until_acknowledged(writer, acknowledged, tries)

    await asyncio.to_thread(sentinel.wait_healthy)
    switching.set()
    assert await reads > 0
    assert await writer.finish("job-1", JobStatus.COMPLETE)
    await follower.task

    assert sentinel.master_port() == new_master.port
    log = await writer.read_chunks("job-1")
    assert [chunk.seq for chunk in log] == list(range(1, len(log) + 1))
    assert log[-1].event == FINAL
    # Exactly the acknowledged appends, each once: none lost, none doubled.
    assert {chunk.seq: chunk.event["data"] for chunk in log[:-1]} == acknowledged
    assert len(acknowledged) == 15
    assert follower.chunks == log
