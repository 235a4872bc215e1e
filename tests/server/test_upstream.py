"""The OpenAI-compatible upstream adapter, against the fake upstream server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from reattach.server.upstream import UpstreamError, make_client, upstream_source

from ..redis_servers import free_port
from .conftest import Api, ApiFactory
from .fake_upstream import KEY, FakeUpstream
from .sse_text import parse_sse

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def client(upstream: FakeUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    client = make_client(upstream.url, KEY, max_retries=0)
    yield client
    await client.close()


async def collect(client: openai.AsyncOpenAI, model: str) -> list[dict[str, Any]]:
    return [event async for event in upstream_source(client, model, MESSAGES)]


async def test_stream_becomes_events(
    client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    events = await collect(client, "fake-ok")

    assert events == [
        {"event": "reasoning_delta", "data": {"text": "Thinking it over."}},
        {"event": "message_delta", "data": {"text": "Hello"}},
        {"event": "message_delta", "data": {"text": ", world"}},
        {
            "event": "tool_call_delta",
            "data": {
                "index": 0,
                "id": "call_1",
                "name": "lookup",
                "arguments": '{"q": ',
            },
        },
        {
            "event": "tool_call_delta",
            "data": {"index": 0, "id": None, "name": None, "arguments": '"x"}'},
        },
        {
            "event": "usage",
            "data": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        },
    ]
    body = upstream.call_for("fake-ok").body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == MESSAGES


async def test_reasoning_field_named_reasoning_is_read() -> None:
    from openai.types.chat import ChatCompletionChunk

    from reattach.server.upstream import chunk_events

    chunk = ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"reasoning": "hmm"}}],
        }
    )

    assert chunk_events(chunk) == [
        {"event": "reasoning_delta", "data": {"text": "hmm"}}
    ]


async def test_wrong_key_says_to_check_the_key(upstream: FakeUpstream) -> None:
    client = make_client(upstream.url, "sk-wrong", max_retries=0)
    try:
        with pytest.raises(
            UpstreamError, match=r"^upstream answered 401: check --upstream-key$"
        ):
            await collect(client, "fake-ok")
    finally:
        await client.close()


async def test_unknown_model_says_to_check_the_model(
    client: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(UpstreamError, match="upstream answered 404: check"):
        await collect(client, "no-such-model")


async def test_error_mid_stream_is_reported(client: openai.AsyncOpenAI) -> None:
    events: list[dict[str, Any]] = []

    async def consume() -> None:
        async for event in upstream_source(client, "fake-error", MESSAGES):
            events.append(event)

    with pytest.raises(UpstreamError, match="mid-answer: the model crashed"):
        await consume()

    assert events == [{"event": "message_delta", "data": {"text": "partial "}}]


async def test_dropped_connection_is_reported(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(UpstreamError, match="broke off the answer"):
        await collect(client, "fake-broken")


async def test_unreachable_upstream_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    client = make_client(url, KEY, max_retries=0)
    try:
        with pytest.raises(UpstreamError, match=f"^upstream unreachable at {url}"):
            await collect(client, "fake-ok")
    finally:
        await client.close()


async def test_cancelling_the_source_closes_the_request(
    client: openai.AsyncOpenAI, upstream: FakeUpstream
) -> None:
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in upstream_source(client, "fake-slow", MESSAGES):
            first.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(10):
        await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    call = upstream.call_for("fake-slow")
    assert await asyncio.to_thread(call.disconnected.wait, 10)


# -- through the server ----------------------------------------------------------------


async def start_upstream_job(
    make_api: ApiFactory, upstream: FakeUpstream, model: str, key: str = KEY
) -> tuple[Api, str]:
    api = await make_api(
        upstream_url=upstream.url, upstream_key=key, model=model, upstream_max_retries=0
    )
    response = await api.client.post("/v1/jobs", json={"messages": MESSAGES})
    assert response.status_code == 201, response.text
    stream_id: str = response.json()["stream_id"]
    return api, stream_id


async def test_an_upstream_answer_becomes_a_job(
    make_api: ApiFactory, upstream: FakeUpstream
) -> None:
    api, stream_id = await start_upstream_job(make_api, upstream, "fake-ok")
    job = await api.wait_finished(stream_id)

    detail = (await api.client.get(f"/v1/jobs/{stream_id}")).json()

    assert job.status.value == "complete"
    assert detail["model"] == "fake-ok"
    assert detail["content"] == [
        {"type": "think", "think": "Thinking it over."},
        {"type": "text", "text": "Hello, world"},
        {
            "type": "tool_call",
            "tool_call": {"id": "call_1", "name": "lookup", "args": '{"q": "x"}'},
        },
    ]


@pytest.mark.parametrize(
    ("model", "key", "message"),
    [
        ("fake-ok", "sk-wrong", "upstream answered 401: check --upstream-key"),
        ("fake-error", KEY, "upstream failed mid-answer: the model crashed"),
        (
            "fake-missing",
            KEY,
            "upstream answered 404: check --upstream-url and --model",
        ),
    ],
)
async def test_an_upstream_failure_ends_the_job_with_error(
    make_api: ApiFactory, upstream: FakeUpstream, model: str, key: str, message: str
) -> None:
    api, stream_id = await start_upstream_job(make_api, upstream, model, key)
    job = await api.wait_finished(stream_id)

    events = await api.client.get(f"/v1/jobs/{stream_id}/events")

    assert job.status.value == "error"
    assert job.error == message
    final = parse_sse(events.text)[-1][1]
    assert final == {"event": "final", "data": {"status": "error", "error": message}}


async def test_aborting_a_job_closes_the_upstream_request(
    make_api: ApiFactory, upstream: FakeUpstream
) -> None:
    api, stream_id = await start_upstream_job(make_api, upstream, "fake-slow")
    call = await asyncio.to_thread(upstream.call_for, "fake-slow")

    response = await api.client.post(f"/v1/jobs/{stream_id}/abort")

    assert response.json()["aborted"] is True
    assert await asyncio.to_thread(call.disconnected.wait, 10)
    job = await api.wait_finished(stream_id)
    assert job.status.value == "aborted"


async def test_the_upstream_model_is_the_default_and_echo_stays(
    make_api: ApiFactory, upstream: FakeUpstream
) -> None:
    api = await make_api(upstream_url=upstream.url, upstream_key=KEY, model="fake-ok")

    models = (await api.client.get("/v1/models")).json()["data"]
    echo = await api.client.post(
        "/v1/jobs", json={"model": "echo", "messages": MESSAGES}
    )
    other = await api.client.post(
        "/v1/jobs", json={"model": "gpt-x", "messages": MESSAGES}
    )

    assert [m["id"] for m in models] == ["fake-ok", "echo"]
    assert echo.status_code == 201
    assert other.status_code == 422
    assert upstream.calls == []
