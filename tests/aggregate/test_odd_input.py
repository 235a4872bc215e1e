"""Odd input never raises, and what comes out stays JSON-ready and restorable."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reattach.aggregate import Aggregator, for_kind, restore

from .strategies import odd_events, odd_values

KINDS = ["agent", "openai", "text"]


def check_output(aggregator: Aggregator) -> None:
    for value in (aggregator.get_content_parts(), aggregator.get_run_steps()):
        assert isinstance(value, list)
        assert orjson.loads(orjson.dumps(value)) == value
    snapshot = aggregator.snapshot()
    copy = orjson.loads(orjson.dumps(snapshot))
    assert restore(copy).snapshot() == snapshot


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"output": [value]}
    return value


def odd_by_hand() -> list[Any]:
    deep = nested(5000)
    return [
        None,
        42,
        "",
        [],
        {},
        {"event": None},
        {"event": 5, "data": {}},
        {"event": ["on_run_step"], "data": {}},
        {"event": "on_run_step"},
        {"event": "on_run_step", "data": None},
        {"event": "on_run_step", "data": {"id": "s", "index": -1}},
        {"event": "on_run_step", "data": {"id": "s", "index": True}},
        {"event": "on_run_step", "data": {"id": "s", "index": 1.0}},
        {"event": "on_run_step", "data": {"id": "", "index": 0}},
        {"event": "on_run_step", "data": {"id": "s", "index": 2**60}},
        {"event": "on_run_step", "data": {"id": "s", "index": 0, "stepDetails": 3}},
        {
            "event": "on_run_step",
            "data": {
                "id": "t",
                "index": 2**53 - 1,
                "stepDetails": {"type": "tool_calls", "tool_calls": [{}, 5, {}]},
            },
        },
        {
            "event": "on_run_step",
            "data": {
                "id": "s",
                "index": 0,
                "stepDetails": {"type": "tool_calls", "tool_calls": "x"},
                "groupId": {1, 2},
                "odd": (1, object(), b"bytes", 10**5000),
            },
        },
        {"event": "on_message_delta", "data": {"id": "s", "delta": "text"}},
        {"event": "on_message_delta", "data": {"id": ["s"], "delta": {}}},
        {"event": "on_message_delta", "data": {"id": "s", "delta": {"content": 7}}},
        {
            "event": "on_message_delta",
            "data": {"id": "s", "delta": {"content": [{"type": 3}, {"text": "x"}]}},
        },
        {
            "event": "on_message_delta",
            "data": {"id": "s", "delta": {"content": [{"type": "text", "text": 1}]}},
        },
        {"event": "on_run_step_delta", "data": {"id": "s", "delta": {"type": "x"}}},
        {
            "event": "on_run_step_delta",
            "data": {"id": "s", "delta": {"type": "tool_calls", "tool_calls": [1]}},
        },
        {"event": "on_run_step_completed", "data": {"result": "done"}},
        {"event": "on_run_step_completed", "data": {"result": {"id": "s"}}},
        {
            "event": "on_run_step_completed",
            "data": {"result": {"id": "s", "tool_call": {"output": deep}}},
        },
        {"event": "on_agent_update", "data": {"agent_update": {"index": "0"}}},
        {"event": "on_agent_update", "data": {"agent_update": {"index": 0}}},
        {"event": "on_agent_update", "data": {"agent_update": {"index": 0, "x": deep}}},
        {"choices": None},
        {"choices": [None, 3, {"index": 0, "delta": None}]},
        {"choices": [{"index": 0, "delta": {"content": 5, "tool_calls": {}}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"function": 3}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": -1, "id": 4}]}}]},
        {"usage": None, "choices": []},
        {"usage": {"nested": deep}},
        {"event": "x", "data": {"choices": [{"delta": {"content": "ok"}}]}},
        {"event": "message_delta", "data": "text"},
        {"event": "message_delta", "data": {"text": ["a"]}},
        {"event": "tool_call_delta", "data": {"index": "0", "arguments": 5}},
        {"event": "tool_call_delta", "data": {"index": 2**53 - 1, "id": "z"}},
        {"event": "tool_call_delta", "data": {"id": "new-without-index"}},
        {"event": "usage", "data": {"tokens": float("inf")}},
        {"event": "usage", "data": deep},
        {1: "non-string key", "event": "usage", "data": {2: "x"}},
        object(),
        deep,
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_odd_events_by_hand_never_raise(kind: str) -> None:
    aggregator = for_kind(kind)
    for event in odd_by_hand():
        aggregator.feed(event)

    check_output(aggregator)


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_odd_events_never_raise_after_a_restore(kind: str) -> None:
    aggregator = for_kind(kind)
    events = odd_by_hand()
    for event in events[: len(events) // 2]:
        aggregator.feed(event)

    restored = restore(orjson.loads(orjson.dumps(aggregator.snapshot())))
    for event in events[len(events) // 2 :]:
        restored.feed(event)
    check_output(restored)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(KINDS), st.lists(odd_events, max_size=15))
def test_random_events_never_raise(kind: str, events: list[Any]) -> None:
    aggregator = for_kind(kind)
    for event in events:
        aggregator.feed(event)

    check_output(aggregator)


@settings(max_examples=150, deadline=None)
@given(odd_values)
def test_restore_of_random_data_raises_only_value_error(data: Any) -> None:
    try:
        aggregator = restore(data)
    except ValueError:
        return
    check_output(aggregator)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(KINDS),
    st.sampled_from(["parts", "steps", "meta", "tool_calls", "text", "usage"]),
    odd_values,
    st.lists(odd_events, max_size=6),
)
def test_a_damaged_snapshot_is_refused_or_usable(
    kind: str, field: str, value: Any, events: list[Any]
) -> None:
    snapshot = for_kind(kind).snapshot()
    snapshot[field] = value
    try:
        aggregator = restore(snapshot)
    except ValueError:
        return

    for event in events:
        aggregator.feed(event)
    check_output(aggregator)
