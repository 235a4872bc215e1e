"""The behaviour every JobStore keeps, run on memory, Redis and Redis Cluster."""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from reattach import (
    Chunk,
    InvalidCursor,
    InvalidEvent,
    InvalidId,
    Job,
    JobExists,
    JobFinished,
    JobNotFound,
    JobStatus,
    JobStore,
    Limits,
    PayloadTooLarge,
    Snapshot,
    TTLPolicy,
)
from reattach._types import now_ms
from reattach.aggregate import AgentAggregator, rebuild

from .conftest import StoreFactory

BAD_IDS: list[object] = ["", "a" * 129, "a b", "a/b", "é", "a\n", 42, None, b"ab"]
WAIT = 10.0  # seconds any one wait in these tests may take before it fails


def delta(index: int) -> dict[str, Any]:
    """A small event in the envelope every generation uses."""
    return {"event": "on_message_delta", "data": {"index": index, "text": f"t{index}"}}


def deltas(count: int, start: int = 1) -> list[dict[str, Any]]:
    return [delta(index) for index in range(start, start + count)]


def final(status: str = "complete", error: str | None = None) -> dict[str, Any]:
    return {"event": "final", "data": {"status": status, "error": error}}


async def collect(store: JobStore, stream_id: str, after: int = 0) -> list[Chunk]:
    """Everything ``follow`` yields, through the terminal chunk."""
    async with asyncio.timeout(WAIT):
        return [chunk async for chunk in store.follow(stream_id, after=after)]


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Retry ``check`` until it holds; fail after ``WAIT`` seconds.

    Only for what the clock decides (a lease or a TTL running out), where nothing
    rings when it happens.
    """
    async with asyncio.timeout(WAIT):
        while not await check():  # noqa: ASYNC110 - no event marks a lapse of time
            await asyncio.sleep(0.01)


async def log_of(store: JobStore, stream_id: str) -> list[Chunk]:
    return await store.read_chunks(stream_id)


async def job(store: JobStore, stream_id: str) -> Job:
    record = await store.get_job(stream_id)
    assert record is not None
    return record


# -- job records -----------------------------------------------------------------


async def test_create_job_returns_the_running_record(store: JobStore) -> None:
    before = now_ms()
    created = await store.create_job(
        "s1",
        "u1",
        conversation_id="c1",
        model="m",
        sender="bot",
        prompt_tokens=12,
        user_message={"text": "hi"},
        metadata={"k": [1, 2]},
    )
    assert created.stream_id == "s1"
    assert created.user_id == "u1"
    assert created.status is JobStatus.RUNNING
    assert created.conversation_id == "c1"
    assert created.last_seq == 0
    assert created.completed_at is None
    assert before <= created.created_at <= now_ms()
    assert created.lease_owner is None
    assert created.lease_expires_at is not None
    assert created.lease_expires_at > before
    stored = await job(store, "s1")
    assert stored.model == "m"
    assert stored.sender == "bot"
    assert stored.prompt_tokens == 12
    assert stored.user_message == {"text": "hi"}
    assert stored.metadata == {"k": [1, 2]}
    assert await store.has_job("s1")
    assert not await store.has_job("s2")
    assert await store.get_job("s2") is None


async def test_create_job_refuses_a_taken_id(store: JobStore) -> None:
    await store.create_job("s1", "u1", model="first")
    await store.append_chunk("s1", delta(1))
    with pytest.raises(JobExists):
        await store.create_job("s1", "u2", model="second")

    stored = await job(store, "s1")
    assert (stored.user_id, stored.model, stored.last_seq) == ("u1", "first", 1)
    assert await store.get_job_count() == 1


@pytest.mark.parametrize("name", ["status", "stream_id", "last_seq", "colour"])
async def test_create_job_refuses_unknown_fields(store: JobStore, name: str) -> None:
    with pytest.raises(TypeError):
        await store.create_job("s1", "u1", **{name: "x"})

    assert not await store.has_job("s1")
    assert await store.get_job_count() == 0


async def test_bad_argument_types(store: JobStore) -> None:
    with pytest.raises(TypeError, match="metadata"):
        await store.create_job("s1", "u1", metadata=["not", "a", "dict"])
    await store.create_job("s1", "u1")
    with pytest.raises(TypeError, match="metadata"):
        await store.update_job("s1", metadata="x")
    with pytest.raises(TypeError, match="string"):
        await store.append_chunks("s1", "abc")
    with pytest.raises(TypeError, match="error"):
        await store.finish("s1", JobStatus.ERROR, error=RuntimeError("x"))  # type: ignore[arg-type]

    record = await job(store, "s1")
    assert (record.status, record.last_seq, record.metadata) == (
        JobStatus.RUNNING,
        0,
        {},
    )
    assert await store.get_job_count() == 1


async def test_a_returned_record_is_a_copy(store: JobStore) -> None:
    metadata = {"tags": ["a"]}
    await store.create_job("s1", "u1", metadata=metadata)
    metadata["tags"].append("b")
    record = await job(store, "s1")
    record.metadata["tags"].append("c")
    record.model = "changed"
    again = await job(store, "s1")
    assert again.metadata == {"tags": ["a"]}
    assert again.model is None


async def test_update_job_sets_fields(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.update_job(
        "s1",
        sync_sent=True,
        response_message_id="r1",
        final_event={"done": True},
        metadata={"a": 1},
        endpoint="openai",
        icon_url="https://example.invalid/i.png",
    )
    record = await job(store, "s1")
    assert record.sync_sent is True
    assert record.response_message_id == "r1"
    assert record.final_event == {"done": True}
    assert record.metadata == {"a": 1}
    assert record.endpoint == "openai"
    assert record.icon_url == "https://example.invalid/i.png"
    assert record.status is JobStatus.RUNNING


@pytest.mark.parametrize("name", ["status", "user_id", "last_seq", "colour"])
async def test_update_job_refuses_unknown_fields(store: JobStore, name: str) -> None:
    await store.create_job("s1", "u1", model="m")
    before = await job(store, "s1")
    with pytest.raises(TypeError):
        await store.update_job("s1", model="other", **{name: "complete"})

    assert await job(store, "s1") == before


async def test_update_job_of_a_missing_job(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        await store.update_job("nope", model="m")

    assert not await store.has_job("nope")


async def test_delete_job(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(3))
    await store.save_snapshot("s1", 2, {"parts": []})
    await store.save_run_steps("s1", [{"id": "step"}])
    assert await store.delete_job("s1")
    assert not await store.delete_job("s1")
    assert await store.get_job("s1") is None
    assert not await store.has_job("s1")
    assert await store.get_snapshot("s1") is None
    assert await store.get_run_steps("s1") == []
    assert await store.get_job_count() == 0
    assert await store.get_job_count_by_status(JobStatus.RUNNING) == 0
    assert await store.get_running_jobs() == []
    assert await store.get_user_jobs("u1") == []
    with pytest.raises(JobNotFound):
        await store.read_chunks("s1")
    with pytest.raises(JobNotFound):
        await store.append_chunk("s1", delta(4))


async def test_get_running_jobs(store: JobStore) -> None:
    for name in ("a", "b", "c"):
        await store.create_job(name, "u1")

    await store.finish("b", JobStatus.COMPLETE)
    running = await store.get_running_jobs()
    assert sorted(record.stream_id for record in running) == ["a", "c"]
    assert all(record.status is JobStatus.RUNNING for record in running)


async def test_get_user_jobs(store: JobStore) -> None:
    for name in ("j1", "j2", "j3"):
        await store.create_job(name, "alice")

    await store.create_job("j4", "bob")
    await store.finish("j2", JobStatus.ABORTED)
    await store.delete_job("j3")
    alice = await store.get_user_jobs("alice")
    assert [record.stream_id for record in alice] == ["j1", "j2"]
    running = await store.get_user_jobs("alice", status=JobStatus.RUNNING)
    assert [record.stream_id for record in running] == ["j1"]
    aborted = await store.get_user_jobs("alice", status=JobStatus.ABORTED)
    assert [record.stream_id for record in aborted] == ["j2"]
    assert [record.stream_id for record in await store.get_user_jobs("bob")] == ["j4"]
    assert await store.get_user_jobs("carol") == []


async def test_counts_are_exact_for_every_status(store: JobStore) -> None:
    for index in range(7):
        await store.create_job(f"s{index}", "u1")

    await store.finish("s0", JobStatus.COMPLETE)
    await store.finish("s1", JobStatus.COMPLETE)
    await store.finish("s2", JobStatus.ERROR, error="boom")
    await store.finish("s3", JobStatus.ABORTED)
    await store.delete_job("s4")
    expected = {
        JobStatus.RUNNING: 2,
        JobStatus.COMPLETE: 2,
        JobStatus.ERROR: 1,
        JobStatus.ABORTED: 1,
    }
    for status, count in expected.items():
        assert await store.get_job_count_by_status(status) == count

    assert await store.get_job_count() == 6
    await store.delete_job("s0")
    assert await store.get_job_count_by_status(JobStatus.COMPLETE) == 1
    assert await store.get_job_count() == 5


# -- ids -------------------------------------------------------------------------


def id_calls(bad: Any) -> list[Callable[[JobStore], Awaitable[object]]]:
    """One call per method, each with ``bad`` in one id position."""

    async def follow(store: JobStore) -> object:
        return [chunk async for chunk in store.follow(bad)]

    return [
        lambda s: s.create_job(bad, "u1"),
        lambda s: s.create_job("fresh", bad),
        lambda s: s.get_job(bad),
        lambda s: s.has_job(bad),
        lambda s: s.update_job(bad, model="m"),
        lambda s: s.delete_job(bad),
        lambda s: s.get_user_jobs(bad),
        lambda s: s.append_chunk(bad, delta(1)),
        lambda s: s.append_chunks(bad, deltas(2)),
        lambda s: s.read_chunks(bad),
        follow,
        lambda s: s.wait_finished(bad),
        lambda s: s.finish(bad, JobStatus.COMPLETE),
        lambda s: s.renew_lease(bad, "owner", 5),
        lambda s: s.renew_lease("s1", bad, 5),
        lambda s: s.save_snapshot(bad, 0, {}),
        lambda s: s.get_snapshot(bad),
        lambda s: s.get_content_parts(bad),
        lambda s: s.get_run_steps(bad),
        lambda s: s.save_run_steps(bad, []),
        lambda s: s.clear_content_state(bad),
        lambda s: s.create_consumer_group(bad, "g"),
        lambda s: s.create_consumer_group("s1", bad),
        lambda s: s.read_chunks_from_group("s1", bad),
        lambda s: s.read_chunks_from_group("s1", "g", bad),
        lambda s: s.acknowledge_chunks("s1", bad, [1]),
        lambda s: s.delete_consumer_group("s1", bad),
        lambda s: s.get_pending_chunks("s1", "g", bad),
    ]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
async def test_every_method_refuses_bad_ids(store: JobStore, bad: Any) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunk("s1", delta(1))
    await store.create_consumer_group("s1", "g")
    for call in id_calls(bad):
        with pytest.raises(InvalidId):
            await call(store)

    with pytest.raises(InvalidId):
        store.set_content_parts(bad, [])
    with pytest.raises(InvalidId):
        store.set_graph(bad, Graph([], []))
    assert await store.get_job_count() == 1
    assert [chunk.seq for chunk in await log_of(store, "s1")] == [1]
    assert await store.read_chunks_from_group("s1", "g") == [Chunk(1, delta(1))]


async def test_ids_at_the_edges_are_valid(store: JobStore) -> None:
    longest = "a" * 128
    odd = "A-z_0.9:x"
    await store.create_job(longest, odd)
    assert (await job(store, longest)).user_id == odd
    assert await store.append_chunk(longest, delta(1)) == 1
    await store.create_consumer_group(longest, odd)
    assert len(await store.read_chunks_from_group(longest, odd, longest)) == 1


# -- appending and reading ---------------------------------------------------------


async def test_append_gives_dense_seqs(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    assert await store.append_chunk("s1", delta(1)) == 1
    assert await store.append_chunk("s1", delta(2)) == 2
    assert await store.append_chunks("s1", deltas(3, start=3)) == 5
    assert await store.append_chunks("s1", []) == 5
    chunks = await log_of(store, "s1")
    assert chunks == [Chunk(seq, delta(seq)) for seq in range(1, 6)]
    assert (await job(store, "s1")).last_seq == 5


async def test_any_json_value_is_an_event(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    values: list[Any] = ["text", 7, 2.5, True, None, [1, "a"], {"a": {"b": []}}]
    await store.append_chunks("s1", values)
    assert [chunk.event for chunk in await log_of(store, "s1")] == values


async def test_events_come_back_as_json(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    event: dict[str, Any] = {"event": "x", "data": {"pair": (1, 2), "list": [3]}}
    await store.append_chunk("s1", event)
    event["data"]["list"].append(4)
    (chunk,) = await log_of(store, "s1")
    assert chunk.event == {"event": "x", "data": {"pair": [1, 2], "list": [3]}}
    chunk.event["data"]["list"].append(5)
    assert (await log_of(store, "s1"))[0].event["data"]["list"] == [3]


@pytest.mark.parametrize(
    "bad", [{1, 2}, object(), {"data": {1: "non-string key"}}, b"bytes"], ids=repr
)
async def test_append_refuses_non_json(store: JobStore, bad: object) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(2))
    with pytest.raises(InvalidEvent):
        await store.append_chunk("s1", bad)
    with pytest.raises(InvalidEvent):
        await store.append_chunks("s1", [delta(3), bad, delta(4)])

    assert (await job(store, "s1")).last_seq == 2
    assert await log_of(store, "s1") == [Chunk(1, delta(1)), Chunk(2, delta(2))]


@pytest.mark.parametrize("name", ["final", "snapshot"])
async def test_append_refuses_the_names_only_the_store_writes(
    store: JobStore, name: str
) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunk("s1", delta(1))
    with pytest.raises(InvalidEvent, match="reserved"):
        await store.append_chunks("s1", [delta(2), {"event": name, "data": {}}])

    assert await log_of(store, "s1") == [Chunk(1, delta(1))]
    await store.append_chunk("s1", {"event": "x", "data": {"event": name}})


async def test_append_refuses_large_events(make_store: StoreFactory) -> None:
    store = await make_store(limits=Limits(max_event_bytes=64))
    await store.create_job("s1", "u1")
    await store.append_chunk("s1", "x" * 62)  # 64 bytes as JSON: at the limit
    with pytest.raises(PayloadTooLarge):
        await store.append_chunk("s1", "x" * 63)
    with pytest.raises(InvalidEvent):  # PayloadTooLarge is an InvalidEvent
        await store.append_chunks("s1", ["ok", "y" * 100])

    assert await log_of(store, "s1") == [Chunk(1, "x" * 62)]


async def test_append_to_a_finished_job(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunk("s1", delta(1))
    await store.finish("s1", JobStatus.COMPLETE)
    before = await log_of(store, "s1")
    with pytest.raises(JobFinished):
        await store.append_chunk("s1", delta(2))
    with pytest.raises(JobFinished):
        await store.append_chunks("s1", deltas(2))

    assert await log_of(store, "s1") == before
    assert (await job(store, "s1")).last_seq == 2


async def test_append_to_a_missing_job(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        await store.append_chunk("nope", delta(1))

    assert not await store.has_job("nope")


async def test_read_chunks_pages_from_a_cursor(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(10))
    assert await store.read_chunks("s1", after=7) == [
        Chunk(seq, delta(seq)) for seq in (8, 9, 10)
    ]
    assert await store.read_chunks("s1", after=2, limit=3) == [
        Chunk(seq, delta(seq)) for seq in (3, 4, 5)
    ]
    assert await store.read_chunks("s1", after=10) == []
    pages: list[Chunk] = []
    while page := await store.read_chunks("s1", after=len(pages), limit=4):
        pages.extend(page)

    assert [chunk.seq for chunk in pages] == list(range(1, 11))


@pytest.mark.parametrize("after", [-1, 4, 100, 1.5, "1", None, True], ids=repr)
async def test_read_chunks_refuses_bad_cursors(store: JobStore, after: Any) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(3))
    with pytest.raises(InvalidCursor):
        await store.read_chunks("s1", after=after)


@pytest.mark.parametrize("limit", [-1, 1.5, "2", True], ids=repr)
async def test_read_chunks_refuses_bad_limits(store: JobStore, limit: Any) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(3))
    with pytest.raises(ValueError, match="limit"):
        await store.read_chunks("s1", limit=limit)

    assert await store.read_chunks("s1", limit=0) == []


async def test_read_chunks_of_a_missing_job(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        await store.read_chunks("nope")


# -- finishing -------------------------------------------------------------------


async def test_finish_appends_the_terminal_chunk(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(2))
    before = now_ms()
    assert await store.finish(
        "s1", JobStatus.ERROR, error="upstream failed", final_event={"id": "m1"}
    )
    record = await job(store, "s1")
    assert record.status is JobStatus.ERROR
    assert record.error == "upstream failed"
    assert record.completed_at is not None
    assert before <= record.completed_at <= now_ms()
    assert record.last_seq == 3
    assert record.final_event == {"id": "m1"}
    terminal = (await log_of(store, "s1"))[-1]
    assert terminal == Chunk(
        3,
        {
            "event": "final",
            "data": {
                "status": "error",
                "error": "upstream failed",
                "final_event": {"id": "m1"},
            },
        },
    )
    assert terminal.is_terminal
    assert await store.get_running_jobs() == []
    assert (record.lease_owner, record.lease_expires_at) == (None, None)
    await store.update_job("s1", sync_sent=True)
    assert (await job(store, "s1")).sync_sent is True


async def test_finish_only_once(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    assert await store.finish("s1", JobStatus.COMPLETE)
    assert not await store.finish("s1", JobStatus.ABORTED)
    assert not await store.finish("s1", JobStatus.ERROR, error="late")
    record = await job(store, "s1")
    assert (record.status, record.error, record.last_seq) == (
        JobStatus.COMPLETE,
        None,
        1,
    )
    assert await log_of(store, "s1") == [Chunk(1, final())]


async def test_finish_refuses_running_and_bad_input(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunk("s1", delta(1))
    with pytest.raises(ValueError, match="running"):
        await store.finish("s1", JobStatus.RUNNING)
    with pytest.raises(InvalidEvent):
        await store.finish("s1", JobStatus.COMPLETE, final_event={"bad": {1, 2}})
    with pytest.raises(JobNotFound):
        await store.finish("nope", JobStatus.COMPLETE)

    record = await job(store, "s1")
    assert (record.status, record.last_seq) == (JobStatus.RUNNING, 1)
    assert await log_of(store, "s1") == [Chunk(1, delta(1))]
    assert not await store.has_job("nope")


async def test_finish_race_has_one_winner(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(3))
    statuses = [JobStatus.COMPLETE, JobStatus.ERROR, JobStatus.ABORTED] * 4
    results = await asyncio.gather(
        *(store.finish("s1", status, error=status.value) for status in statuses)
    )
    assert results.count(True) == 1
    winner = statuses[results.index(True)]
    chunks = await log_of(store, "s1")
    assert [chunk.seq for chunk in chunks] == [1, 2, 3, 4]
    assert [chunk.is_terminal for chunk in chunks] == [False, False, False, True]
    assert chunks[-1].event == final(winner.value, winner.value)
    assert (await job(store, "s1")).status is winner


async def test_finish_race_across_two_stores(make_store: StoreFactory) -> None:
    first, second = await make_store(), await make_store()
    await first.create_job("s1", "u1")
    results = await asyncio.gather(
        *(
            store.finish("s1", JobStatus.ABORTED)
            for _ in range(5)
            for store in (first, second)
        )
    )
    assert results.count(True) == 1
    assert [chunk.seq for chunk in await second.read_chunks("s1")] == [1]


# -- following -------------------------------------------------------------------


async def test_follow_from_every_cursor(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(6))
    await store.finish("s1", JobStatus.COMPLETE)
    everything = await log_of(store, "s1")
    assert len(everything) == 7
    for after in range(8):
        assert await collect(store, "s1", after) == everything[after:]


async def test_follow_replays_then_goes_live(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(2))
    followers = [asyncio.create_task(collect(store, "s1", after)) for after in (0, 2)]
    for seq in range(3, 9):
        await store.append_chunk("s1", delta(seq))
        await asyncio.sleep(0)  # let followers run between appends

    await store.finish("s1", JobStatus.COMPLETE)
    expected = [Chunk(seq, delta(seq)) for seq in range(1, 9)] + [Chunk(9, final())]
    from_start, from_two = await asyncio.gather(*followers)
    assert from_start == expected
    assert from_two == expected[2:]


async def test_follow_across_two_stores(make_store: StoreFactory) -> None:
    producer, reader = await make_store(), await make_store()
    await producer.create_job("s1", "u1")
    follower = asyncio.create_task(collect(reader, "s1"))
    for seq in range(1, 21):
        await producer.append_chunk("s1", delta(seq))

    await producer.finish("s1", JobStatus.COMPLETE)
    chunks = await follower
    assert [chunk.seq for chunk in chunks] == list(range(1, 22))
    assert chunks[-1] == Chunk(21, final())


async def test_follow_of_a_finished_job_at_its_end(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.finish("s1", JobStatus.COMPLETE)
    assert await collect(store, "s1", after=1) == []


async def test_follow_checks_at_the_first_iteration(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(2))
    ahead = store.follow("s1", after=3)
    negative = store.follow("s1", after=-1)
    missing = store.follow("nope")
    with pytest.raises(InvalidCursor):
        await anext(ahead)
    with pytest.raises(InvalidCursor):
        await anext(negative)
    with pytest.raises(JobNotFound):
        await anext(missing)


async def test_delete_stops_followers(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunk("s1", delta(1))
    seen: list[Chunk] = []
    got_first = asyncio.Event()

    async def follow() -> None:
        async for chunk in store.follow("s1"):
            seen.append(chunk)
            got_first.set()

    follower = asyncio.create_task(follow())
    async with asyncio.timeout(WAIT):
        await got_first.wait()
    await store.delete_job("s1")
    async with asyncio.timeout(WAIT):
        with pytest.raises(JobNotFound):
            await follower

    assert seen == [Chunk(1, delta(1))]


async def test_wait_finished(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    waiter = asyncio.create_task(store.wait_finished("s1"))
    await asyncio.sleep(0)
    assert not waiter.done()
    await store.append_chunk("s1", delta(1))
    await store.finish("s1", JobStatus.ABORTED)
    async with asyncio.timeout(WAIT):
        record = await waiter

    assert record is not None
    assert (record.status, record.last_seq) == (JobStatus.ABORTED, 2)
    finished = await store.wait_finished("s1")
    assert finished is not None
    assert finished.status is JobStatus.ABORTED
    assert await store.wait_finished("nope") is None


async def test_wait_finished_across_two_stores(make_store: StoreFactory) -> None:
    producer, reader = await make_store(), await make_store()
    await producer.create_job("s1", "u1")
    waiter = asyncio.create_task(reader.wait_finished("s1"))
    await asyncio.sleep(0)
    await producer.finish("s1", JobStatus.COMPLETE)
    async with asyncio.timeout(WAIT):
        record = await waiter

    assert record is not None
    assert record.status is JobStatus.COMPLETE


async def test_wait_finished_of_a_deleted_job(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    waiter = asyncio.create_task(store.wait_finished("s1"))
    await asyncio.sleep(0)
    await store.delete_job("s1")
    async with asyncio.timeout(WAIT):
        assert await waiter is None


# -- the capped log and snapshots -------------------------------------------------


async def test_a_trimmed_cursor_gets_the_snapshot_then_the_tail(
    make_store: StoreFactory, backend: str
) -> None:
    store = await make_store(limits=Limits(max_chunks=16))
    await store.create_job("s1", "u1")
    for start in range(1, 500, 10):
        await store.append_chunks("s1", deltas(10, start=start))

    await store.save_snapshot("s1", 495, {"parts": ["up to 495"]})
    snapshot = Chunk(495, {"event": "snapshot", "data": {"parts": ["up to 495"]}})
    tail = [Chunk(seq, delta(seq)) for seq in range(496, 501)]
    assert await store.read_chunks("s1") == [snapshot, *tail]
    assert await store.read_chunks("s1", after=3, limit=2) == [snapshot, tail[0]]
    assert await store.read_chunks("s1", after=490) == [
        Chunk(seq, delta(seq)) for seq in range(491, 501)
    ]
    if backend == "memory":  # the memory store trims exactly: 485..500 are kept
        assert (await store.read_chunks("s1", after=484))[0] == Chunk(485, delta(485))
        assert (await store.read_chunks("s1", after=483))[0] == snapshot
    await store.finish("s1", JobStatus.COMPLETE)
    assert await collect(store, "s1") == [snapshot, *tail, Chunk(501, final())]


async def test_a_trimmed_cursor_without_a_snapshot_gets_the_kept_tail(
    make_store: StoreFactory,
) -> None:
    store = await make_store(limits=Limits(max_chunks=16))
    await store.create_job("s1", "u1")
    for start in range(1, 500, 10):
        await store.append_chunks("s1", deltas(10, start=start))

    chunks = await store.read_chunks("s1")
    seqs = [chunk.seq for chunk in chunks]
    assert 1 < seqs[0] <= 485
    assert seqs == list(range(seqs[0], 501))
    assert all(chunk == Chunk(chunk.seq, delta(chunk.seq)) for chunk in chunks)


async def test_snapshots(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    assert await store.get_snapshot("s1") is None
    await store.append_chunks("s1", deltas(5))
    await store.save_snapshot("s1", 3, {"v": 3})
    assert await store.get_snapshot("s1") == Snapshot(3, {"v": 3})
    await store.save_snapshot("s1", 2, {"v": 2})
    assert await store.get_snapshot("s1") == Snapshot(3, {"v": 3})
    await store.save_snapshot("s1", 5, {"v": 5})
    assert await store.get_snapshot("s1") == Snapshot(5, {"v": 5})
    with pytest.raises(InvalidCursor):
        await store.save_snapshot("s1", 6, {"v": 6})
    with pytest.raises(InvalidEvent):
        await store.save_snapshot("s1", 5, {"v": object()})
    with pytest.raises(JobNotFound):
        await store.save_snapshot("nope", 0, {})

    assert await store.get_snapshot("s1") == Snapshot(5, {"v": 5})
    assert await store.get_snapshot("nope") is None
    assert await log_of(store, "s1") == [Chunk(seq, delta(seq)) for seq in range(1, 6)]


# -- TTL policy ------------------------------------------------------------------


async def test_ttl_policy_and_limits_are_kept(make_store: StoreFactory) -> None:
    policy = TTLPolicy(
        running=60, completed=30, chunks_after_complete=10, run_steps_after_complete=5
    )
    limits = Limits(max_event_bytes=4096, max_chunks=64)
    store = await make_store(ttl=policy, limits=limits)
    assert store.ttl == policy
    assert store.limits == limits


async def test_default_ttl_policy(store: JobStore) -> None:
    assert store.ttl == TTLPolicy()
    assert store.ttl.running == 1200
    assert store.ttl.completed == 300
    assert store.limits == Limits()


async def test_a_log_dropped_at_finish_answers_with_the_terminal_chunk(
    make_store: StoreFactory,
) -> None:
    policy = TTLPolicy(chunks_after_complete=0, run_steps_after_complete=0)
    store = await make_store(ttl=policy)
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(4))
    await store.save_run_steps("s1", [{"id": "step"}])
    follower = asyncio.create_task(collect(store, "s1", after=4))
    await asyncio.sleep(0)
    await store.finish("s1", JobStatus.ABORTED)
    terminal = Chunk(5, final("aborted"))
    assert await follower == [terminal]
    assert await store.read_chunks("s1") == [terminal]
    assert await store.read_chunks("s1", after=3) == [terminal]
    assert await store.read_chunks("s1", after=5) == []
    assert await collect(store, "s1") == [terminal]
    assert await store.get_run_steps("s1") == []
    record = await job(store, "s1")
    assert (record.status, record.last_seq) == (JobStatus.ABORTED, 5)
    with pytest.raises(InvalidCursor):
        await store.read_chunks("s1", after=6)


@pytest.mark.slow
async def test_a_finished_job_expires_after_its_ttl(make_store: StoreFactory) -> None:
    store = await make_store(ttl=TTLPolicy(completed=1))
    await store.create_job("s1", "u1")
    await store.create_job("s2", "u1")
    await store.append_chunk("s1", delta(1))
    await store.finish("s1", JobStatus.COMPLETE)
    started = time.monotonic()
    assert await store.has_job("s1")

    async def gone() -> bool:
        return not await store.has_job("s1")

    await until(gone)
    assert time.monotonic() - started > 0.5
    assert await store.get_job_count() == 1
    assert await store.get_job_count_by_status(JobStatus.COMPLETE) == 0
    assert [record.stream_id for record in await store.get_user_jobs("u1")] == ["s2"]
    with pytest.raises(JobNotFound):
        await store.read_chunks("s1")


@pytest.mark.slow
async def test_the_log_and_run_steps_expire_before_the_record(
    make_store: StoreFactory,
) -> None:
    policy = TTLPolicy(
        completed=30, chunks_after_complete=1, run_steps_after_complete=1
    )
    store = await make_store(ttl=policy)
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(3))
    await store.save_run_steps("s1", [{"id": "step"}])
    await store.create_consumer_group("s1", "g")
    await store.finish("s1", JobStatus.COMPLETE)
    assert len(await log_of(store, "s1")) == 4
    assert await store.get_run_steps("s1") == [{"id": "step"}]

    async def log_gone() -> bool:
        return await log_of(store, "s1") == [Chunk(4, final())]

    await until(log_gone)

    async def steps_gone() -> bool:
        return await store.get_run_steps("s1") == []

    await until(steps_gone)
    assert await store.read_chunks("s1", after=2) == [Chunk(4, final())]
    assert await collect(store, "s1", after=1) == [Chunk(4, final())]
    assert await store.read_chunks_from_group("s1", "g") == []
    assert (await job(store, "s1")).status is JobStatus.COMPLETE


@pytest.mark.slow
async def test_a_running_job_expires_without_appends(make_store: StoreFactory) -> None:
    store = await make_store(ttl=TTLPolicy(running=1))
    await store.create_job("s1", "u1")
    await store.append_chunk("s1", delta(1))
    seen: list[Chunk] = []

    async def follow() -> None:
        async for chunk in store.follow("s1"):
            seen.append(chunk)

    follower = asyncio.create_task(follow())
    async with asyncio.timeout(WAIT):
        with pytest.raises(JobNotFound):
            await follower

    assert seen == [Chunk(1, delta(1))]
    assert await store.get_job("s1") is None
    assert await store.get_job_count_by_status(JobStatus.RUNNING) == 0


@pytest.mark.slow
async def test_appends_and_renewals_slide_the_running_ttl(
    make_store: StoreFactory,
) -> None:
    store = await make_store(ttl=TTLPolicy(running=1))
    await store.create_job("s1", "u1")
    started = time.monotonic()
    beats = 0
    # Keep the job busy for well over its running TTL, paced well within it.
    while time.monotonic() - started < 2.5:
        if beats % 2:
            await store.append_chunk("s1", delta(beats))
        else:
            assert await store.renew_lease("s1", "p1", 30)
        beats += 1
        await asyncio.sleep(0.2)

    record = await job(store, "s1")
    assert record.status is JobStatus.RUNNING
    assert record.last_seq == beats // 2


# -- leases and cleanup ----------------------------------------------------------


async def test_renew_lease(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    before = now_ms()
    assert await store.renew_lease("s1", "p1", 30)
    record = await job(store, "s1")
    assert record.lease_owner == "p1"
    assert record.lease_expires_at is not None
    assert before + 29_000 <= record.lease_expires_at <= now_ms() + 30_000
    assert not await store.renew_lease("s1", "p2", 30)
    assert (await job(store, "s1")).lease_owner == "p1"
    assert await store.renew_lease("s1", "p1", 60)
    assert not await store.renew_lease("nope", "p1", 30)
    await store.finish("s1", JobStatus.COMPLETE)
    assert not await store.renew_lease("s1", "p1", 30)


@pytest.mark.parametrize("ttl", [0, -1, math.nan, math.inf, True, "5"], ids=repr)
async def test_renew_lease_refuses_bad_ttls(store: JobStore, ttl: Any) -> None:
    await store.create_job("s1", "u1")
    with pytest.raises(ValueError, match="ttl"):
        await store.renew_lease("s1", "p1", ttl)

    assert (await job(store, "s1")).lease_owner is None


async def test_an_expired_lease_can_be_taken_over(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    assert await store.renew_lease("s1", "p1", 0.05)

    async def taken() -> bool:
        return await store.renew_lease("s1", "p2", 30)

    await until(taken)
    assert (await job(store, "s1")).lease_owner == "p2"
    assert not await store.renew_lease("s1", "p1", 30)


async def test_cleanup_ends_jobs_whose_lease_expired(store: JobStore) -> None:
    await store.create_job("dead", "u1")
    await store.create_job("alive", "u1")
    await store.append_chunks("dead", deltas(2))
    assert await store.renew_lease("dead", "p1", 0.05)
    assert await store.renew_lease("alive", "p2", 60)
    follower = asyncio.create_task(collect(store, "dead"))
    ended = 0

    async def reaped() -> bool:
        nonlocal ended
        ended += await store.cleanup()
        return ended > 0

    await until(reaped)
    assert ended == 1
    dead = await job(store, "dead")
    assert dead.status is JobStatus.ERROR
    assert dead.error
    chunks = await follower
    assert [chunk.seq for chunk in chunks] == [1, 2, 3]
    assert chunks[-1] == Chunk(3, final("error", dead.error))
    alive = await job(store, "alive")
    assert (alive.status, alive.last_seq) == (JobStatus.RUNNING, 0)
    assert await store.cleanup() == 0
    assert [chunk.seq for chunk in await log_of(store, "dead")] == [1, 2, 3]


async def test_cleanup_never_touches_a_fresh_lease(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.create_job("s2", "u1")
    assert await store.renew_lease("s2", "p1", 60)
    assert await store.cleanup() == 0
    for name in ("s1", "s2"):
        assert (await job(store, name)).status is JobStatus.RUNNING


async def test_cleanup_on_two_stores_ends_a_job_once(make_store: StoreFactory) -> None:
    first, second = await make_store(), await make_store()
    await first.create_job("s1", "u1")
    assert await first.renew_lease("s1", "p1", 0.05)

    async def finished() -> bool:
        await asyncio.gather(first.cleanup(), second.cleanup(), first.cleanup())
        return (await job(first, "s1")).status is not JobStatus.RUNNING

    await until(finished)
    chunks = await second.read_chunks("s1")
    assert [chunk.seq for chunk in chunks] == [1]
    assert chunks[0].is_terminal


# -- content -----------------------------------------------------------------------


class Graph:
    """A live content source, as a producer hands to ``set_graph``."""

    def __init__(self, parts: list[Any], steps: list[Any]) -> None:
        self.parts = parts
        self.steps = steps

    def get_content_parts(self) -> list[Any]:
        return self.parts

    def get_run_steps(self) -> list[Any]:
        return self.steps


def text_delta(text: str) -> dict[str, Any]:
    content = [{"type": "text", "text": text}]
    return {
        "event": "on_message_delta",
        "data": {"id": "step1", "delta": {"content": content}},
    }


def agent_events() -> list[dict[str, Any]]:
    step = {"id": "step1", "index": 0, "stepDetails": {"type": "message_creation"}}
    return [
        {"event": "on_run_step", "data": step},
        *(text_delta(text) for text in ("Hel", "lo", " there")),
    ]


async def test_run_steps(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    assert await store.get_run_steps("s1") == []
    await store.save_run_steps("s1", [{"id": "a"}, {"id": "b"}])
    assert await store.get_run_steps("s1") == [{"id": "a"}, {"id": "b"}]
    with pytest.raises(JobNotFound):
        await store.save_run_steps("nope", [])
    with pytest.raises(InvalidEvent):
        await store.save_run_steps("s1", [object()])

    assert await store.get_run_steps("s1") == [{"id": "a"}, {"id": "b"}]
    assert await store.get_run_steps("nope") == []


async def test_local_content_comes_first(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.save_run_steps("s1", [{"id": "saved-step"}])
    graph = Graph([{"type": "text", "text": "live"}], [{"id": "live-step"}])
    store.set_graph("s1", graph)
    assert await store.get_content_parts("s1") == [{"type": "text", "text": "live"}]
    assert await store.get_run_steps("s1") == [{"id": "live-step"}]
    del graph  # the store holds the graph weakly: it goes with its producer
    gc.collect()
    assert await store.get_content_parts("s1") is None
    assert await store.get_run_steps("s1") == [{"id": "saved-step"}]
    await store.create_job("s2", "u1")
    store.set_content_parts("s2", [{"type": "text", "text": "kept"}])
    assert await store.get_content_parts("s2") == [{"type": "text", "text": "kept"}]


async def test_content_parts_are_rebuilt_from_the_log(
    make_store: StoreFactory,
) -> None:
    producer, reader = await make_store(), await make_store()
    await producer.create_job("s1", "u1")
    assert await reader.get_content_parts("s1") is None
    events = agent_events()
    await producer.append_chunks("s1", events)
    expected = rebuild(None, events)
    assert expected == [{"type": "text", "text": "Hello there"}]
    assert await reader.get_content_parts("s1") == expected
    assert await reader.get_content_parts("nope") is None


async def test_content_parts_start_from_the_snapshot(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    events = agent_events()
    await store.append_chunks("s1", events[:2])
    # A snapshot that differs from the log shows that the rebuild starts from it.
    aggregator = AgentAggregator()
    aggregator.feed(events[0])
    aggregator.feed(text_delta("Bye"))
    await store.save_snapshot("s1", 2, aggregator.snapshot())
    await store.append_chunks("s1", events[2:])
    assert await store.get_content_parts("s1") == [
        {"type": "text", "text": "Byelo there"}
    ]


async def test_clear_content_state_keeps_the_log(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(3))
    await store.save_snapshot("s1", 3, {"v": 1})
    await store.save_run_steps("s1", [{"id": "a"}])
    store.set_content_parts("s1", [{"type": "text", "text": "x"}])
    await store.clear_content_state("s1")
    assert await store.get_snapshot("s1") is None
    assert await store.get_run_steps("s1") == []
    assert await store.get_content_parts("s1") != [{"type": "text", "text": "x"}]
    assert await log_of(store, "s1") == [Chunk(seq, delta(seq)) for seq in (1, 2, 3)]
    await store.clear_content_state("nope")


# -- consumer groups -----------------------------------------------------------------


async def test_consumer_group_delivers_each_chunk_once(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(5))
    await store.create_consumer_group("s1", "g")
    first = await store.read_chunks_from_group("s1", "g", "c1", count=2)
    assert first == [Chunk(1, delta(1)), Chunk(2, delta(2))]
    rest = await store.read_chunks_from_group("s1", "g", "c2")
    assert [chunk.seq for chunk in rest] == [3, 4, 5]
    assert await store.read_chunks_from_group("s1", "g", "c1") == []
    assert await store.get_pending_chunks("s1", "g", "c1") == first
    assert [chunk.seq for chunk in await store.get_pending_chunks("s1", "g", "c2")] == [
        3,
        4,
        5,
    ]
    assert await store.acknowledge_chunks("s1", "g", [1, 2, 2, 9]) == 2
    assert await store.acknowledge_chunks("s1", "g", [1]) == 0
    assert await store.get_pending_chunks("s1", "g", "c1") == []
    await store.append_chunk("s1", delta(6))
    assert await store.read_chunks_from_group("s1", "g", "c1") == [Chunk(6, delta(6))]


async def test_consumer_group_defaults_and_start_points(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(3))
    await store.create_consumer_group("s1", "all")
    await store.create_consumer_group("s1", "new", start_from=-1)
    await store.create_consumer_group("s1", "late", start_from=2)
    assert [c.seq for c in await store.read_chunks_from_group("s1", "all")] == [1, 2, 3]
    assert await store.read_chunks_from_group("s1", "new") == []
    assert [c.seq for c in await store.read_chunks_from_group("s1", "late")] == [3]
    await store.append_chunk("s1", delta(4))
    assert await store.read_chunks_from_group("s1", "new") == [Chunk(4, delta(4))]
    assert len(await store.get_pending_chunks("s1", "all")) == 3


async def test_creating_a_group_twice_keeps_its_position(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(3))
    await store.create_consumer_group("s1", "g")
    await store.read_chunks_from_group("s1", "g")
    await store.create_consumer_group("s1", "g")
    assert await store.read_chunks_from_group("s1", "g") == []


async def test_unknown_and_deleted_groups(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", deltas(2))
    assert await store.read_chunks_from_group("s1", "nope") == []
    assert await store.get_pending_chunks("s1", "nope") == []
    assert await store.acknowledge_chunks("s1", "nope", [1]) == 0
    assert not await store.delete_consumer_group("s1", "nope")
    await store.create_consumer_group("s1", "g")
    await store.read_chunks_from_group("s1", "g")
    assert await store.delete_consumer_group("s1", "g")
    assert not await store.delete_consumer_group("s1", "g")
    assert await store.read_chunks_from_group("s1", "g") == []
    with pytest.raises(JobNotFound):
        await store.create_consumer_group("nope", "g")
    for start_from in (-2, 3):
        with pytest.raises(InvalidCursor):
            await store.create_consumer_group("s1", "bad", start_from=start_from)

    assert await store.read_chunks_from_group("s1", "bad") == []
    assert not await store.delete_consumer_group("s1", "bad")


async def test_a_group_skips_trimmed_chunks(make_store: StoreFactory) -> None:
    store = await make_store(limits=Limits(max_chunks=16))
    await store.create_job("s1", "u1")
    await store.create_consumer_group("s1", "g")
    await store.append_chunks("s1", deltas(4))
    assert len(await store.read_chunks_from_group("s1", "g", count=2)) == 2
    for start in range(5, 500, 10):
        await store.append_chunks("s1", deltas(10, start=start))

    # Chunks 1 and 2 stay pending but are gone from the log; 3 and 4 were trimmed
    # before delivery, so the group goes on from the oldest chunk kept.
    assert await store.get_pending_chunks("s1", "g") == []
    chunks = await store.read_chunks_from_group("s1", "g")
    seqs = [chunk.seq for chunk in chunks]
    assert 4 < seqs[0] <= 489
    assert seqs == list(range(seqs[0], 505))
    assert await store.acknowledge_chunks("s1", "g", seqs) == len(seqs)


async def test_a_group_reads_the_terminal_chunk(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.create_consumer_group("s1", "g")
    await store.append_chunk("s1", delta(1))
    await store.finish("s1", JobStatus.COMPLETE)
    chunks = await store.read_chunks_from_group("s1", "g")
    assert chunks == [Chunk(1, delta(1)), Chunk(2, final())]


# -- lifecycle -------------------------------------------------------------------


async def test_ping_and_context_manager(make_store: StoreFactory) -> None:
    store = await make_store()
    await store.ping()
    async with store as entered:
        assert entered is store
        await entered.ping()

    await store.aclose()
    await store.aclose()
