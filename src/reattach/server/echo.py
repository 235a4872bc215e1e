"""The built-in ``echo`` model: it streams the last user message back, word by word."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

__all__ = ["echo_source", "last_user_text", "split_words"]

# A word with the spaces before it (only at the very start) and after it.
_WORD = re.compile(r"\s*\S+\s*")


def split_words(text: str) -> list[str]:
    """``text`` cut into words, each with the whitespace that follows it.

    The pieces joined give back ``text`` exactly; text without a word is one piece.
    """
    pieces = _WORD.findall(text)
    return pieces or ([text] if text else [])


def last_user_text(messages: Sequence[Any]) -> str:
    """The text of the last ``user`` message (text parts joined), or ``""``."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


async def echo_source(
    messages: Sequence[Any], *, delay: float = 0.0
) -> AsyncIterator[dict[str, Any]]:
    """Events that echo the last user message: one ``message_delta`` per word.

    ``delay`` seconds pass before each word, the pace of a model that types. A
    ``usage`` event, counting words as tokens, ends the answer.
    """
    prompt_words = sum(len(split_words(_text_of(m.get("content")))) for m in messages)
    words = split_words(last_user_text(messages))
    for word in words:
        if delay:
            await asyncio.sleep(delay)
        yield {"event": "message_delta", "data": {"text": word}}

    yield {
        "event": "usage",
        "data": {
            "prompt_tokens": prompt_words,
            "completion_tokens": len(words),
            "total_tokens": prompt_words + len(words),
        },
    }


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""
