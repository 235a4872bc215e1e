"""MemoryJobStore: every job of one process in memory, served on one asyncio loop."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
import math
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import InvalidCursor, JobExists, JobFinished, JobNotFound
from .._ids import validate_id
from .._json import decode, encode_event, encode_events
from .._json import final_event as terminal_event
from .._types import (
    Chunk,
    Job,
    JobStatus,
    Limits,
    Snapshot,
    TTLPolicy,
    check_job_fields,
    now_ms,
)
from ._base import LEASE_EXPIRED, ContentSource, JobStore
from ._local import LocalContent

__all__ = ["MemoryJobStore"]

logger = logging.getLogger(__name__)

_DEFAULT_TTL = TTLPolicy()
_DEFAULT_LIMITS = Limits()
# A follower decodes at most this many chunks per step, so a reader far behind
# does not hold a copy of the whole log at once.
_PAGE = 256
# Record fields that hold arbitrary JSON: kept as private copies.
_JSON_FIELDS = ("user_message", "final_event", "metadata")

_Item = tuple[int, bytes]


@dataclass(eq=False, slots=True)
class _Group:
    """A consumer group: the last seq it delivered and what awaits an ack."""

    last_delivered: int
    pending: dict[int, str] = field(default_factory=dict)  # seq -> consumer


@dataclass(eq=False, slots=True)
class _Entry:
    """Everything kept for one job. Events are kept as their JSON bytes."""

    record: Job
    expires_at: float
    lease_until: float
    log: collections.deque[_Item] | None
    terminal: bytes | None = None
    snapshot: _Item | None = None
    steps: bytes | None = None
    groups: dict[str, _Group] = field(default_factory=dict)
    bell: asyncio.Event | None = None
    ended: asyncio.Event | None = None
    timer: asyncio.TimerHandle | None = None

    @property
    def finished(self) -> bool:
        return self.record.status.is_terminal


def _now() -> float:
    return time.monotonic()


def _json_copy(value: Any) -> Any:
    """A private copy of a JSON value, equal to what a Redis round trip gives."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return decode(encode_event(value, sys.maxsize))


def _check_fields(fields: dict[str, Any]) -> dict[str, Any]:
    fields = check_job_fields(fields)
    return {
        name: _json_copy(value) if name in _JSON_FIELDS else value
        for name, value in fields.items()
    }


def _check_cursor(after: object, what: str = "after") -> int:
    if not isinstance(after, int) or isinstance(after, bool):
        raise InvalidCursor(f"{what} must be an integer, got {type(after).__name__}")
    if after < 0:
        raise InvalidCursor(f"{what} must be >= 0, got {after}")
    return after


def _check_limit(limit: int | None, what: str = "limit") -> None:
    if limit is not None and (
        not isinstance(limit, int) or isinstance(limit, bool) or limit < 0
    ):
        raise ValueError(f"{what} must be None or an integer >= 0")


def _between(log: collections.deque[_Item], start: int, stop: int) -> list[_Item]:
    # deque indexing walks from the nearer end: slice from whichever end is closer.
    if start <= len(log) - stop:
        return list(itertools.islice(log, start, stop))
    return [log[index] for index in range(start, stop)]


def _copy(record: Job) -> Job:
    return dataclasses.replace(
        record, **{name: _json_copy(getattr(record, name)) for name in _JSON_FIELDS}
    )


def _ring(entry: _Entry, *, ended: bool = False) -> None:
    """Wake whoever waits on the job; the next waiter gets a fresh event."""
    if entry.bell is not None:
        entry.bell.set()
        entry.bell = None
    if ended and entry.ended is not None:
        entry.ended.set()
        entry.ended = None


