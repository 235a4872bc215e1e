"""Aggregation of OpenAI chat-completion chunks (any OpenAI-compatible server)."""

from __future__ import annotations

from typing import Any, Self

from ._base import (
    MAX_INDEX,
    SNAPSHOT_VERSION,
    Aggregator,
    TextBuffer,
    append_text,
    as_dict,
    as_index,
    as_str,
    check_header,
    clone,
    plain,
    restore_plain,
    snapshot_dict,
    snapshot_index,
    snapshot_list,
    snapshot_str,
)

__all__ = ["OpenAIAggregator"]

# Servers name streamed reasoning differently: DeepSeek and vLLM use
# ``reasoning_content``, others (OpenRouter, recent vLLM, Ollama) ``reasoning``.
_REASONING_KEYS = ("reasoning_content", "reasoning")


class OpenAIAggregator(Aggregator):
    """Aggregates ``chat.completion.chunk`` objects, as dicts.

    An event is a chunk itself (a dict with ``choices`` or ``usage``) or an
    envelope ``{"event": ..., "data": chunk}``. Choice ``0`` is aggregated: its
    content, its reasoning (``reasoning_content`` or ``reasoning``), its tool
    calls by ``index`` (``id``, ``function.name``, ``function.arguments``
    fragments) and its ``finish_reason``; ``usage`` comes from any chunk.

    The parts are ``{"type": "think", "think"}`` when there was reasoning,
    ``{"type": "text", "text"}`` when there was content, then one
    ``{"type": "tool_call", "tool_call": {"id", "name", "args"}}`` per tool call,
    by index.
    """

    kind = "openai"

    def __init__(self) -> None:
        self._reasoning = TextBuffer()
        self._text = TextBuffer()
        self._tool_calls: dict[int, dict[str, Any]] = {}
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        """The content of choice 0 so far."""
        return self._text.value

    @property
    def reasoning(self) -> str:
        """The reasoning of choice 0 so far."""
        return self._reasoning.value

    @property
    def finish_reason(self) -> str | None:
        """Why choice 0 ended, once a chunk said so."""
        return self._finish_reason

    @property
    def usage(self) -> dict[str, Any] | None:
        """The token usage the stream reported, or ``None``."""
        usage: dict[str, Any] | None = clone(self._usage)
        return usage

    def feed(self, event: Any) -> None:
        """Take one chunk, bare or in an envelope. Never raises."""
        chunk = _chunk_of(event)
        if chunk is None:
            return

        usage = as_dict(chunk.get("usage"))
        if usage is not None:
            self._usage = plain(usage)
        choice = _first_choice(chunk.get("choices"))
        if choice is not None:
            self._add_choice(choice)

    def get_content_parts(self) -> list[Any]:
        """Reasoning, text and tool calls, as a fresh list."""
        parts: list[Any] = []
        if self._reasoning:
            parts.append({"type": "think", "think": self._reasoning.value})
        if self._text:
            parts.append({"type": "text", "text": self._text.value})
        for index in sorted(self._tool_calls):
            call = self._tool_calls[index]
            parts.append({"type": "tool_call", "tool_call": clone(call)})
        return parts

    def snapshot(self) -> dict[str, Any]:
        """``{"kind": "openai", "version", "text", "reasoning", "tool_calls",
        "finish_reason", "usage"}``; each tool call also keeps its ``index``."""
        return {
            "kind": self.kind,
            "version": SNAPSHOT_VERSION,
            "text": self._text.value,
            "reasoning": self._reasoning.value,
            "tool_calls": [
                {"index": index, **clone(call)}
                for index, call in sorted(self._tool_calls.items())
            ],
            "finish_reason": self._finish_reason,
            "usage": clone(self._usage),
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self:
        """Rebuild from :meth:`snapshot`'s result.

        :raises ValueError: ``data`` is not a snapshot of an OpenAI aggregator.
        """
        data = check_header(data, cls.kind)
        aggregator = cls()
        aggregator._text = TextBuffer(snapshot_str(data.get("text"), "text"))
        reasoning = snapshot_str(data.get("reasoning"), "reasoning")
        aggregator._reasoning = TextBuffer(reasoning)
        for raw in snapshot_list(data, "tool_calls"):
            index, call = _restore_tool_call(raw)
            aggregator._tool_calls[index] = call

        finish_reason = data.get("finish_reason")
        if finish_reason is not None:
            aggregator._finish_reason = snapshot_str(finish_reason, "finish_reason")
        usage = data.get("usage")
        if usage is not None:
            aggregator._usage = restore_plain(snapshot_dict(usage, "usage"))
        return aggregator

    def _add_choice(self, choice: dict[str, Any]) -> None:
        # A whole (not streamed) completion carries "message" where chunks carry
        # "delta"; both read the same.
        delta = as_dict(choice.get("delta")) or as_dict(choice.get("message")) or {}
        self._text.append(as_str(delta.get("content")) or "")
        self._reasoning.append(_reasoning_of(delta))
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for item in tool_calls:
                call = as_dict(item)
                if call is not None:
                    self._add_tool_call(call)

        finish_reason = as_str(choice.get("finish_reason"))
        if finish_reason:
            self._finish_reason = finish_reason

    def _add_tool_call(self, delta: dict[str, Any]) -> None:
        index = self._tool_index(delta)
        call = self._tool_calls.setdefault(
            index, {"id": "", "name": "", "args": TextBuffer()}
        )
        function = as_dict(delta.get("function")) or {}
        for key, value in (("id", delta.get("id")), ("name", function.get("name"))):
            if isinstance(value, str) and value:
                call[key] = value

        arguments = as_str(function.get("arguments"))
        if arguments:
            append_text(call, "args", arguments)

    def _tool_index(self, delta: dict[str, Any]) -> int:
        """The delta's ``index``; without one, its id's, else the latest call's."""
        index = as_index(delta.get("index"))
        if index is not None:
            return index

        call_id = as_str(delta.get("id"))
        if call_id:
            for known, call in self._tool_calls.items():
                if call["id"] == call_id:
                    return known
            return min(max(self._tool_calls, default=-1) + 1, MAX_INDEX)
        return max(self._tool_calls, default=0)


def _chunk_of(event: Any) -> dict[str, Any] | None:
    chunk = as_dict(event)
    if chunk is None:
        return None
    if "choices" not in chunk and "usage" not in chunk:
        chunk = as_dict(chunk.get("data"))
    if chunk is None or ("choices" not in chunk and "usage" not in chunk):
        return None
    return chunk


def _first_choice(choices: Any) -> dict[str, Any] | None:
    """Choice 0: the one whose ``index`` is 0 (a missing index counts as 0)."""
    if not isinstance(choices, list):
        return None
    for item in choices:
        choice = as_dict(item)
        if choice is not None and choice.get("index", 0) == 0:
            return choice
    return None


def _reasoning_of(delta: dict[str, Any]) -> str:
    # Some servers send both keys with the same text: take one, never both.
    for key in _REASONING_KEYS:
        value = delta.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _restore_tool_call(raw: Any) -> tuple[int, dict[str, Any]]:
    entry = snapshot_dict(raw, "tool call")
    index = snapshot_index(entry.get("index"), "tool call index")
    call = {
        key: snapshot_str(entry.get(key), f"tool call {key}")
        for key in ("id", "name", "args")
    }
    return index, call
