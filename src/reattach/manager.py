"""GenerationManager: runs generations as jobs, coalesces writes, fans out, aborts."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from . import aggregate
from ._errors import (
    InvalidCursor,
    InvalidEvent,
    JobExists,
    JobNotFound,
    ReattachError,
    TooManyJobs,
)
from ._ids import validate_id
from ._json import final_event
from ._local_job import LocalJob
from ._types import Chunk, Job, JobStatus
from .store import JobStore

__all__ = ["GenerationManager", "JobState", "ManagerStats"]

logger = logging.getLogger(__name__)

#: Upper bounds (seconds) of the append latency histogram in :class:`ManagerStats`.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)

SHUTDOWN_ERROR = "the generation was interrupted because its server shut down"


@dataclass(frozen=True, slots=True)
class JobState:
    """What :meth:`GenerationManager.status` answers."""

    job: Job
    last_seq: int
    content: list[Any] | None


@dataclass(slots=True)
class ManagerStats:
    """Counters a metrics endpoint reads; all since the manager started."""

    jobs_started: int = 0
    events_appended: int = 0
    append_calls: int = 0
    append_seconds: float = 0.0
    followers: int = 0
    reattaches: int = 0
    local_jobs: int = 0
    append_latency_buckets: dict[float, int] = field(
        default_factory=lambda: dict.fromkeys(LATENCY_BUCKETS, 0)
    )

    def observe_append(self, events: int, seconds: float) -> None:
        self.events_appended += events
        self.append_calls += 1
        self.append_seconds += seconds
        for bound in LATENCY_BUCKETS:
            if seconds <= bound:
                self.append_latency_buckets[bound] += 1
                break


class GenerationManager:
    """Runs generations in background tasks and serves their events to followers.

    Any number of managers, in any number of processes, may share one store: a job
    is followed, inspected and aborted from any of them. The process that runs a
    job renews its lease; every manager's cleanup ends jobs whose producer died.

    :param store: where jobs live; the manager does not close it.
    :param instance_id: this manager's name in leases (default: host, pid, random).
    :param lease_ttl: seconds a lease lasts; it is renewed every third of that.
    :param snapshot_every: save the aggregated content every this many events.
    :param max_jobs_per_user: running jobs one user may have (``None``: no cap).
    :param coalesce: batch the events that arrive while a write is in flight.
    :param buffer_size: chunks of each local job kept for same-process followers.
    :param max_pending: events queued for one job before its source waits.
    :param shutdown_grace: seconds :meth:`aclose` lets local jobs finish by
        themselves before ending them with an error.
    """

    def __init__(
        self,
        store: JobStore,
        *,
        instance_id: str | None = None,
        lease_ttl: float = 15.0,
        snapshot_every: int = 100,
        max_jobs_per_user: int | None = None,
        coalesce: bool = True,
        buffer_size: int = 256,
        max_pending: int = 4096,
        shutdown_grace: float = 0.0,
    ) -> None:
        if lease_ttl <= 0 or snapshot_every < 1 or buffer_size < 1 or max_pending < 1:
            raise ValueError(
                "lease_ttl, snapshot_every, buffer_size and max_pending must be > 0"
            )
        self.store = store
        self.instance_id = validate_id(
            instance_id or _default_instance_id(), "instance_id"
        )
        self.lease_ttl = lease_ttl
        self.snapshot_every = snapshot_every
        self.max_jobs_per_user = max_jobs_per_user
        self.coalesce = coalesce
        self.buffer_size = buffer_size
        self.max_pending = max_pending
        self.shutdown_grace = shutdown_grace
        self.stats = ManagerStats()
        self._local: dict[str, _Run] = {}
        self._background: list[asyncio.Task[None]] = []
        self._accepting = False
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> GenerationManager:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Start renewing leases and cleaning up; safe to call twice."""
        if self._accepting or self._closed:
            return
        await self.store.initialize()
        self._accepting = True
        self._background = [
            asyncio.create_task(
                self._renew_leases(), name=f"reattach-leases-{self.instance_id}"
            ),
            asyncio.create_task(
                self._clean_up(), name=f"reattach-cleanup-{self.instance_id}"
            ),
        ]
        logger.info("manager %s started", self.instance_id)

    async def aclose(self) -> None:
        """Stop accepting jobs, end the local ones and stop background work.

        Local jobs get ``shutdown_grace`` seconds to finish; the rest are cancelled
        and end with status ``error``. Safe to call twice.
        """
        if self._closed:
            return
        self._closed = True
        self._accepting = False
        runs = list(self._local.values())
        if runs and self.shutdown_grace > 0:
            await asyncio.wait(
                [run.task for run in runs if run.task], timeout=self.shutdown_grace
            )
        for run in list(self._local.values()):
            await run.stop(SHUTDOWN_ERROR)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        logger.info("manager %s stopped", self.instance_id)

    # -- starting ------------------------------------------------------------------

    async def start(
        self,
        user_id: str,
        source: AsyncIterable[Any],
        *,
        stream_id: str | None = None,
        conversation_id: str | None = None,
        client_request_id: str | None = None,
        aggregator: aggregate.Aggregator | None = None,
        **fields: Any,
    ) -> Job:
        """Start a job that runs ``source`` in the background; return its record.

        The job outlives the caller: when ``source`` ends the job is ``complete``,
        when it raises ``error`` (its message goes to followers, its traceback to
        the log), when aborted ``aborted``. A second call with the same
        ``client_request_id`` from the same user returns the first job, on any
        process, and runs nothing. ``aggregator`` (default: a
        :class:`~reattach.aggregate.TextAggregator`) builds the content that
        :meth:`status` reports; ``fields`` are job record fields.

        :raises TooManyJobs: the user already runs ``max_jobs_per_user`` jobs.
        :raises JobExists: ``stream_id`` is taken.
        :raises InvalidId: ``user_id`` or ``stream_id`` is not a valid id.
        :raises ReattachError: the manager is not open.
        """
        if not self._accepting:
            raise ReattachError("the manager is not open (use `async with manager`)")
        validate_id(user_id, "user_id")
        if client_request_id is not None:
            stream_id = request_stream_id(user_id, client_request_id)
        stream_id = validate_id(stream_id or uuid.uuid4().hex, "stream_id")
        await self._check_quota(user_id)
        aggregator = aggregator or aggregate.TextAggregator()
        try:
            job = await self.store.create_job(
                stream_id, user_id, conversation_id=conversation_id, **fields
            )
        except JobExists:
            if client_request_id is None:
                raise
            return await self.get_job(stream_id, user_id)

        # The lease is taken at once: a process that dies before its first renewal
        # must not leave the job to the much longer default lease of the store.
        await asyncio.gather(
            self.store.renew_lease(stream_id, self.instance_id, self.lease_ttl),
            self.store.save_snapshot(stream_id, 0, aggregator.snapshot()),
        )
        run = _Run(self, job, aggregator)
        self._local[stream_id] = run
        self.stats.jobs_started += 1
        self.stats.local_jobs = len(self._local)
        run.launch(source)
        logger.info("job %s started for user %s", stream_id, user_id)
        return job

    async def _check_quota(self, user_id: str) -> None:
        if self.max_jobs_per_user is None:
            return
        running = await self.store.get_user_jobs(user_id, status=JobStatus.RUNNING)
        if len(running) >= self.max_jobs_per_user:
            raise TooManyJobs(
                f"user {user_id} already runs {len(running)} jobs "
                f"(the limit is {self.max_jobs_per_user})"
            )

    # -- reading -------------------------------------------------------------------

    async def get_job(self, stream_id: str, user_id: str) -> Job:
        """The job's record.

        :raises JobNotFound: no such job, or it belongs to another user.
        """
        job = await self.store.get_job(validate_id(stream_id))
        if job is None or job.user_id != user_id:
            raise JobNotFound(f"no job {stream_id}")
        return job

    async def subscribe(
        self, stream_id: str, user_id: str, *, after: int = 0
    ) -> AsyncIterator[Chunk]:
        """Yield the job's chunks with ``seq > after`` in order, through the last.

        Followers in the producing process are fed from memory; others read the
        store's log whenever it rings. May start with a snapshot chunk when
        ``after`` is older than what the log keeps (see ``JobStore.read_chunks``).

        :raises JobNotFound: no such job, or it belongs to another user.
        :raises InvalidCursor: ``after`` is negative or ahead of the log.
        """
        cursor = await self._open_cursor(stream_id, user_id, after)
        self.stats.followers += 1
        self.stats.reattaches += after > 0
        try:
            run = self._local.get(stream_id)
            if run is not None:
                async for chunk in self._catch_up(run, cursor):
                    cursor = chunk.seq
                    yield chunk
                    if chunk.is_terminal:
                        return
                async for chunk in run.follow(cursor):
                    cursor = chunk.seq
                    yield chunk
                    if chunk.is_terminal:
                        return
            async for chunk in self.store.follow(stream_id, after=cursor):
                yield chunk
        finally:
            self.stats.followers -= 1

    async def _catch_up(self, run: _Run, cursor: int) -> AsyncIterator[Chunk]:
        # A cursor older than the local tail reads the store until it reaches the
        # tail, then the follower is fed from memory like the others.
        while run.writer.chunks_after(cursor) is None and not run.writer.closed:
            page = await self.store.read_chunks(
                run.stream_id, after=cursor, limit=self.buffer_size
            )
            if not page:
                return
            for chunk in page:
                cursor = chunk.seq
                yield chunk

    async def _open_cursor(self, stream_id: str, user_id: str, after: int) -> int:
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise InvalidCursor(f"cursor must be an integer >= 0, got {after!r}")
        run = self._local.get(stream_id)
        if run is not None:
            owner, last_seq = run.user_id, run.writer.last_seq
        else:
            job = await self.get_job(stream_id, user_id)
            owner, last_seq = job.user_id, job.last_seq
        if owner != user_id:
            raise JobNotFound(f"no job {stream_id}")
        if after > last_seq:
            raise InvalidCursor(f"cursor {after} is ahead of the log ({last_seq})")
        return after

    async def status(self, stream_id: str, user_id: str) -> JobState:
        """The job, its last ``seq`` and its aggregated content.

        The content comes from this process's aggregator for a local job, else from
        the latest snapshot and the log after it, so it costs the same however
        long the job is.

        :raises JobNotFound: no such job, or it belongs to another user.
        """
        job = await self.get_job(stream_id, user_id)
        run = self._local.get(stream_id)
        if run is not None:
            content: list[Any] | None = run.aggregator.get_content_parts()
        else:
            content = await self._rebuild_content(stream_id)
        return JobState(job, job.last_seq, content)

    async def _rebuild_content(self, stream_id: str) -> list[Any] | None:
        snapshot = await self.store.get_snapshot(stream_id)
        if snapshot is None:
            return await self.store.get_content_parts(stream_id)
        try:
            aggregator = aggregate.restore(snapshot.data)
        except ValueError:
            return await self.store.get_content_parts(stream_id)
        for chunk in await self.store.read_chunks(stream_id, after=snapshot.seq):
            aggregator.feed(chunk.event)
        return aggregator.get_content_parts()

    async def active_jobs(self, user_id: str) -> list[Job]:
        """The user's running jobs, oldest first, on whichever process they run."""
        return await self.list_jobs(user_id, status=JobStatus.RUNNING)

    async def list_jobs(
        self, user_id: str, *, status: JobStatus | None = None
    ) -> list[Job]:
        """The user's jobs that still exist, oldest first, optionally by status."""
        return await self.store.get_user_jobs(
            validate_id(user_id, "user_id"), status=status
        )

    # -- ending --------------------------------------------------------------------

    async def abort(self, stream_id: str, user_id: str) -> bool:
        """Abort a running job from any process; ``False`` if it had finished.

        The job ends ``aborted`` at once; the process running it cancels its
        source (closing an upstream request) as soon as it hears of it. Here that
        happens before this method returns.

        :raises JobNotFound: no such job, or it belongs to another user.
        """
        await self.get_job(stream_id, user_id)
        won = await self.store.finish(stream_id, JobStatus.ABORTED)
        run = self._local.get(stream_id)
        if run is not None:
            await run.cancel()
        if won:
            logger.info("job %s aborted", stream_id)
        return won

    async def delete(self, stream_id: str, user_id: str) -> bool:
        """Delete a job and its log, aborting it first if it runs.

        :raises JobNotFound: no such job, or it belongs to another user.
        """
        job = await self.get_job(stream_id, user_id)
        if job.status is JobStatus.RUNNING:
            await self.abort(stream_id, user_id)
        return await self.store.delete_job(stream_id)

    # -- background work -----------------------------------------------------------

    # redis-py can swallow a cancellation that lands inside a command, so the
    # loops below also stop on the closed flag rather than on CancelledError alone.

    async def _renew_leases(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.lease_ttl / 3)
            for run in list(self._local.values()):
                await self._renew(run)

    async def _renew(self, run: _Run) -> None:
        try:
            held = await self.store.renew_lease(
                run.stream_id, self.instance_id, self.lease_ttl
            )
        except ReattachError as exc:
            logger.warning(
                "renewing the lease of job %s failed: %s", run.stream_id, exc
            )
            return
        if not held:
            # Finished or taken elsewhere: stop producing what nobody may append.
            await run.cancel()

    async def _clean_up(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.lease_ttl / 2)
            try:
                reaped = await self.store.cleanup()
            except ReattachError as exc:
                logger.warning("cleanup failed: %s", exc)
                continue
            if reaped:
                logger.info("cleanup ended or dropped %d jobs", reaped)

    def _forget(self, run: _Run) -> None:
        if self._local.get(run.stream_id) is run:
            del self._local[run.stream_id]
        self.stats.local_jobs = len(self._local)


