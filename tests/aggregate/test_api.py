"""The package surface: names, for_kind, restore and rebuild."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

import reattach.aggregate as aggregate
from reattach import Chunk, MemoryJobStore, Snapshot
from reattach.aggregate import (
    AgentAggregator,
    Aggregator,
    OpenAIAggregator,
    TextAggregator,
    for_kind,
    rebuild,
    restore,
)
from reattach.store import ContentSource

from .recorded import AGENT_EVENTS, AGENT_PARTS, TEXT_EVENTS, TEXT_PARTS


def test_all_is_sorted_and_complete() -> None:
    assert aggregate.__all__ == sorted(aggregate.__all__)
    for name in aggregate.__all__:
        assert getattr(aggregate, name) is not None
    public = {name for name in vars(aggregate) if not name.startswith("_")}
    assert set(aggregate.__all__) <= public
    assert {
        "AgentAggregator",
        "Aggregator",
        "OpenAIAggregator",
        "TextAggregator",
        "for_kind",
        "rebuild",
        "restore",
    } == set(aggregate.__all__)


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("agent", AgentAggregator),
        ("openai", OpenAIAggregator),
        ("text", TextAggregator),
    ],
)
def test_for_kind_makes_an_empty_aggregator(kind: str, cls: type[Aggregator]) -> None:
    aggregator = for_kind(kind)

    assert type(aggregator) is cls
    assert aggregator.kind == kind
    assert aggregator.get_content_parts() == []
    assert aggregator.get_run_steps() == []
    assert for_kind(kind) is not aggregator


@pytest.mark.parametrize("kind", ["", "Agent", "librechat", None, 3])
def test_for_kind_refuses_unknown_kinds(kind: Any) -> None:
    with pytest.raises(ValueError, match="unknown aggregator kind"):
        for_kind(kind)


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "agent",
        {},
        {"kind": "nope", "version": 1},
        {"kind": ["agent"], "version": 1},
    ],
)
def test_restore_refuses_what_names_no_kind(data: Any) -> None:
    with pytest.raises(ValueError, match=r"snapshot must be a dict|unknown aggregator"):
        restore(data)


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "agent"},
        {"kind": "agent", "version": 2, "parts": [], "steps": [], "meta": []},
        {"kind": "agent", "version": 1, "parts": {}, "steps": [], "meta": []},
        {"kind": "agent", "version": 1, "parts": [[0]], "steps": [], "meta": []},
        {"kind": "agent", "version": 1, "parts": [[-1, {}]], "steps": [], "meta": []},
        {"kind": "agent", "version": 1, "parts": [[0, {}]], "steps": [], "meta": []},
        {
            "kind": "agent",
            "version": 1,
            "parts": [[0, {"type": "text", "text": 1}]],
            "steps": [],
            "meta": [],
        },
        {
            "kind": "agent",
            "version": 1,
            "parts": [[0, {"type": "tool_call"}]],
            "steps": [],
            "meta": [],
        },
        {
            "kind": "agent",
            "version": 1,
            "parts": [],
            "steps": [{"id": "s"}],
            "meta": [],
        },
        {
            "kind": "agent",
            "version": 1,
            "parts": [],
            "steps": [{"id": "", "index": 0}],
            "meta": [],
        },
        {"kind": "agent", "version": 1, "parts": [], "steps": [], "meta": [[0, 1]]},
        {"kind": "openai", "version": 1, "text": 3, "reasoning": "", "tool_calls": []},
        {
            "kind": "openai",
            "version": 1,
            "text": "",
            "reasoning": "",
            "tool_calls": [{"index": 0, "id": "a", "name": "f"}],
        },
        {
            "kind": "openai",
            "version": 1,
            "text": "",
            "reasoning": "",
            "tool_calls": [],
            "finish_reason": 5,
        },
        {"kind": "text", "version": 1, "parts": [{"type": "image"}], "tool_calls": []},
        {"kind": "text", "version": 1, "parts": [], "tool_calls": [[0, 0]]},
        {
            "kind": "text",
            "version": 1,
            "parts": [{"type": "text", "text": "x"}],
            "tool_calls": [[0, 0]],
        },
        {"kind": "text", "version": 1, "parts": [], "tool_calls": [], "usage": [1]},
    ],
)
def test_restore_refuses_malformed_snapshots(data: Any) -> None:
    with pytest.raises(ValueError, match="snapshot"):
        restore(data)


@pytest.mark.parametrize("cls", [AgentAggregator, OpenAIAggregator, TextAggregator])
def test_a_class_refuses_another_kinds_snapshot(cls: type[Aggregator]) -> None:
    other = "text" if cls.kind != "text" else "agent"

    with pytest.raises(ValueError, match="not a snapshot"):
        cls.restore(for_kind(other).snapshot())


def test_rebuild_without_snapshot_aggregates_agent_events() -> None:
    assert rebuild(None, AGENT_EVENTS) == AGENT_PARTS
    assert rebuild(None, []) == []


def test_rebuild_from_a_snapshot_and_the_tail() -> None:
    for split in range(len(AGENT_EVENTS) + 1):
        head = AgentAggregator()
        for event in AGENT_EVENTS[:split]:
            head.feed(event)
        data = orjson.loads(orjson.dumps(head.snapshot()))

        assert rebuild(data, AGENT_EVENTS[split:]) == AGENT_PARTS


def test_rebuild_uses_the_snapshots_kind() -> None:
    head = TextAggregator()
    for event in TEXT_EVENTS[:4]:
        head.feed(event)

    assert rebuild(head.snapshot(), TEXT_EVENTS[4:]) == TEXT_PARTS


def test_rebuild_accepts_snapshot_and_chunk_objects() -> None:
    head = TextAggregator()
    for event in TEXT_EVENTS[:3]:
        head.feed(event)
    chunks = [Chunk(seq, event) for seq, event in enumerate(TEXT_EVENTS[3:], start=4)]

    assert rebuild(Snapshot(3, head.snapshot()), chunks) == TEXT_PARTS


def test_rebuild_skips_snapshot_and_final_events() -> None:
    head = TextAggregator()
    head.feed("counted once")
    marker = {"event": "snapshot", "data": head.snapshot()}
    events = [
        marker,
        " and more",
        {"event": "final", "data": {"status": "complete", "error": None}},
    ]

    assert rebuild(head.snapshot(), events) == [
        {"type": "text", "text": "counted once and more"}
    ]


def test_rebuild_starts_over_when_the_snapshot_cannot_be_restored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = {"kind": "agent", "version": 99, "secret": "user text"}

    with caplog.at_level(logging.WARNING, logger="reattach.aggregate"):
        parts = rebuild(broken, AGENT_EVENTS)

    assert parts == AGENT_PARTS
    assert "could not be restored" in caplog.text
    assert "user text" not in caplog.text


async def test_an_aggregator_is_a_content_source_for_the_store() -> None:
    aggregator = AgentAggregator()
    source: ContentSource = aggregator
    for event in AGENT_EVENTS:
        aggregator.feed(event)

    async with MemoryJobStore() as store:
        await store.create_job("job-1", "user-1")
        store.set_graph("job-1", source)

        assert await store.get_content_parts("job-1") == AGENT_PARTS
        assert await store.get_run_steps("job-1") == aggregator.get_run_steps()


@pytest.mark.parametrize("cls", [AgentAggregator, OpenAIAggregator, TextAggregator])
@pytest.mark.parametrize("data", [None, [], "text", {"kind": None}])
def test_a_class_refuses_what_is_not_a_snapshot(
    cls: type[Aggregator], data: Any
) -> None:
    with pytest.raises(ValueError, match="snapshot"):
        cls.restore(data)


@pytest.mark.parametrize("pair", [0, [0], [0, 0, 0], "01"])
def test_text_restore_refuses_a_bad_tool_call_entry(pair: Any) -> None:
    data = {
        "kind": "text",
        "version": 1,
        "parts": [
            {"type": "tool_call", "tool_call": {"id": "", "name": "", "args": ""}}
        ],
        "tool_calls": [pair],
    }

    with pytest.raises(ValueError, match="tool_calls entries"):
        restore(data)
