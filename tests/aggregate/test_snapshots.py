"""Snapshots: restoring at any point and feeding the rest equals the full replay."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reattach.aggregate import Aggregator, TextAggregator, for_kind, restore

from .recorded import AGENT_EVENTS, OPENAI_EVENTS, TEXT_EVENTS
from .strategies import STREAMS

RECORDED = {"agent": AGENT_EVENTS, "openai": OPENAI_EVENTS, "text": TEXT_EVENTS}
KINDS = sorted(STREAMS)


def replay(kind: str, events: list[Any]) -> Aggregator:
    aggregator = for_kind(kind)
    for event in events:
        aggregator.feed(event)
    return aggregator


def through_json(data: Any) -> Any:
    return orjson.loads(orjson.dumps(data))


def state(aggregator: Aggregator) -> tuple[Any, Any, Any]:
    return (
        aggregator.get_content_parts(),
        aggregator.get_run_steps(),
        aggregator.snapshot(),
    )


def check_every_split(kind: str, events: list[Any]) -> None:
    full = state(replay(kind, events))
    for split in range(len(events) + 1):
        head = replay(kind, events[:split])
        snapshot = head.snapshot()
        assert snapshot["kind"] == kind
        assert through_json(snapshot) == snapshot
        assert state(restore(through_json(snapshot))) == state(head)

        resumed = restore(through_json(snapshot))
        for event in events[split:]:
            resumed.feed(event)
        assert state(resumed) == full, f"split at {split}"


@pytest.mark.parametrize("kind", KINDS)
def test_recorded_streams_resume_at_every_split(kind: str) -> None:
    check_every_split(kind, RECORDED[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_empty_aggregator_round_trips(kind: str) -> None:
    snapshot = for_kind(kind).snapshot()

    restored = restore(through_json(snapshot))

    assert type(restored) is type(for_kind(kind))
    assert restored.snapshot() == snapshot
    assert restored.get_content_parts() == []


@pytest.mark.parametrize("kind", KINDS)
def test_restore_does_not_keep_the_callers_dict(kind: str) -> None:
    events = RECORDED[kind]
    original = replay(kind, events)
    snapshot = through_json(original.snapshot())
    expected = through_json(snapshot)

    restored = restore(snapshot)
    for value in snapshot.values():
        if isinstance(value, list):
            value.clear()

    assert restored.get_content_parts() == original.get_content_parts()
    assert restored.snapshot() == expected


@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_is_a_copy(kind: str) -> None:
    aggregator = replay(kind, RECORDED[kind])
    expected = through_json(aggregator.snapshot())

    snapshot = aggregator.snapshot()
    for value in snapshot.values():
        if isinstance(value, list):
            value.clear()

    assert aggregator.snapshot() == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(STREAMS["agent"], max_size=12))
def test_agent_streams_resume_at_every_split(events: list[Any]) -> None:
    check_every_split("agent", events)


@settings(max_examples=60, deadline=None)
@given(st.lists(STREAMS["openai"], max_size=12))
def test_openai_streams_resume_at_every_split(events: list[Any]) -> None:
    check_every_split("openai", events)


@settings(max_examples=60, deadline=None)
@given(st.lists(STREAMS["text"], max_size=12))
def test_text_streams_resume_at_every_split(events: list[Any]) -> None:
    check_every_split("text", events)


@settings(max_examples=40, deadline=None)
@given(st.lists(STREAMS["text"], max_size=20))
def test_text_property_is_the_text_parts_joined(events: list[Any]) -> None:
    aggregator = replay("text", events)
    parts = aggregator.get_content_parts()

    joined = "".join(part["text"] for part in parts if part["type"] == "text")
    assert isinstance(aggregator, TextAggregator)
    assert aggregator.text == joined
    kinds = [part["type"] for part in parts]
    for first, second in itertools.pairwise(kinds):
        assert not (first == second and first in ("text", "think"))