class _Run:
    """One job running in this process: its source task, writer and aggregator."""

    def __init__(
        self, manager: GenerationManager, job: Job, aggregator: aggregate.Aggregator
    ) -> None:
        self.manager = manager
        self.store = manager.store
        self.stream_id = job.stream_id
        self.user_id = job.user_id
        self.aggregator = aggregator
        self.task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._snapshot_seq = 0
        self._ending = False
        self._stop_reason: str | None = None
        self.writer = LocalJob(
            manager.store,
            job.stream_id,
            job.user_id,
            coalesce=manager.coalesce,
            buffer_size=manager.buffer_size,
            max_pending=manager.max_pending,
            on_batch=self._aggregate,
            observe=manager.stats.observe_append,
        )
        self.store.set_graph(job.stream_id, aggregator)

    def launch(self, source: AsyncIterable[Any]) -> None:
        self.task = asyncio.create_task(self._produce(source), name=self.stream_id)
        self._watch = asyncio.create_task(
            self._watch_finish(), name=f"reattach-watch-{self.stream_id}"
        )

    async def follow(self, cursor: int) -> AsyncIterator[Chunk]:
        """The local tail after ``cursor``; stops where the store must take over."""
        while True:
            changed = self.writer.changed()
            chunks = self.writer.chunks_after(cursor)
            if chunks is None:
                return
            for chunk in chunks:
                cursor = chunk.seq
                yield chunk
            if not chunks:
                if self.writer.closed:
                    return
                await changed.wait()

    # -- producing -----------------------------------------------------------------

    async def _produce(self, source: AsyncIterable[Any]) -> None:
        status, error = JobStatus.COMPLETE, None
        iterator = aiter(source)
        try:
            async for event in iterator:
                await self.writer.put(event)
            await self.writer.drain()
        except asyncio.CancelledError:
            status = JobStatus.ABORTED
        except Exception as exc:
            status, error = JobStatus.ERROR, _error_message(exc)
            logger.warning("job %s failed", self.stream_id, exc_info=True)
        finally:
            self._ending = True
            await _close_iterator(iterator)
        if self._stop_reason is not None:
            status, error = JobStatus.ERROR, self._stop_reason
        if status is not JobStatus.ABORTED:
            # What the source emitted before it ended belongs before the end.
            with contextlib.suppress(ReattachError):
                await self.writer.drain()
        await self._end(status, error)

    async def _end(self, status: JobStatus, error: str | None) -> None:
        try:
            if await self._finish(status, error):
                job = await self.store.get_job(self.stream_id)
                if job is not None:
                    terminal = final_event(status.value, job.error, None)
                    self.writer.deliver_terminal(Chunk(job.last_seq, terminal))
                logger.info("job %s finished: %s", self.stream_id, status.value)
        except ReattachError as exc:
            logger.warning("finishing job %s failed: %s", self.stream_id, exc)
        finally:
            self.writer.close()
            await self._stop_watching()
            self.manager._forget(self)

    async def _stop_watching(self) -> None:
        watch = self._watch
        if watch is None or watch is asyncio.current_task():
            return
        watch.cancel()
        # The job has finished, so even a watch whose cancellation a Redis call
        # swallowed returns at its next status check.
        await asyncio.wait([watch], timeout=5)

    async def _finish(self, status: JobStatus, error: str | None) -> bool:
        try:
            return await self.store.finish(self.stream_id, status, error=error)
        except InvalidEvent:
            # Under a very small event limit the message may not fit: end the job
            # all the same, with a message that does.
            return await self.store.finish(
                self.stream_id, status, error="error (message too large to store)"
            )

    def _aggregate(self, chunks: Sequence[Chunk]) -> None:
        for chunk in chunks:
            self.aggregator.feed(chunk.event)
        last = chunks[-1].seq
        if last - self._snapshot_seq >= self.manager.snapshot_every:
            self._snapshot_seq = last
            snapshot = self.aggregator.snapshot()
            task = asyncio.create_task(self._save_snapshot(last, snapshot))
            self.manager._background.append(task)
            task.add_done_callback(self.manager._background.remove)

    async def _save_snapshot(self, seq: int, snapshot: Any) -> None:
        try:
            await self.store.save_snapshot(self.stream_id, seq, snapshot)
        except ReattachError as exc:
            logger.warning(
                "saving a snapshot of job %s failed: %s", self.stream_id, exc
            )

    # -- stopping ------------------------------------------------------------------

    async def _watch_finish(self) -> None:
        # Another process may finish (abort) the job: stop the source when it does.
        with contextlib.suppress(ReattachError):
            await self.store.wait_finished(self.stream_id)
            if not self._ending:
                await self.cancel()

    async def cancel(self) -> None:
        """Cancel the source and wait until its cleanup has run."""
        task = self.task
        if task is None or task.done() or task is asyncio.current_task():
            return
        task.cancel()
        await asyncio.wait([task])

    async def stop(self, reason: str) -> None:
        """End the job with ``error`` (shutdown), cancelling its source."""
        self._stop_reason = reason
        await self.cancel()


def _error_message(exc: BaseException) -> str:
    # Bounded, so the terminal event always fits under Limits.max_event_bytes.
    message = str(exc) or type(exc).__name__
    return message if len(message) <= 300 else message[:297] + "..."


async def _close_iterator(iterator: AsyncIterator[Any]) -> None:
    # An async generator left at a `yield` runs its `finally` only when closed.
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


def request_stream_id(user_id: str, client_request_id: str) -> str:
    """The stream id of a user's request, the same on every process."""
    if not isinstance(client_request_id, str) or not 1 <= len(client_request_id) <= 256:
        raise ValueError("client_request_id must be a string of 1 to 256 characters")
    digest = hashlib.sha256(f"{user_id}\0{client_request_id}".encode()).hexdigest()
    return f"req-{digest[:40]}"


def _default_instance_id() -> str:
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in ".-")[:64]
    return f"{host or 'host'}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
