"""Hypothesis strategies: plausible event streams of each kind, and odd values."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

STEP_IDS = ["s0", "s1", "s2", "s3"]
CALL_IDS = ["c0", "c1", "c2"]

small_text = st.text(max_size=6)
call_id = st.sampled_from(CALL_IDS)

# -- text ----------------------------------------------------------------------------


def _text_event(name: str) -> st.SearchStrategy[Any]:
    return st.builds(lambda text: {"event": name, "data": {"text": text}}, small_text)


_tool_call_delta = st.builds(
    lambda data: {"event": "tool_call_delta", "data": data},
    st.fixed_dictionaries(
        {"arguments": small_text},
        optional={
            "index": st.integers(0, 3),
            "id": call_id,
            "name": st.sampled_from(["f", "g", ""]),
        },
    ),
)

text_events = st.one_of(
    small_text,
    _text_event("message_delta"),
    _text_event("reasoning_delta"),
    _tool_call_delta,
    st.builds(
        lambda n: {"event": "usage", "data": {"total_tokens": n}}, st.integers(0, 9)
    ),
)

# -- openai --------------------------------------------------------------------------

_openai_tool = st.fixed_dictionaries(
    {
        "function": st.fixed_dictionaries(
            {}, optional={"arguments": small_text, "name": small_text}
        )
    },
    optional={"index": st.integers(0, 3), "id": call_id},
)

_openai_delta = st.fixed_dictionaries(
    {},
    optional={
        "content": small_text,
        "reasoning_content": small_text,
        "reasoning": small_text,
        "tool_calls": st.lists(_openai_tool, max_size=2),
    },
)


def _openai_chunk(
    delta: dict[str, Any], index: int, finish: str | None, usage: int | None
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "object": "chat.completion.chunk",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        chunk["usage"] = {"total_tokens": usage}
    return chunk


openai_chunks = st.builds(
    _openai_chunk,
    _openai_delta,
    st.sampled_from([0, 0, 0, 1]),
    st.sampled_from([None, None, "stop", "tool_calls"]),
    st.none() | st.integers(0, 99),
)
openai_events = openai_chunks | st.builds(
    lambda chunk: {"event": "chunk", "data": chunk}, openai_chunks
)

# -- agent ---------------------------------------------------------------------------

step_id = st.sampled_from(STEP_IDS)
_args = small_text | st.dictionaries(
    st.sampled_from("ab"), st.integers(0, 3), max_size=2
)

_tool_call = st.fixed_dictionaries(
    {}, optional={"id": call_id, "name": st.sampled_from(["f", "g", ""]), "args": _args}
)


def _run_step(
    step: str, index: int, calls: list[dict[str, Any]] | None, agent: str | None
) -> dict[str, Any]:
    details: dict[str, Any] = (
        {"type": "message_creation"}
        if calls is None
        else {"type": "tool_calls", "tool_calls": calls}
    )
    data: dict[str, Any] = {"id": step, "index": index, "stepDetails": details}
    if agent is not None:
        data["agentId"] = agent
    return {"event": "on_run_step", "data": data}


def _content_delta(step: str, kind: str, text: str) -> dict[str, Any]:
    name = "on_message_delta" if kind == "text" else "on_reasoning_delta"
    content = [{"type": kind, kind: text}]
    return {"event": name, "data": {"id": step, "delta": {"content": content}}}


def _args_delta(step: str, fragments: list[dict[str, Any]]) -> dict[str, Any]:
    delta = {"type": "tool_calls", "tool_calls": fragments}
    return {"event": "on_run_step_delta", "data": {"id": step, "delta": delta}}


def _completed(step: str, call: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": "on_run_step_completed",
        "data": {"result": {"id": step, "tool_call": call}},
    }


def _agent_update(index: int, agent: str) -> dict[str, Any]:
    return {
        "event": "on_agent_update",
        "data": {"agent_update": {"index": index, "agentId": agent}},
    }


_fragment = st.fixed_dictionaries(
    {"args": _args},
    optional={
        "id": call_id,
        "name": st.sampled_from(["f", ""]),
        "index": st.integers(0, 2),
    },
)
_agent_name = st.sampled_from(["agent_a", "agent_b"])

agent_events = st.one_of(
    st.builds(
        _run_step,
        step_id,
        st.integers(0, 5),
        st.none() | st.lists(_tool_call, max_size=3),
        st.none() | _agent_name,
    ),
    st.builds(_content_delta, step_id, st.sampled_from(["text", "think"]), small_text),
    st.builds(_args_delta, step_id, st.lists(_fragment, min_size=1, max_size=2)),
    st.builds(
        _completed,
        step_id,
        st.fixed_dictionaries(
            {}, optional={"id": call_id, "args": _args, "output": small_text}
        ),
    ),
    st.builds(_agent_update, st.integers(0, 5), _agent_name),
)

STREAMS: dict[str, st.SearchStrategy[Any]] = {
    "agent": agent_events,
    "openai": openai_events,
    "text": text_events,
}

# -- odd input -----------------------------------------------------------------------

KEYS = [
    "event", "data", "id", "index", "delta", "content", "type", "text", "think",
    "tool_calls", "args", "arguments", "name", "result", "tool_call", "output",
    "agent_update", "agentId", "groupId", "stepDetails", "choices", "function",
    "reasoning", "reasoning_content", "finish_reason", "usage", "message",
    "tool_call_ids", "progress",
]  # fmt: skip
NAMES = [
    "on_run_step", "on_message_delta", "on_reasoning_delta", "on_run_step_delta",
    "on_run_step_completed", "on_agent_update", "message_delta", "reasoning_delta",
    "tool_call_delta", "usage", "tool_calls", "message_creation", "text", "think",
    "tool_call", "agent_update", "image_url", "s0", "s1", "c0",
]  # fmt: skip

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 6),
    st.integers(),
    st.just(2**70),
    st.floats(),
    st.sampled_from(NAMES),
    st.text(max_size=4),
)

odd_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=5)
    ),
    max_leaves=25,
)

odd_events = st.one_of(
    odd_values,
    st.fixed_dictionaries({"event": st.sampled_from(NAMES), "data": odd_values}),
    agent_events,
    openai_events,
    text_events,
)
