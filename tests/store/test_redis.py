"""What only the Redis store promises: its key layout, its costs and its faults."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from reattach import (
    BackendUnavailable,
    Chunk,
    JobExists,
    JobNotFound,
    JobStatus,
    RedisJobStore,
    TTLPolicy,
)
from reattach.store._base import LEASE_EXPIRED

from ..redis_servers import RedisCluster as ClusterServers
from ..redis_servers import RedisServer, _start, free_port, redis_server
from .conftest import redis_client

RedisFactory = Callable[..., Awaitable[RedisJobStore]]

JOBS = 100
EVENTS_PER_JOB = 500
# Commands a script runs inside Redis for an append; INFO commandstats counts them.
_SCRIPT_INNER = {"xadd", "hmget", "hset", "time", "pexpire", "spublish", "publish"}


@pytest.fixture(params=["redis", "cluster"])
def redis_backend(request: pytest.FixtureRequest) -> str:
    """Standalone Redis or a three-node Cluster."""
    return str(request.param)


@pytest.fixture
async def raw(redis_backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A plain client on the backend, to look at what the store wrote."""
    client = redis_client(redis_backend, request)
    yield client
    await client.aclose()


@pytest.fixture
async def make_redis(
    redis_backend: str, request: pytest.FixtureRequest, key_prefix: str
) -> AsyncIterator[RedisFactory]:
    """Initialised Redis stores sharing one prefix: each acts as one process."""
    made: list[RedisJobStore] = []

    async def factory(**options: Any) -> RedisJobStore:
        client = redis_client(redis_backend, request)
        store = RedisJobStore(client, prefix=key_prefix, **options)
        made.append(store)
        await store.initialize()
        return store

    yield factory
    for store in made:
        await store.aclose()
        await store.client.aclose()


async def _keys(raw: Any, prefix: str) -> list[bytes]:
    return sorted([key async for key in raw.scan_iter(match=f"{prefix}:*")])


async def _collect(stream: AsyncIterator[Chunk]) -> list[Chunk]:
    return [chunk async for chunk in stream]


async def _next(stream: AsyncIterator[Chunk]) -> Chunk:
    return await anext(stream)


def _events(count: int, job: int = 0) -> list[dict[str, Any]]:
    return [
        {"event": "on_message_delta", "data": {"job": job, "delta": f"token {i} "}}
        for i in range(count)
    ]


async def _expire_lease(raw: Any, prefix: str, stream_id: str) -> None:
    """Make a job's lease look expired, in its record and in the running index."""
    await raw.hset(f"{prefix}:{{{stream_id}}}:job", "lease_expires_at", 1)
    await raw.zadd(f"{prefix}:running", {stream_id: 1})


# -- key layout ------------------------------------------------------------------


async def _full_lifecycle(store: RedisJobStore, raw: Any, prefix: str) -> None:
    await store.create_job("done", "alice", conversation_id="c1", model="m")
    await store.append_chunks("done", _events(20))
    await store.save_snapshot("done", 10, {"parts": ["snap"]})
    await store.save_run_steps("done", [{"id": "step-1"}])
    await store.create_consumer_group("done", "tab")
    delivered = await store.read_chunks_from_group("done", "tab", count=5)
    await store.acknowledge_chunks("done", "tab", [chunk.seq for chunk in delivered])
    await store.update_job("done", sender="bot")
    assert await store.finish("done", JobStatus.COMPLETE)

    await store.create_job("crashed", "alice")
    await store.append_chunk("crashed", {"event": "x"})
    await _expire_lease(raw, prefix, "crashed")
    await store.create_job("aborted", "bob")
    await store.finish("aborted", JobStatus.ABORTED)
    await store.create_job("deleted", "bob")
    await store.append_chunk("deleted", {"event": "x"})
    await store.delete_job("deleted")
    await store.create_job("live", "carol")
    await store.create_consumer_group("live", "tab")
    assert await store.renew_lease("live", "worker-1", 30)
    assert await store.cleanup() == 1
    assert await store.get_job_count() == 4


