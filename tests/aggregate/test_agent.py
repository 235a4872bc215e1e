"""AgentAggregator: LibreChat agent events into LibreChat-shaped parts."""

from __future__ import annotations

from typing import Any

from reattach.aggregate import AgentAggregator

from .recorded import AGENT, AGENT_EVENTS, AGENT_PARTS


def feed_all(events: list[Any]) -> AgentAggregator:
    aggregator = AgentAggregator()
    for event in events:
        aggregator.feed(event)
    return aggregator


def run_step(
    step_id: str, index: int, *tool_calls: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    details: dict[str, Any] = (
        {"type": "tool_calls", "tool_calls": list(tool_calls)}
        if tool_calls
        else {"type": "message_creation", "message_creation": {"message_id": "m"}}
    )
    return {
        "event": "on_run_step",
        "data": {"id": step_id, "index": index, "stepDetails": details, **extra},
    }


def text_delta(step_id: str, text: str) -> dict[str, Any]:
    content = [{"type": "text", "text": text}]
    return {
        "event": "on_message_delta",
        "data": {"id": step_id, "delta": {"content": content}},
    }


def think_delta(step_id: str, think: str) -> dict[str, Any]:
    content = [{"type": "think", "think": think}]
    return {
        "event": "on_reasoning_delta",
        "data": {"id": step_id, "delta": {"content": content}},
    }


def args_delta(step_id: str, *fragments: dict[str, Any]) -> dict[str, Any]:
    delta = {"type": "tool_calls", "tool_calls": list(fragments)}
    return {"event": "on_run_step_delta", "data": {"id": step_id, "delta": delta}}


def completed(step_id: str, tool_call: dict[str, Any]) -> dict[str, Any]:
    result = {"id": step_id, "tool_call": tool_call}
    return {"event": "on_run_step_completed", "data": {"result": result}}


def test_recorded_run_gives_librechat_parts() -> None:
    aggregator = feed_all(AGENT_EVENTS)

    assert aggregator.kind == "agent"
    assert aggregator.get_content_parts() == AGENT_PARTS


def test_run_steps_are_kept_in_order_with_tool_output() -> None:
    steps = feed_all(AGENT_EVENTS).get_run_steps()

    assert [step["id"] for step in steps] == [
        "step_think",
        "step_intro",
        "step_tool",
        "step_answer",
    ]
    tool_calls = steps[2]["stepDetails"]["tool_calls"]
    assert tool_calls == [
        {
            "name": "get_weather",
            "args": '{"city":"Paris"}',
            "id": "call_1",
            "type": "tool_call",
            "output": "18 °C, clear",
        }
    ]
    assert steps[3]["agentId"] == AGENT


def test_returned_lists_are_fresh_copies() -> None:
    aggregator = feed_all(AGENT_EVENTS)

    parts = aggregator.get_content_parts()
    parts[2]["text"] = "changed"
    parts.append({"type": "text", "text": "extra"})
    steps = aggregator.get_run_steps()
    steps[0]["id"] = "changed"

    assert aggregator.get_content_parts() == AGENT_PARTS
    assert aggregator.get_run_steps()[0]["id"] == "step_think"


def test_the_callers_events_are_not_changed_or_kept() -> None:
    step = run_step("s", 0, {"id": "c", "name": "f", "args": ""})
    aggregator = feed_all([step])
    step["data"]["stepDetails"]["tool_calls"][0]["name"] = "changed"

    aggregator.feed(completed("s", {"id": "c", "output": "done"}))

    assert step["data"]["stepDetails"]["tool_calls"][0] == {
        "id": "c",
        "name": "changed",
        "args": "",
    }
    assert aggregator.get_run_steps()[0]["stepDetails"]["tool_calls"][0]["name"] == "f"


def test_message_step_part_appears_with_its_first_delta() -> None:
    aggregator = feed_all([run_step("s", 0)])
    assert aggregator.get_content_parts() == []

    aggregator.feed(text_delta("s", "hi"))
    assert aggregator.get_content_parts() == [{"type": "text", "text": "hi"}]


def test_parts_sit_at_their_index_and_gaps_are_skipped() -> None:
    aggregator = feed_all(
        [
            run_step("late", 5),
            run_step("early", 2),
            text_delta("late", "second"),
            text_delta("early", "first"),
        ]
    )

    assert aggregator.get_content_parts() == [
        {"type": "text", "text": "first"},
        {"type": "text", "text": "second"},
    ]


def test_a_part_keeps_its_type() -> None:
    aggregator = feed_all(
        [run_step("s", 0), think_delta("s", "thinking"), text_delta("s", "text")]
    )

    assert aggregator.get_content_parts() == [{"type": "think", "think": "thinking"}]


def test_a_delta_item_may_come_bare_and_several_items_share_the_step_part() -> None:
    bare = {"id": "s", "delta": {"content": {"type": "text", "text": "a"}}}
    several = {
        "id": "s",
        "delta": {
            "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}]
        },
    }
    aggregator = feed_all(
        [
            run_step("s", 0),
            {"event": "on_message_delta", "data": bare},
            {"event": "on_message_delta", "data": several},
        ]
    )

    assert aggregator.get_content_parts() == [{"type": "text", "text": "abc"}]


def test_text_keeps_tool_call_ids_and_other_items_replace() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://x/1.png"}}
    newer = {"type": "image_url", "image_url": {"url": "https://x/2.png"}}
    linked = {"type": "text", "text": "see", "tool_call_ids": ["c1"]}
    aggregator = feed_all(
        [
            run_step("s", 0),
            run_step("img", 1),
            {
                "event": "on_message_delta",
                "data": {"id": "s", "delta": {"content": [linked]}},
            },
            {
                "event": "on_message_delta",
                "data": {"id": "img", "delta": {"content": [image]}},
            },
            {
                "event": "on_message_delta",
                "data": {"id": "img", "delta": {"content": [newer]}},
            },
        ]
    )

    assert aggregator.get_content_parts() == [
        {"type": "text", "text": "see", "tool_call_ids": ["c1"]},
        newer,
    ]


def test_deltas_for_an_unknown_step_are_ignored() -> None:
    aggregator = feed_all(
        [
            text_delta("nope", "x"),
            think_delta("nope", "x"),
            args_delta("nope", {"args": "x"}),
            completed("nope", {"id": "c", "output": "x"}),
        ]
    )

    assert aggregator.get_content_parts() == []
    assert aggregator.get_run_steps() == []


def test_several_tool_calls_in_one_step_take_consecutive_indexes() -> None:
    aggregator = feed_all(
        [
            run_step(
                "tools",
                1,
                {"id": "c1", "name": "first", "args": ""},
                {"id": "c2", "name": "second", "args": ""},
            ),
            args_delta("tools", {"id": "c2", "args": '{"b":'}),
            args_delta("tools", {"index": 0, "args": '{"a": 1}'}),
            args_delta("tools", {"id": "c2", "args": " 2}"}),
            completed("tools", {"id": "c2", "output": "two"}),
        ]
    )

    parts = aggregator.get_content_parts()
    assert [part["tool_call"]["id"] for part in parts] == ["c1", "c2"]
    assert parts[0]["tool_call"]["args"] == '{"a": 1}'
    assert parts[0]["tool_call"].get("progress") is None
    assert parts[1]["tool_call"] == {
        "id": "c2",
        "name": "second",
        "args": '{"b": 2}',
        "type": "tool_call",
        "output": "two",
        "progress": 1,
    }
    step_calls = aggregator.get_run_steps()[0]["stepDetails"]["tool_calls"]
    assert "output" not in step_calls[0]
    assert step_calls[1]["output"] == "two"


def test_fragments_without_id_or_known_position_go_to_the_first_call() -> None:
    aggregator = feed_all(
        [
            run_step("t", 0, {"id": "c1", "name": "f", "args": ""}),
            args_delta("t", {"args": "[1,", "index": 4}, {"args": " 2]"}),
        ]
    )

    assert aggregator.get_content_parts()[0]["tool_call"]["args"] == "[1, 2]"


def test_object_args_are_replaced_not_concatenated() -> None:
    aggregator = feed_all(
        [
            run_step("t", 0, {"id": "c", "name": "f", "args": {"a": 1}}),
            args_delta("t", {"args": {"a": 2}}),
        ]
    )
    assert aggregator.get_content_parts()[0]["tool_call"]["args"] == {"a": 2}

    aggregator.feed(args_delta("t", {"args": '{"a": 3}'}))
    assert aggregator.get_content_parts()[0]["tool_call"]["args"] == '{"a": 3}'


def test_fragments_name_an_unnamed_call_and_open_a_missing_one() -> None:
    aggregator = feed_all(
        [
            run_step("t", 0, {"args": ""}),
            args_delta("t", {"id": "c9", "name": "late_name", "args": "{}"}),
            run_step("empty", 1, {"id": "unused"}),
        ]
    )
    aggregator.feed(
        {
            "event": "on_run_step",
            "data": {"id": "bare", "index": 2, "stepDetails": {"type": "tool_calls"}},
        }
    )
    aggregator.feed(args_delta("bare", {"id": "c10", "name": "g", "args": "{"}))

    parts = aggregator.get_content_parts()
    assert parts[0]["tool_call"] == {
        "id": "c9",
        "name": "late_name",
        "args": "{}",
        "type": "tool_call",
    }
    assert parts[1]["tool_call"]["id"] == "unused"
    assert parts[2]["tool_call"] == {
        "id": "c10",
        "name": "g",
        "args": "{",
        "type": "tool_call",
    }


def test_fragments_after_completion_are_ignored() -> None:
    aggregator = feed_all(
        [
            run_step("t", 0, {"id": "c", "name": "f", "args": ""}),
            args_delta("t", {"args": "{}"}),
            completed("t", {"id": "c", "output": "ok"}),
            args_delta("t", {"args": "late"}),
        ]
    )

    call = aggregator.get_content_parts()[0]["tool_call"]
    assert call["args"] == "{}"
    assert call["output"] == "ok"
    assert call["progress"] == 1


def test_completion_without_a_prior_part_opens_one() -> None:
    aggregator = feed_all(
        [
            run_step("s", 3),
            completed("s", {"id": "c", "name": "f", "args": {"x": 1}, "output": [1]}),
        ]
    )

    assert aggregator.get_content_parts() == [
        {
            "type": "tool_call",
            "tool_call": {
                "id": "c",
                "name": "f",
                "args": {"x": 1},
                "type": "tool_call",
                "output": [1],
                "progress": 1,
            },
        }
    ]


def test_completion_does_not_overwrite_a_part_of_another_type() -> None:
    aggregator = feed_all(
        [run_step("s", 0), text_delta("s", "text"), completed("s", {"output": "x"})]
    )

    assert aggregator.get_content_parts() == [{"type": "text", "text": "text"}]


def test_agent_update_marks_an_occupied_index() -> None:
    update = {"agent_update": {"index": 0, "agentId": "agent_b", "runId": "r"}}
    aggregator = feed_all(
        [
            run_step("s", 0),
            text_delta("s", "hello"),
            {"event": "on_agent_update", "data": update},
        ]
    )

    assert aggregator.get_content_parts() == [
        {"type": "text", "text": "hello", "agentId": "agent_b"}
    ]


def test_a_later_agent_update_replaces_an_earlier_one() -> None:
    first = {"agent_update": {"index": 2, "agentId": "a"}}
    second = {"agent_update": {"index": 2, "agentId": "b"}}
    aggregator = feed_all(
        [
            {"event": "on_agent_update", "data": first},
            {"event": "on_agent_update", "data": second},
        ]
    )

    assert aggregator.get_content_parts() == [
        {"type": "agent_update", "agent_update": {"index": 2, "agentId": "b"}}
    ]


def test_step_group_and_agent_are_copied_onto_the_part() -> None:
    aggregator = feed_all(
        [run_step("s", 0, agentId="agent_a", groupId=2), text_delta("s", "x")]
    )

    assert aggregator.get_content_parts() == [
        {"type": "text", "text": "x", "agentId": "agent_a", "groupId": 2}
    ]


def test_a_repeated_run_step_updates_the_step_in_place() -> None:
    aggregator = feed_all(
        [
            run_step("a", 0),
            run_step("b", 1, {"id": "c", "name": "", "args": ""}),
            run_step("b", 1, {"id": "c", "name": "named", "args": "{}"}),
        ]
    )

    steps = aggregator.get_run_steps()
    assert [step["id"] for step in steps] == ["a", "b"]
    assert steps[1]["stepDetails"]["tool_calls"][0]["name"] == "named"
    assert aggregator.get_content_parts()[0]["tool_call"] == {
        "id": "c",
        "name": "named",
        "args": "{}",
        "type": "tool_call",
    }


def test_long_text_from_many_deltas() -> None:
    aggregator = feed_all([run_step("s", 0)])
    for number in range(5000):
        aggregator.feed(text_delta("s", f"{number} "))

    expected = "".join(f"{number} " for number in range(5000))
    assert aggregator.get_content_parts() == [{"type": "text", "text": expected}]
    aggregator.feed(text_delta("s", "end"))
    assert aggregator.get_content_parts()[0]["text"] == expected + "end"


def test_a_repeated_run_step_keeps_streamed_args() -> None:
    aggregator = feed_all(
        [
            run_step("t", 0, {"id": "c", "name": "f", "args": ""}),
            args_delta("t", {"args": '{"streamed": true}'}),
            args_delta("t", {"name": "renamed"}),
            run_step("t", 0, {"id": "c", "name": "f", "args": '{"other": 1}'}),
        ]
    )

    assert aggregator.get_content_parts()[0]["tool_call"] == {
        "id": "c",
        "name": "f",
        "args": '{"streamed": true}',
        "type": "tool_call",
    }
