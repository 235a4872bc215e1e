"""A job produced in this process: its coalescing writer and its in-memory tail."""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._types import Chunk
from .store import JobStore

__all__ = ["LocalJob"]

Observer = Callable[[int, float], None]


class LocalJob:
    """Writes one job's events and keeps its latest chunks for local followers.

    Events are handed to :meth:`put`. With coalescing, one write is in flight at a
    time and the events that arrive meanwhile go together in the next batch; the
    order is the order of :meth:`put`. A chunk reaches the buffer, and so local
    followers, only once the store has it, so every follower sees the same log.
    """

    def __init__(
        self,
        store: JobStore,
        stream_id: str,
        user_id: str,
        *,
        coalesce: bool,
        buffer_size: int,
        max_pending: int,
        on_batch: Callable[[Sequence[Chunk]], None],
        observe: Observer,
    ) -> None:
        self.store = store
        self.stream_id = stream_id
        self.user_id = user_id
        self.last_seq = 0
        self.closed = False
        self.task: asyncio.Task[None] | None = None
        self.finishing = False
        self._coalesce = coalesce
        self._max_pending = max_pending
        self._on_batch = on_batch
        self._observe = observe
        self._buffer: collections.deque[Chunk] = collections.deque(maxlen=buffer_size)
        self._pending: list[Any] = []
        self._flush_task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._changed = asyncio.Event()

    # -- writing -------------------------------------------------------------------

    async def put(self, event: Any) -> None:
        """Queue one event for writing; raises the error of a failed earlier write."""
        if self._error is not None:
            raise self._error
        if not self._coalesce:
            await self._write([event])
            return
        self._pending.append(event)
        if self._flush_task is None:
            self._flush_task = asyncio.create_task(self._flush())
        elif len(self._pending) >= self._max_pending:
            # Backpressure: a source faster than the store waits for one write.
            await asyncio.shield(self._flush_task)

    async def drain(self) -> None:
        """Wait until every queued event is written; raise if a write failed."""
        if self._flush_task is not None:
            await asyncio.shield(self._flush_task)
        if self._error is not None:
            raise self._error

    async def _flush(self) -> None:
        try:
            while self._pending and self._error is None:
                batch, self._pending = self._pending, []
                await self._write(batch)
        except Exception as exc:
            self._error = exc
        finally:
            self._flush_task = None

    async def _write(self, batch: list[Any]) -> None:
        started = time.perf_counter()
        last = await self.store.append_chunks(self.stream_id, batch)
        self._observe(len(batch), time.perf_counter() - started)
        first = last - len(batch) + 1
        chunks = [Chunk(first + index, event) for index, event in enumerate(batch)]
        if first != self.last_seq + 1:
            # Someone else appended to this job: the local tail would have a hole,
            # so local followers go to the store from here on.
            self.close()
        self.last_seq = last
        self._publish(chunks)
        self._on_batch(chunks)

    # -- the tail local followers read ------------------------------------------------

    def deliver_terminal(self, chunk: Chunk) -> None:
        """Add the terminal chunk, when it directly follows the local tail."""
        if chunk.seq == self.last_seq + 1:
            self.last_seq = chunk.seq
            self._publish([chunk])
        self.close()

    def close(self) -> None:
        """No more local chunks: followers continue from the store."""
        self.closed = True
        self._wake()

    def _publish(self, chunks: list[Chunk]) -> None:
        if not self.closed:
            self._buffer.extend(chunks)
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def chunks_after(self, cursor: int) -> list[Chunk] | None:
        """The buffered chunks after ``cursor``; ``None`` if the buffer can't say."""
        first = self._buffer[0].seq if self._buffer else self.last_seq + 1
        if cursor + 1 < first or cursor > self.last_seq:
            return None
        return list(itertools.islice(self._buffer, cursor + 1 - first, None))

    def changed(self) -> asyncio.Event:
        """An event set at the next change of the tail."""
        return self._changed
