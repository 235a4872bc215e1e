"""A hypothesis state machine drives each backend against a simple model of it.

After every step the invariants of the design hold: dense seqs in order, one
terminal chunk that ends the log, one winner per job, and bad input changing
nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from reattach import (
    Chunk,
    InvalidEvent,
    JobExists,
    JobFinished,
    JobNotFound,
    JobStatus,
    JobStore,
    MemoryJobStore,
    RedisJobStore,
)

from .conftest import BACKENDS, redis_client

T = TypeVar("T")

NAMES = ["a", "b", "c", "d"]
TERMINAL = [JobStatus.COMPLETE, JobStatus.ERROR, JobStatus.ABORTED]
# A lease renewed for this long has lapsed by the next step; cleanup must end it.
LAPSE = 0.001
_prefixes = itertools.count(1)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=4), inner)
    ),
    max_leaves=6,
)
not_json = st.sampled_from([{1, 2}, object(), {"data": {3: "int key"}}, b"raw"])
# Chooses the job a rule acts on: see StoreMachine.pick.
picks = st.integers(0, 9)


@dataclass
class ModelJob:
    user_id: str
    status: JobStatus = JobStatus.RUNNING
    events: list[Any] = field(default_factory=list)
    lease_lapses_at: float | None = None


class StoreMachine(RuleBasedStateMachine):
    """Drives one store; subclasses set ``open_store``."""

    open_store: Callable[[], Coroutine[Any, Any, tuple[JobStore, Any]]]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store, self.client = self.run(self.open_store())
        self.model: dict[str, ModelJob] = {}

    def run(self, step: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(step, 3))

    def teardown(self) -> None:
        self.run(self.store.aclose())
        if self.client is not None:
            self.run(self.client.aclose())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    # -- rules -------------------------------------------------------------------

    @initialize(user_id=st.sampled_from(["u1", "u2"]))
    def create_first(self, user_id: str) -> None:
        self.create("a", user_id)

    @rule(stream_id=st.sampled_from(NAMES), user_id=st.sampled_from(["u1", "u2"]))
    def create(self, stream_id: str, user_id: str) -> None:
        if stream_id in self.model:
            with pytest.raises(JobExists):
                self.run(self.store.create_job(stream_id, user_id))
            return
        created = self.run(self.store.create_job(stream_id, user_id))
        assert (created.status, created.last_seq) == (JobStatus.RUNNING, 0)
        self.model[stream_id] = ModelJob(user_id)

    @rule(pick=picks, event=json_values)
    def append_one(self, pick: int, event: Any) -> None:
        self.check_append(pick, [event], single=True, valid=True)

    @rule(pick=picks, batch=st.lists(json_values, max_size=5))
    def append_batch(self, pick: int, batch: list[Any]) -> None:
        self.check_append(pick, batch, single=False, valid=True)

    @rule(
        pick=picks,
        batch=st.lists(json_values, max_size=4),
        bad=not_json,
        where=st.integers(0, 4),
    )
    def append_bad(self, pick: int, batch: list[Any], bad: Any, where: int) -> None:
        batch.insert(where, bad)
        self.check_append(pick, batch, single=len(batch) == 1, valid=False)

    def pick(self, pick: int, *, running: bool) -> str:
        """Mostly a job that exists (and runs, if asked), sometimes any name."""
        names = sorted(
            stream_id
            for stream_id, job in self.model.items()
            if not (running and job.status.is_terminal)
        )
        if names and pick < 8:
            return names[pick % len(names)]
        return NAMES[pick % len(NAMES)]

    def check_append(
        self, pick: int, values: list[Any], *, single: bool, valid: bool
    ) -> None:
        stream_id = self.pick(pick, running=True)
        if single:
            call = self.store.append_chunk(stream_id, values[0])
        else:
            call = self.store.append_chunks(stream_id, values)
        job = self.model.get(stream_id)
        expected: type[Exception] | None = None
        if not valid:
            expected = InvalidEvent
        elif job is None:
            expected = JobNotFound
        elif job.status.is_terminal:
            expected = JobFinished
        if expected is not None:
            with pytest.raises(expected):
                self.run(call)
            return
        assert job is not None
        seq = self.run(call)
        job.events.extend(values)
        assert seq == len(job.events)

    @rule(pick=picks, cursor=st.integers(0, 1000), wanted=st.integers(1, 8))
    def follow(self, pick: int, cursor: int, wanted: int) -> None:
        stream_id = self.pick(pick, running=False)
        job = self.model.get(stream_id)
        if job is None:
            with pytest.raises(JobNotFound):
                self.run(self.take(stream_id, 0, 1))
            return
        after = cursor % (len(job.events) + 1)
        count = min(wanted, len(job.events) - after)
        if count or job.status.is_terminal:  # else follow would wait for more
            chunks = self.run(self.take(stream_id, after, count))
            assert chunks == self.expected(job, after)[:count]
        page = self.run(self.store.read_chunks(stream_id, after=after, limit=wanted))
        assert page == self.expected(job, after)[:wanted]

    async def take(self, stream_id: str, after: int, count: int) -> list[Chunk]:
        """The first ``count`` chunks that ``follow`` yields; checks the rest."""
        chunks: list[Chunk] = []
        follower = self.store.follow(stream_id, after=after)
        try:
            async for chunk in follower:
                chunks.append(chunk)
                if len(chunks) >= count:
                    break
        finally:
            aclose = getattr(follower, "aclose", None)
            if aclose is not None:
                await aclose()
        return chunks

    @rule(
        stream_id=st.sampled_from(NAMES),
        statuses=st.lists(st.sampled_from(TERMINAL), min_size=2, max_size=5),
    )
    def finish_race(self, stream_id: str, statuses: list[JobStatus]) -> None:
        async def race() -> list[bool | BaseException]:
            calls = (self.store.finish(stream_id, status) for status in statuses)
            return await asyncio.gather(*calls, return_exceptions=True)

        results = self.run(race())
        job = self.model.get(stream_id)
        if job is None:
            assert all(isinstance(result, JobNotFound) for result in results)
            return
        if job.status.is_terminal:
            assert results == [False] * len(statuses)
            return
        assert results.count(True) == 1
        assert results.count(False) == len(statuses) - 1
        winner = statuses[results.index(True)]
        self.end(job, winner, None)

    @rule(stream_id=st.sampled_from(NAMES))
    def lapse_lease(self, stream_id: str) -> None:
        job = self.model.get(stream_id)
        renewed = self.run(self.store.renew_lease(stream_id, "producer", LAPSE))
        assert renewed == (job is not None and not job.status.is_terminal)
        if job is not None and renewed:
            job.lease_lapses_at = time.monotonic() + LAPSE

    @rule()
    def cleanup(self) -> None:
        lapsed = {
            stream_id
            for stream_id, job in self.model.items()
            if job.lease_lapses_at is not None and not job.status.is_terminal
        }
        # A lapse of 1 ms is over by now; spin out the rare case where it is not,
        # with a margin for a backend that counts whole milliseconds.
        deadline = max(
            (self.model[stream_id].lease_lapses_at or 0.0 for stream_id in lapsed),
            default=0.0,
        )
        while time.monotonic() <= deadline + 0.002:
            pass
        assert self.run(self.store.cleanup()) == len(lapsed)
        for stream_id in lapsed:
            job = self.model[stream_id]
            record = self.run(self.store.get_job(stream_id))
            assert record is not None
            assert record.status is JobStatus.ERROR
            self.end(job, JobStatus.ERROR, record.error)

    @rule(stream_id=st.sampled_from(NAMES))
    def delete(self, stream_id: str) -> None:
        deleted = self.run(self.store.delete_job(stream_id))
        assert deleted == (self.model.pop(stream_id, None) is not None)

    # -- the model -----------------------------------------------------------------

    @staticmethod
    def end(job: ModelJob, status: JobStatus, error: str | None) -> None:
        job.status = status
        job.lease_lapses_at = None
        data = {"status": status.value, "error": error}
        job.events.append({"event": "final", "data": data})

    @staticmethod
    def expected(job: ModelJob, after: int) -> list[Chunk]:
        chunks = [Chunk(seq, event) for seq, event in enumerate(job.events, 1)]
        return chunks[after:]

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def every_log_matches_the_model(self) -> None:
        for stream_id in NAMES:
            job = self.model.get(stream_id)
            record = self.run(self.store.get_job(stream_id))
            if job is None:
                assert record is None
                continue
            assert record is not None
            assert (record.user_id, record.status) == (job.user_id, job.status)
            assert record.last_seq == len(job.events)
            chunks = self.run(self.store.read_chunks(stream_id))
            # Order, density, the terminal chunk last and only once.
            assert chunks == self.expected(job, 0)
            terminal = [chunk.seq for chunk in chunks if chunk.is_terminal]
            assert terminal == ([record.last_seq] if job.status.is_terminal else [])

    @invariant()
    def counts_are_exact(self) -> None:
        for status in JobStatus:
            count = sum(job.status is status for job in self.model.values())
            assert self.run(self.store.get_job_count_by_status(status)) == count
        assert self.run(self.store.get_job_count()) == len(self.model)
        running = self.run(self.store.get_running_jobs())
        assert sorted(record.stream_id for record in running) == sorted(
            stream_id
            for stream_id, job in self.model.items()
            if job.status is JobStatus.RUNNING
        )


def machine_for(backend: str, request: pytest.FixtureRequest) -> type[StoreMachine]:
    """A machine class whose stores live on ``backend``, a fresh prefix each run."""

    async def open_store() -> tuple[JobStore, Any]:
        if backend == "memory":
            store: JobStore = MemoryJobStore()
            client = None
        else:
            client = redis_client(backend, request)
            prefix = f"hyp{os.getpid()}x{next(_prefixes)}"
            store = RedisJobStore(client, prefix=prefix)
        await store.initialize()
        return store, client

    return type(
        f"StoreMachine_{backend}",
        (StoreMachine,),
        {"open_store": staticmethod(open_store)},
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_store_against_the_model(backend: str, request: pytest.FixtureRequest) -> None:
    if backend != "memory":
        # Start the servers before the machine's first loop runs.
        fixture = "redis_standalone" if backend == "redis" else "redis_cluster_nodes"
        request.getfixturevalue(fixture)
    machine = machine_for(backend, request)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=100 if backend == "memory" else 40,
            stateful_step_count=50,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
