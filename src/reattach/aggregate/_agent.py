"""Aggregation of LibreChat agent events into LibreChat-shaped content parts."""

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
)

__all__ = ["AgentAggregator"]

_TEXT_KINDS = ("text", "think")


class AgentAggregator(Aggregator):
    """Aggregates the events of a LibreChat agent run (``@librechat/agents``).

    Events are envelopes ``{"event": name, "data": payload}``:

    - ``on_run_step`` records a run step and reserves its ``index``. A
      ``tool_calls`` step opens one ``{"type": "tool_call", "tool_call": {...}}``
      part per tool call, at ``index``, ``index + 1``, ...; a
      ``message_creation`` step's part appears with its first delta.
    - ``on_message_delta`` and ``on_reasoning_delta`` append the items of
      ``delta.content`` (``{"type": "text", "text"}``,
      ``{"type": "think", "think"}``) to the part of step ``id``.
    - ``on_run_step_delta`` appends tool-call argument fragments.
    - ``on_run_step_completed`` fills a tool call's ``output`` (and sets
      ``progress`` to 1; later fragments are ignored).
    - ``on_agent_update`` puts an ``agent_update`` part at its index, or marks
      the part already there with the ``agentId``.

    A part keeps the type it was opened with: an update of another type at its
    index is ignored. Parts come out in index order; empty indexes are skipped.
    A step's ``agentId`` and ``groupId`` are copied onto the part at its index.
    """

    kind = "agent"

    def __init__(self) -> None:
        self._parts: dict[int, dict[str, Any]] = {}
        self._steps: dict[str, dict[str, Any]] = {}
        self._meta: dict[int, dict[str, Any]] = {}

    def feed(self, event: Any) -> None:
        """Take one event; see the class for the vocabulary. Never raises."""
        name, data = envelope(event)
        payload = as_dict(data)
        if payload is None:
            return

        match name:
            case "on_run_step":
                self._on_run_step(payload)
            case "on_message_delta" | "on_reasoning_delta":
                self._on_content_delta(payload)
            case "on_run_step_delta":
                self._on_run_step_delta(payload)
            case "on_run_step_completed":
                self._on_run_step_completed(payload)
            case "on_agent_update":
                self._on_agent_update(payload)

    def get_content_parts(self) -> list[Any]:
        """The parts in index order, as a fresh list."""
        parts: list[Any] = []
        for index in sorted(self._parts):
            part = clone(self._parts[index])
            part.update(clone(self._meta.get(index, {})))
            parts.append(part)
        return parts

    def get_run_steps(self) -> list[Any]:
        """The ``on_run_step`` payloads in order of arrival, with tool outputs."""
        return [clone(step) for step in self._steps.values()]

    def snapshot(self) -> dict[str, Any]:
        """``{"kind": "agent", "version", "parts", "steps", "meta"}``.

        ``parts`` and ``meta`` are ``[index, value]`` pairs; ``steps`` are the run
        steps.
        """
        return {
            "kind": self.kind,
            "version": SNAPSHOT_VERSION,
            "parts": [
                [index, clone(part)] for index, part in sorted(self._parts.items())
            ],
            "steps": self.get_run_steps(),
            "meta": [[index, clone(meta)] for index, meta in self._meta.items()],
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Self:
        """Rebuild from :meth:`snapshot`'s result.

        :raises ValueError: ``data`` is not a snapshot of an agent aggregator.
        """
        data = check_header(data, cls.kind)
        aggregator = cls()
        for pair in snapshot_list(data, "parts"):
            index, raw = _restore_pair(pair, "part")
            aggregator._parts[index] = _restore_part(raw)

        for raw in snapshot_list(data, "steps"):
            step_id, step = _restore_step(raw)
            aggregator._steps[step_id] = step

        for pair in snapshot_list(data, "meta"):
            index, raw = _restore_pair(pair, "meta")
            aggregator._meta[index] = restore_plain(snapshot_dict(raw, "meta"))

        return aggregator

    # -- events ------------------------------------------------------------------

    def _on_run_step(self, payload: dict[str, Any]) -> None:
        step_id = as_str(payload.get("id"))
        index = as_index(payload.get("index"))
        if not step_id or index is None:
            return

        step = plain(payload)
        self._steps[step_id] = step
        self._note_meta(index, step)
        for offset, call in enumerate(_step_tool_calls(step)):
            if index + offset <= MAX_INDEX:
                self._open_tool_call(index + offset, call)

    def _on_content_delta(self, payload: dict[str, Any]) -> None:
        index = self._step_index(payload.get("id"))
        delta = as_dict(payload.get("delta"))
        if index is None or delta is None:
            return

        for item in _content_items(delta.get("content")):
            self._merge(index, item)

    def _on_run_step_delta(self, payload: dict[str, Any]) -> None:
        step = self._step(payload.get("id"))
        delta = as_dict(payload.get("delta"))
        if step is None or delta is None or delta.get("type") != "tool_calls":
            return

        fragments = delta.get("tool_calls")
        for item in fragments if isinstance(fragments, list) else []:
            fragment = as_dict(item)
            if fragment is not None:
                self._add_fragment(step, fragment)

    def _on_run_step_completed(self, payload: dict[str, Any]) -> None:
        result = as_dict(payload.get("result"))
        step = self._step(result.get("id")) if result is not None else None
        if result is None or step is None:
            return

        done = as_dict(result.get("tool_call")) or {}
        index = self._tool_slot(step, as_str(done.get("id")), None)
        part = self._parts.get(index)
        if part is not None and part["type"] != "tool_call":
            return

        call = part["tool_call"] if part is not None else _new_tool_call()
        _set_names(call, done)
        if done.get("args") is not None:
            call["args"] = plain(done["args"])
        if "output" in done:
            call["output"] = plain(done["output"])
        call["progress"] = 1
        self._parts[index] = {"type": "tool_call", "tool_call": call}
        _complete_step(step, done)

    def _on_agent_update(self, payload: dict[str, Any]) -> None:
        update = as_dict(payload.get("agent_update"))
        index = as_index(update.get("index")) if update is not None else None
        if update is None or index is None:
            return

        part = self._parts.get(index)
        if part is None or part["type"] == "agent_update":
            self._parts[index] = {"type": "agent_update", "agent_update": plain(update)}
            return

        agent_id = as_str(update.get("agentId"))
        if agent_id:
            part["agentId"] = agent_id

    # -- parts -------------------------------------------------------------------

    def _merge(self, index: int, item: dict[str, Any]) -> None:
        """Add one content item of a delta to the part at ``index``."""
        kind = as_str(item.get("type"))
        part = self._parts.get(index)
        if not kind or kind == "tool_call":
            return
        if part is not None and part["type"] != kind:
            return

        if kind not in _TEXT_KINDS:
            # Other item types (images, say) arrive whole: the latest one stands.
            self._parts[index] = plain(item)
            return

        fragment = as_str(item.get(kind))
        if fragment is None:
            return
        if part is None:
            part = self._parts[index] = {"type": kind, kind: TextBuffer()}
        append_text(part, kind, fragment)
        if kind == "text" and "tool_call_ids" in item:
            part["tool_call_ids"] = plain(item["tool_call_ids"])

    def _open_tool_call(self, index: int, source: dict[str, Any]) -> None:
        part = self._parts.get(index)
        if part is None:
            part = {"type": "tool_call", "tool_call": _new_tool_call()}
            self._parts[index] = part
        elif part["type"] != "tool_call":
            return

        call = part["tool_call"]
        _set_names(call, source)
        args = source.get("args")
        if _is_blank(call.get("args")) and not _is_blank(args):
            call["args"] = clone(args)

    def _add_fragment(self, step: dict[str, Any], fragment: dict[str, Any]) -> None:
        call_id = as_str(fragment.get("id"))
        index = self._tool_slot(step, call_id, as_index(fragment.get("index")))
        part = self._parts.get(index)
        if part is None:
            part = {"type": "tool_call", "tool_call": _new_tool_call()}
            self._parts[index] = part
        elif part["type"] != "tool_call":
            return

        call = part["tool_call"]
        if call.get("progress") == 1:
            return
        _set_names(call, fragment)
        _add_args(call, fragment.get("args"))

    def _tool_slot(
        self, step: dict[str, Any], call_id: str | None, position: int | None
    ) -> int:
        """The index of a step's tool call: by id, else by position, else the first.

        A step's tool calls sit at its index and the ones after it.
        """
        base = as_index(step.get("index")) or 0
        count = max(1, len(_step_tool_calls(step)))
        slots = [base + offset for offset in range(count) if base + offset <= MAX_INDEX]
        if call_id:
            for slot in slots:
                if _tool_call_id(self._parts.get(slot)) == call_id:
                    return slot

        if position is not None and position < len(slots):
            return slots[position]
        return base

    # -- steps -------------------------------------------------------------------

    def _step(self, step_id: Any) -> dict[str, Any] | None:
        return self._steps.get(step_id) if isinstance(step_id, str) else None

    def _step_index(self, step_id: Any) -> int | None:
        step = self._step(step_id)
        return as_index(step.get("index")) if step is not None else None

    def _note_meta(self, index: int, step: dict[str, Any]) -> None:
        """Remember the agent and parallel group of the step at ``index``."""
        meta: dict[str, Any] = {}
        agent_id = as_str(step.get("agentId"))
        if agent_id:
            meta["agentId"] = agent_id
        if step.get("groupId") is not None:
            meta["groupId"] = clone(step["groupId"])
        if meta:
            self._meta.setdefault(index, {}).update(meta)


def _new_tool_call() -> dict[str, Any]:
    return {"id": "", "name": "", "args": "", "type": "tool_call"}


def _tool_call_id(part: dict[str, Any] | None) -> Any:
    if part is None or part["type"] != "tool_call":
        return None
    return part["tool_call"].get("id")


def _set_names(call: dict[str, Any], source: dict[str, Any]) -> None:
    for key in ("id", "name"):
        value = as_str(source.get(key))
        if value:
            call[key] = value


def _add_args(call: dict[str, Any], args: Any) -> None:
    """String fragments extend string arguments; anything else replaces them."""
    if args is None:
        return
    if isinstance(args, str) and isinstance(call.get("args"), str | TextBuffer):
        append_text(call, "args", args)
    else:
        call["args"] = plain(args)


def _is_blank(value: Any) -> bool:
    if isinstance(value, TextBuffer):
        return not value
    return value is None or value == ""


def _step_tool_calls(step: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool calls a ``tool_calls`` step announced (others read as empty)."""
    details = as_dict(step.get("stepDetails"))
    calls = details.get("tool_calls") if details is not None else None
    if details is None or details.get("type") != "tool_calls":
        return []
    if not isinstance(calls, list):
        return []
    return [call if isinstance(call, dict) else {} for call in calls]


def _complete_step(step: dict[str, Any], done: dict[str, Any]) -> None:
    """Copy a finished tool call's output (and final args) into its run step."""
    calls = _step_tool_calls(step)
    call_id = as_str(done.get("id"))
    matches = [call for call in calls if call_id and call.get("id") == call_id]
    if not matches and len(calls) == 1:
        matches = calls
    for call in matches[:1]:
        if "output" in done:
            call["output"] = plain(done["output"])
        if done.get("args") is not None:
            call["args"] = plain(done["args"])


def _content_items(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, dict):
        return [content]
    if isinstance(content, list):
        return [item for item in content if isinstance(item, dict)]
    return []


# -- reading snapshots back ---------------------------------------------------------


def _restore_pair(pair: Any, what: str) -> tuple[int, Any]:
    if not isinstance(pair, list) or len(pair) != 2:
        raise ValueError(f"snapshot {what} entries must be [index, value]")
    return snapshot_index(pair[0], f"{what} index"), pair[1]


def _restore_part(raw: Any) -> dict[str, Any]:
    part = snapshot_dict(raw, "part")
    kind = snapshot_str(part.get("type"), "part type")
    if kind in _TEXT_KINDS:
        snapshot_str(part.get(kind), f"{kind} part")
    elif kind == "tool_call":
        snapshot_dict(part.get("tool_call"), "tool call")
    restored: dict[str, Any] = restore_plain(part)
    return restored


def _restore_step(raw: Any) -> tuple[str, dict[str, Any]]:
    step: dict[str, Any] = restore_plain(snapshot_dict(raw, "run step"))
    step_id = snapshot_str(step.get("id"), "run step id")
    snapshot_index(step.get("index"), "run step index")
    if not step_id:
        raise ValueError("snapshot run step id must not be empty")
    return step_id, step
