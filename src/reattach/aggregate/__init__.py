"""Content aggregators: turn a job's events into content parts, and snapshot them.

Three kinds are built in: ``agent`` (LibreChat agent events), ``openai``
(chat-completion chunks) and ``text`` (reattach's own delta events). See
``docs/aggregation.md`` for the part shapes and the snapshot layout.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from .._types import Chunk, Snapshot
from ._agent import AgentAggregator
from ._base import Aggregator
from ._openai import OpenAIAggregator
from ._text import TextAggregator

__all__ = [
    "AgentAggregator",
    "Aggregator",
    "OpenAIAggregator",
    "TextAggregator",
    "for_kind",
    "rebuild",
    "restore",
]

logger = logging.getLogger(__name__)

_KINDS: dict[str, type[Aggregator]] = {
    cls.kind: cls for cls in (AgentAggregator, OpenAIAggregator, TextAggregator)
}

# Log markers that carry no content: a snapshot stands for events already
# counted, and the terminal event only ends the log.
_SKIPPED_EVENTS = frozenset({"snapshot", "final"})


def for_kind(kind: str) -> Aggregator:
    """A new, empty aggregator of ``kind`` (``"agent"``, ``"openai"``, ``"text"``).

    :raises ValueError: no aggregator has that kind.
    """
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown aggregator kind {kind!r}")
    return cls()


def restore(data: Any) -> Aggregator:
    """The aggregator a :meth:`Aggregator.snapshot` result describes.

    The class is chosen by ``data["kind"]``.

    :raises ValueError: ``data`` is not a snapshot, or names an unknown kind.
    """
    if not isinstance(data, dict):
        raise ValueError("a snapshot must be a dict")
    kind = data.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown aggregator kind {kind!r}")
    return cls.restore(data)


def rebuild(snapshot: Any | None, events: Iterable[Any]) -> list[Any]:
    """Content parts from a snapshot and the events logged after it.

    ``snapshot`` is what :meth:`Aggregator.snapshot` returned (or a
    :class:`~reattach.Snapshot` holding it); events may be raw or
    :class:`~reattach.Chunk` objects. With no snapshot, or one that cannot be
    restored, an :class:`AgentAggregator` starts from scratch, as LibreChat does
    when it rebuilds content from the log. ``snapshot`` and ``final`` events are
    skipped.
    """
    aggregator = _restore_or_new(snapshot)
    for item in events:
        event = item.event if isinstance(item, Chunk) else item
        if not _is_marker(event):
            aggregator.feed(event)
    return aggregator.get_content_parts()


def _restore_or_new(snapshot: Any | None) -> Aggregator:
    data = snapshot.data if isinstance(snapshot, Snapshot) else snapshot
    if data is None:
        return AgentAggregator()
    try:
        return restore(data)
    except ValueError:
        logger.warning("a content snapshot could not be restored; rebuilding anew")
        return AgentAggregator()


def _is_marker(event: Any) -> bool:
    name = event.get("event") if isinstance(event, dict) else None
    return isinstance(name, str) and name in _SKIPPED_EVENTS
