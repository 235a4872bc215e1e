"""``reattach serve`` in subprocesses: real sockets, SSE, Redis, shutdown."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from reattach import JobStatus, RedisJobStore

from ..redis_servers import RedisServer, free_port, redis_server
from .conftest import ServerFactory
from .live import run_cli

pytestmark = pytest.mark.slow

WORDS = [f"word{i} " for i in range(20)]
MESSAGE = "".join(WORDS)


def job_body(text: str = MESSAGE) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def start_job(client: httpx.AsyncClient, text: str = MESSAGE) -> str:
    response = await client.post("/v1/jobs", json=job_body(text))
    assert response.status_code == 201, response.text
    stream_id: str = response.json()["stream_id"]
    return stream_id


async def read_events(
    client: httpx.AsyncClient,
    stream_id: str,
    *,
    last_event_id: int | None = None,
    limit: int | None = None,
) -> list[tuple[int, Any]]:
    """(seq, event) from the job's stream, until the end or ``limit`` events."""
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    received: list[tuple[int, Any]] = []
    url = f"/v1/jobs/{stream_id}/events"
    async with aconnect_sse(client, "GET", url, headers=headers) as source:
        assert source.response.headers["cache-control"] == "no-cache"
        assert source.response.headers["x-accel-buffering"] == "no"
        async for message in source.aiter_sse():
            assert message.event == "message"  # no `event:` line was sent
            received.append((int(message.id), json.loads(message.data)))
            if len(received) == limit:
                break
    return received


def texts(chunks: list[tuple[int, Any]]) -> list[str]:
    return [e["data"]["text"] for _, e in chunks if e["event"] == "message_delta"]


async def test_a_job_streams_over_sse(make_server: ServerFactory) -> None:
    server = make_server("--echo-delay-ms", "5")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        stream_id = await start_job(client)
        chunks = await read_events(client, stream_id)

    assert [seq for seq, _ in chunks] == list(range(1, len(WORDS) + 3))
    assert texts(chunks) == WORDS
    assert chunks[-1][1]["data"] == {"status": "complete", "error": None}


async def test_a_job_started_with_sse_goes_on_when_its_client_leaves(
    make_server: ServerFactory,
) -> None:
    server = make_server("--echo-delay-ms", "30")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        headers = {"Accept": "text/event-stream"}
        async with aconnect_sse(
            client, "POST", "/v1/jobs", json=job_body(), headers=headers
        ) as source:
            stream_id = source.response.headers["x-stream-id"]
            first = []
            async for message in source.aiter_sse():
                first.append((int(message.id), json.loads(message.data)))
                if len(first) == 3:
                    break

        rest = await read_events(client, stream_id, last_event_id=3)

    assert [seq for seq, _ in first + rest] == list(range(1, len(WORDS) + 3))
    assert "".join(texts(first + rest)) == MESSAGE
    assert rest[-1][1]["data"]["status"] == "complete"


async def test_a_silent_stream_gets_comment_lines(make_server: ServerFactory) -> None:
    server = make_server("--echo-delay-ms", "60000", "--heartbeat-seconds", "0.1")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        stream_id = await start_job(client)
        comments = []
        async with client.stream("GET", f"/v1/jobs/{stream_id}/events") as response:
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    comments.append(line)
                if len(comments) == 2:
                    break
        await client.post(f"/v1/jobs/{stream_id}/abort")

    assert comments == [": keep-alive", ": keep-alive"]


async def test_a_reader_moves_to_another_server_mid_answer(
    make_server: ServerFactory, redis_standalone: RedisServer
) -> None:
    first = make_server("--redis-url", redis_standalone.url, "--echo-delay-ms", "100")
    second = make_server("--redis-url", redis_standalone.url)
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=30) as one,
        httpx.AsyncClient(base_url=second.url, timeout=30) as two,
    ):
        stream_id = await start_job(one)
        half = await read_events(one, stream_id, limit=len(WORDS) // 2)
        rest = await read_events(two, stream_id, last_event_id=half[-1][0])

    seqs = [seq for seq, _ in half + rest]
    assert seqs == list(range(1, len(WORDS) + 3))
    assert texts(half + rest) == WORDS
    assert rest[0][0] == len(WORDS) // 2 + 1
    assert rest[-1][1]["data"] == {"status": "complete", "error": None}


async def test_readiness_fails_while_redis_is_down(make_server: ServerFactory) -> None:
    with redis_server() as redis:
        server = make_server("--redis-url", redis.url)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            ready = await client.get("/readyz")
            redis.stop()
            down = await client.get("/readyz")
            alive = await client.get("/healthz")

    assert ready.status_code == 200
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "backend_unavailable"
    assert alive.status_code == 200


def test_an_unreachable_redis_stops_the_server_at_startup() -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    process = run_cli("serve", "--port", str(free_port()), "--redis-url", url)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 1
    assert f"cannot reach Redis at redis://:***@127.0.0.1:{url.split(':')[3]}" in output
    assert "secret" not in output
    assert "Uvicorn running" not in output


async def test_sigterm_ends_the_servers_jobs_before_it_exits(
    make_server: ServerFactory, redis_standalone: RedisServer
) -> None:
    slow = ("--echo-delay-ms", "60000")
    server = make_server("--redis-url", redis_standalone.url, *slow)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        stream_id = await start_job(client)

    server.stop()

    assert server.process.returncode == 0
    assert "Traceback" not in "".join(server.output)
    async with RedisJobStore.from_url(redis_standalone.url) as store:
        job = await store.get_job(stream_id)
        chunks = await store.read_chunks(stream_id)
    assert job is not None
    assert job.status is JobStatus.ERROR
    assert chunks[-1].is_terminal


def test_bad_options_are_refused_before_starting() -> None:
    process = run_cli("serve", "--upstream-url", "http://127.0.0.1:1/v1")
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 2
    assert "--model is required with --upstream-url" in output


def test_env_vars_configure_the_server(make_server: ServerFactory) -> None:
    server = make_server(env={"REATTACH_TOKENS": "ann=ann-token-123"})
    response = httpx.get(f"{server.url}/v1/jobs")
    authorized = httpx.get(
        f"{server.url}/v1/jobs", headers={"Authorization": "Bearer ann-token-123"}
    )

    assert response.status_code == 401
    assert authorized.status_code == 200
