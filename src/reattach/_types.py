"""The values reattach passes around: jobs, chunks, snapshots and policies."""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "JOB_FIELDS",
    "Chunk",
    "Job",
    "JobStatus",
    "Limits",
    "Snapshot",
    "TTLPolicy",
    "check_job_fields",
    "now_ms",
]


def now_ms() -> int:
    """Milliseconds since the epoch, the unit of every time in a job record."""
    return time.time_ns() // 1_000_000


class JobStatus(enum.StrEnum):
    """Where a job is: ``running``, then exactly one of the three terminal states."""

    RUNNING = "running"
    COMPLETE = "complete"
    ERROR = "error"
    ABORTED = "aborted"

    @property
    def is_terminal(self) -> bool:
        """Whether the job has finished in this state."""
        return self is not JobStatus.RUNNING


@dataclass(frozen=True, slots=True)
class Chunk:
    """One stored event and its position ``seq`` (1, 2, 3, ...) in its job's log."""

    seq: int
    event: Any

    @property
    def is_terminal(self) -> bool:
        """Whether this is the ``final`` chunk that ends every job's log."""
        return isinstance(self.event, dict) and self.event.get("event") == "final"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Aggregated content of a job up to and including ``seq``."""

    seq: int
    data: Any


@dataclass(frozen=True, slots=True)
class TTLPolicy:
    """How long, in seconds, a job's data lives.

    ``running`` slides from the last append or lease renewal, never from creation.
    After a job finishes its record lives ``completed`` seconds, its log
    ``chunks_after_complete`` and its run steps ``run_steps_after_complete``
    seconds; ``0`` deletes those at once.
    """

    running: int = 1200
    completed: int = 300
    chunks_after_complete: int = 300
    run_steps_after_complete: int = 300

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"TTLPolicy.{item.name} must be an int >= 0")
        if self.running == 0 or self.completed == 0:
            raise ValueError("TTLPolicy.running and .completed must be > 0")


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps that keep memory bounded.

    ``max_event_bytes`` is the largest event accepted, measured as JSON.
    ``max_chunks`` caps each job's log; older chunks are trimmed and a cursor that
    falls behind the cap is answered with the latest snapshot, then the tail.
    """

    max_event_bytes: int = 1 << 20
    max_chunks: int = 10_000

    def __post_init__(self) -> None:
        if self.max_event_bytes < 64:
            raise ValueError("Limits.max_event_bytes must be at least 64")
        if self.max_chunks < 16:
            raise ValueError("Limits.max_chunks must be at least 16")


@dataclass(slots=True)
class Job:
    """A job record. Times are milliseconds since the epoch."""

    stream_id: str
    user_id: str
    status: JobStatus = JobStatus.RUNNING
    created_at: int = 0
    updated_at: int = 0
    completed_at: int | None = None
    conversation_id: str | None = None
    error: str | None = None
    user_message: Any = None
    response_message_id: str | None = None
    sender: str | None = None
    sync_sent: bool = False
    final_event: Any = None
    endpoint: str | None = None
    icon_url: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    last_seq: int = 0
    lease_owner: str | None = None
    lease_expires_at: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        return data


#: Fields a caller may set through ``create_job(**fields)`` and ``update_job``.
JOB_FIELDS: frozenset[str] = frozenset(
    {
        "conversation_id",
        "user_message",
        "response_message_id",
        "sender",
        "sync_sent",
        "final_event",
        "endpoint",
        "icon_url",
        "model",
        "prompt_tokens",
        "metadata",
    }
)


def check_job_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check the names of caller-set record fields, as every store does.

    :raises TypeError: an unknown name, ``status`` (which only ``finish`` sets) or
        a ``metadata`` that is not a dict.
    """
    for name in fields:
        if name == "status":
            raise TypeError("a job's status changes only through finish()")
        if name not in JOB_FIELDS:
            raise TypeError(f"unknown job field {name!r}")

    if "metadata" in fields and not isinstance(fields["metadata"], dict):
        raise TypeError("metadata must be a dict")
    return dict(fields)