class MemoryJobStore(JobStore):
    """A job store in this process's memory, for one asyncio event loop.

    It keeps the whole contract of :class:`JobStore`: dense seqs, one atomic
    :meth:`finish`, a capped log answered with the snapshot when a cursor falls
    behind, TTLs on a monotonic clock, leases and consumer groups. Events are kept
    as JSON bytes, so every reader gets its own decoded copy, as from Redis.
    Followers wait on one :class:`asyncio.Event` per job, never by polling.

    Jobs live as long as the process; use :class:`RedisJobStore` to share them
    between processes.
    """

    def __init__(
        self, *, ttl: TTLPolicy = _DEFAULT_TTL, limits: Limits = _DEFAULT_LIMITS
    ) -> None:
        if not isinstance(ttl, TTLPolicy):
            raise TypeError("ttl must be a TTLPolicy")
        if not isinstance(limits, Limits):
            raise TypeError("limits must be a Limits")
        self.ttl = ttl
        self.limits = limits
        self._jobs: dict[str, _Entry] = {}
        # Both are ordered by expiry: each uses one TTL and a monotonic clock.
        self._running: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._finished: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._log_drops: collections.deque[tuple[float, _Entry]] = collections.deque()
        self._steps_drops: collections.deque[tuple[float, _Entry]] = collections.deque()
        self._users: dict[str, dict[str, _Entry]] = {}
        self._counts: collections.Counter[JobStatus] = collections.Counter()
        self._local = LocalContent()

    # -- lifecycle ---------------------------------------------------------------

    async def aclose(self) -> None:
        """Forget every job; their followers stop with :class:`JobNotFound`."""
        for entry in list(self._jobs.values()):
            self._drop(entry)

        self._local = LocalContent()

    # -- job records -------------------------------------------------------------

    async def create_job(
        self,
        stream_id: str,
        user_id: str,
        *,
        conversation_id: str | None = None,
        **fields: Any,
    ) -> Job:
        """Create a running job; see :meth:`JobStore.create_job`."""
        validate_id(stream_id)
        validate_id(user_id, "user_id")
        values = _check_fields(fields)
        if self._lookup(stream_id) is not None:
            raise JobExists(f"job {stream_id} exists already")

        now, wall = _now(), now_ms()
        record = Job(
            stream_id,
            user_id,
            created_at=wall,
            updated_at=wall,
            conversation_id=conversation_id,
            lease_expires_at=wall + self.ttl.running * 1000,
            **values,
        )
        deadline = now + self.ttl.running
        log: collections.deque[_Item] = collections.deque(maxlen=self.limits.max_chunks)
        entry = _Entry(record, expires_at=deadline, lease_until=deadline, log=log)
        self._jobs[stream_id] = entry
        self._running[stream_id] = entry
        self._users.setdefault(user_id, {})[stream_id] = entry
        self._counts[JobStatus.RUNNING] += 1
        logger.debug("job %s created", stream_id)
        return _copy(record)

    async def get_job(self, stream_id: str) -> Job | None:
        """The job's record (a copy), or ``None``."""
        entry = self._lookup(stream_id)
        return None if entry is None else _copy(entry.record)

    async def has_job(self, stream_id: str) -> bool:
        """Whether the job exists."""
        return self._lookup(stream_id) is not None

    async def update_job(self, stream_id: str, **fields: Any) -> None:
        """Set record fields; see :meth:`JobStore.update_job`.

        :raises TypeError: an unknown field, or ``status``.
        :raises JobNotFound: no such job.
        """
        validate_id(stream_id)
        values = _check_fields(fields)
        record = self._need(stream_id).record
        for name, value in values.items():
            setattr(record, name, value)

        record.updated_at = now_ms()

    async def delete_job(self, stream_id: str) -> bool:
        """Delete the job; its followers stop with :class:`JobNotFound`."""
        entry = self._lookup(stream_id)
        self._local.clear(stream_id)
        if entry is None:
            return False
        self._drop(entry)
        logger.debug("job %s deleted", stream_id)
        return True

    async def get_running_jobs(self) -> list[Job]:
        """Every running job, oldest first."""
        self._expire()
        entries = sorted(self._running.values(), key=lambda e: e.record.created_at)
        return [_copy(entry.record) for entry in entries]

    async def get_user_jobs(
        self, user_id: str, *, status: JobStatus | None = None
    ) -> list[Job]:
        """The user's jobs that still exist, oldest first, optionally by status."""
        validate_id(user_id, "user_id")
        wanted = None if status is None else JobStatus(status)
        self._expire()
        entries = self._users.get(user_id, {}).values()
        return [
            _copy(entry.record)
            for entry in entries
            if wanted is None or entry.record.status is wanted
        ]

    async def cleanup(self) -> int:
        """End running jobs whose lease expired, with status ``error``.

        Also drops expired jobs and forgets freed graphs. Returns the number of
        jobs ended plus the number of expired jobs dropped.
        """
        dropped = self._expire()
        now = _now()
        stale = [entry for entry in self._running.values() if entry.lease_until <= now]
        for entry in stale:
            blob = encode_event(
                terminal_event(JobStatus.ERROR.value, LEASE_EXPIRED), sys.maxsize
            )
            self._finish(entry, JobStatus.ERROR, LEASE_EXPIRED, None, blob)
            logger.info("job %s ended: its lease expired", entry.record.stream_id)

        self._local.prune()
        return dropped + len(stale)

    async def get_job_count(self) -> int:
        """The number of jobs that exist, in any status."""
        self._expire()
        return len(self._jobs)

    async def get_job_count_by_status(self, status: JobStatus) -> int:
        """The exact number of jobs in ``status``."""
        wanted = JobStatus(status)
        self._expire()
        return self._counts[wanted]

    # -- the log -----------------------------------------------------------------

    async def append_chunks(self, stream_id: str, events: Sequence[Any]) -> int:
        """Append a batch atomically; see :meth:`JobStore.append_chunks`."""
        validate_id(stream_id)
        if isinstance(events, str | bytes):
            raise TypeError("events must be a sequence of events, not a string")
        blobs = encode_events(events, self.limits.max_event_bytes)
        entry = self._need(stream_id)
        if entry.finished:
            raise JobFinished(f"job {stream_id} is {entry.record.status}")
        if not blobs:
            return entry.record.last_seq

        self._write(entry, blobs)
        self._slide(entry, self.ttl.running)
        _ring(entry)
        return entry.record.last_seq

    async def read_chunks(
        self, stream_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[Chunk]:
        """The chunks after ``after``; see :meth:`JobStore.read_chunks`."""
        validate_id(stream_id)
        _check_cursor(after)
        _check_limit(limit)
        entry = self._need(stream_id)
        self._check_ahead(entry, after)
        return self._read(entry, after, limit)

    def follow(self, stream_id: str, *, after: int = 0) -> AsyncIterator[Chunk]:
        """Replay from ``after``, then live chunks, through the terminal chunk."""
        return self._follow(stream_id, after)

    async def wait_finished(self, stream_id: str) -> Job | None:
        """Wait until the job leaves ``running``; ``None`` if it is gone."""
        entry = self._lookup(stream_id)
        while entry is not None and self._alive(entry):
            if entry.finished:
                return _copy(entry.record)
            if entry.ended is None:
                entry.ended = asyncio.Event()
            await self._wait(entry, entry.ended)

        return None

    async def finish(
        self,
        stream_id: str,
        status: JobStatus,
        *,
        error: str | None = None,
        final_event: Any = None,
    ) -> bool:
        """The one compare-and-set out of ``running``; see :meth:`JobStore.finish`."""
        validate_id(stream_id)
        status = JobStatus(status)
        if not status.is_terminal:
            raise ValueError("finish() needs a terminal status, not running")
        if error is not None and not isinstance(error, str):
            raise TypeError("error must be a str or None")
        blob = encode_event(
            terminal_event(status.value, error, final_event),
            self.limits.max_event_bytes,
        )
        entry = self._need(stream_id)
        if entry.finished:
            return False
        final = None if final_event is None else decode(blob)["data"]["final_event"]
        self._finish(entry, status, error, final, blob)
        logger.debug("job %s finished: %s", stream_id, status.value)
        return True

    async def renew_lease(self, stream_id: str, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s lease; see :meth:`JobStore.renew_lease`.

        :raises ValueError: ``ttl`` is not a positive number of seconds.
        """
        validate_id(stream_id)
        validate_id(owner, "owner")
        if isinstance(ttl, bool) or not isinstance(ttl, int | float):
            raise ValueError("ttl must be a number of seconds")
        if not math.isfinite(ttl) or ttl <= 0:
            raise ValueError("ttl must be a positive, finite number of seconds")
        entry = self._lookup(stream_id)
        if entry is None or entry.finished:
            return False
        now = _now()
        record = entry.record
        if record.lease_owner not in (None, owner) and entry.lease_until > now:
            return False

        entry.lease_until = now + ttl
        record.lease_owner = owner
        record.lease_expires_at = now_ms() + round(ttl * 1000)
        # The job outlives its lease, so cleanup finds it before it vanishes.
        self._slide(entry, max(ttl, self.ttl.running))
        return True

    # -- snapshots and content -----------------------------------------------------

    async def save_snapshot(self, stream_id: str, seq: int, data: Any) -> None:
        """Keep ``data`` as the content up to ``seq``; older snapshots are ignored."""
        validate_id(stream_id)
        _check_cursor(seq, "seq")
        blob = encode_event(data, sys.maxsize)
        entry = self._need(stream_id)
        self._check_ahead(entry, seq, "seq")
        if entry.snapshot is None or entry.snapshot[0] <= seq:
            entry.snapshot = (seq, blob)

    async def get_snapshot(self, stream_id: str) -> Snapshot | None:
        """The latest snapshot, or ``None``."""
        entry = self._lookup(stream_id)
        if entry is None or entry.snapshot is None:
            return None
        seq, blob = entry.snapshot
        return Snapshot(seq, decode(blob))

    def set_graph(self, stream_id: str, graph: ContentSource) -> None:
        """Keep a weak reference to the job's live content source."""
        self._local.set_graph(validate_id(stream_id), graph)

    def set_content_parts(self, stream_id: str, parts: list[Any]) -> None:
        """Keep the job's content parts (by reference)."""
        self._local.set_parts(validate_id(stream_id), parts)

    async def get_content_parts(self, stream_id: str) -> list[Any] | None:
        """Local parts first, else rebuilt from the snapshot and the log after it."""
        validate_id(stream_id)
        parts = self._local.content_parts(stream_id)
        if parts is not None:
            return parts
        entry = self._lookup(stream_id)
        if entry is None:
            return None

        from ..aggregate import rebuild

        base, after = None, 0
        if entry.snapshot is not None:
            after = entry.snapshot[0]
            base = decode(entry.snapshot[1])
        events = [chunk.event for chunk in self._read(entry, after, None)]
        return rebuild(base, events) or None

    async def get_run_steps(self, stream_id: str) -> list[Any]:
        """The live graph's run steps, else the saved ones, else ``[]``."""
        validate_id(stream_id)
        steps = self._local.run_steps(stream_id)
        if steps is not None:
            return steps
        entry = self._lookup(stream_id)
        if entry is None or entry.steps is None:
            return []
        return list(decode(entry.steps))

    async def save_run_steps(self, stream_id: str, steps: list[Any]) -> None:
        """Keep the job's run steps.

        :raises InvalidEvent: ``steps`` is not JSON.
        :raises JobNotFound: no such job.
        """
        validate_id(stream_id)
        blob = encode_event(list(steps), sys.maxsize)
        self._need(stream_id).steps = blob

    async def clear_content_state(self, stream_id: str) -> None:
        """Drop the local graph and parts, the run steps and the snapshot."""
        validate_id(stream_id)
        self._local.clear(stream_id)
        entry = self._lookup(stream_id)
        if entry is not None:
            entry.steps = None
            entry.snapshot = None

    # -- consumer groups -----------------------------------------------------------

    async def create_consumer_group(
        self, stream_id: str, group: str, *, start_from: int = 0
    ) -> None:
        """Create a group delivering ``seq > start_from`` (``-1``: from now on).

        :raises JobNotFound: no such job.
        :raises InvalidCursor: ``start_from`` is below ``-1`` or ahead of the log.
        """
        validate_id(stream_id)
        validate_id(group, "group")
        if start_from != -1:
            _check_cursor(start_from, "start_from")
        entry = self._need(stream_id)
        if start_from != -1:
            self._check_ahead(entry, start_from, "start_from")
        if group not in entry.groups:
            last = entry.record.last_seq if start_from == -1 else start_from
            entry.groups[group] = _Group(last)

    async def read_chunks_from_group(
        self,
        stream_id: str,
        group: str,
        consumer: str = "consumer-1",
        *,
        count: int | None = None,
    ) -> list[Chunk]:
        """Deliver chunks the group has not delivered yet, pending for ``consumer``."""
        validate_id(consumer, "consumer")
        _check_limit(count, "count")
        entry, state = self._group(stream_id, group)
        if entry is None or state is None or entry.log is None:
            return []
        chunks = self._tail(entry.log, state.last_delivered, count)
        self._forget_trimmed(entry.log, state)
        for chunk in chunks:
            state.pending[chunk.seq] = consumer

        if chunks:
            state.last_delivered = chunks[-1].seq
        return chunks

    async def acknowledge_chunks(
        self, stream_id: str, group: str, seqs: Sequence[int]
    ) -> int:
        """Mark chunks processed; return how many of them were pending."""
        _, state = self._group(stream_id, group)
        if state is None:
            return 0
        return sum(state.pending.pop(seq, None) is not None for seq in set(seqs))

    async def delete_consumer_group(self, stream_id: str, group: str) -> bool:
        """Delete a group; ``False`` if it did not exist."""
        entry, state = self._group(stream_id, group)
        if entry is None or state is None:
            return False
        del entry.groups[group]
        return True

    async def get_pending_chunks(
        self, stream_id: str, group: str, consumer: str = "consumer-1"
    ) -> list[Chunk]:
        """Chunks delivered to ``consumer`` and not acknowledged, still in the log."""
        validate_id(consumer, "consumer")
        entry, state = self._group(stream_id, group)
        if entry is None or state is None or entry.log is None:
            return []
        log = entry.log
        first = log[0][0] if log else entry.record.last_seq + 1
        seqs = [seq for seq, who in state.pending.items() if who == consumer]
        items = (log[seq - first] for seq in seqs if seq >= first)
        return [Chunk(seq, decode(blob)) for seq, blob in items]

    # -- internals ---------------------------------------------------------------

    def _lookup(self, stream_id: str) -> _Entry | None:
        validate_id(stream_id)
        self._expire()
        entry = self._jobs.get(stream_id)
        return entry if entry is not None and self._alive(entry) else None

    def _alive(self, entry: _Entry) -> bool:
        """Whether ``entry`` is still the job stored under its id; drops it if due."""
        self._expire()
        if self._jobs.get(entry.record.stream_id) is not entry:
            return False
        if entry.expires_at <= _now():
            # Out of expiry order (a lease longer than ttl.running): drop it now.
            self._drop(entry)
            return False
        return True

    def _need(self, stream_id: str) -> _Entry:
        entry = self._lookup(stream_id)
        if entry is None:
            raise JobNotFound(f"no job {stream_id}")
        return entry

    def _group(self, stream_id: str, group: str) -> tuple[_Entry | None, _Group | None]:
        validate_id(group, "group")
        entry = self._lookup(stream_id)
        return entry, None if entry is None else entry.groups.get(group)

    @staticmethod
    def _check_ahead(entry: _Entry, after: int, what: str = "after") -> None:
        if after > entry.record.last_seq:
            raise InvalidCursor(
                f"{what}={after} is ahead of the log (last seq {entry.record.last_seq})"
            )

    def _expire(self) -> int:
        """Drop what outlived its TTL; returns the number of jobs dropped."""
        now = _now()
        dropped = 0
        for index in (self._running, self._finished):
            while index:
                entry = next(iter(index.values()))
                if entry.expires_at > now:
                    break
                self._drop(entry)
                dropped += 1

        while self._log_drops and self._log_drops[0][0] <= now:
            self._drop_log(self._log_drops.popleft()[1])

        while self._steps_drops and self._steps_drops[0][0] <= now:
            self._steps_drops.popleft()[1].steps = None

        if dropped:
            logger.debug("%d expired jobs dropped", dropped)
        return dropped

    def _drop(self, entry: _Entry) -> None:
        record = entry.record
        stream_id = record.stream_id
        del self._jobs[stream_id]
        self._running.pop(stream_id, None)
        self._finished.pop(stream_id, None)
        user_jobs = self._users[record.user_id]
        del user_jobs[stream_id]
        if not user_jobs:
            del self._users[record.user_id]
        self._counts[record.status] -= 1
        self._drop_log(entry)
        entry.steps = entry.snapshot = None
        self._local.clear(stream_id)
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        _ring(entry, ended=True)

    @staticmethod
    def _drop_log(entry: _Entry) -> None:
        entry.log = None
        entry.groups.clear()

    def _slide(self, entry: _Entry, ttl: float) -> None:
        # A lease longer than ttl.running leaves this index not quite in expiry
        # order; _expire then drops the jobs behind such a one a little late, but
        # _lookup checks each job's own expiry, so no expired job is ever served.
        expires_at = _now() + ttl
        earlier = expires_at < entry.expires_at
        entry.expires_at = expires_at
        self._running.move_to_end(entry.record.stream_id)
        if earlier and entry.timer is not None:
            entry.timer.cancel()
            self._arm(entry)

    def _write(self, entry: _Entry, blobs: Iterable[bytes]) -> None:
        assert entry.log is not None  # a running job always has its log
        record = entry.record
        for blob in blobs:
            record.last_seq += 1
            entry.log.append((record.last_seq, blob))

        record.updated_at = now_ms()

    def _finish(
        self,
        entry: _Entry,
        status: JobStatus,
        error: str | None,
        final: Any,
        blob: bytes,
    ) -> None:
        self._write(entry, [blob])
        record = entry.record
        entry.terminal = blob
        self._counts[record.status] -= 1
        self._counts[status] += 1
        record.status = status
        record.error = error
        record.completed_at = record.updated_at
        if final is not None:
            record.final_event = final
        record.lease_owner = record.lease_expires_at = None
        self._switch_ttls(entry)
        _ring(entry, ended=True)

    def _switch_ttls(self, entry: _Entry) -> None:
        now, ttl = _now(), self.ttl
        stream_id = entry.record.stream_id
        del self._running[stream_id]
        entry.expires_at = now + ttl.completed
        self._finished[stream_id] = entry
        if ttl.chunks_after_complete == 0:
            self._drop_log(entry)
        elif ttl.chunks_after_complete < ttl.completed:
            self._log_drops.append((now + ttl.chunks_after_complete, entry))
        if ttl.run_steps_after_complete == 0:
            entry.steps = None
        elif ttl.run_steps_after_complete < ttl.completed:
            self._steps_drops.append((now + ttl.run_steps_after_complete, entry))

    def _read(self, entry: _Entry, after: int, limit: int | None) -> list[Chunk]:
        """Chunks after ``after``; the snapshot stands in for trimmed chunks."""
        last_seq = entry.record.last_seq
        if limit == 0 or after >= last_seq:
            return []
        if entry.log is None:
            # The log was dropped after the job finished: only its end remains.
            assert entry.terminal is not None
            return [Chunk(last_seq, decode(entry.terminal))]

        first = entry.log[0][0] if entry.log else last_seq + 1
        chunks: list[Chunk] = []
        snapshot = entry.snapshot
        # The snapshot never replaces the terminal chunk, so followers see the end.
        newest = last_seq - 1 if entry.finished else last_seq
        if after + 1 < first and snapshot is not None and after < snapshot[0] <= newest:
            data = decode(snapshot[1])
            chunks.append(Chunk(snapshot[0], {"event": "snapshot", "data": data}))
            after = snapshot[0]
            limit = None if limit is None else limit - 1

        chunks.extend(self._tail(entry.log, after, limit))
        return chunks

    @staticmethod
    def _tail(
        log: collections.deque[_Item], after: int, limit: int | None
    ) -> list[Chunk]:
        """The kept chunks with ``seq > after``, at most ``limit`` of them."""
        if not log:
            return []
        first = log[0][0]
        start = max(after + 1 - first, 0)
        stop = len(log) if limit is None else min(len(log), start + limit)
        return [Chunk(seq, decode(blob)) for seq, blob in _between(log, start, stop)]

    @staticmethod
    def _forget_trimmed(log: collections.deque[_Item], state: _Group) -> None:
        # Pending seqs are in delivery order, so the trimmed ones come first.
        first = log[0][0] if log else 0
        while state.pending:
            seq = next(iter(state.pending))
            if seq >= first:
                break
            del state.pending[seq]

    async def _follow(self, stream_id: str, after: int) -> AsyncIterator[Chunk]:
        validate_id(stream_id)
        _check_cursor(after)
        entry = self._need(stream_id)
        self._check_ahead(entry, after)
        while True:
            if not self._alive(entry):
                raise JobNotFound(f"job {stream_id} was deleted or expired")
            chunks = self._read(entry, after, _PAGE)
            if not chunks and entry.finished:
                return
            if not chunks:
                if entry.bell is None:
                    entry.bell = asyncio.Event()
                await self._wait(entry, entry.bell)
                continue

            for chunk in chunks:
                yield chunk
                after = chunk.seq

            if entry.finished and after >= entry.record.last_seq:
                return

    async def _wait(self, entry: _Entry, event: asyncio.Event) -> None:
        """Wait for ``event``; the job's timer rings it too if the job expires."""
        if entry.timer is None:
            self._arm(entry)
        await event.wait()

    def _arm(self, entry: _Entry) -> None:
        # One timer per job, not one per waiter: at the job's expiry it drops the
        # job (which wakes every waiter) or, if the TTL slid, arms itself again.
        loop = asyncio.get_running_loop()
        delay = max(entry.expires_at - _now(), 0.0)
        entry.timer = loop.call_later(delay, self._on_deadline, entry)

    def _on_deadline(self, entry: _Entry) -> None:
        entry.timer = None
        waited_on = entry.bell is not None or entry.ended is not None
        if self._alive(entry) and waited_on:
            self._arm(entry)
