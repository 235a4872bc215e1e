"""The HTTP API: jobs, their event streams, health and metrics."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from .._errors import BackendUnavailable
from .._types import JobStatus
from ..aggregate import TextAggregator
from .echo import echo_source, last_user_text
from .errors import ApiError
from .metrics import CONTENT_TYPE, render_metrics
from .runtime import Runtime
from .schemas import (
    AbortAnswer,
    ErrorBody,
    JobCreated,
    JobDetail,
    JobInfo,
    JobList,
    JobRequest,
    ModelList,
    events_url,
    job_info,
)
from .settings import ECHO_MODEL
from .sse import EventStream
from .upstream import upstream_source

__all__ = ["router"]

router = APIRouter()

_CURSOR = re.compile(r"[0-9]{1,18}")

# How long /readyz waits for the store before calling it unavailable.
_READY_TIMEOUT = 2.0


def runtime_of(request: Request) -> Runtime:
    """The server's :class:`Runtime`."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def current_user(request: Request) -> str:
    """The caller's user id (see :class:`~reattach.server.auth.Authenticator`)."""
    return runtime_of(request).auth.user_for(request)


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]
UserDep = Annotated[str, Depends(current_user)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 422, 429, 503)
}

_SSE_DOC = {"content": {"text/event-stream": {"schema": {"type": "string"}}}}


@router.post(
    "/v1/jobs",
    status_code=201,
    response_model=JobCreated,
    responses={**_ERRORS, 200: {"description": "The job's events", **_SSE_DOC}},
)
async def create_job(
    request: Request, body: JobRequest, runtime: RuntimeDep, user: UserDep
) -> Response:
    """Start a generation.

    With ``Accept: text/event-stream`` the answer is the job's event stream; the job
    goes on if the client leaves, and ``GET /v1/jobs/{id}/events`` picks it up.
    """
    model = body.model or runtime.settings.default_model
    messages = [m.model_dump(exclude_none=True) for m in body.messages]
    job = await runtime.manager.start(
        user,
        _source(runtime, model, messages),
        conversation_id=body.conversation_id,
        client_request_id=body.client_request_id,
        aggregator=TextAggregator(),
        model=model,
        endpoint=ECHO_MODEL if model == ECHO_MODEL else "upstream",
        user_message=last_user_text(messages),
    )
    url = events_url(job.stream_id)
    headers = {"Location": url, "X-Stream-Id": job.stream_id}
    if _wants_event_stream(request):
        chunks = runtime.manager.subscribe(job.stream_id, user)
        heartbeat = runtime.settings.heartbeat_seconds
        return EventStream(chunks, heartbeat=heartbeat, headers=headers)
    created = {
        "stream_id": job.stream_id,
        "status": job.status.value,
        "events_url": url,
    }
    return JSONResponse(created, status_code=201, headers=headers)


