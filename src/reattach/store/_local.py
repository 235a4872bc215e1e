"""Content a store keeps in this process: live graphs (weakly) and content parts."""

from __future__ import annotations

import weakref
from typing import Any

from ._base import ContentSource

__all__ = ["LocalContent"]


class LocalContent:
    """The same-process fast path of ``get_content_parts`` and ``get_run_steps``.

    Graphs are held through weak references, so a finished generation's graph is
    freed with its producer; content parts are held until cleared.
    """

    def __init__(self) -> None:
        self._graphs: dict[str, weakref.ref[ContentSource]] = {}
        self._parts: dict[str, list[Any]] = {}

    def set_graph(self, stream_id: str, graph: ContentSource) -> None:
        self._graphs[stream_id] = weakref.ref(graph)

    def set_parts(self, stream_id: str, parts: list[Any]) -> None:
        self._parts[stream_id] = parts

    def graph(self, stream_id: str) -> ContentSource | None:
        ref = self._graphs.get(stream_id)
        graph = ref() if ref is not None else None
        if ref is not None and graph is None:
            del self._graphs[stream_id]
        return graph

    def content_parts(self, stream_id: str) -> list[Any] | None:
        """Parts from a live graph first, then stored parts; ``None`` if neither."""
        graph = self.graph(stream_id)
        if graph is not None:
            parts = graph.get_content_parts()
            if parts:
                return parts
        return self._parts.get(stream_id)

    def run_steps(self, stream_id: str) -> list[Any] | None:
        graph = self.graph(stream_id)
        steps = graph.get_run_steps() if graph is not None else None
        return steps or None

    def clear(self, stream_id: str) -> None:
        self._graphs.pop(stream_id, None)
        self._parts.pop(stream_id, None)

    def prune(self) -> None:
        """Forget graphs that have been freed."""
        for stream_id in [key for key, ref in self._graphs.items() if ref() is None]:
            del self._graphs[stream_id]
