"""Reading SSE bodies in tests, strictly: only ``id`` and ``data`` fields allowed."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["parse_sse"]


def parse_sse(text: str) -> list[tuple[int, Any]]:
    """``(seq, event)`` of every message of an SSE body, comments skipped.

    Fails when a message has any field but one ``id`` and one ``data``.
    """
    chunks = []
    for block in text.split("\n\n"):
        lines = [
            line for line in block.split("\n") if line and not line.startswith(":")
        ]
        if not lines:
            continue
        fields = [line.split(": ", 1) for line in lines]
        assert [name for name, _ in fields] == ["id", "data"], block
        chunks.append((int(fields[0][1]), json.loads(fields[1][1])))
    return chunks
