"""Event encoding: the one place where events become bytes and back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ._errors import InvalidEvent, PayloadTooLarge

__all__ = [
    "RESERVED_EVENTS",
    "decode",
    "encode_event",
    "encode_events",
    "final_event",
]


# Results smaller than this are copied; see encode_event.
_COPY_BELOW = 4096


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
    if len(data) < _COPY_BELOW:
        # orjson's result keeps its whole working buffer (about 4 KiB) alive; a
        # store that keeps many small events in memory keeps a right-sized copy.
        return bytes(memoryview(data))
    return data


#: Event names only the store writes: the terminal chunk and the snapshot chunk.
RESERVED_EVENTS = frozenset({"final", "snapshot"})


def encode_events(events: Iterable[Any], max_bytes: int) -> list[bytes]:
    """Encode every event of a batch, so that a bad one rejects the whole batch.

    Events named ``final`` or ``snapshot`` are refused: followers stop at the one
    and restart their content at the other, so only the store may write them.
    """
    encoded = []
    for event in events:
        if isinstance(event, dict) and event.get("event") in RESERVED_EVENTS:
            raise InvalidEvent(
                f"the event name {event['event']!r} is reserved for the store"
            )
        encoded.append(encode_event(event, max_bytes))
    return encoded


def decode(data: bytes | str) -> Any:
    """Decode one stored JSON value."""
    return orjson.loads(data)


def final_event(status: str, error: str | None, final: Any = None) -> dict[str, Any]:
    """The terminal event that ``finish`` appends: ``{"event": "final", ...}``."""
    payload: dict[str, Any] = {"status": status, "error": error}
    if final is not None:
        payload["final_event"] = final
    return {"event": "final", "data": payload}
