"""Manager suites run on every backend, through the store suite's fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from reattach import GenerationManager

from ..store.conftest import StoreFactory, backend, make_store, store

__all__ = ["backend", "make_manager", "make_store", "store"]

ManagerFactory = Callable[..., Awaitable[GenerationManager]]


@pytest.fixture
async def make_manager(
    make_store: StoreFactory,
) -> AsyncIterator[ManagerFactory]:
    """A factory of open managers, each on its own store of the backend under test.

    Two managers made here act as two processes sharing one backend.
    """
    made: list[GenerationManager] = []

    async def factory(**options: Any) -> GenerationManager:
        store_options = options.pop("store_options", {})
        manager = GenerationManager(await make_store(**store_options), **options)
        await manager.open()
        made.append(manager)
        return manager

    yield factory
    for manager in reversed(made):
        await manager.aclose()
