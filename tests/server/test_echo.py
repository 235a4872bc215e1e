"""The built-in echo model."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reattach.server.echo import echo_source, last_user_text, split_words


@given(st.text())
def test_the_words_join_back_into_the_text(text: str) -> None:
    words = split_words(text)

    assert "".join(words) == text
    assert all(len(word.split()) <= 1 for word in words)
    assert len(words) == max(len(text.split()), 1 if text else 0)


def test_each_word_keeps_the_space_that_follows_it() -> None:
    assert split_words("  two words\n") == ["  two ", "words\n"]
    assert split_words("   ") == ["   "]
    assert split_words("") == []


def test_the_last_user_message_is_echoed() -> None:
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "a "},
                {"type": "image_url"},
                {"type": "text", "text": "b"},
            ],
        },
        {"role": "assistant", "content": None},
    ]

    assert last_user_text(messages) == "a b"
    assert last_user_text([{"role": "system", "content": "x"}]) == ""


async def test_echo_yields_one_delta_per_word_then_usage() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi there"},
    ]

    events: list[Any] = [event async for event in echo_source(messages)]

    assert events == [
        {"event": "message_delta", "data": {"text": "hi "}},
        {"event": "message_delta", "data": {"text": "there"}},
        {
            "event": "usage",
            "data": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
        },
    ]


def test_no_word_is_split_inside() -> None:
    words = split_words("naïve café — déjà vu")

    assert all(re.fullmatch(r"\s*\S+\s*", word) for word in words)
