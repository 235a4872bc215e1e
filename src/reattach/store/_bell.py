"""Bells: Redis pub/sub messages saying "seq N was appended", shared per process.

A follower never takes a chunk from a bell: it reads the log from its cursor, and
the bell only says when. A missed bell costs latency, never a chunk (followers
also re-read now and then), and a duplicate costs nothing.

One :class:`BellHub` per store keeps one pub/sub connection per Redis node: one in
all on a standalone server, one per shard that owns a followed job on a Cluster
(``SSUBSCRIBE`` must reach the node owning the channel's slot). A channel stays
subscribed while at least one listener in this process needs it.

Messages: ``b"<seq>"`` after an append, ``b"<seq> end"`` when the job finished,
``b"gone"`` when it was deleted. Anything but a bare seq wakes every listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import AbstractConnection
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.retry import Retry

from .._errors import BackendUnavailable
from ._scripts import REDIS_ERRORS, translate

__all__ = ["Bell", "BellHub"]

logger = logging.getLogger(__name__)

# A silent line is PINGed after this long, and taken for dead if still silent.
_HEALTH_SECONDS = 15.0
# How long a new listener waits for Redis to confirm its subscription.
_READY_SECONDS = 2.0
_MAX_BACKOFF_SECONDS = 2.0

ConnectionFactory = Callable[[], AbstractConnection]


class Bell:
    """One listener's view of its channel: the highest seq rung, and a wake-up."""

    __slots__ = ("_after", "_event", "_forced", "seq")

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._forced = False
        self._after = -1
        self.seq = 0

    def ring(self, seq: int | None) -> None:
        """Note that ``seq`` exists; ``None``: something else happened, look."""
        if seq is None:
            self._forced = True
        elif seq > self.seq:
            self.seq = seq
        # Wake the listener only for what it waits for: a job's producer that
        # waits for the end hears every append of its job, and must not pay a
        # task switch for each one.
        if self._forced or self.seq > self._after:
            self._event.set()

    async def wait(self, after: int, poll: float) -> None:
        """Return once a bell tells of a seq past ``after`` or of another change.

        Returns after ``poll`` seconds at the latest, so the caller looks
        anyway: that covers bells lost while the connection was down.
        """
        deadline = asyncio.get_running_loop().time() + poll
        self._after = after
        try:
            while not self._forced and self.seq <= after:
                self._event.clear()
                try:
                    async with asyncio.timeout_at(deadline):
                        await self._event.wait()
                except TimeoutError:
                    break
        finally:
            self._after = -1
        self._forced = False