async def test_every_key_has_a_ttl_after_a_full_lifecycle(
    make_redis: RedisFactory, raw: Any, key_prefix: str
) -> None:
    store = await make_redis()
    await _full_lifecycle(store, raw, key_prefix)

    keys = await _keys(raw, key_prefix)
    ttls = {key: await raw.pttl(key) for key in keys}
    assert [key for key, ttl in ttls.items() if ttl <= 0] == []
    # Every kind of key was made, so every kind was checked.
    names = {key.decode().removeprefix(key_prefix) for key in keys}
    assert {":{done}:job", ":{done}:log", ":{done}:steps", ":{done}:snap"} <= names
    assert {":{live}:job", ":{live}:log", ":{crashed}:job"} <= names
    assert {":running", ":user:alice", ":user:bob", ":user:carol"} <= names
    assert {":status:complete", ":status:error", ":status:aborted"} <= names
    assert not any("deleted" in name for name in names)


async def test_zero_ttls_drop_the_log_and_steps_at_finish(
    make_redis: RedisFactory, raw: Any, key_prefix: str
) -> None:
    store = await make_redis(
        ttl=TTLPolicy(chunks_after_complete=0, run_steps_after_complete=0)
    )
    await store.create_job("j", "u")
    await store.append_chunks("j", _events(3))
    await store.save_run_steps("j", [{"id": 1}])
    await store.finish("j", JobStatus.ERROR, error="boom")

    names = {key.decode() for key in await _keys(raw, key_prefix)}
    assert f"{key_prefix}:{{j}}:log" not in names
    assert f"{key_prefix}:{{j}}:steps" not in names
    assert f"{key_prefix}:{{j}}:job" in names
    assert [name for name in names if await raw.pttl(name) <= 0] == []
    chunks = await store.read_chunks("j")
    assert [chunk.seq for chunk in chunks] == [4]
    assert chunks[0].event["data"] == {"status": "error", "error": "boom"}


async def test_the_keys_of_one_job_share_one_cluster_slot(
    request: pytest.FixtureRequest, key_prefix: str
) -> None:
    client = redis_client("cluster", request)
    store = RedisJobStore(client, prefix=key_prefix)
    try:
        await store.initialize()
        ids = [f"job-{n}" for n in range(12)]
        for stream_id in ids:
            await store.create_job(stream_id, "u")
            await store.append_chunk(stream_id, {"event": "x"})
            await store.save_snapshot(stream_id, 1, {"n": 1})
            await store.save_run_steps(stream_id, [])

        slots_by_job: dict[str, set[int]] = {}
        for key in await _keys(client, key_prefix):
            name = key.decode()
            if "{" in name:
                stream_id = name.split("{")[1].split("}")[0]
                slot = await client.execute_command("CLUSTER KEYSLOT", key)
                slots_by_job.setdefault(stream_id, set()).add(int(slot))

        assert sorted(slots_by_job) == sorted(ids)
        assert all(len(slots) == 1 for slots in slots_by_job.values())
        # The jobs spread over the Cluster rather than sitting in one slot.
        assert len({slot for slots in slots_by_job.values() for slot in slots}) > 1
        bell = f"{key_prefix}:{{job-0}}:bell"
        bell_slot = await client.execute_command("CLUSTER KEYSLOT", bell)
        assert slots_by_job["job-0"] == {int(bell_slot)}
    finally:
        await store.aclose()
        await client.aclose()


# -- cost of appending -----------------------------------------------------------


