"""What a running server holds: the store, the manager, the upstream client."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import openai

from .._errors import BackendUnavailable
from .._types import Limits
from ..manager import GenerationManager
from ..store import JobStore, MemoryJobStore
from .auth import Authenticator
from .settings import Settings, redact_url
from .upstream import make_client

__all__ = ["Runtime", "make_store", "open_runtime", "open_store"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Runtime:
    """The live parts of a server, shared by every request."""

    settings: Settings
    manager: GenerationManager
    auth: Authenticator
    upstream: openai.AsyncOpenAI | None = None


def make_store(redis_url: str | None, limits: Limits | None = None) -> JobStore:
    """Redis with a URL (``redis+cluster://`` for a Cluster), else memory."""
    limits = limits if limits is not None else Limits()
    if redis_url is None:
        return MemoryJobStore(limits=limits)
    from ..store import RedisJobStore

    store: JobStore = RedisJobStore.from_url(redis_url, limits=limits)
    return store


@contextlib.asynccontextmanager
async def open_store(
    redis_url: str | None, limits: Limits | None = None
) -> AsyncIterator[JobStore]:
    """An initialised store that has answered a ping; closed on the way out.

    :raises BackendUnavailable: Redis is configured and does not answer.
    """
    store = make_store(redis_url, limits)
    try:
        await store.initialize()
        await store.ping()
    except BackendUnavailable as exc:
        await store.aclose()
        where = redact_url(redis_url or "")
        raise BackendUnavailable(f"cannot reach Redis at {where}: {exc}") from exc
    try:
        yield store
    finally:
        await store.aclose()


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Open the store (checking that it answers), the upstream client and the manager.

    On the way out the manager ends this process's jobs before the upstream client
    and the store close.

    :raises BackendUnavailable: Redis is configured and does not answer.
    """
    limits = Limits(max_event_bytes=settings.max_event_bytes)
    async with contextlib.AsyncExitStack() as stack:
        store = await stack.enter_async_context(open_store(settings.redis_url, limits))
        upstream = _upstream_client(settings)
        if upstream is not None:
            stack.push_async_callback(upstream.close)
        manager = GenerationManager(store, max_jobs_per_user=settings.max_jobs_per_user)
        await stack.enter_async_context(manager)
        logger.info("serving with the %s store", type(store).__name__)
        yield Runtime(settings, manager, Authenticator(settings.tokens), upstream)


def _upstream_client(settings: Settings) -> openai.AsyncOpenAI | None:
    if settings.upstream_url is None:
        return None
    return make_client(
        settings.upstream_url,
        settings.upstream_key,
        max_retries=settings.upstream_max_retries,
    )
