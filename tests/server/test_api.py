"""The JSON routes of the app, in process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from reattach import ReattachError
from reattach.server import Settings, create_app
from reattach.server.echo import echo_source

from .conftest import Api, ApiFactory
from .sse_text import parse_sse

MESSAGE = "the quick  brown fox\njumps over the lazy dog "
WORDS = [
    "the ",
    "quick  ",
    "brown ",
    "fox\n",
    "jumps ",
    "over ",
    "the ",
    "lazy ",
    "dog ",
]

# The echo model's pace when a test needs a job that is still running.
SLOW = 60_000


def body(text: str = MESSAGE, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **extra}


async def start(api: Api, **extra: Any) -> str:
    response = await api.client.post("/v1/jobs", json=body(**extra))
    assert response.status_code == 201, response.text
    stream_id: str = response.json()["stream_id"]
    return stream_id


def error_code(response: httpx.Response) -> str:
    error = response.json()["error"]
    assert set(error) == {"code", "message"}
    assert error["message"]
    code: str = error["code"]
    return code


# -- starting and reading ------------------------------------------------------------


async def test_start_answers_201_with_the_events_url(api: Api) -> None:
    response = await api.client.post("/v1/jobs", json=body())

    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"stream_id", "status", "events_url"}
    assert created["status"] == "running"
    assert created["events_url"] == f"/v1/jobs/{created['stream_id']}/events"
    assert response.headers["location"] == created["events_url"]


async def test_echo_streams_the_message_back_word_by_word(api: Api) -> None:
    stream_id = await start(api)
    await api.wait_finished(stream_id)

    response = await api.client.get(f"/v1/jobs/{stream_id}/events")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    chunks = parse_sse(response.text)
    assert [seq for seq, _ in chunks] == list(range(1, len(chunks) + 1))
    events = [event for _, event in chunks]
    assert [e["data"]["text"] for e in events[: len(WORDS)]] == WORDS
    assert events[len(WORDS)]["event"] == "usage"
    assert events[-1] == {
        "event": "final",
        "data": {"status": "complete", "error": None},
    }


@pytest.mark.parametrize(
    "cursor", [{"params": {"after": "4"}}, {"headers": {"Last-Event-ID": "4"}}]
)
async def test_events_resume_after_the_cursor(api: Api, cursor: dict[str, Any]) -> None:
    stream_id = await start(api)
    await api.wait_finished(stream_id)

    response = await api.client.get(f"/v1/jobs/{stream_id}/events", **cursor)

    chunks = parse_sse(response.text)
    assert chunks[0][0] == 5
    assert [e["data"]["text"] for _, e in chunks[:5]] == WORDS[4:]


async def test_last_event_id_wins_over_after(api: Api) -> None:
    stream_id = await start(api)
    await api.wait_finished(stream_id)

    response = await api.client.get(
        f"/v1/jobs/{stream_id}/events",
        params={"after": "1"},
        headers={"Last-Event-ID": "8"},
    )

    assert parse_sse(response.text)[0][0] == 9


async def test_post_with_accept_event_stream_streams_the_job(api: Api) -> None:
    response = await api.client.post(
        "/v1/jobs", json=body(), headers={"Accept": "text/event-stream"}
    )

    assert response.status_code == 200
    stream_id = response.headers["x-stream-id"]
    assert response.headers["location"] == f"/v1/jobs/{stream_id}/events"
    chunks = parse_sse(response.text)
    texts = [e["data"]["text"] for _, e in chunks if e["event"] == "message_delta"]
    assert "".join(texts) == MESSAGE
    assert chunks[-1][1]["event"] == "final"


async def test_job_detail_holds_the_aggregated_content(api: Api) -> None:
    stream_id = await start(api, conversation_id="conv-1")
    await api.wait_finished(stream_id)

    response = await api.client.get(f"/v1/jobs/{stream_id}")

    assert response.status_code == 200
    detail = response.json()
    assert detail["stream_id"] == stream_id
    assert detail["status"] == "complete"
    assert detail["model"] == "echo"
    assert detail["conversation_id"] == "conv-1"
    assert detail["last_seq"] == len(WORDS) + 2
    assert detail["completed_at"] >= detail["created_at"] > 0
    assert detail["content"] == [{"type": "text", "text": MESSAGE}]


async def test_list_shows_the_callers_jobs_by_status(make_api: ApiFactory) -> None:
    api = await make_api(echo_delay_ms=SLOW)
    running = await start(api)
    done = await start(api)
    await api.client.post(f"/v1/jobs/{done}/abort")

    everything = await api.client.get("/v1/jobs")
    only_running = await api.client.get("/v1/jobs", params={"status": "running"})
    only_aborted = await api.client.get("/v1/jobs", params={"status": "aborted"})

    assert [j["stream_id"] for j in everything.json()["jobs"]] == [running, done]
    assert [j["stream_id"] for j in only_running.json()["jobs"]] == [running]
    assert [j["stream_id"] for j in only_aborted.json()["jobs"]] == [done]


async def test_same_client_request_id_gives_the_same_job(api: Api) -> None:
    first = await start(api, client_request_id="req-1")
    second = await start(api, client_request_id="req-1")
    other = await start(api, client_request_id="req-2")

    assert first == second != other
    assert api.runtime.manager.stats.jobs_started == 2


async def test_models_lists_echo(api: Api) -> None:
    response = await api.client.get("/v1/models")

    assert response.json() == {
        "object": "list",
        "data": [{"id": "echo", "object": "model"}],
    }


async def test_unknown_model_is_refused(api: Api) -> None:
    response = await api.client.post("/v1/jobs", json=body(model="gpt-nothing"))

    assert response.status_code == 422
    assert error_code(response) == "unknown_model"
    assert "echo" in response.json()["error"]["message"]
    assert await api.runtime.manager.store.get_job_count() == 0


# -- abort and delete ------------------------------------------------------------------


async def test_abort_ends_a_running_job(make_api: ApiFactory) -> None:
    api = await make_api(echo_delay_ms=SLOW)
    stream_id = await start(api)

    response = await api.client.post(f"/v1/jobs/{stream_id}/abort")
    again = await api.client.post(f"/v1/jobs/{stream_id}/abort")

    assert response.json() == {"stream_id": stream_id, "aborted": True}
    assert again.json() == {"stream_id": stream_id, "aborted": False}
    events = await api.client.get(f"/v1/jobs/{stream_id}/events")
    final = parse_sse(events.text)[-1][1]
    assert final == {"event": "final", "data": {"status": "aborted", "error": None}}


async def test_delete_removes_a_job(make_api: ApiFactory) -> None:
    api = await make_api(echo_delay_ms=SLOW)
    stream_id = await start(api)

    deleted = await api.client.delete(f"/v1/jobs/{stream_id}")
    after = await api.client.get(f"/v1/jobs/{stream_id}")
    again = await api.client.delete(f"/v1/jobs/{stream_id}")

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert after.status_code == 404
    assert again.status_code == 404
    assert await api.runtime.manager.store.get_job_count() == 0


# -- limits ----------------------------------------------------------------------------


async def test_too_many_running_jobs_answers_429(make_api: ApiFactory) -> None:
    api = await make_api(echo_delay_ms=SLOW, max_jobs_per_user=2)
    await start(api)
    await start(api)

    response = await api.client.post("/v1/jobs", json=body())

    assert response.status_code == 429
    assert response.headers["retry-after"] == "5"
    assert error_code(response) == "too_many_jobs"
    assert len((await api.client.get("/v1/jobs")).json()["jobs"]) == 2


async def test_a_finished_job_frees_its_place(make_api: ApiFactory) -> None:
    api = await make_api(echo_delay_ms=SLOW, max_jobs_per_user=1)
    first = await start(api)
    await api.client.post(f"/v1/jobs/{first}/abort")

    response = await api.client.post("/v1/jobs", json=body())

    assert response.status_code == 201


async def test_an_event_over_the_size_limit_ends_the_job(make_api: ApiFactory) -> None:
    api = await make_api(max_event_bytes=300)
    stream_id = await start(api, messages=[{"role": "user", "content": "x" * 400}])

    job = await api.wait_finished(stream_id)

    assert job.status.value == "error"
    assert "over the limit of 300" in job.error


# -- bad input -------------------------------------------------------------------------


async def assert_refused(
    api: Api, response: httpx.Response, status: int, code: str
) -> None:
    assert response.status_code == status, response.text
    assert error_code(response) == code
    assert await api.runtime.manager.store.get_job_count() == 0


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"messages": [', {"Content-Type": "application/json"}),
        (b"not json at all", {"Content-Type": "application/json"}),
        (b'{"messages": [', {}),
        (b"\xff\xfe", {"Content-Type": "text/plain"}),
    ],
)
async def test_malformed_json_answers_400(
    api: Api, content: bytes, headers: dict[str, str]
) -> None:
    response = await api.client.post("/v1/jobs", content=content, headers=headers)

    await assert_refused(api, response, 400, "invalid_json")


@pytest.mark.parametrize(
    "payload",
    [
        {**body(), "temperature": 0.2},
        {"messages": [{"role": "user", "content": "hi", "colour": "red"}]},
        {"messages": []},
        {"messages": [{"role": "robot", "content": "hi"}]},
        {"model": "echo"},
        [1, 2, 3],
        body(client_request_id="has spaces"),
        body(conversation_id="x" * 129),
        body(model=""),
    ],
)
async def test_invalid_request_answers_422(api: Api, payload: Any) -> None:
    response = await api.client.post("/v1/jobs", json=payload)

    await assert_refused(api, response, 422, "invalid_request")


async def test_json_without_a_json_content_type_answers_422(api: Api) -> None:
    response = await api.client.post(
        "/v1/jobs", content=b'{"messages": []}', headers={"Content-Type": "text/plain"}
    )

    await assert_refused(api, response, 422, "invalid_request")
    assert "Content-Type: application/json" in response.json()["error"]["message"]


async def test_oversized_body_answers_413(make_api: ApiFactory) -> None:
    api = await make_api(max_body_bytes=1000)

    response = await api.client.post("/v1/jobs", json=body("word " * 300))

    await assert_refused(api, response, 413, "payload_too_large")


async def test_oversized_streamed_body_answers_413(make_api: ApiFactory) -> None:
    api = await make_api(max_body_bytes=1000)

    async def parts() -> AsyncIterator[bytes]:
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}]}'

    response = await api.client.post(
        "/v1/jobs", content=parts(), headers={"Content-Type": "application/json"}
    )

    await assert_refused(api, response, 413, "payload_too_large")


async def test_a_body_at_the_limit_is_taken(make_api: ApiFactory) -> None:
    payload = httpx.Request("POST", "/", json=body("x" * 900)).content
    api = await make_api(max_body_bytes=len(payload))

    response = await api.client.post(
        "/v1/jobs", content=payload, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 201


@pytest.mark.parametrize(
    "cursor",
    [
        {"params": {"after": "abc"}},
        {"params": {"after": "-1"}},
        {"params": {"after": "1.5"}},
        {"params": {"after": "9" * 40}},
        {"headers": {"Last-Event-ID": "x7"}},
        {"headers": {"Last-Event-ID": "-3"}},
    ],
)
async def test_a_cursor_that_is_not_a_number_answers_400(
    api: Api, cursor: dict[str, Any]
) -> None:
    stream_id = await start(api)

    response = await api.client.get(f"/v1/jobs/{stream_id}/events", **cursor)

    assert response.status_code == 400
    assert error_code(response) == "invalid_cursor"


@pytest.mark.parametrize("where", ["params", "headers"])
async def test_a_cursor_ahead_of_the_log_answers_400(api: Api, where: str) -> None:
    stream_id = await start(api)
    job = await api.wait_finished(stream_id)
    ahead = str(job.last_seq + 1)
    cursor: dict[str, Any] = (
        {"params": {"after": ahead}}
        if where == "params"
        else {"headers": {"Last-Event-ID": ahead}}
    )

    response = await api.client.get(f"/v1/jobs/{stream_id}/events", **cursor)

    assert response.status_code == 400
    assert error_code(response) == "invalid_cursor"
    assert api.runtime.manager.stats.followers == 0


async def test_a_cursor_at_the_end_gives_nothing_more(api: Api) -> None:
    stream_id = await start(api)
    job = await api.wait_finished(stream_id)

    response = await api.client.get(
        f"/v1/jobs/{stream_id}/events", params={"after": str(job.last_seq)}
    )

    assert response.status_code == 200
    assert parse_sse(response.text) == []


@pytest.mark.parametrize("path", ["/v1/jobs/{id}", "/v1/jobs/{id}/events"])
async def test_an_invalid_id_answers_400(api: Api, path: str) -> None:
    response = await api.client.get(path.format(id="not%20an%20id"))

    assert response.status_code == 400
    assert error_code(response) == "invalid_id"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/jobs/missing"),
        ("GET", "/v1/jobs/missing/events"),
        ("POST", "/v1/jobs/missing/abort"),
        ("DELETE", "/v1/jobs/missing"),
    ],
)
async def test_a_missing_job_answers_404(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, path)

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "no job 'missing'"}
    }


async def test_unknown_routes_and_methods_answer_json(api: Api) -> None:
    missing = await api.client.get("/v2/nothing")
    wrong_method = await api.client.put("/v1/jobs")

    assert missing.status_code == 404
    assert error_code(missing) == "not_found"
    assert wrong_method.status_code == 405
    assert error_code(wrong_method) == "method_not_allowed"


async def test_a_bad_status_filter_answers_422(api: Api) -> None:
    response = await api.client.get("/v1/jobs", params={"status": "sleeping"})

    assert response.status_code == 422
    assert error_code(response) == "invalid_request"


# -- health and metrics ----------------------------------------------------------------


async def test_health_and_readiness_on_memory(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    assert (await api.client.get("/readyz")).json() == {"status": "ready"}


async def test_metrics_report_jobs_events_and_latency(make_api: ApiFactory) -> None:
    api = await make_api(echo_delay_ms=SLOW)
    aborted = await start(api)
    await api.client.post(f"/v1/jobs/{aborted}/abort")
    await start(api)

    response = await api.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = metric_values(response.text)
    assert values["reattach_jobs_running"] == 1
    assert values["reattach_local_jobs"] == 1
    assert values["reattach_jobs_started_total"] == 2
    assert values["reattach_followers"] == 0
    assert values["reattach_reattaches_total"] == 0
    stats = api.runtime.manager.stats
    assert values["reattach_events_appended_total"] == stats.events_appended
    assert values["reattach_append_seconds_count"] == stats.append_calls
    assert values['reattach_append_seconds_bucket{le="+Inf"}'] == stats.append_calls


async def test_metrics_count_reattaches(api: Api) -> None:
    stream_id = await start(api)
    await api.wait_finished(stream_id)
    await api.client.get(f"/v1/jobs/{stream_id}/events", params={"after": "3"})

    values = metric_values((await api.client.get("/metrics")).text)

    assert values["reattach_reattaches_total"] == 1
    assert values["reattach_events_appended_total"] >= len(WORDS) + 1


def metric_values(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


# -- the page --------------------------------------------------------------------------


async def test_the_page_and_its_files_are_served(api: Api) -> None:
    page = await api.client.get("/")
    script = await api.client.get("/static/app.js")
    style = await api.client.get("/static/style.css")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/app.js"' in page.text
    assert "EventSource" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200
    for text in (page.text, script.text, style.text):
        assert "http://" not in text
        assert "https://" not in text


async def test_the_app_opens_and_closes_its_own_runtime() -> None:
    app = create_app(Settings(echo_delay_ms=0))
    transport = httpx.ASGITransport(app=app)

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        created = await client.post("/v1/jobs", json=body())
        runtime = app.state.runtime
        async with asyncio.timeout(10):
            await runtime.manager.store.wait_finished(created.json()["stream_id"])

    assert created.status_code == 201
    with pytest.raises(ReattachError, match="not open"):
        await runtime.manager.start("local", echo_source([]))


async def test_the_openapi_document_is_served_and_viewers_are_not(api: Api) -> None:
    document = await api.client.get("/openapi.json")
    viewer = await api.client.get("/docs")

    assert "/v1/jobs/{stream_id}/events" in document.json()["paths"]
    assert viewer.status_code == 404