@router.get(
    "/v1/jobs/{stream_id}/events",
    response_class=Response,
    responses={**_ERRORS, 200: {"description": "Server-sent events", **_SSE_DOC}},
)
async def job_events(
    stream_id: str,
    runtime: RuntimeDep,
    user: UserDep,
    after: Annotated[
        str | None, Query(description="The last seq the client has")
    ] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """The job's events after the cursor, then live ones, through the final event.

    The cursor is ``Last-Event-ID`` (what a browser's EventSource sends when it
    reconnects) or else ``?after=``; ``0`` or none means from the start.
    """
    cursor = _cursor(last_event_id, after)
    job = await runtime.manager.get_job(stream_id, user)
    if cursor > job.last_seq:
        raise ApiError(
            400,
            "invalid_cursor",
            f"the cursor {cursor} is ahead of the job's log (last seq {job.last_seq})",
        )
    chunks = runtime.manager.subscribe(stream_id, user, after=cursor)
    return EventStream(chunks, heartbeat=runtime.settings.heartbeat_seconds)


@router.get("/v1/jobs/{stream_id}", response_model=JobDetail, responses=_ERRORS)
async def get_job(stream_id: str, runtime: RuntimeDep, user: UserDep) -> JobDetail:
    """The job, and its content aggregated up to ``last_seq``."""
    state = await runtime.manager.status(stream_id, user)
    info = job_info(state.job, state.last_seq)
    return JobDetail(**info, content=state.content)


@router.post(
    "/v1/jobs/{stream_id}/abort", response_model=AbortAnswer, responses=_ERRORS
)
async def abort_job(stream_id: str, runtime: RuntimeDep, user: UserDep) -> AbortAnswer:
    """Abort a running job; its stream ends with a final event, status ``aborted``."""
    aborted = await runtime.manager.abort(stream_id, user)
    return AbortAnswer(stream_id=stream_id, aborted=aborted)


@router.delete(
    "/v1/jobs/{stream_id}",
    status_code=204,
    response_class=Response,
    responses=_ERRORS,
)
async def delete_job(stream_id: str, runtime: RuntimeDep, user: UserDep) -> Response:
    """Delete a job and its log, aborting it first if it runs."""
    if not await runtime.manager.delete(stream_id, user):
        raise ApiError(404, "not_found", f"no job {stream_id!r}")
    return Response(status_code=204)


@router.get("/v1/jobs", response_model=JobList, responses=_ERRORS)
async def list_jobs(
    runtime: RuntimeDep,
    user: UserDep,
    status: Annotated[JobStatus | None, Query()] = None,
) -> JobList:
    """The caller's jobs that still exist, oldest first; ``?status=`` filters."""
    jobs = await runtime.manager.list_jobs(user, status=status)
    return JobList(jobs=[JobInfo(**job_info(job)) for job in jobs])


@router.get("/v1/models", response_model=ModelList, responses=_ERRORS)
async def list_models(runtime: RuntimeDep, user: UserDep) -> ModelList:
    """The models this server offers; the first is the default."""
    return ModelList.model_validate(
        {"data": [{"id": name} for name in runtime.settings.models]}
    )


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorBody}})
async def readyz(runtime: RuntimeDep) -> dict[str, str]:
    """Readiness: the store answers (Redis is reachable)."""
    try:
        async with asyncio.timeout(_READY_TIMEOUT):
            await runtime.manager.store.ping()
    except (BackendUnavailable, TimeoutError) as exc:
        raise ApiError(503, "backend_unavailable", _unavailable(exc)) from exc
    return {"status": "ready"}


@router.get("/metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus metrics."""
    running = await runtime.manager.store.get_job_count_by_status(JobStatus.RUNNING)
    body = render_metrics(runtime.manager.stats, running)
    return Response(body, media_type=CONTENT_TYPE)


def _source(
    runtime: Runtime, model: str, messages: list[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    settings = runtime.settings
    if model == ECHO_MODEL:
        return echo_source(messages, delay=settings.echo_delay_ms / 1000)
    if runtime.upstream is not None and model == settings.model:
        return upstream_source(runtime.upstream, model, messages)
    offered = ", ".join(settings.models)
    raise ApiError(
        422, "unknown_model", f"model {model!r} is not offered here; try: {offered}"
    )


def _cursor(last_event_id: str | None, after: str | None) -> int:
    # A reconnecting EventSource sends Last-Event-ID while its URL still carries
    # the ?after= it started with, so the header wins. An empty header is what a
    # stream without ids would leave; it means no cursor.
    text = last_event_id if last_event_id and last_event_id.strip() else after
    if text is None or text == "":
        return 0
    text = text.strip()
    if _CURSOR.fullmatch(text) is None:
        raise ApiError(
            400,
            "invalid_cursor",
            "the cursor (Last-Event-ID or after) must be a whole number >= 0",
        )
    return int(text)


def _wants_event_stream(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    media_types = (part.split(";")[0].strip().lower() for part in accept.split(","))
    return "text/event-stream" in media_types


def _unavailable(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"the store did not answer within {_READY_TIMEOUT:g} s"
    return str(exc)
