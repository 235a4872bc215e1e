"""Event encoding: the one place where events become bytes and back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ._errors import InvalidEvent, PayloadTooLarge

__all__ = ["decode", "encode_event", "encode_events", "final_event"]


def encode_event(event: Any, max_bytes: int) -> bytes:
    """Encode one event as JSON; raise before anything is written if it cannot be."""
    try:
        data = orjson.dumps(event)
    except TypeError as exc:
        raise InvalidEvent(f"event is not a JSON value: {exc}") from exc
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"event is {len(data)} bytes as JSON, over the limit of {max_bytes}"
        )
    return data


def encode_events(events: Iterable[Any], max_bytes: int) -> list[bytes]:
    """Encode every event of a batch, so that a bad one rejects the whole batch."""
    return [encode_event(event, max_bytes) for event in events]


def decode(data: bytes | str) -> Any:
    """Decode one stored JSON value."""
    return orjson.loads(data)


def final_event(status: str, error: str | None, final: Any = None) -> dict[str, Any]:
    """The terminal event that ``finish`` appends: ``{"event": "final", ...}``."""
    payload: dict[str, Any] = {"status": status, "error": error}
    if final is not None:
        payload["final_event"] = final
    return {"event": "final", "data": payload}