class _Line:
    """One pub/sub connection, its subscribed channels and their listeners."""

    def __init__(self, name: str, factory: ConnectionFactory, sharded: bool) -> None:
        self.name = name
        self._factory = factory
        self._subscribe = b"SSUBSCRIBE" if sharded else b"SUBSCRIBE"
        self._unsubscribe = b"SUNSUBSCRIBE" if sharded else b"UNSUBSCRIBE"
        self._bells: dict[bytes, set[Bell]] = {}
        self._ready: dict[bytes, asyncio.Future[None]] = {}
        self._conn: AbstractConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.failures = 0

    async def add(self, channel: bytes, bell: Bell) -> None:
        if self._task is None:
            # Started on demand; it ends when its connection fails unheard.
            self._task = asyncio.create_task(self._run(), name=f"bells {self.name}")
        bells = self._bells.setdefault(channel, set())
        bells.add(bell)
        if len(bells) == 1:
            self._ready[channel] = asyncio.get_running_loop().create_future()
            await self._send(self._subscribe, channel)
        ready = self._ready.get(channel)
        if ready is not None and not ready.done():
            # Waiting for the confirmation means no bell rung from now on is lost.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_READY_SECONDS):
                    await asyncio.shield(ready)

    async def remove(self, channel: bytes, bell: Bell) -> None:
        bells = self._bells.get(channel)
        if bells is None:
            return
        bells.discard(bell)
        if bells:
            return
        del self._bells[channel]
        _resolve(self._ready.pop(channel, None))
        await self._send(self._unsubscribe, channel)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._disconnect()
        for ready in self._ready.values():
            _resolve(ready)

        self._ready.clear()

    async def _send(self, *args: bytes) -> None:
        conn = self._conn
        if conn is None or not conn.is_connected:
            return  # the next connection subscribes to every channel wanted then
        async with self._lock:
            try:
                await conn.send_command(*args, check_health=False)
            except REDIS_ERRORS as exc:
                # The reader sees the broken connection and reconnects.
                logger.debug("pub/sub %s: sending failed: %s", self.name, exc)

    async def _run(self) -> None:
        while True:
            try:
                await self._connect()
                await self._read()
            except REDIS_ERRORS as exc:
                await self._disconnect()
                if not self._bells:
                    # Nobody listens (the node may even have left the Cluster):
                    # connect again when someone does.
                    self._task = None
                    return
                self.failures += 1
                logger.warning(
                    "pub/sub connection %s lost, reconnecting (retry %d): %s",
                    self.name,
                    self.failures,
                    exc,
                )
                await asyncio.sleep(min(0.05 * 2**self.failures, _MAX_BACKOFF_SECONDS))

    async def _connect(self) -> None:
        conn = self._factory()
        await conn.connect()  # type: ignore[no-untyped-call]
        self._conn = conn
        channels = list(self._bells)
        if channels:
            # One command per channel: on a Cluster, a command spanning slots fails.
            commands = [(self._subscribe, channel) for channel in channels]
            async with self._lock:
                await conn.send_packed_command(
                    conn.pack_commands(commands), check_health=False
                )
        if self.failures:
            # Bells may have rung while no connection listened: everyone looks.
            for bells in list(self._bells.values()):
                for bell in bells:
                    bell.ring(None)
        self.failures = 0

    async def _read(self) -> None:
        conn = self._conn
        assert conn is not None
        pinged = False
        while True:
            try:
                reply = await conn.read_response(
                    timeout=_HEALTH_SECONDS, push_request=True
                )
            except ResponseError as exc:
                # For example MOVED after a resharding: the listeners of that
                # channel fall back on their periodic reads.
                logger.warning("pub/sub %s: Redis refused: %s", self.name, exc)
                continue
            if reply is None:
                if pinged:
                    raise RedisConnectionError(f"{self.name} did not answer a PING")
                pinged = True
                await self._send(b"PING")
                continue
            pinged = False
            self._dispatch(reply)

    def _dispatch(self, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) < 3:
            return  # a PONG
        kind, channel, data = reply[0], reply[1], reply[2]
        if kind in (b"smessage", b"message"):
            seq = int(data) if isinstance(data, bytes) and data.isdigit() else None
            for bell in self._bells.get(channel, ()):
                bell.ring(seq)
        elif kind in (b"ssubscribe", b"subscribe"):
            _resolve(self._ready.pop(channel, None))

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await conn.disconnect(nowait=True)


def _resolve(ready: asyncio.Future[None] | None) -> None:
    if ready is not None and not ready.done():
        ready.set_result(None)


def _node_connection(node: ClusterNode) -> AbstractConnection:
    # The line retries on its own, with a warning: the connection must not.
    options = {**node.connection_kwargs, "retry": Retry(NoBackoff(), 0)}
    connection: AbstractConnection = node.connection_class(**options)
    return connection


class BellHub:
    """The pub/sub side of one Redis store in this process.

    ``sharded`` says whether bells travel by ``SPUBLISH``/``SSUBSCRIBE``
    (Redis 7 and later) or by ``PUBLISH``/``SUBSCRIBE``.
    """

    def __init__(self, client: Any, *, sharded: bool) -> None:
        self._client = client
        self._sharded = sharded
        self._lines: dict[str, _Line] = {}
        self._closed = False

    @contextlib.asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[Bell]:
        """Subscribe to ``channel`` while the block runs; yields its :class:`Bell`.

        :raises BackendUnavailable: the hub is closed, or the Cluster cannot say
            which node owns the channel.
        """
        if self._closed:
            raise BackendUnavailable("the store is closed")
        line = self._line(channel)
        key = channel.encode()
        bell = Bell()
        try:
            await line.add(key, bell)
            yield bell
        finally:
            await line.remove(key, bell)

    async def aclose(self) -> None:
        """Close every connection; safe to call twice."""
        self._closed = True
        lines, self._lines = list(self._lines.values()), {}
        for line in lines:
            await line.aclose()

    def _line(self, channel: str) -> _Line:
        name, factory = self._route(channel)
        line = self._lines.get(name)
        if line is None:
            line = self._lines[name] = _Line(name, factory, self._sharded)
        return line

    def _route(self, channel: str) -> tuple[str, ConnectionFactory]:
        if not isinstance(self._client, RedisCluster):
            return "redis", self._client.connection_pool.make_connection
        try:
            node = self._client.get_node_from_key(channel)
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc
        if node is None:
            raise BackendUnavailable(f"no Cluster node owns the slot of {channel}")
        return node.name, functools.partial(_node_connection, node)
