"""Fixtures of the server suite: the fake upstream, the app in process, live servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from reattach.server import Runtime, Settings, create_app, open_runtime

from .fake_upstream import FakeUpstream, fake_upstream
from .live import LiveServer, start_server


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    """A fake OpenAI-compatible server on a free port."""
    with fake_upstream() as fake:
        yield fake


@dataclass
class Api:
    """An HTTP client of the app running in this process, and the app's runtime."""

    client: httpx.AsyncClient
    runtime: Runtime

    async def wait_finished(self, stream_id: str) -> Any:
        """The job's record once it has finished (within 10 s)."""
        async with asyncio.timeout(10):
            return await self.runtime.manager.store.wait_finished(stream_id)


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api() -> AsyncIterator[ApiFactory]:
    """A factory of in-process clients; closes every client and runtime it made.

    ``make_api(**settings)`` opens a new runtime; ``make_api(runtime=other.runtime)``
    gives a second client of the same server. ``client_host`` sets the address the
    app sees, ``headers`` the client's default headers.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def factory(
            *,
            runtime: Runtime | None = None,
            client_host: str = "127.0.0.1",
            headers: dict[str, str] | None = None,
            **settings: Any,
        ) -> Api:
            if runtime is None:
                settings.setdefault("echo_delay_ms", 0)
                runtime = await stack.enter_async_context(
                    open_runtime(Settings(**settings))
                )
            transport = httpx.ASGITransport(
                app=create_app(runtime=runtime), client=(client_host, 50_000)
            )
            client = httpx.AsyncClient(
                transport=transport, base_url="http://testserver", headers=headers
            )
            await stack.enter_async_context(client)
            return Api(client, runtime)

        yield factory


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    """A client of an app with the default settings (memory, echo without delay)."""
    return await make_api()


ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    """A factory of ``reattach serve`` processes; stops every one it started."""
    started: list[LiveServer] = []

    def factory(*args: str, env: dict[str, str] | None = None) -> LiveServer:
        server = start_server(*args, env=env)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
