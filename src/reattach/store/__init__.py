"""Job stores: the abstract contract, the memory backend and the Redis backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import ContentSource, JobStore
from ._memory import MemoryJobStore

if TYPE_CHECKING:
    from ._redis import RedisJobStore

__all__ = ["ContentSource", "JobStore", "MemoryJobStore", "RedisJobStore"]


def __getattr__(name: str) -> Any:
    # The Redis backend imports redis-py, an optional dependency: load it on use.
    if name == "RedisJobStore":
        from ._redis import RedisJobStore

        return RedisJobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
