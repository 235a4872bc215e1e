"""Aggregation of reattach's own events: text, reasoning and tool-call deltas."""

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
    envelope,
    plain,
    restore_plain,
    snapshot_dict,
    snapshot_index,
    snapshot_list,
    snapshot_str,
    text_of,
)

__all__ = ["TextAggregator"]

_TEXT_EVENTS = {"message_delta": "text", "reasoning_delta": "think"}


class TextAggregator(Aggregator):
    """Aggregates the events reattach's server emits.

    ``{"event": "message_delta", "data": {"text": ...}}`` and a bare string add
    answer text, ``reasoning_delta`` adds reasoning, ``tool_call_delta``
    (``{"index", "id"?, "name"?, "arguments"}``, ``arguments`` a fragment) builds
    the tool call at ``index``, and ``usage`` is kept as :attr:`usage`.

    Parts keep the order in which they first appear. Consecutive text deltas share
    one ``{"type": "text", "text"}`` part, consecutive reasoning deltas one
    ``{"type": "think", "think"}`` part; each tool call is one
    ``{"type": "tool_call", "tool_call": {"id", "name", "args"}}`` part, which
    later deltas for its index extend wherever it stands.
    """

    kind = "text"

    def __init__(self) -> None:
        self._parts: list[dict[str, Any]] = []
        # tool-call index -> position of its part in self._parts
        self._tool_parts: dict[int, int] = {}
        self._usage: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        """The whole answer text: every text part, joined."""
        return "".join(text_of(p["text"]) for p in self._parts if p["type"] == "text")

    @property
    def reasoning(self) -> str:
        """All reasoning text, joined."""
        return "".join(text_of(p["think"]) for p in self._parts if p["type"] == "think")

    @property
    def usage(self) -> dict[str, Any] | None:
        """The payload of the last ``usage`` event, or ``None``."""
        usage: dict[str, Any] | None = clone(self._usage)
        return usage

    def feed(self, event: Any) -> None:
        """Take one event; see the class for the vocabulary. Never raises."""
        if isinstance(event, str):
            self._add_text("text", event)
            return

        name, data = envelope(event)
        payload = as_dict(data)
        if name is None or payload is None:
            return
        if name in _TEXT_EVENTS:
            self._add_text(_TEXT_EVENTS[name], as_str(payload.get("text")))
        elif name == "tool_call_delta":
            self._add_tool_delta(payload)
        elif name == "usage":
            self._usage = plain(payload)

    def get_content_parts(self) -> list[Any]:
        """The parts in order of first appearance, as a fresh list."""
        return [clone(part) for part in self._parts]

    def snapshot(self) -> dict[str, Any]:
        """``{"kind": "text", "version", "parts", "tool_calls", "usage"}``.

        ``tool_calls`` pairs each tool-call index with the position of its part.
        """
        return {
            "kind": self.kind,
            "version": SNAPSHOT_VERSION,
            "parts": self.get_content_parts(),
            "tool_calls": [[index, pos] for index, pos in self._tool_parts.items()],
            "usage": clone(self._usage),
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self:
        """Rebuild from :meth:`snapshot`'s result.

        :raises ValueError: ``data`` is not a snapshot of a text aggregator.
        """
        data = check_header(data, cls.kind)
        aggregator = cls()
        aggregator._parts = [_restore_part(raw) for raw in snapshot_list(data, "parts")]
        for pair in snapshot_list(data, "tool_calls"):
            index, position = _restore_tool_pair(pair, aggregator._parts)
            aggregator._tool_parts[index] = position

        usage = data.get("usage")
        if usage is not None:
            aggregator._usage = restore_plain(snapshot_dict(usage, "usage"))
        return aggregator

    def _add_text(self, kind: str, fragment: str | None) -> None:
        if not fragment:
            return
        last = self._parts[-1] if self._parts else None
        if last is not None and last["type"] == kind:
            append_text(last, kind, fragment)
        else:
            self._parts.append({"type": kind, kind: TextBuffer(fragment)})

    def _add_tool_delta(self, payload: dict[str, Any]) -> None:
        index = self._tool_index(payload)
        position = self._tool_parts.get(index)
        if position is None:
            position = len(self._parts)
            call = {"id": "", "name": "", "args": TextBuffer()}
            self._parts.append({"type": "tool_call", "tool_call": call})
            self._tool_parts[index] = position

        call = self._parts[position]["tool_call"]
        for key in ("id", "name"):
            value = as_str(payload.get(key))
            if value:
                call[key] = value

        arguments = as_str(payload.get("arguments"))
        if arguments:
            append_text(call, "args", arguments)

    def _tool_index(self, payload: dict[str, Any]) -> int:
        """The index a delta names; without one, its id's, else the latest call's."""
        index = as_index(payload.get("index"))
        if index is not None:
            return index

        call_id = as_str(payload.get("id"))
        if call_id:
            for known, position in self._tool_parts.items():
                if self._parts[position]["tool_call"]["id"] == call_id:
                    return known
            return min(max(self._tool_parts, default=-1) + 1, MAX_INDEX)
        return max(self._tool_parts, key=self._tool_parts.__getitem__, default=0)


def _restore_part(raw: Any) -> dict[str, Any]:
    part = snapshot_dict(raw, "part")
    kind = part.get("type")
    if kind in ("text", "think"):
        return {"type": kind, kind: snapshot_str(part.get(kind), f"{kind} part")}
    if kind == "tool_call":
        call = snapshot_dict(part.get("tool_call"), "tool call")
        fields = {
            key: snapshot_str(call.get(key), f"tool call {key}")
            for key in ("id", "name", "args")
        }
        return {"type": "tool_call", "tool_call": fields}
    raise ValueError("snapshot part has an unknown type")


def _restore_tool_pair(pair: Any, parts: list[dict[str, Any]]) -> tuple[int, int]:
    if not isinstance(pair, list) or len(pair) != 2:
        raise ValueError("snapshot tool_calls entries must be [index, position]")
    index = snapshot_index(pair[0], "tool call index")
    position = snapshot_index(pair[1], "tool call position")
    if position >= len(parts) or parts[position]["type"] != "tool_call":
        raise ValueError("snapshot tool call position does not name a tool call")
    return index, position
