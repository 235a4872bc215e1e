"""OpenAIAggregator: chat-completion chunks, bare or in an envelope."""

from __future__ import annotations

from typing import Any

from reattach.aggregate import OpenAIAggregator

from .recorded import OPENAI_EVENTS, OPENAI_PARTS, USAGE


def feed_all(events: list[Any]) -> OpenAIAggregator:
    aggregator = OpenAIAggregator()
    for event in events:
        aggregator.feed(event)
    return aggregator


def chunk(delta: dict[str, Any], *, index: int = 0, **choice: Any) -> dict[str, Any]:
    return {"choices": [{"index": index, "delta": delta, **choice}]}


def test_recorded_stream_gives_think_text_and_tool_calls() -> None:
    aggregator = feed_all(OPENAI_EVENTS)

    assert aggregator.kind == "openai"
    assert aggregator.get_content_parts() == OPENAI_PARTS
    assert aggregator.text == "Checking both."
    assert aggregator.reasoning == "Weather and time are both needed."
    assert aggregator.finish_reason == "tool_calls"
    assert aggregator.usage == USAGE
    assert aggregator.get_run_steps() == []


def test_enveloped_chunks_read_the_same() -> None:
    events = [{"event": "chunk", "data": event} for event in OPENAI_EVENTS]

    assert feed_all(events).get_content_parts() == OPENAI_PARTS


def test_reasoning_under_either_name_but_not_twice() -> None:
    aggregator = feed_all(
        [
            chunk({"reasoning": "a"}),
            chunk({"reasoning_content": "b", "reasoning": "b"}),
            chunk({"content": "c"}),
        ]
    )

    assert aggregator.get_content_parts() == [
        {"type": "think", "think": "ab"},
        {"type": "text", "text": "c"},
    ]


def test_only_choice_zero_is_aggregated() -> None:
    aggregator = feed_all(
        [
            {
                "choices": [
                    {"index": 1, "delta": {"content": "other"}},
                    {"index": 0, "delta": {"content": "mine"}},
                ]
            },
            chunk({"content": " and more"}, index=1),
            {"choices": [{"delta": {"content": ", no index"}}]},
        ]
    )

    assert aggregator.text == "mine, no index"


def test_tool_calls_come_out_by_index() -> None:
    aggregator = feed_all(
        [
            chunk(
                {"tool_calls": [{"index": 2, "id": "c2", "function": {"name": "b"}}]}
            ),
            chunk(
                {"tool_calls": [{"index": 0, "id": "c0", "function": {"name": "a"}}]}
            ),
            chunk({"tool_calls": [{"index": 2, "function": {"arguments": "{}"}}]}),
        ]
    )

    assert aggregator.get_content_parts() == [
        {"type": "tool_call", "tool_call": {"id": "c0", "name": "a", "args": ""}},
        {"type": "tool_call", "tool_call": {"id": "c2", "name": "b", "args": "{}"}},
    ]


def test_tool_calls_without_index_follow_their_id_or_the_latest_call() -> None:
    aggregator = feed_all(
        [
            chunk(
                {
                    "tool_calls": [
                        {"id": "a", "function": {"name": "f", "arguments": "1"}}
                    ]
                }
            ),
            chunk(
                {
                    "tool_calls": [
                        {"id": "b", "function": {"name": "g", "arguments": "2"}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"id": "a", "function": {"arguments": "3"}}]}),
            chunk({"tool_calls": [{"function": {"arguments": "4"}}]}),
        ]
    )

    calls = [part["tool_call"] for part in aggregator.get_content_parts()]
    assert calls == [
        {"id": "a", "name": "f", "args": "13"},
        {"id": "b", "name": "g", "args": "24"},
    ]


def test_a_whole_completion_message_is_read_like_a_delta() -> None:
    completion = {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Done."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"total_tokens": 3},
    }

    aggregator = feed_all([completion])

    assert aggregator.get_content_parts() == [{"type": "text", "text": "Done."}]
    assert aggregator.finish_reason == "stop"
    assert aggregator.usage == {"total_tokens": 3}


def test_empty_stream_has_no_parts() -> None:
    aggregator = feed_all([chunk({"role": "assistant", "content": ""})])

    assert aggregator.get_content_parts() == []
    assert aggregator.finish_reason is None
    assert aggregator.usage is None


def test_events_that_are_not_chunks_are_ignored() -> None:
    aggregator = feed_all(
        [
            {"event": "message_delta", "data": {"text": "not a chunk"}},
            {"event": "final", "data": {"status": "complete", "error": None}},
            "bare text",
        ]
    )

    assert aggregator.get_content_parts() == []
