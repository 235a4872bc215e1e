"""Server-sent events: a job's chunks as an ``text/event-stream`` response.

The framing follows the HTML standard's "Server-sent events" section: one message
per chunk, ``id: <seq>`` then ``data: <event as JSON>`` and a blank line, so a
browser's ``EventSource`` reconnects with ``Last-Event-ID: <seq>`` on its own.
No ``event:`` line is sent, so every message arrives as a plain ``message`` event.
Lines starting with ``:`` are comments, which clients ignore; one is sent whenever
the stream has been silent for the heartbeat interval, so proxies keep it open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .._types import Chunk

__all__ = ["HEARTBEAT", "SSE_HEADERS", "EventStream", "format_chunk"]

logger = logging.getLogger(__name__)

HEARTBEAT = b": keep-alive\n\n"

#: Headers that stop caches and buffering proxies (nginx reads X-Accel-Buffering)
#: from holding events back.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def format_chunk(chunk: Chunk) -> bytes:
    """One SSE message for ``chunk``: ``id: <seq>``, ``data: <JSON>``, blank line.

    orjson never writes a raw newline, so the JSON always fits one ``data:`` line.
    """
    return b"id: %d\ndata: %s\n\n" % (chunk.seq, orjson.dumps(chunk.event))


class EventStream(Response):
    """A streaming response that sends each chunk of ``chunks`` as it arrives.

    The response ends after the iterator does (after the terminal chunk), or when
    the client goes away; then the iterator is closed, which ends the
    subscription but never the job.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        chunks: AsyncIterator[Chunk],
        *,
        heartbeat: float,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.chunks = chunks
        self.heartbeat = heartbeat
        self.status_code = status_code
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers,
            }
        )
        pump = asyncio.create_task(self._pump(send))
        watch = asyncio.create_task(_wait_disconnect(receive))
        try:
            await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            pump.cancel()
            await asyncio.gather(pump, watch, return_exceptions=True)
            await _close(self.chunks)

        if watch.done() and not watch.cancelled():
            return  # the client left: nothing more can be sent
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            # The stream cannot go on (the job was deleted, the store is down);
            # ending it cleanly lets the client reconnect and be told why.
            logger.warning("an event stream ended early: %r", pump.exception())
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, send: Send) -> None:
        pending: asyncio.Task[Chunk] | None = None
        try:
            while True:
                pending = asyncio.ensure_future(anext(self.chunks))
                while not (await asyncio.wait({pending}, timeout=self.heartbeat))[0]:
                    await _send_body(send, HEARTBEAT)
                try:
                    chunk = pending.result()
                except StopAsyncIteration:
                    return
                await _send_body(send, format_chunk(chunk))
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending


async def _send_body(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _close(chunks: AsyncIterator[Chunk]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:
        logger.exception("closing a subscription failed")
