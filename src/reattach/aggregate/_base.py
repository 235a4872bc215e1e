"""What every aggregator shares: the abstract class and JSON-safe helpers."""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar, Self

__all__ = [
    "MAX_INDEX",
    "SNAPSHOT_VERSION",
    "Aggregator",
    "TextBuffer",
    "append_text",
    "as_dict",
    "as_index",
    "as_str",
    "check_header",
    "clone",
    "envelope",
    "plain",
    "restore_plain",
    "snapshot_dict",
    "snapshot_index",
    "snapshot_list",
    "snapshot_str",
    "text_of",
]

#: The layout version written into every snapshot; restore accepts only this one.
SNAPSHOT_VERSION = 1

# Payloads nested deeper than this are cut (the deeper values become ``None``), so
# no input can exhaust the interpreter's recursion limit.
_MAX_DEPTH = 64

# Snapshots carry stored payloads a few levels below their own top.
_RESTORE_DEPTH = _MAX_DEPTH + 16

# orjson encodes integers in this range only.
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1

#: The largest part or tool-call index taken from an event: the largest integer
#: a JavaScript client reads exactly.
MAX_INDEX = 2**53 - 1


class Aggregator(abc.ABC):
    """Turns a job's events into content parts; can be snapshotted and restored.

    :meth:`feed` takes every event of a job in ``seq`` order. An event the
    aggregator does not understand, or a malformed one, is ignored: feeding never
    raises. Every value an aggregator returns is a fresh JSON-ready copy that the
    caller may keep and change.

    Each aggregator is a :class:`reattach.store.ContentSource`, so a producer can
    hand it to :meth:`reattach.JobStore.set_graph`.
    """

    #: The name that :func:`reattach.aggregate.for_kind` and snapshots use.
    kind: ClassVar[str]

    @abc.abstractmethod
    def feed(self, event: Any) -> None:
        """Take the next event of the job; ignore it when it is not understood."""

    @abc.abstractmethod
    def get_content_parts(self) -> list[Any]:
        """The content parts so far, in order, as a fresh JSON-ready list."""

    def get_run_steps(self) -> list[Any]:
        """The run steps so far; ``[]`` for kinds that have none."""
        return []

    @abc.abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready dict, with ``kind``, from which :meth:`restore` rebuilds
        this aggregator exactly."""

    @classmethod
    @abc.abstractmethod
    def restore(cls, data: dict[str, Any]) -> Self:
        """Rebuild an aggregator from what :meth:`snapshot` returned.

        ``data`` is not kept or changed.

        :raises ValueError: ``data`` is not a snapshot of this kind.
        """


class TextBuffer:
    """Text that grows by fragments and is joined only when read.

    Appending to a plain string copies it each time; a long answer made of
    thousands of deltas would cost time quadratic in its length.
    """

    __slots__ = ("_pieces",)

    def __init__(self, text: str = "") -> None:
        self._pieces = [text] if text else []

    def append(self, fragment: str) -> None:
        """Add a fragment at the end."""
        if fragment:
            self._pieces.append(fragment)

    @property
    def value(self) -> str:
        """The whole text."""
        if len(self._pieces) > 1:
            self._pieces = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    def __bool__(self) -> bool:
        return bool(self._pieces)


def text_of(value: Any) -> str:
    """The text of a buffer or a string; ``""`` for anything else."""
    if isinstance(value, TextBuffer):
        return value.value
    return value if isinstance(value, str) else ""


def append_text(holder: dict[str, Any], key: str, fragment: str) -> None:
    """Append ``fragment`` to the text at ``holder[key]``, a string or a buffer."""
    current = holder.get(key)
    if not isinstance(current, TextBuffer):
        current = TextBuffer(current if isinstance(current, str) else "")
        holder[key] = current
    current.append(fragment)


def plain(value: Any, *, limit: int = _MAX_DEPTH) -> Any:
    """A deep copy of ``value`` that JSON can encode.

    Tuples become lists; dict entries with non-string keys, integers orjson cannot
    encode, infinite floats and NaN, values of other types and anything nested
    deeper than ``limit`` are dropped (as ``None`` where a value must stand).
    """
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, float):
        # JSON has no infinities or NaN; orjson would write them as null anyway.
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else None
    if isinstance(value, TextBuffer):
        return value.value
    if limit <= 0:
        return None
    if isinstance(value, dict):
        return {
            key: plain(item, limit=limit - 1)
            for key, item in value.items()
            if isinstance(key, str)
        }
    if isinstance(value, list | tuple):
        return [plain(item, limit=limit - 1) for item in value]
    return None


def clone(value: Any) -> Any:
    """A deep copy of a value already made :func:`plain`, with buffers as strings."""
    if isinstance(value, dict):
        return {key: clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clone(item) for item in value]
    if isinstance(value, TextBuffer):
        return value.value
    return value


def envelope(event: Any) -> tuple[str | None, Any]:
    """The name and payload of an ``{"event": name, "data": payload}`` envelope."""
    if not isinstance(event, dict):
        return None, None
    name = event.get("event")
    return (name if isinstance(name, str) else None), event.get("data")


def as_dict(value: Any) -> dict[str, Any] | None:
    """``value`` when it is a dict, else ``None``."""
    return value if isinstance(value, dict) else None


def as_str(value: Any) -> str | None:
    """``value`` when it is a string, else ``None``."""
    return value if isinstance(value, str) else None


def as_index(value: Any) -> int | None:
    """``value`` when it is a usable index (an int from 0 to 2**53 - 1)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value <= MAX_INDEX else None
    return None


# -- reading snapshots back ------------------------------------------------------


def check_header(data: Any, kind: str) -> dict[str, Any]:
    """``data`` as a dict, after checking its ``kind`` and ``version``.

    :raises ValueError: it is not a snapshot of ``kind`` in the current layout.
    """
    if not isinstance(data, dict):
        raise ValueError("a snapshot must be a dict")
    if data.get("kind") != kind:
        raise ValueError(f"not a snapshot of a {kind!r} aggregator")
    if data.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"unsupported snapshot version for {kind!r}")
    return data


def snapshot_list(data: dict[str, Any], name: str) -> list[Any]:
    """A list field of a snapshot.

    :raises ValueError: it is missing or not a list.
    """
    value = data.get(name)
    if not isinstance(value, list):
        raise ValueError(f"snapshot field {name!r} must be a list")
    return value


def snapshot_dict(value: Any, what: str) -> dict[str, Any]:
    """A dict inside a snapshot.

    :raises ValueError: ``value`` is not a dict.
    """
    if not isinstance(value, dict):
        raise ValueError(f"snapshot {what} must be a dict")
    return value


def snapshot_str(value: Any, what: str) -> str:
    """A string inside a snapshot.

    :raises ValueError: ``value`` is not a string.
    """
    if not isinstance(value, str):
        raise ValueError(f"snapshot {what} must be a string")
    return value


def snapshot_index(value: Any, what: str) -> int:
    """An index inside a snapshot.

    :raises ValueError: ``value`` is not an index.
    """
    index = as_index(value)
    if index is None:
        raise ValueError(f"snapshot {what} must be an index")
    return index


def restore_plain(value: Any) -> Any:
    """A private copy of a payload read from a snapshot."""
    return plain(value, limit=_RESTORE_DEPTH)
