"""A small OpenAI-compatible chat-completions server for the tests.

It runs uvicorn on a free loopback port in a thread. The request's ``model``
picks what it does:

- ``fake-ok``: reasoning, text, a tool call in two fragments, usage, ``[DONE]``;
- ``fake-error``: some text, then an ``{"error": ...}`` event;
- ``fake-broken``: some text, then the connection drops;
- ``fake-slow``: ``tick `` every few milliseconds until the client leaves;
- anything else: 404. A wrong key gets 401 whatever the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

__all__ = ["KEY", "Call", "FakeUpstream", "fake_upstream"]

KEY = "sk-test-key"


@dataclass
class Call:
    """One chat-completions request the fake received."""

    model: str
    body: dict[str, Any]
    authorization: str
    disconnected: threading.Event = field(default_factory=threading.Event)


@dataclass
class FakeUpstream:
    """The running fake: its base URL and the requests it received."""

    url: str
    calls: list[Call] = field(default_factory=list)
    new_call: threading.Event = field(default_factory=threading.Event)

    def call_for(self, model: str, timeout: float = 10.0) -> Call:
        """The first request for ``model``, waiting up to ``timeout`` for it."""
        found = self._find(model)
        while found is None:
            if not self.new_call.wait(timeout):
                raise TimeoutError(f"no request for {model!r} reached the fake")
            self.new_call.clear()
            found = self._find(model)
        return found

    def _find(self, model: str) -> Call | None:
        return next((call for call in self.calls if call.model == model), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != "/v1/chat/completions":
            await _json(send, 404, {"error": {"message": "no such route"}})
            return

        body = json.loads(await _body(receive))
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        call = Call(body.get("model", ""), body, headers.get("authorization", ""))
        self.calls.append(call)
        self.new_call.set()
        if call.authorization != f"Bearer {KEY}":
            await _json(send, 401, _error("Incorrect API key provided", "invalid_key"))
            return
        scenario = _SCENARIOS.get(call.model)
        if scenario is None:
            await _json(send, 404, _error(f"The model {call.model} does not exist"))
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await scenario(call, receive, send)


def _error(message: str, code: str = "not_found") -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "code": code}
    }


def _chunk(delta: dict[str, Any] | None, *, usage: Any = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "fake",
        "choices": choices,
        "usage": usage,
    }


async def _event(send: Send, value: Any) -> None:
    data = value if isinstance(value, str) else json.dumps(value)
    body = f"data: {data}\n\n".encode()
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _end(send: Send) -> None:
    await send({"type": "http.response.body", "body": b"", "more_body": False})


OK_EVENTS: list[dict[str, Any]] = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"reasoning_content": "Thinking it over."}),
    _chunk({"content": "Hello"}),
    _chunk({"content": ", world"}),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": '},
                }
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}),
    _chunk({}),
    _chunk(
        None, usage={"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    ),
]


async def _ok(call: Call, receive: Receive, send: Send) -> None:
    for event in OK_EVENTS:
        await _event(send, event)
    await _event(send, "[DONE]")
    await _end(send)


async def _midstream_error(call: Call, receive: Receive, send: Send) -> None:
    await _event(send, _chunk({"content": "partial "}))
    await _event(send, {"error": {"message": "the model crashed", "type": "server"}})
    await _end(send)


async def _broken(call: Call, receive: Receive, send: Send) -> None:
    await _event(send, _chunk({"content": "partial "}))
    # Leaving without ending the body makes uvicorn drop the connection.
    raise RuntimeError("the fake upstream breaks the connection on purpose")


async def _slow(call: Call, receive: Receive, send: Send) -> None:
    async def ticks() -> None:
        for _ in range(100_000):
            await _event(send, _chunk({"content": "tick "}))
            await asyncio.sleep(0.005)

    async def wait_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    ticking = asyncio.create_task(ticks())
    watching = asyncio.create_task(wait_disconnect())
    await asyncio.wait({ticking, watching}, return_when=asyncio.FIRST_COMPLETED)
    ticking.cancel()
    watching.cancel()
    with contextlib.suppress(asyncio.CancelledError, OSError):
        await ticking
    call.disconnected.set()


_SCENARIOS = {
    "fake-ok": _ok,
    "fake-error": _midstream_error,
    "fake-broken": _broken,
    "fake-slow": _slow,
}


async def _body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def _json(send: Send, status: int, value: Any) -> None:
    body = json.dumps(value).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def fake_upstream() -> Iterator[FakeUpstream]:
    """Run the fake on a free port; its ``url`` ends with ``/v1``."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    fake = FakeUpstream(f"http://127.0.0.1:{port}/v1")
    config = uvicorn.Config(fake, log_level="critical", lifespan="off")
    server = uvicorn.Server(config)
    # The socket listens already, so clients can connect before uvicorn accepts.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
