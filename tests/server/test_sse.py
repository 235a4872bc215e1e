"""The SSE framing and the streaming response, driven through raw ASGI calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import Message

from reattach import Chunk
from reattach.server.sse import HEARTBEAT, EventStream, format_chunk


def test_a_chunk_is_one_id_line_and_one_data_line() -> None:
    chunk = Chunk(7, {"event": "message_delta", "data": {"text": "two\nlines"}})

    assert format_chunk(chunk) == (
        b'id: 7\ndata: {"event":"message_delta","data":{"text":"two\\nlines"}}\n\n'
    )


class Exchange:
    """The ASGI side of one request: what the app sent, and a disconnect switch."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.body_sent = asyncio.Event()
        self.left = asyncio.Event()

    async def receive(self) -> Message:
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body":
            self.body_sent.set()

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


SCOPE: dict[str, Any] = {"type": "http", "method": "GET", "path": "/"}


async def test_the_stream_ends_after_the_iterator() -> None:
    async def chunks() -> AsyncIterator[Chunk]:
        yield Chunk(1, {"event": "message_delta", "data": {"text": "a"}})
        yield Chunk(
            2, {"event": "final", "data": {"status": "complete", "error": None}}
        )

    exchange = Exchange()
    await EventStream(chunks(), heartbeat=10)(SCOPE, exchange.receive, exchange.send)

    assert exchange.sent[0]["status"] == 200
    assert exchange.body.count(b"id: ") == 2
    assert exchange.sent[-1] == {
        "type": "http.response.body",
        "body": b"",
        "more_body": False,
    }


async def test_silence_is_filled_with_comments() -> None:
    release = asyncio.Event()

    async def chunks() -> AsyncIterator[Chunk]:
        await release.wait()
        yield Chunk(1, "late")

    exchange = Exchange()
    task = asyncio.create_task(
        EventStream(chunks(), heartbeat=0.01)(SCOPE, exchange.receive, exchange.send)
    )
    async with asyncio.timeout(10):
        while exchange.body.count(HEARTBEAT) < 2:
            exchange.body_sent.clear()
            await exchange.body_sent.wait()
    release.set()
    await task

    assert exchange.body.endswith(b'id: 1\ndata: "late"\n\n')


async def test_a_client_that_leaves_closes_the_iterator() -> None:
    closed = asyncio.Event()

    async def chunks() -> AsyncIterator[Chunk]:
        try:
            yield Chunk(1, "first")
            await asyncio.Event().wait()
            yield Chunk(2, "never")
        finally:
            closed.set()

    exchange = Exchange()
    task = asyncio.create_task(
        EventStream(chunks(), heartbeat=10)(SCOPE, exchange.receive, exchange.send)
    )
    async with asyncio.timeout(10):
        await exchange.body_sent.wait()
        exchange.left.set()
        await task
        await closed.wait()

    assert exchange.body == b'id: 1\ndata: "first"\n\n'
    assert exchange.sent[-1].get("more_body") is True


async def test_a_failing_iterator_still_ends_the_response() -> None:
    async def chunks() -> AsyncIterator[Chunk]:
        yield Chunk(1, "first")
        raise RuntimeError("the store went away")

    exchange = Exchange()
    await EventStream(chunks(), heartbeat=10)(SCOPE, exchange.receive, exchange.send)

    assert exchange.sent[-1] == {
        "type": "http.response.body",
        "body": b"",
        "more_body": False,
    }
