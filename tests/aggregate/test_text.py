"""TextAggregator: reattach's own delta events."""

from __future__ import annotations

from typing import Any

from reattach.aggregate import TextAggregator

from .recorded import TEXT_EVENTS, TEXT_PARTS


def feed_all(events: list[Any]) -> TextAggregator:
    aggregator = TextAggregator()
    for event in events:
        aggregator.feed(event)
    return aggregator


def message(text: Any) -> dict[str, Any]:
    return {"event": "message_delta", "data": {"text": text}}


def reasoning(text: Any) -> dict[str, Any]:
    return {"event": "reasoning_delta", "data": {"text": text}}


def tool(**data: Any) -> dict[str, Any]:
    return {"event": "tool_call_delta", "data": data}


def test_recorded_stream_gives_parts_in_order_of_appearance() -> None:
    aggregator = feed_all(TEXT_EVENTS)

    assert aggregator.kind == "text"
    assert aggregator.get_content_parts() == TEXT_PARTS
    assert aggregator.text == "Hello, world!"
    assert aggregator.reasoning == "Short answer."
    assert aggregator.usage == {"prompt_tokens": 5, "completion_tokens": 7}
    assert aggregator.get_run_steps() == []


def test_bare_strings_are_text() -> None:
    aggregator = feed_all(["one ", "two"])

    assert aggregator.get_content_parts() == [{"type": "text", "text": "one two"}]
    assert aggregator.text == "one two"


def test_alternating_kinds_open_new_parts() -> None:
    aggregator = feed_all([message("a"), reasoning("b"), message("c"), reasoning("d")])

    assert aggregator.get_content_parts() == [
        {"type": "text", "text": "a"},
        {"type": "think", "think": "b"},
        {"type": "text", "text": "c"},
        {"type": "think", "think": "d"},
    ]
    assert aggregator.text == "ac"


def test_empty_deltas_open_no_part() -> None:
    aggregator = feed_all([message(""), "", reasoning(""), message(None)])

    assert aggregator.get_content_parts() == []
    assert aggregator.text == ""


def test_a_tool_call_grows_where_it_first_appeared() -> None:
    aggregator = feed_all(
        [
            tool(index=1, id="b", name="second", arguments="{"),
            tool(index=0, id="a", name="first", arguments="[]"),
            message("between"),
            tool(index=1, arguments="}"),
        ]
    )

    assert aggregator.get_content_parts() == [
        {"type": "tool_call", "tool_call": {"id": "b", "name": "second", "args": "{}"}},
        {"type": "tool_call", "tool_call": {"id": "a", "name": "first", "args": "[]"}},
        {"type": "text", "text": "between"},
    ]


def test_tool_deltas_without_index_follow_their_id_or_the_latest_call() -> None:
    aggregator = feed_all(
        [
            tool(id="a", name="f", arguments="1"),
            tool(id="b", name="g", arguments="2"),
            tool(id="a", arguments="3"),
            tool(arguments="4"),
        ]
    )

    calls = [part["tool_call"] for part in aggregator.get_content_parts()]
    assert calls == [
        {"id": "a", "name": "f", "args": "13"},
        {"id": "b", "name": "g", "args": "24"},
    ]


def test_the_latest_usage_is_kept_and_copied() -> None:
    aggregator = feed_all(
        [
            {"event": "usage", "data": {"total_tokens": 1}},
            {"event": "usage", "data": {"total_tokens": 2}},
        ]
    )

    usage = aggregator.usage
    assert usage == {"total_tokens": 2}
    usage["total_tokens"] = 99
    assert aggregator.usage == {"total_tokens": 2}
    assert aggregator.get_content_parts() == []


def test_other_events_are_ignored() -> None:
    aggregator = feed_all(
        [
            {"event": "final", "data": {"status": "complete", "error": None}},
            {"event": "on_message_delta", "data": {"text": "not ours"}},
            {"choices": [{"index": 0, "delta": {"content": "not ours"}}]},
        ]
    )

    assert aggregator.get_content_parts() == []
