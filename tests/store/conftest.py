"""The ``store`` fixture: one behaviour suite, run on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from reattach import JobStore, MemoryJobStore, RedisJobStore

from ..redis_servers import RedisCluster, RedisServer

StoreFactory = Callable[..., Awaitable[JobStore]]

BACKENDS = ["memory", "redis", "cluster"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test: memory, redis or cluster."""
    return str(request.param)


@pytest.fixture
async def make_store(
    backend: str, request: pytest.FixtureRequest, key_prefix: str
) -> AsyncIterator[StoreFactory]:
    """A factory of initialised stores on ``backend``; closes all it made.

    Stores made by one test share a backend and a key prefix, so two of them act
    as two processes sharing one Redis.
    """
    made: list[JobStore] = []
    clients: list[Any] = []

    async def factory(**options: Any) -> JobStore:
        store: JobStore
        if backend == "memory":
            if made:
                # The memory store lives in one process: share the first one.
                return made[0]
            store = MemoryJobStore(**options)
        else:
            client = redis_client(backend, request)
            clients.append(client)
            store = RedisJobStore(client, prefix=key_prefix, **options)
        await store.initialize()
        made.append(store)
        return store

    yield factory
    for store in reversed(made):
        await store.aclose()
    for client in clients:
        await client.aclose()


@pytest.fixture
async def store(make_store: StoreFactory) -> JobStore:
    """An initialised store on the backend under test."""
    return await make_store()


def redis_client(backend: str, request: pytest.FixtureRequest) -> Any:
    """A new redis-py asyncio client for ``backend`` (``redis`` or ``cluster``)."""
    if backend == "redis":
        server: RedisServer = request.getfixturevalue("redis_standalone")
        return aioredis.Redis.from_url(server.url)
    cluster: RedisCluster = request.getfixturevalue("redis_cluster_nodes")
    host, port = cluster.startup_nodes[0]
    return aioredis.RedisCluster(host=host, port=port)
