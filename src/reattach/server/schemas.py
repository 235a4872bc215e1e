"""The JSON bodies of the HTTP API, as pydantic models (they make the OpenAPI doc)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .._ids import ID_PATTERN
from .._types import Job

__all__ = [
    "AbortAnswer",
    "ErrorBody",
    "ErrorDetail",
    "JobCreated",
    "JobDetail",
    "JobInfo",
    "JobList",
    "JobRequest",
    "Message",
    "ModelInfo",
    "ModelList",
    "events_url",
    "job_info",
]

_ID = f"^{ID_PATTERN.pattern}$"


class Message(BaseModel):
    """One chat message, as the OpenAI chat-completions API takes it."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class JobRequest(BaseModel):
    """``POST /v1/jobs``: what to generate.

    ``model`` defaults to the server's model. A repeated ``client_request_id``
    from the same user answers with the job it started first.
    """

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1)
    client_request_id: str | None = Field(default=None, pattern=_ID)
    conversation_id: str | None = Field(default=None, pattern=_ID)


class JobCreated(BaseModel):
    """The answer to ``POST /v1/jobs``."""

    stream_id: str
    status: str
    events_url: str


class JobInfo(BaseModel):
    """A job, as the API shows it. Times are milliseconds since the epoch."""

    stream_id: str
    status: str
    model: str | None
    conversation_id: str | None
    created_at: int
    updated_at: int
    completed_at: int | None
    error: str | None
    last_seq: int
    events_url: str


class JobDetail(JobInfo):
    """``GET /v1/jobs/{id}``: the job and its content aggregated up to ``last_seq``.

    ``content`` is a list of parts: ``{"type": "text", "text"}``,
    ``{"type": "think", "think"}``, ``{"type": "tool_call", "tool_call": {"id",
    "name", "args"}}``.
    """

    content: list[Any] | None


class JobList(BaseModel):
    """``GET /v1/jobs``: the caller's jobs, oldest first."""

    jobs: list[JobInfo]


class AbortAnswer(BaseModel):
    """``POST /v1/jobs/{id}/abort``: ``aborted`` is false when it had finished."""

    stream_id: str
    aborted: bool


class ModelInfo(BaseModel):
    """One model this server offers."""

    id: str
    object: Literal["model"] = "model"


class ModelList(BaseModel):
    """``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelInfo]


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``code`` and a ``message`` that says what to do."""

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer."""

    error: ErrorDetail


def events_url(stream_id: str) -> str:
    """The path of a job's event stream."""
    return f"/v1/jobs/{stream_id}/events"


def job_info(job: Job, last_seq: int | None = None) -> dict[str, Any]:
    """The API's view of a job record."""
    return {
        "stream_id": job.stream_id,
        "status": job.status.value,
        "model": job.model,
        "conversation_id": job.conversation_id,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "completed_at": job.completed_at,
        "error": job.error,
        "last_seq": job.last_seq if last_seq is None else last_seq,
        "events_url": events_url(job.stream_id),
    }
