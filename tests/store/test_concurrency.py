"""Many tasks at once on one job: followers, racing finishes, concurrent appends."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from reattach import Chunk, JobFinished, JobStatus, JobStore

from .conftest import StoreFactory

WAIT = 30.0


def delta(seq: int) -> dict[str, Any]:
    return {"event": "on_message_delta", "data": {"seq": seq}}


def terminal(seq: int, status: str = "complete") -> Chunk:
    return Chunk(seq, {"event": "final", "data": {"status": status, "error": None}})


async def produce(store: JobStore, stream_id: str, total: int, seed: int) -> None:
    """Append ``total`` events in random batches, letting others run between."""
    rng = random.Random(seed)
    record = await store.get_job(stream_id)
    assert record is not None
    seq = record.last_seq
    while seq < total:
        size = min(rng.randint(1, 7), total - seq)
        batch = [delta(index) for index in range(seq + 1, seq + size + 1)]
        seq = await store.append_chunks(stream_id, batch)
        if rng.random() < 0.5:
            await asyncio.sleep(0)

    await store.finish(stream_id, JobStatus.COMPLETE)


async def follow(store: JobStore, stream_id: str, after: int) -> list[Chunk]:
    async with asyncio.timeout(WAIT):
        return [chunk async for chunk in store.follow(stream_id, after=after)]


async def test_fifty_followers_each_get_exactly_their_tail(
    make_store: StoreFactory,
) -> None:
    producer, other = await make_store(), await make_store()
    await producer.create_job("s1", "u1")
    await producer.append_chunks("s1", [delta(seq) for seq in range(1, 21)])
    rng = random.Random(7)
    total = 300
    followers: list[tuple[int, asyncio.Task[list[Chunk]]]] = []
    writer = asyncio.create_task(produce(producer, "s1", total, seed=11))
    for index in range(50):
        # Half of them read through a second store: another process on Redis.
        store = producer if index % 2 else other
        record = await store.get_job("s1")
        assert record is not None
        after = rng.randint(0, record.last_seq)
        followers.append((after, asyncio.create_task(follow(store, "s1", after))))
        await asyncio.sleep(0)

    await writer
    expected = [Chunk(seq, delta(seq)) for seq in range(1, total + 1)]
    expected.append(terminal(total + 1))
    for after, task in followers:
        assert await task == expected[after:]


async def test_finish_raced_from_ten_tasks(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    await store.append_chunks("s1", [delta(seq) for seq in range(1, 6)])
    statuses = [JobStatus.COMPLETE, JobStatus.ERROR, JobStatus.ABORTED]
    results = await asyncio.gather(
        *(store.finish("s1", statuses[index % 3]) for index in range(10))
    )
    assert results.count(True) == 1
    winner = statuses[results.index(True) % 3]
    chunks = await store.read_chunks("s1")
    assert [chunk.seq for chunk in chunks] == list(range(1, 7))
    assert [chunk for chunk in chunks if chunk.is_terminal] == [
        terminal(6, winner.value)
    ]


async def test_finish_raced_with_appends(store: JobStore) -> None:
    await store.create_job("s1", "u1")
    refused = 0

    async def append(index: int) -> None:
        nonlocal refused
        try:
            await store.append_chunk("s1", delta(index))
        except JobFinished:
            refused += 1

    async def finish() -> None:
        assert await store.finish("s1", JobStatus.ABORTED)

    tasks = [append(index) for index in range(30)]
    tasks.insert(15, finish())
    await asyncio.gather(*tasks)
    chunks = await store.read_chunks("s1")
    assert [chunk.seq for chunk in chunks] == list(range(1, len(chunks) + 1))
    assert chunks[-1].is_terminal
    assert sum(chunk.is_terminal for chunk in chunks) == 1
    assert len(chunks) - 1 + refused == 30


async def test_concurrent_appends_keep_seq_dense(make_store: StoreFactory) -> None:
    stores = [await make_store(), await make_store()]
    await stores[0].create_job("s1", "u1")
    answers: dict[int, tuple[int, int]] = {}

    async def writer(task: int) -> None:
        store = stores[task % 2]
        rng = random.Random(task)
        for step in range(25):
            if rng.random() < 0.5:
                event = {"task": task, "step": step}
                answers[await store.append_chunk("s1", event)] = (task, step)
            else:
                events = [{"task": task, "step": step, "part": part} for part in (0, 1)]
                last = await store.append_chunks("s1", events)
                answers[last - 1] = answers[last] = (task, step)
            if rng.random() < 0.3:
                await asyncio.sleep(0)

    await asyncio.gather(*(writer(task) for task in range(6)))
    chunks = await stores[1].read_chunks("s1")
    assert [chunk.seq for chunk in chunks] == list(range(1, len(chunks) + 1))
    assert sorted(answers) == [chunk.seq for chunk in chunks]
    for chunk in chunks:
        assert (chunk.event["task"], chunk.event["step"]) == answers[chunk.seq]

    for task in range(6):
        steps = [c.event["step"] for c in chunks if c.event["task"] == task]
        assert steps == sorted(steps)
        assert len(set(steps)) == 25
