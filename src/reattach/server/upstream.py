"""Any OpenAI-compatible chat-completions endpoint as a source of events.

The request goes through the official ``openai`` client with ``stream=True``.
Streamed text, reasoning and tool-call deltas become ``message_delta``,
``reasoning_delta`` and ``tool_call_delta`` events, and the usage report a
``usage`` event. When the job is aborted the source is cancelled and the
``async with`` around the stream closes the upstream request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai

from .._errors import ReattachError
from .settings import redact_url

__all__ = ["UpstreamError", "chunk_events", "make_client", "upstream_source"]

logger = logging.getLogger(__name__)


class UpstreamError(ReattachError):
    """The upstream model server failed; the message says what to check."""


def make_client(url: str, key: str | None, *, max_retries: int) -> openai.AsyncOpenAI:
    """An OpenAI client for ``url``.

    Servers without keys (a local vLLM, Ollama or llama.cpp) get a placeholder
    key, so that ``OPENAI_API_KEY`` from the environment is never sent instead.
    """
    return openai.AsyncOpenAI(
        base_url=url, api_key=key or "unused", max_retries=max_retries
    )


async def upstream_source(
    client: openai.AsyncOpenAI, model: str, messages: Sequence[Any]
) -> AsyncIterator[dict[str, Any]]:
    """Stream one chat completion from ``client`` as events.

    :raises UpstreamError: the upstream answered with an error, could not be
        reached, or broke off the answer.
    """
    url = redact_url(str(client.base_url))
    answering = False
    try:
        stream = await client.chat.completions.create(
            model=model,
            messages=list(messages),
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            answering = True
            async for chunk in stream:
                for event in chunk_events(chunk):
                    yield event
    except openai.APIError as exc:
        raise UpstreamError(describe_error(exc, url, answering=answering)) from exc


def chunk_events(chunk: Any) -> list[dict[str, Any]]:
    """The events in one ``ChatCompletionChunk`` (first choice only)."""
    events: list[dict[str, Any]] = []
    if chunk.choices:
        delta = chunk.choices[0].delta
        reasoning = _reasoning(delta)
        if reasoning:
            events.append({"event": "reasoning_delta", "data": {"text": reasoning}})
        if delta.content:
            events.append({"event": "message_delta", "data": {"text": delta.content}})
        events.extend(_tool_call_event(call) for call in delta.tool_calls or ())

    if chunk.usage is not None:
        events.append({"event": "usage", "data": _usage(chunk.usage)})
    return events


def describe_error(exc: openai.APIError, url: str, *, answering: bool) -> str:
    """A message about ``exc`` that says what the operator can do about it.

    ``answering`` tells whether the upstream had begun its answer.
    """
    if isinstance(exc, openai.APIConnectionError):
        if answering:
            return f"upstream at {url} broke off the answer: {_cause(exc)}"
        return f"upstream unreachable at {url}: {_cause(exc)}"
    if isinstance(exc, openai.APIStatusError):
        hint = _STATUS_HINTS.get(exc.status_code, _detail(exc))
        return f"upstream answered {exc.status_code}: {hint}"
    return f"upstream failed mid-answer: {exc.message}"


_STATUS_HINTS = {
    401: "check --upstream-key",
    403: "the key may not use this model; check --upstream-key and --model",
    404: "check --upstream-url and --model",
    429: "the upstream is rate limiting; try again later",
}


def _reasoning(delta: Any) -> str | None:
    # Not in the OpenAI schema: vLLM and DeepSeek send reasoning_content, others
    # (OpenRouter, Ollama) send reasoning; the client keeps both as extra fields.
    extra = delta.model_extra or {}
    value = extra.get("reasoning_content") or extra.get("reasoning")
    return value if isinstance(value, str) else None


def _tool_call_event(call: Any) -> dict[str, Any]:
    function = call.function
    return {
        "event": "tool_call_delta",
        "data": {
            "index": call.index,
            "id": call.id,
            "name": function.name if function is not None else None,
            "arguments": (function.arguments if function is not None else None) or "",
        },
    }


def _usage(usage: Any) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message[:300]
    return exc.message[:300]


def _cause(exc: openai.APIError) -> str:
    cause = exc.__cause__
    return str(cause) if cause is not None and str(cause) else exc.message
