"""Fixtures shared by every suite: real Redis servers and unique key prefixes."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from .redis_servers import (
    RedisCluster,
    RedisSentinel,
    RedisServer,
    redis_cluster,
    redis_sentinel,
    redis_server,
)

_prefixes = itertools.count(1)


@pytest.fixture(scope="session")
def redis_standalone() -> Iterator[RedisServer]:
    """One standalone ``redis-server`` for the whole session."""
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster_nodes() -> Iterator[RedisCluster]:
    """One three-node Redis Cluster for the whole session."""
    with redis_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel_nodes() -> Iterator[RedisSentinel]:
    """A master, its replica and a Sentinel watching them, for the whole session."""
    with redis_sentinel() as setup:
        yield setup


@pytest.fixture
def key_prefix() -> str:
    """A key prefix no other test uses, so tests share servers without flushing."""
    return f"t{os.getpid()}x{next(_prefixes)}"
