"""Recorded event sequences, one per aggregator kind, and the parts they make."""

from __future__ import annotations

from typing import Any

# -- a LibreChat agent run ----------------------------------------------------------
# An agent handoff, reasoning, a short answer, a tool call whose arguments stream
# in fragments and whose output arrives on completion, then the final answer from
# a step tagged with its agent. Events LibreChat sends that carry no content
# (on_chain_end, say) are mixed in, as is the terminal event.

RUN = "run_7f3a"
AGENT = "agent_weather"

AGENT_EVENTS: list[Any] = [
    {
        "event": "on_agent_update",
        "data": {"agent_update": {"index": 0, "runId": RUN, "agentId": AGENT}},
    },
    {
        "event": "on_run_step",
        "data": {
            "stepIndex": 0,
            "id": "step_think",
            "runId": RUN,
            "index": 1,
            "type": "message_creation",
            "stepDetails": {
                "type": "message_creation",
                "message_creation": {"message_id": "msg_1"},
            },
            "usage": None,
        },
    },
    {
        "event": "on_reasoning_delta",
        "data": {
            "id": "step_think",
            "delta": {"content": [{"type": "think", "think": "The user asks "}]},
        },
    },
    {
        "event": "on_reasoning_delta",
        "data": {
            "id": "step_think",
            "delta": {"content": [{"type": "think", "think": "about Paris."}]},
        },
    },
    {
        "event": "on_run_step",
        "data": {
            "stepIndex": 1,
            "id": "step_intro",
            "runId": RUN,
            "index": 2,
            "type": "message_creation",
            "stepDetails": {
                "type": "message_creation",
                "message_creation": {"message_id": "msg_1"},
            },
            "usage": None,
        },
    },
    {
        "event": "on_message_delta",
        "data": {
            "id": "step_intro",
            "delta": {"content": [{"type": "text", "text": "Let me "}]},
        },
    },
    {"event": "on_chain_stream", "data": {"chunk": {"ignored": True}}},
    {
        "event": "on_message_delta",
        "data": {
            "id": "step_intro",
            "delta": {"content": [{"type": "text", "text": "look that up."}]},
        },
    },
    {
        "event": "on_run_step",
        "data": {
            "stepIndex": 2,
            "id": "step_tool",
            "runId": RUN,
            "index": 3,
            "type": "tool_calls",
            "stepDetails": {
                "type": "tool_calls",
                "tool_calls": [
                    {
                        "name": "get_weather",
                        "args": "",
                        "id": "call_1",
                        "type": "tool_call",
                    }
                ],
            },
            "usage": None,
        },
    },
    {
        "event": "on_run_step_delta",
        "data": {
            "id": "step_tool",
            "delta": {
                "type": "tool_calls",
                "tool_calls": [
                    {"args": '{"city":', "index": 0, "type": "tool_call_chunk"}
                ],
            },
        },
    },
    {
        "event": "on_run_step_delta",
        "data": {
            "id": "step_tool",
            "delta": {
                "type": "tool_calls",
                "tool_calls": [
                    {"args": '"Paris"}', "index": 0, "type": "tool_call_chunk"}
                ],
            },
        },
    },
    {
        "event": "on_run_step_completed",
        "data": {
            "result": {
                "id": "step_tool",
                "index": 3,
                "type": "tool_call",
                "tool_call": {
                    "id": "call_1",
                    "name": "get_weather",
                    "args": '{"city":"Paris"}',
                    "output": "18 °C, clear",
                },
            }
        },
    },
    {
        "event": "on_run_step",
        "data": {
            "stepIndex": 3,
            "id": "step_answer",
            "runId": RUN,
            "agentId": AGENT,
            "index": 4,
            "type": "message_creation",
            "stepDetails": {
                "type": "message_creation",
                "message_creation": {"message_id": "msg_1"},
            },
            "usage": None,
        },
    },
    {
        "event": "on_message_delta",
        "data": {
            "id": "step_answer",
            "delta": {"content": [{"type": "text", "text": "It is 18 °C "}]},
        },
    },
    {
        "event": "on_message_delta",
        "data": {
            "id": "step_answer",
            "delta": {"content": [{"type": "text", "text": "and clear in Paris."}]},
        },
    },
    {"event": "on_chain_end", "data": {"output": None}},
    {"event": "final", "data": {"status": "complete", "error": None}},
]

