"""GenerationManager on every backend, in one process (two managers = two processes)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from reattach import (
    Chunk,
    GenerationManager,
    InvalidCursor,
    JobNotFound,
    JobStatus,
    ReattachError,
    TooManyJobs,
)
from reattach.aggregate import TextAggregator

from ..redis_servers import RedisServer
from .conftest import ManagerFactory
from .sources import Endless, delta, deltas, failing, text_of

WAIT = 20.0


async def collect(
    manager: GenerationManager,
    stream_id: str,
    user: str = "alice",
    *,
    after: int = 0,
    limit: int | None = None,
) -> list[Chunk]:
    """Follow a job from ``after``, through the end or ``limit`` chunks."""
    chunks: list[Chunk] = []
    async with asyncio.timeout(WAIT):
        async for chunk in manager.subscribe(stream_id, user, after=after):
            chunks.append(chunk)
            if limit is not None and len(chunks) >= limit:
                break
    return chunks


def final_data(chunk: Chunk) -> dict[str, Any]:
    assert chunk.is_terminal
    data: dict[str, Any] = chunk.event["data"]
    return data


async def test_a_job_runs_to_completion_and_every_event_is_followed(
    make_manager: ManagerFactory,
) -> None:
    manager = await make_manager()
    job = await manager.start("alice", deltas(50))
    chunks = await collect(manager, job.stream_id)
    assert [chunk.seq for chunk in chunks] == list(range(1, 52))
    assert [chunk.event for chunk in chunks[:-1]] == [delta(i) for i in range(50)]
    assert final_data(chunks[-1]) == {"status": "complete", "error": None}
    state = await manager.status(job.stream_id, "alice")
    assert state.job.status is JobStatus.COMPLETE
    assert state.last_seq == 51


async def test_a_follower_in_another_process_sees_the_same_log(
    make_manager: ManagerFactory,
) -> None:
    producer = await make_manager()
    reader = await make_manager()
    source = Endless(pace=0.002)
    job = await producer.start("alice", source.run())
    seen = await collect(reader, job.stream_id, limit=20)
    assert [chunk.seq for chunk in seen] == list(range(1, 21))
    assert await reader.abort(job.stream_id, "alice")
    rest = await collect(reader, job.stream_id, after=20)
    assert final_data(rest[-1])["status"] == "aborted"
    local = await collect(producer, job.stream_id)
    assert [chunk.event for chunk in local] == [chunk.event for chunk in seen + rest]


async def test_random_reattaches_reassemble_the_generation_exactly(
    make_manager: ManagerFactory,
) -> None:
    producer = await make_manager()
    other = await make_manager()
    job = await producer.start("alice", deltas(400, pace=0.0005))
    rng = random.Random(7)
    received: dict[int, Any] = {}
    terminal = False
    cycles = 0
    while not terminal:
        cycles += 1
        manager = rng.choice([producer, other])
        cursor = rng.randint(0, len(received))
        got = await collect(
            manager, job.stream_id, after=cursor, limit=rng.randint(1, 60)
        )
        assert [chunk.seq for chunk in got] == list(
            range(cursor + 1, cursor + 1 + len(got))
        )
        for chunk in got:
            assert received.setdefault(chunk.seq, chunk.event) == chunk.event
            terminal = terminal or chunk.is_terminal
    events = [received[seq] for seq in sorted(received)]
    assert events[:-1] == [delta(i) for i in range(400)]
    assert cycles > 5


async def test_a_source_that_raises_ends_the_job_with_its_message(
    make_manager: ManagerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    manager = await make_manager()
    job = await manager.start("alice", failing(3, "the model ran out of quota"))
    chunks = await collect(manager, job.stream_id)
    assert [chunk.event for chunk in chunks[:3]] == [delta(i) for i in range(3)]
    assert final_data(chunks[-1]) == {
        "status": "error",
        "error": "the model ran out of quota",
    }
    assert "Traceback" not in str(chunks[-1].event)
    assert any(record.exc_info for record in caplog.records)


async def test_abort_cancels_the_source_and_runs_its_cleanup(
    make_manager: ManagerFactory,
) -> None:
    manager = await make_manager()
    source = Endless()
    job = await manager.start("alice", source.run())
    async with asyncio.timeout(WAIT):
        await source.started.wait()
    assert await manager.abort(job.stream_id, "alice") is True
    assert source.cleaned_up.is_set()
    assert await manager.abort(job.stream_id, "alice") is False
    chunks = await collect(manager, job.stream_id)
    assert final_data(chunks[-1])["status"] == "aborted"
    assert sum(chunk.is_terminal for chunk in chunks) == 1


async def test_abort_from_another_process_stops_the_source(
    make_manager: ManagerFactory,
) -> None:
    producer = await make_manager()
    other = await make_manager()
    source = Endless()
    job = await producer.start("alice", source.run())
    async with asyncio.timeout(WAIT):
        await source.started.wait()
        assert await other.abort(job.stream_id, "alice")
        await source.cleaned_up.wait()
    state = await other.status(job.stream_id, "alice")
    assert state.job.status is JobStatus.ABORTED


async def test_the_same_client_request_id_returns_the_first_job(
    make_manager: ManagerFactory,
) -> None:
    first_manager = await make_manager()
    second_manager = await make_manager()
    first = await first_manager.start("alice", deltas(5), client_request_id="r-1")
    ran_second = False

    async def second_source() -> AsyncIterator[Any]:
        nonlocal ran_second
        ran_second = True
        yield delta(0)

    again = await second_manager.start(
        "alice", second_source(), client_request_id="r-1"
    )
    assert again.stream_id == first.stream_id
    other_user = await second_manager.start("bob", deltas(1), client_request_id="r-1")
    assert other_user.stream_id != first.stream_id
    await collect(first_manager, first.stream_id)
    assert not ran_second


async def test_another_users_job_looks_missing(make_manager: ManagerFactory) -> None:
    manager = await make_manager()
    job = await manager.start("alice", deltas(3))
    followers = manager.stats.followers
    for call in (
        lambda: collect(manager, job.stream_id, "mallory"),
        lambda: manager.status(job.stream_id, "mallory"),
        lambda: manager.abort(job.stream_id, "mallory"),
        lambda: manager.delete(job.stream_id, "mallory"),
        lambda: collect(manager, "no-such-job", "alice"),
    ):
        with pytest.raises(JobNotFound):
            await call()
    assert manager.stats.followers == followers
    assert (await collect(manager, job.stream_id))[-1].is_terminal


async def test_bad_cursors_are_refused(make_manager: ManagerFactory) -> None:
    manager = await make_manager()
    job = await manager.start("alice", deltas(3))
    await collect(manager, job.stream_id)
    for cursor in (-1, 5, 1000):
        with pytest.raises(InvalidCursor):
            await collect(manager, job.stream_id, after=cursor)
    assert [c.seq for c in await collect(manager, job.stream_id, after=4)] == []
    assert [c.seq for c in await collect(manager, job.stream_id, after=3)] == [4]


async def test_coalescing_writes_many_events_per_round_trip(
    make_manager: ManagerFactory,
) -> None:
    manager = await make_manager()
    jobs = [await manager.start("alice", deltas(500)) for _ in range(10)]
    for job in jobs:
        chunks = await collect(manager, job.stream_id)
        assert [chunk.event for chunk in chunks[:-1]] == [delta(i) for i in range(500)]
    assert manager.stats.events_appended == 5000
    assert manager.stats.append_calls <= 5000 / 20


async def test_without_coalescing_every_event_is_one_write(
    make_manager: ManagerFactory,
) -> None:
    manager = await make_manager(coalesce=False)
    job = await manager.start("alice", deltas(40))
    chunks = await collect(manager, job.stream_id)
    assert len(chunks) == 41
    assert manager.stats.append_calls == 40


async def test_status_reports_the_content_from_any_process(
    make_manager: ManagerFactory,
) -> None:
    producer = await make_manager(snapshot_every=16)
    other = await make_manager()
    job = await producer.start("alice", deltas(100), aggregator=TextAggregator())
    await collect(producer, job.stream_id)
    expected = [{"type": "text", "text": text_of(100)}]
    assert (await other.status(job.stream_id, "alice")).content == expected
    snapshot = await other.store.get_snapshot(job.stream_id)
    assert snapshot is not None
    assert snapshot.seq >= 96


async def test_a_job_whose_lease_expires_is_ended_with_an_error(
    make_manager: ManagerFactory,
) -> None:
    watcher = await make_manager(lease_ttl=0.3)
    job = await watcher.store.create_job("orphan", "alice")
    await watcher.store.append_chunk(job.stream_id, delta(0))
    assert await watcher.store.renew_lease(job.stream_id, "dead-process", 0.2)
    chunks = await collect(watcher, job.stream_id)
    assert chunks[0].event == delta(0)
    assert final_data(chunks[-1])["status"] == "error"


async def test_the_running_job_cap_is_per_user(make_manager: ManagerFactory) -> None:
    manager = await make_manager(max_jobs_per_user=2)
    sources = [Endless(), Endless()]
    for source in sources:
        await manager.start("alice", source.run())
    with pytest.raises(TooManyJobs):
        await manager.start("alice", deltas(1))
    job = await manager.start("bob", deltas(1))
    assert len(await manager.active_jobs("alice")) == 2
    assert await manager.active_jobs("carol") == []
    await collect(manager, job.stream_id, "bob")


async def test_delete_aborts_a_running_job_and_removes_it(
    make_manager: ManagerFactory,
) -> None:
    manager = await make_manager()
    source = Endless()
    job = await manager.start("alice", source.run())
    async with asyncio.timeout(WAIT):
        await source.started.wait()
    assert await manager.delete(job.stream_id, "alice")
    assert source.cleaned_up.is_set()
    with pytest.raises(JobNotFound):
        await manager.status(job.stream_id, "alice")


async def test_closing_ends_local_jobs_and_leaves_no_task(
    make_manager: ManagerFactory,
) -> None:
    manager = await make_manager()
    other = await make_manager()
    source = Endless()
    job = await manager.start("alice", source.run())
    async with asyncio.timeout(WAIT):
        await source.started.wait()
    await manager.aclose()
    await manager.aclose()
    assert source.cleaned_up.is_set()
    names = (manager.instance_id, job.stream_id)
    leftover = [t for t in asyncio.all_tasks() if t.get_name().endswith(names)]
    assert not leftover
    state = await other.status(job.stream_id, "alice")
    assert state.job.status is JobStatus.ERROR
    with pytest.raises(ReattachError):
        await manager.start("alice", deltas(1))


async def test_followers_in_the_producing_process_are_fed_from_memory(
    make_manager: ManagerFactory, backend: str, request: pytest.FixtureRequest
) -> None:
    manager = await make_manager()
    source = Endless(pace=0.001)
    job = await manager.start("alice", source.run())
    reads_before = _log_reads(backend, request)
    got = await collect(manager, job.stream_id, limit=100)
    assert [chunk.seq for chunk in got] == list(range(1, 101))
    assert _log_reads(backend, request) == reads_before
    await manager.abort(job.stream_id, "alice")


async def test_an_old_cursor_catches_up_from_the_store_then_reads_memory(
    make_manager: ManagerFactory, backend: str, request: pytest.FixtureRequest
) -> None:
    manager = await make_manager(buffer_size=16)
    source = Endless(pace=0.001)
    job = await manager.start("alice", source.run())
    await collect(manager, job.stream_id, limit=60)  # the log is past the buffer
    reads_before = _log_reads(backend, request)
    got = await collect(manager, job.stream_id, after=1, limit=150)
    assert [chunk.seq for chunk in got] == list(range(2, 152))
    # A few pages of catch-up, then memory: far fewer reads than chunks.
    assert _log_reads(backend, request) - reads_before <= 10
    await manager.abort(job.stream_id, "alice")


def _log_reads(backend: str, request: pytest.FixtureRequest) -> int:
    """XRANGE and XREAD calls the standalone server has answered (0 elsewhere)."""
    if backend != "redis":
        return 0
    server: RedisServer = request.getfixturevalue("redis_standalone")
    stats = server.cli("INFO", "commandstats")
    total = 0
    for line in stats.splitlines():
        name, _, fields = line.partition(":")
        if name in ("cmdstat_xrange", "cmdstat_xread", "cmdstat_xrevrange"):
            total += int(fields.split(",")[0].removeprefix("calls="))
    return total
