"""A minimal HTTP/1.1 client on asyncio streams, cheap enough for thousands of SSE.

Only what the scale workload needs: a JSON POST answered with a
``Content-Length`` body, and an SSE GET read line by line for ``id:`` lines.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["HttpError", "SseFollower", "get_status", "post_json"]

_HEAD_LIMIT = 100


class HttpError(Exception):
    """The server answered with an unexpected status, or not at all."""


async def post_json(host: str, port: int, path: str, body: Any) -> Any:
    """POST ``body`` as JSON; return the decoded JSON answer (2xx only)."""
    payload = orjson.dumps(body)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head.encode() + payload)
        await writer.drain()
        status, headers = await _read_head(reader)
        length = int(headers.get("content-length", "0"))
        answer = await reader.readexactly(length) if length else await reader.read()
    finally:
        await _close(writer)
    if not 200 <= status < 300:
        raise HttpError(f"POST {path} answered {status}: {answer[:200]!r}")
    return orjson.loads(answer)


async def get_status(host: str, port: int, path: str) -> int:
    """The status code a GET of ``path`` answers with."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        status, _ = await _read_head(reader)
    finally:
        await _close(writer)
    return status


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise HttpError(f"not an HTTP answer: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for _ in range(_HEAD_LIMIT):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


@dataclass(eq=False, slots=True)
class SseFollower:
    """One open SSE connection that counts the messages (``id:`` lines) it gets."""

    host: str
    port: int
    path: str
    events: int = 0
    last_event_at: float = 0.0
    error: str | None = None
    ended: bool = False
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def open(self) -> None:
        """Connect and read in a background task."""
        self.task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Drop the connection."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        try:
            await self._follow()
        except (OSError, HttpError, asyncio.IncompleteReadError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended = True
            self.connected.set()

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            await writer.drain()
            status, _ = await _read_head(reader)
            if status != 200:
                raise HttpError(f"GET {self.path} answered {status}")
            self.connected.set()
            while line := await reader.readline():
                if line.startswith(b"id:"):
                    self.events += 1
                    self.last_event_at = loop.time()
        finally:
            await _close(writer)
