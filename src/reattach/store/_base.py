"""The contract every job store keeps."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Protocol

from .._types import Chunk, Job, JobStatus, Limits, Snapshot, TTLPolicy

__all__ = ["LEASE_EXPIRED", "ContentSource", "JobStore"]

#: The error of a job that ``cleanup`` ended because its lease expired.
LEASE_EXPIRED = "the producer stopped renewing its lease"


class ContentSource(Protocol):
    """What :meth:`JobStore.set_graph` keeps: a live object that knows the content."""

    def get_content_parts(self) -> list[Any]: ...

    def get_run_steps(self) -> list[Any]: ...


class JobStore(abc.ABC):
    """A durable, ordered log of events per job, plus the job's record.

    Every backend keeps the invariants of the design: ``seq`` is dense per job;
    a job leaves ``running`` exactly once, through :meth:`finish`, which appends the
    terminal chunk in the same atomic step; a request that fails changes nothing.

    Ids (``stream_id``, ``user_id``, group and consumer names) must match
    ``[A-Za-z0-9._:-]{1,128}``, or :class:`~reattach.InvalidId` is raised. A store
    that cannot reach its backend raises :class:`~reattach.BackendUnavailable`.
    """

    ttl: TTLPolicy
    limits: Limits

    # -- lifecycle ---------------------------------------------------------------

    async def initialize(self) -> None:  # noqa: B027 - optional hook
        """Prepare the store (connect, load scripts). Safe to call twice."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Stop background work and release what the store owns. Safe to call twice.

        A client passed in by the caller is not closed; one the store made is.
        """

    async def ping(self) -> None:  # noqa: B027 - the memory store is always there
        """Check that the backend answers.

        :raises BackendUnavailable: it does not.
        """

    async def __aenter__(self) -> JobStore:
        await self.initialize()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- job records -------------------------------------------------------------

    @abc.abstractmethod
    async def create_job(
        self,
        stream_id: str,
        user_id: str,
        *,
        conversation_id: str | None = None,
        **fields: Any,
    ) -> Job:
        """Create a running job with an empty log and return its record.

        ``fields`` are record fields from :data:`reattach._types.JOB_FIELDS`; any
        other name raises :class:`TypeError`. The job starts with a lease that
        expires after ``ttl.running`` seconds (see :meth:`renew_lease`).

        :raises JobExists: the id is taken (ids are never reused).
        """

    @abc.abstractmethod
    async def get_job(self, stream_id: str) -> Job | None:
        """The job's record, or ``None`` when there is no such job."""

    async def has_job(self, stream_id: str) -> bool:
        """Whether the job exists."""
        return await self.get_job(stream_id) is not None

    @abc.abstractmethod
    async def update_job(self, stream_id: str, **fields: Any) -> None:
        """Set record fields (names from ``JOB_FIELDS``) on a job.

        A status change goes through :meth:`finish`; passing ``status`` raises
        :class:`TypeError`, as does any unknown name.

        :raises JobNotFound: no such job.
        """

    @abc.abstractmethod
    async def delete_job(self, stream_id: str) -> bool:
        """Delete the job and everything stored for it; ``False`` if it did not exist.

        Followers of a deleted job stop with :class:`JobNotFound`.
        """

    @abc.abstractmethod
    async def get_running_jobs(self) -> list[Job]:
        """Every running job; on Redis two round trips, however many there are."""

    @abc.abstractmethod
    async def get_user_jobs(
        self, user_id: str, *, status: JobStatus | None = None
    ) -> list[Job]:
        """The jobs of one user that still exist, oldest first, optionally by status."""

    @abc.abstractmethod
    async def cleanup(self) -> int:
        """End running jobs whose lease has expired and drop stale index entries.

        A job whose lease expired is finished with status ``error`` (and its
        terminal chunk); a job whose lease is fresh is never touched, however old.
        Safe to run on several processes at once: each job is ended once.
        Returns the number of jobs ended plus index entries removed.
        """

    @abc.abstractmethod
    async def get_job_count(self) -> int:
        """The number of jobs that exist, in any status."""

    @abc.abstractmethod
    async def get_job_count_by_status(self, status: JobStatus) -> int:
        """The exact number of existing jobs in ``status``."""

    # -- the log -----------------------------------------------------------------

    async def append_chunk(self, stream_id: str, event: Any) -> int:
        """Append one event; return its ``seq``. See :meth:`append_chunks`."""
        return await self.append_chunks(stream_id, [event])

    @abc.abstractmethod
    async def append_chunks(self, stream_id: str, events: Sequence[Any]) -> int:
        """Append a batch atomically (all or nothing); return the last ``seq``.

        The batch gets the next dense seqs. An empty batch writes nothing and
        returns the current last ``seq``. Appending slides the ``running`` TTL.

        :raises InvalidEvent: an event is not a JSON value (nothing is written).
        :raises PayloadTooLarge: an event is over ``limits.max_event_bytes``.
        :raises JobNotFound: no such job.
        :raises JobFinished: the job has left ``running``.
        """

    @abc.abstractmethod
    async def read_chunks(
        self, stream_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[Chunk]:
        """The chunks with ``seq > after``, in order, at most ``limit`` of them.

        When ``after`` is behind the oldest chunk kept (the log is capped at
        ``limits.max_chunks``), the answer starts with the latest snapshot as a
        chunk ``Chunk(snapshot.seq, {"event": "snapshot", "data": snapshot.data})``
        (when there is one newer than ``after``), followed by the chunks after it.

        :raises JobNotFound: no such job.
        :raises InvalidCursor: ``after`` is negative or ahead of the log.
        """

    @abc.abstractmethod
    def follow(self, stream_id: str, *, after: int = 0) -> AsyncIterator[Chunk]:
        """Yield every chunk with ``seq > after`` in order, then the live ones.

        Ends after the terminal chunk. Checks come at the first iteration.

        :raises JobNotFound: no such job, or it was deleted while followed.
        :raises InvalidCursor: ``after`` is negative or ahead of the log.
        """

    @abc.abstractmethod
    async def wait_finished(self, stream_id: str) -> Job | None:
        """Wait until the job leaves ``running``; return its record then.

        Returns ``None`` if the job does not exist or is deleted while waited on.
        """

    @abc.abstractmethod
    async def finish(
        self,
        stream_id: str,
        status: JobStatus,
        *,
        error: str | None = None,
        final_event: Any = None,
    ) -> bool:
        """Move the job out of ``running``: the one compare-and-set.

        In the same atomic step the terminal chunk
        ``{"event": "final", "data": {"status": ..., "error": ...}}`` is appended
        (``data`` also holds ``final_event`` when one is given), ``completed_at``
        is set and the TTLs switch to the completed policy. Returns ``True`` for
        the one call that won, ``False`` if the job had already finished.

        :raises ValueError: ``status`` is ``running``.
        :raises InvalidEvent: ``final_event`` is not a JSON value.
        :raises JobNotFound: no such job.
        """

    @abc.abstractmethod
    async def renew_lease(self, stream_id: str, owner: str, ttl: float) -> bool:
        """Extend the producer's lease to ``ttl`` seconds from now.

        Also slides the ``running`` TTL of the job's keys. Returns ``False`` when
        the job is not running or another owner holds a lease that has not expired.
        """

    # -- snapshots and content -----------------------------------------------------

    @abc.abstractmethod
    async def save_snapshot(self, stream_id: str, seq: int, data: Any) -> None:
        """Keep ``data`` as the aggregated content up to ``seq``.

        An older snapshot than the one kept is ignored.

        :raises JobNotFound: no such job.
        :raises InvalidCursor: ``seq`` is ahead of the log.
        :raises InvalidEvent: ``data`` is not a JSON value.
        """

    @abc.abstractmethod
    async def get_snapshot(self, stream_id: str) -> Snapshot | None:
        """The latest snapshot, or ``None``."""

    @abc.abstractmethod
    def set_graph(self, stream_id: str, graph: ContentSource) -> None:
        """Keep a weak reference to a live content source in this process."""

    @abc.abstractmethod
    def set_content_parts(self, stream_id: str, parts: list[Any]) -> None:
        """Keep content parts in this process, for :meth:`get_content_parts`."""

    @abc.abstractmethod
    async def get_content_parts(self, stream_id: str) -> list[Any] | None:
        """The job's content parts, ``None`` when the job has none or is unknown.

        This process's graph or parts come first; otherwise the parts are rebuilt
        from the latest snapshot and the log after it.
        """

    @abc.abstractmethod
    async def get_run_steps(self, stream_id: str) -> list[Any]:
        """The job's run steps, ``[]`` when none were saved."""

    @abc.abstractmethod
    async def save_run_steps(self, stream_id: str, steps: list[Any]) -> None:
        """Keep the job's run steps.

        :raises JobNotFound: no such job.
        """

    @abc.abstractmethod
    async def clear_content_state(self, stream_id: str) -> None:
        """Drop the local graph and parts, the run steps and the snapshot.

        The log stays: it is what followers read.
        """

    # -- consumer groups -----------------------------------------------------------

    @abc.abstractmethod
    async def create_consumer_group(
        self, stream_id: str, group: str, *, start_from: int = 0
    ) -> None:
        """Create a consumer group that delivers chunks with ``seq > start_from``.

        ``start_from=-1`` means "only chunks appended from now on". Creating a group
        that exists already does nothing.

        :raises JobNotFound: no such job.
        """

    @abc.abstractmethod
    async def read_chunks_from_group(
        self,
        stream_id: str,
        group: str,
        consumer: str = "consumer-1",
        *,
        count: int | None = None,
    ) -> list[Chunk]:
        """Chunks this group has not delivered to any consumer yet (``[]`` if none).

        Delivered chunks stay pending for ``consumer`` until acknowledged.
        An unknown group answers ``[]``.
        """

    @abc.abstractmethod
    async def acknowledge_chunks(
        self, stream_id: str, group: str, seqs: Sequence[int]
    ) -> int:
        """Mark chunks as processed; return how many were pending."""

    @abc.abstractmethod
    async def delete_consumer_group(self, stream_id: str, group: str) -> bool:
        """Delete a group; ``False`` if it did not exist."""

    @abc.abstractmethod
    async def get_pending_chunks(
        self, stream_id: str, group: str, consumer: str = "consumer-1"
    ) -> list[Chunk]:
        """Chunks delivered to ``consumer`` and not yet acknowledged."""
