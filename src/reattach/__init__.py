"""reattach: LLM generations that outlive the connection that started them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import (
    BackendUnavailable,
    InvalidCursor,
    InvalidEvent,
    InvalidId,
    JobExists,
    JobFinished,
    JobNotFound,
    PayloadTooLarge,
    ReattachError,
    TooManyJobs,
)
from ._types import Chunk, Job, JobStatus, Limits, Snapshot, TTLPolicy
from .store import JobStore, MemoryJobStore

if TYPE_CHECKING:
    from .manager import GenerationManager
    from .store import RedisJobStore

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "Chunk",
    "GenerationManager",
    "InvalidCursor",
    "InvalidEvent",
    "InvalidId",
    "Job",
    "JobExists",
    "JobFinished",
    "JobNotFound",
    "JobStatus",
    "JobStore",
    "Limits",
    "MemoryJobStore",
    "PayloadTooLarge",
    "ReattachError",
    "RedisJobStore",
    "Snapshot",
    "TTLPolicy",
    "TooManyJobs",
]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the Redis backend needs the optional redis-py package.
    if name == "RedisJobStore":
        from .store import RedisJobStore

        return RedisJobStore
    if name == "GenerationManager":
        from .manager import GenerationManager

        return GenerationManager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