AGENT_PARTS: list[Any] = [
    {
        "type": "agent_update",
        "agent_update": {"index": 0, "runId": RUN, "agentId": AGENT},
    },
    {"type": "think", "think": "The user asks about Paris."},
    {"type": "text", "text": "Let me look that up."},
    {
        "type": "tool_call",
        "tool_call": {
            "id": "call_1",
            "name": "get_weather",
            "args": '{"city":"Paris"}',
            "type": "tool_call",
            "output": "18 °C, clear",
            "progress": 1,
        },
    },
    {"type": "text", "text": "It is 18 °C and clear in Paris.", "agentId": AGENT},
]

# -- an OpenAI chat-completion stream ---------------------------------------------
# As a vLLM server streams it with a reasoning parser and include_usage: a role
# chunk, reasoning, content, two tool calls whose fragments interleave, the
# finish chunk, and the usage chunk with no choices.


def _chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-41",
        "object": "chat.completion.chunk",
        "created": 1_733_000_000,
        "model": "qwen3-8b",
        "choices": [
            {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
    }


def _tool(index: int, arguments: str, **head: str) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if head:
        call["id"] = head["id"]
        call["type"] = "function"
        call["function"]["name"] = head["name"]
    return {"tool_calls": [call]}


USAGE = {"prompt_tokens": 31, "completion_tokens": 58, "total_tokens": 89}

OPENAI_EVENTS: list[Any] = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"reasoning_content": "Weather and time "}),
    _chunk({"reasoning_content": "are both needed."}),
    _chunk({"content": "Checking "}),
    _chunk({"content": "both."}),
    _chunk(_tool(0, "", id="call_w", name="get_weather")),
    _chunk(_tool(0, '{"city": ')),
    _chunk(_tool(1, "", id="call_t", name="get_time")),
    _chunk(_tool(0, '"Paris"}')),
    _chunk(_tool(1, '{"tz": "CET"}')),
    _chunk({}, finish_reason="tool_calls"),
    {
        "id": "chatcmpl-41",
        "object": "chat.completion.chunk",
        "created": 1_733_000_000,
        "model": "qwen3-8b",
        "choices": [],
        "usage": USAGE,
    },
]

OPENAI_PARTS: list[Any] = [
    {"type": "think", "think": "Weather and time are both needed."},
    {"type": "text", "text": "Checking both."},
    {
        "type": "tool_call",
        "tool_call": {
            "id": "call_w",
            "name": "get_weather",
            "args": '{"city": "Paris"}',
        },
    },
    {
        "type": "tool_call",
        "tool_call": {"id": "call_t", "name": "get_time", "args": '{"tz": "CET"}'},
    },
]

# -- reattach's own events -----------------------------------------------------------

TEXT_EVENTS: list[Any] = [
    {"event": "reasoning_delta", "data": {"text": "Short "}},
    {"event": "reasoning_delta", "data": {"text": "answer."}},
    {"event": "message_delta", "data": {"text": "Hello"}},
    ", ",
    {"event": "message_delta", "data": {"text": "world"}},
    {
        "event": "tool_call_delta",
        "data": {"index": 0, "id": "call_s", "name": "search", "arguments": '{"q":'},
    },
    {"event": "tool_call_delta", "data": {"index": 0, "arguments": ' "reattach"}'}},
    {"event": "message_delta", "data": {"text": "!"}},
    {"event": "usage", "data": {"prompt_tokens": 5, "completion_tokens": 7}},
    {"event": "final", "data": {"status": "complete", "error": None}},
]

TEXT_PARTS: list[Any] = [
    {"type": "think", "think": "Short answer."},
    {"type": "text", "text": "Hello, world"},
    {
        "type": "tool_call",
        "tool_call": {"id": "call_s", "name": "search", "args": '{"q": "reattach"}'},
    },
    {"type": "text", "text": "!"},
]