async def _commandstats(client: aioredis.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {
        name.removeprefix("cmdstat_").lower(): int(value["calls"])
        for name, value in stats.items()
    }


async def _coalesced_appends(store: RedisJobStore, stream_id: str, job: int) -> int:
    """Append as a coalescing producer does; return the number of calls.

    Such a producer sends whatever gathered while its previous call was in
    flight, so its batches vary in size. They are drawn here from a seeded
    generator (1 to 64 events) so that the figures repeat from run to run.
    """
    sizes = random.Random(job)
    events = _events(EVENTS_PER_JOB, job)
    calls = start = 0
    while start < len(events):
        size = sizes.randint(1, 64)
        await store.append_chunks(stream_id, events[start : start + size])
        start += size
        calls += 1

    return calls


async def _measure(
    store: RedisJobStore,
    client: aioredis.Redis,
    append: Callable[[str, int], Awaitable[int]],
) -> tuple[float, float, int]:
    """(client commands per event, server commands per event, append calls)."""
    await client.config_resetstat()
    before = await _commandstats(client)
    calls = await asyncio.gather(*(append(f"job-{n}", n) for n in range(JOBS)))
    after = await _commandstats(client)
    diff = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    events = JOBS * EVENTS_PER_JOB
    assert diff["xadd"] == events
    # INFO itself and CONFIG RESETSTAT are the only other top-level commands.
    sent = sum(n for name, n in diff.items() if name not in _SCRIPT_INNER)
    sent -= diff.get("info", 0) + diff.get("config|resetstat", 0)
    assert sent == diff["evalsha"], diff
    return sent / events, sum(diff.values()) / events, sum(calls)


@pytest.mark.slow
async def test_one_script_call_per_append_batch(
    redis_standalone: RedisServer, key_prefix: str
) -> None:
    client = aioredis.Redis.from_url(redis_standalone.url)
    stats = aioredis.Redis.from_url(redis_standalone.url)
    store = RedisJobStore(client, prefix=key_prefix)
    try:
        await store.initialize()
        for n in range(JOBS):
            await store.create_job(f"job-{n}", "u")
        # Open the connections the producers use now, so that their handshakes
        # (HELLO) are not counted as appending.
        await asyncio.gather(*(client.ping() for _ in range(JOBS)))

        async def coalesced(stream_id: str, job: int) -> int:
            return await _coalesced_appends(store, stream_id, job)

        batch_sent, batch_server, batch_calls = await _measure(store, stats, coalesced)
        for n in range(JOBS):
            await store.delete_job(f"job-{n}")
            await store.create_job(f"job-{n}", "u")

        async def one_by_one(stream_id: str, job: int) -> int:
            for event in _events(EVENTS_PER_JOB, job):
                await store.append_chunk(stream_id, event)
            return EVENTS_PER_JOB

        single_sent, single_server, _ = await _measure(store, stats, one_by_one)
    finally:
        await store.aclose()
        await client.aclose()
        await stats.aclose()

    events = JOBS * EVENTS_PER_JOB
    print(
        f"\ncoalesced batches: {batch_calls} calls for {events} events "
        f"(mean batch {events / batch_calls:.1f}): {batch_sent:.4f} commands sent "
        f"per event, {batch_server:.3f} commands run by Redis per event"
        f"\none event per call: {single_sent:.4f} commands sent per event, "
        f"{single_server:.3f} commands run by Redis per event"
        "\nreference (XADD then XLEN per event): 2 commands sent per event"
    )
    assert batch_calls < events / 5
    assert batch_sent == pytest.approx(batch_calls / events)
    assert batch_sent < 0.2
    assert batch_server < 2
    assert single_sent == pytest.approx(1.0)


# -- faults ----------------------------------------------------------------------


async def test_initialize_against_a_closed_port_raises_backend_unavailable() -> None:
    port = free_port()
    stores = [
        RedisJobStore(aioredis.Redis(port=port)),
        RedisJobStore(RedisCluster(host="127.0.0.1", port=port)),
        RedisJobStore.from_url(f"redis://127.0.0.1:{port}/0"),
        RedisJobStore.from_url(f"redis+cluster://127.0.0.1:{port}"),
    ]
    for store in stores:
        with pytest.raises(BackendUnavailable) as caught:
            await store.initialize()
        assert isinstance(caught.value.__cause__, RedisError | RedisClusterException)
        with pytest.raises(BackendUnavailable):
            await store.ping()
        await store.aclose()
        await store.aclose()
        await store.client.aclose()


@contextlib.contextmanager
def _paused(server: RedisServer) -> Iterator[None]:
    server.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.process.send_signal(signal.SIGCONT)


async def _block_server(client: aioredis.Redis, seconds: float) -> None:
    """Keep Redis busy for ``seconds`` in one script, as a slow command would."""
    busy = """
    local t = redis.call('TIME')
    local stop = t[1] * 1000000 + t[2] + tonumber(ARGV[1])
    repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] > stop
    return 1
    """
    await client.eval(busy, 0, int(seconds * 1_000_000))


async def test_unreachable_redis_during_append_writes_nothing_partial() -> None:
    retries = Retry(NoBackoff(), 3, supported_errors=(RedisTimeoutError,))
    with redis_server() as server:
        client = aioredis.Redis.from_url(server.url, socket_timeout=0.3, retry=retries)
        blocker = aioredis.Redis.from_url(server.url)
        store = RedisJobStore(client, prefix="fault")
        try:
            await store.initialize()
            await store.create_job("j", "u")
            await store.append_chunks("j", _events(2))
            with _paused(server):
                with pytest.raises(BackendUnavailable) as caught:
                    await store.append_chunks("j", _events(50))
                assert isinstance(caught.value.__cause__, RedisError)

            # The batch went in whole or not at all, and once only although the
            # client tried up to four times.
            chunks = await store.read_chunks("j")
            assert len(chunks) in (2, 52)
            assert [chunk.seq for chunk in chunks] == list(range(1, len(chunks) + 1))

            # A slow server makes the client send the same call again: once in.
            blocking = asyncio.create_task(_block_server(blocker, 0.5))
            last = await store.append_chunks("j", _events(10))
            await blocking
            assert last == len(chunks) + 10
            assert len(await store.read_chunks("j")) == last
            blocking = asyncio.create_task(_block_server(blocker, 0.5))
            assert await store.finish("j", JobStatus.COMPLETE)
            await blocking
            assert [c.seq for c in await store.read_chunks("j", after=last)] == [
                last + 1
            ]

            server.stop()
            with pytest.raises(BackendUnavailable) as caught:
                await store.append_chunk("j", {"event": "x"})
            assert isinstance(caught.value.__cause__, RedisConnectionError)
        finally:
            await store.aclose()
            await client.aclose()
            await blocker.aclose()


async def test_scripts_flushed_from_redis_are_sent_again(
    make_redis: RedisFactory, raw: Any
) -> None:
    store = await make_redis()
    await store.create_job("j", "u")

    async def flush() -> None:
        if isinstance(raw, RedisCluster):
            nodes = RedisCluster.ALL_NODES
            await raw.execute_command("SCRIPT FLUSH", target_nodes=nodes)
        else:
            await raw.execute_command("SCRIPT FLUSH")

    await flush()
    assert await store.append_chunks("j", _events(3)) == 3
    await flush()
    assert await store.finish("j", JobStatus.COMPLETE)
    await flush()
    assert await store.get_job_count_by_status(JobStatus.COMPLETE) == 1
    await flush()
    assert await store.get_job_count() == 1
    await flush()
    assert [chunk.seq for chunk in await store.read_chunks("j")] == [1, 2, 3, 4]


# -- live delivery ---------------------------------------------------------------


async def _kill_pubsub_connections(raw: Any) -> int:
    if isinstance(raw, RedisCluster):
        killed = await raw.execute_command(
            "CLIENT KILL", "TYPE", "pubsub", target_nodes=RedisCluster.ALL_NODES
        )
        return sum(int(count) for count in killed.values())
    return int(await raw.execute_command("CLIENT KILL", "TYPE", "pubsub"))


async def _subscribers(raw: Any, channel: str) -> int:
    reply = await raw.execute_command("PUBSUB SHARDNUMSUB", channel)
    return sum(int(count) for _, count in reply)


async def test_a_follower_survives_a_killed_pubsub_connection(
    make_redis: RedisFactory,
    raw: Any,
    key_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer, reader = await make_redis(), await make_redis()
    await producer.create_job("j", "u")
    await producer.append_chunk("j", {"n": 1})
    stream = reader.follow("j")
    assert (await anext(stream)).seq == 1
    second = asyncio.create_task(_next(stream))
    await producer.append_chunk("j", {"n": 2})
    # The follower subscribes, then reads chunk 2: it listens for bells now.
    async with asyncio.timeout(10):
        assert (await second).seq == 2
    assert await _subscribers(raw, f"{key_prefix}:{{j}}:bell") == 1
    following = asyncio.create_task(_collect(stream))

    with caplog.at_level(logging.WARNING, logger="reattach.store._bell"):
        assert await _kill_pubsub_connections(raw) >= 1
        for n in range(3, 30):
            await producer.append_chunk("j", {"n": n})
        await producer.finish("j", JobStatus.COMPLETE)
        async with asyncio.timeout(10):
            chunks = await following

    assert [chunk.seq for chunk in chunks] == list(range(3, 31))
    assert chunks[-1].is_terminal
    assert [chunk.event["n"] for chunk in chunks[:-1]] == list(range(3, 30))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("retry 1" in message for message in warnings)


async def test_one_subscription_per_job_per_process(
    make_redis: RedisFactory, raw: Any, key_prefix: str
) -> None:
    producer, reader = await make_redis(), await make_redis()
    channel = f"{key_prefix}:{{j}}:bell"
    await producer.create_job("j", "u")
    await producer.append_chunk("j", {"n": 1})
    streams = [reader.follow("j") for _ in range(3)]
    for stream in streams:
        assert (await anext(stream)).seq == 1
    seconds = [asyncio.create_task(_next(stream)) for stream in streams]
    await producer.append_chunk("j", {"n": 2})
    async with asyncio.timeout(10):
        assert [(await task).seq for task in seconds] == [2, 2, 2]
    # Each follower subscribed before reading chunk 2: one subscription for all.
    assert await _subscribers(raw, channel) == 1

    await producer.finish("j", JobStatus.COMPLETE)
    async with asyncio.timeout(10):
        tails = [await _collect(stream) for stream in streams]
    assert [[chunk.seq for chunk in tail] for tail in tails] == [[3], [3], [3]]
    # The last follower out unsubscribed. A new subscription on the same
    # connection is confirmed after Redis handled that: then the count is 0.
    other = _id_on_the_same_node(raw, key_prefix, "j")
    await producer.create_job(other, "u")
    await producer.append_chunk(other, {"n": 1})
    stream = reader.follow(other)
    assert (await anext(stream)).seq == 1
    second = asyncio.create_task(_next(stream))
    await producer.append_chunk(other, {"n": 2})
    async with asyncio.timeout(10):
        assert (await second).seq == 2
    assert await _subscribers(raw, channel) == 0
    assert await _subscribers(raw, f"{key_prefix}:{{{other}}}:bell") == 1
    await producer.delete_job(other)
    with pytest.raises(JobNotFound):
        async with asyncio.timeout(10):
            await anext(stream)


def _id_on_the_same_node(raw: Any, prefix: str, stream_id: str) -> str:
    """Another job id whose bell reaches this process on the same connection."""
    if not isinstance(raw, RedisCluster):
        return f"{stream_id}-other"
    node = raw.get_node_from_key(f"{prefix}:{{{stream_id}}}:bell")
    for n in range(1000):
        candidate = f"{stream_id}-{n}"
        if raw.get_node_from_key(f"{prefix}:{{{candidate}}}:bell") == node:
            return candidate
    raise AssertionError("no id on the same node")


async def test_bells_work_without_sharded_pubsub(
    make_redis: RedisFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def redis_6(self: object) -> tuple[int, ...]:
        return (6, 2, 14)

    monkeypatch.setattr("reattach.store._scripts.RedisCalls.server_version", redis_6)
    producer, reader = await make_redis(), await make_redis()
    await producer.create_job("j", "u")
    stream = reader.follow("j")
    following = asyncio.create_task(_next(stream))
    waiting = asyncio.create_task(reader.wait_finished("j"))
    await producer.append_chunk("j", {"n": 1})
    async with asyncio.timeout(10):
        assert (await following).seq == 1
    await producer.finish("j", JobStatus.ABORTED)
    async with asyncio.timeout(10):
        assert [chunk.seq for chunk in await _collect(stream)] == [2]
        finished = await waiting
    assert finished is not None
    assert finished.status is JobStatus.ABORTED


# -- leases, cleanup and indexes -------------------------------------------------


async def test_cleanup_on_two_stores_ends_each_expired_job_once(
    make_redis: RedisFactory, raw: Any, key_prefix: str
) -> None:
    first, second = await make_redis(), await make_redis()
    expired = [f"gone-{n}" for n in range(20)]
    for stream_id in expired:
        await first.create_job(stream_id, "u")
        await first.append_chunk(stream_id, {"event": "x"})
        await _expire_lease(raw, key_prefix, stream_id)
    # An old job whose producer renews: the index says "due", the record not.
    await first.create_job("fresh", "u")
    assert await first.renew_lease("fresh", "worker", 60)
    await raw.zadd(f"{key_prefix}:running", {"fresh": 0})

    counts = await asyncio.gather(first.cleanup(), second.cleanup())
    assert sum(counts) == len(expired)
    for stream_id in expired:
        job = await second.get_job(stream_id)
        assert job is not None
        assert job.status is JobStatus.ERROR
        assert job.error == LEASE_EXPIRED
        chunks = await second.read_chunks(stream_id)
        assert [chunk.seq for chunk in chunks] == [1, 2]
        assert chunks[-1].event["data"]["error"] == LEASE_EXPIRED

    fresh = await first.get_job("fresh")
    assert fresh is not None
    assert fresh.status is JobStatus.RUNNING
    assert fresh.lease_owner == "worker"
    # The index now holds the record's lease again: nothing is due.
    score = await raw.zscore(f"{key_prefix}:running", "fresh")
    assert score == fresh.lease_expires_at
    assert await first.cleanup() == 0
    assert await first.get_job_count_by_status(JobStatus.ERROR) == len(expired)
    assert [job.stream_id for job in await second.get_running_jobs()] == ["fresh"]


async def test_cleanup_heals_indexes_left_by_a_crash(
    make_redis: RedisFactory, raw: Any, key_prefix: str
) -> None:
    store = await make_redis()
    running = f"{key_prefix}:running"
    await store.create_job("done", "u")
    await store.finish("done", JobStatus.COMPLETE)
    # A process died between a finish and its index update, and an entry
    # outlived its job.
    await raw.zadd(running, {"done": 1, "ghost": 1})
    await raw.zadd(f"{key_prefix}:user:u", {"ghost": float("inf")})
    assert await store.get_job_count_by_status(JobStatus.RUNNING) == 0
    assert await store.get_running_jobs() == []

    # The ghost's entry counts; the finished job's entry is moved, not counted.
    assert await store.cleanup() == 1
    assert await raw.zrange(running, 0, -1) == []
    assert await store.get_job_count_by_status(JobStatus.COMPLETE) == 1
    assert [job.stream_id for job in await store.get_user_jobs("u")] == ["done"]
    assert await raw.zrange(f"{key_prefix}:user:u", 0, -1) == [b"done"]
    assert await store.cleanup() == 0


async def test_a_refused_create_leaves_the_indexes_as_they_were(
    make_redis: RedisFactory, raw: Any, key_prefix: str
) -> None:
    store = await make_redis()
    await store.create_job("taken", "u")
    await store.finish("taken", JobStatus.COMPLETE)
    user_index = await raw.zrange(f"{key_prefix}:user:u", 0, -1, withscores=True)
    for user in ("u", "v"):
        with pytest.raises(JobExists):
            await store.create_job("taken", user)

    assert await raw.zrange(f"{key_prefix}:running", 0, -1) == []
    assert await raw.zrange(f"{key_prefix}:user:v", 0, -1) == []
    after = await raw.zrange(f"{key_prefix}:user:u", 0, -1, withscores=True)
    assert after == user_index


async def test_counts_are_exact_and_listings_take_two_round_trips(
    make_redis: RedisFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await make_redis()
    ids = [f"job-{n:02}" for n in range(30)]
    for n, stream_id in enumerate(ids):
        await store.create_job(stream_id, f"user-{n % 3}")
    ends = {JobStatus.COMPLETE: ids[:5], JobStatus.ERROR: ids[5:9]}
    ends[JobStatus.ABORTED] = ids[9:12]
    for status, finished in ends.items():
        for stream_id in finished:
            await store.finish(stream_id, status)
    await store.delete_job(ids[0])
    await store.delete_job(ids[29])

    trips = _count_round_trips(store.client, monkeypatch)
    assert len(await store.get_running_jobs()) == 17
    assert len(trips) == 2
    assert await store.get_job_count() == 28
    assert len(trips) == 4
    assert await store.get_job_count_by_status(JobStatus.RUNNING) == 17
    assert len(trips) == 6
    assert await store.get_job_count_by_status(JobStatus.COMPLETE) == 4
    assert await store.get_job_count_by_status(JobStatus.ERROR) == 4
    assert await store.get_job_count_by_status(JobStatus.ABORTED) == 3
    assert len(trips) == 9
    mine = await store.get_user_jobs("user-1", status=JobStatus.RUNNING)
    assert [job.stream_id for job in mine] == [f"job-{n:02}" for n in range(13, 29, 3)]
    assert len(trips) == 11


def _count_round_trips(client: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the commands and pipelines ``client`` sends from now on."""
    trips: list[str] = []
    execute_command = client.execute_command
    pipeline = client.pipeline

    async def counted_command(*args: Any, **options: Any) -> Any:
        trips.append(str(args[0]))
        return await execute_command(*args, **options)

    def counted_pipeline(*args: Any, **options: Any) -> Any:
        pipe = pipeline(*args, **options)
        execute = pipe.execute

        async def counted_execute(*args: Any, **options: Any) -> Any:
            trips.append("pipeline")
            return await execute(*args, **options)

        pipe.execute = counted_execute
        return pipe

    monkeypatch.setattr(client, "execute_command", counted_command)
    monkeypatch.setattr(client, "pipeline", counted_pipeline)
    return trips


# -- construction ----------------------------------------------------------------


async def test_from_url_schemes(redis_cluster_nodes: ClusterServers) -> None:
    host, port = redis_cluster_nodes.startup_nodes[0]
    cluster = RedisJobStore.from_url(f"redis+cluster://{host}:{port}", prefix="url")
    async with cluster:
        assert isinstance(cluster.client, RedisCluster)
        await cluster.create_job("j", "u")
        assert await cluster.append_chunk("j", {"event": "x"}) == 1
        assert await cluster.delete_job("j")
    await cluster.aclose()

    secure = RedisJobStore.from_url("rediss+cluster://127.0.0.1:1")
    assert isinstance(secure.client, RedisCluster)
    tls = RedisJobStore.from_url("rediss://127.0.0.1:1/0")
    assert tls.client.connection_pool.connection_class.__name__ == "SSLConnection"
    for store in (secure, tls):
        await store.aclose()

    with tempfile.TemporaryDirectory(prefix="reattach-unix-") as folder:
        path = Path(folder) / "redis.sock"
        server = _start(Path(folder), "--unixsocket", str(path))
        try:
            store = RedisJobStore.from_url(f"unix://{path}", prefix="unix")
            async with store:
                await store.create_job("j", "u")
                assert await store.append_chunks("j", _events(3)) == 3
            await store.aclose()
        finally:
            server.stop()


@pytest.mark.parametrize("scheme", ["redis", "redis+cluster"])
async def test_a_store_from_a_url_takes_many_concurrent_calls(
    scheme: str,
    redis_standalone: RedisServer,
    redis_cluster_nodes: ClusterServers,
    key_prefix: str,
) -> None:
    # redis-py's default pool refuses a 101st connection; a server with hundreds
    # of running jobs and followers needs more, or must wait for one.
    port = redis_standalone.port
    if scheme == "redis+cluster":
        port = redis_cluster_nodes.startup_nodes[0][1]
    store = RedisJobStore.from_url(f"{scheme}://127.0.0.1:{port}", prefix=key_prefix)
    async with store:
        ids = [f"j{index}" for index in range(600)]
        await asyncio.gather(*(store.create_job(sid, "u") for sid in ids))
        seqs = await asyncio.gather(*(store.append_chunk(sid, {"n": 1}) for sid in ids))
        assert seqs == [1] * 600
        jobs = await asyncio.gather(*(store.get_job(sid) for sid in ids))
        assert all(job is not None and job.last_seq == 1 for job in jobs)


async def test_clients_the_store_cannot_use(redis_standalone: RedisServer) -> None:
    decoding = aioredis.Redis.from_url(redis_standalone.url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisJobStore(decoding)
    await decoding.aclose()
    with pytest.raises(TypeError):
        RedisJobStore(object())
    client = aioredis.Redis.from_url(redis_standalone.url)
    with pytest.raises(ValueError, match="prefix"):
        RedisJobStore(client, prefix="bad{prefix}")
    await client.aclose()
