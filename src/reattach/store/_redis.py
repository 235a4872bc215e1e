"""RedisJobStore: jobs in Redis (standalone or Cluster), shared by many processes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import secrets
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any, NamedTuple

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff

from .._errors import InvalidCursor, JobExists, JobNotFound
from .._ids import validate_id
from .._json import decode, encode_event, encode_events
from .._json import final_event as terminal_event
from .._types import (
    Chunk,
    Job,
    JobStatus,
    Limits,
    Snapshot,
    TTLPolicy,
    check_job_fields,
    now_ms,
)
from ._base import LEASE_EXPIRED, ContentSource, JobStore
from ._bell import BellHub
from ._local import LocalContent
from ._redis_codec import (
    JobKeys,
    KeySpace,
    decode_job,
    encode_fields,
    entry_chunks,
    flatten,
    group_chunks,
    job_order,
    parse_snapshot,
    snapshot_blob,
)
from ._scripts import RedisCalls

__all__ = ["RedisJobStore"]

logger = logging.getLogger(__name__)

_DEFAULT_TTL = TTLPolicy()
_DEFAULT_LIMITS = Limits()
# A follower reads at most this many chunks per call.
_PAGE = 256
# Without a bell, a follower or waiter looks again after this many seconds.
_POLL_SECONDS = 1.0
_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_SENTINEL_SCHEME = "redis+sentinel"
_TERMINAL = tuple(status for status in JobStatus if status.is_terminal)


class _Page(NamedTuple):
    """One read of a log: its chunks, the job's last seq, whether it finished."""

    chunks: list[Chunk]
    last_seq: int
    finished: bool


# Connections per pool (per node on Cluster) that ``from_url`` allows.
_MAX_CONNECTIONS = 1024
_POOL_CONNECTIONS = 512
_POOL_TIMEOUT = 20.0


def _blocking_pool(url: str, options: dict[str, Any]) -> BlockingConnectionPool:
    # A burst of commands past the cap waits for a connection instead of failing.
    options.setdefault("max_connections", _POOL_CONNECTIONS)
    options.setdefault("timeout", _POOL_TIMEOUT)
    return BlockingConnectionPool.from_url(url, **options)


class RedisJobStore(JobStore):
    """A job store in Redis, standalone or Cluster, shared by many processes.

    ``client`` is a ``redis.asyncio.Redis`` or ``redis.asyncio.RedisCluster``
    made with default options (bytes replies). A client passed in stays the
    caller's; one made by :meth:`from_url` is closed by :meth:`aclose`.

    Each job is a hash (record, last seq, lease), a stream (one entry per chunk,
    entry id ``<seq>-0``), a run steps string and a snapshot string, all under the
    hash tag ``{stream_id}``, so every change to a job is one atomic Lua script
    on one Cluster slot. Global indexes (running jobs by lease expiry, each
    user's jobs, finished jobs by status) live in other slots and are updated
    right after; :meth:`cleanup` heals them if a process died in between. Every
    key gets its TTL in the write that creates it.

    A cursor that fell behind the capped log (``limits.max_chunks``) is answered
    with the latest snapshot as the chunk ``Chunk(snapshot.seq, {"event":
    "snapshot", "data": ...})`` when that snapshot is newer than the cursor and
    older than the terminal chunk, then with the chunks after it. Without such a
    snapshot the answer is the chunks still kept: the gap cannot be filled.
    When the log was dropped after the job finished (``ttl.chunks_after_complete``)
    but the record remains, the answer is the terminal chunk at ``last_seq``.

    Followers in another process learn of new chunks through pub/sub bells
    (``SPUBLISH`` on Redis 7 and later) and read the log themselves, so a lost
    bell delays a chunk by at most a second and never loses it.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "reattach",
        ttl: TTLPolicy = _DEFAULT_TTL,
        limits: Limits = _DEFAULT_LIMITS,
    ) -> None:
        if not isinstance(ttl, TTLPolicy):
            raise TypeError("ttl must be a TTLPolicy")
        if not isinstance(limits, Limits):
            raise TypeError("limits must be a Limits")
        if not isinstance(client, Redis | RedisCluster):
            raise TypeError("client must be a redis.asyncio Redis or RedisCluster")
        if client.get_encoder().decode_responses:
            raise ValueError("RedisJobStore needs a client with decode_responses off")
        self.ttl = ttl
        self.limits = limits
        self._client = client
        self._owns_client = False
        self._keys = KeySpace(prefix)
        self._redis = RedisCalls(client)
        self._bells: BellHub | None = None
        self._local = LocalContent()
        self._ready = False
        self._init_lock = asyncio.Lock()
        self._publish = b"SPUBLISH"
        self._running_ms = ttl.running * 1000
        self._index_ms = 2 * max(ttl.running, ttl.completed) * 1000
        self._cap = limits.max_chunks
        # Call ids make create, append and finish safe to send twice (a client
        # that retries on timeouts does): the scripts recognise a repeat.
        self._call_prefix = secrets.token_hex(6)
        self._calls = itertools.count(1)
        self._reap_args = (
            b"reap",
            JobStatus.ERROR.value,
            encode_event(LEASE_EXPIRED, sys.maxsize),
            encode_event(terminal_event("error", LEASE_EXPIRED), sys.maxsize),
            b"",
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool = False,
        prefix: str = "reattach",
        ttl: TTLPolicy = _DEFAULT_TTL,
        limits: Limits = _DEFAULT_LIMITS,
        **options: Any,
    ) -> RedisJobStore:
        """A store on a client made from ``url``, closed with the store.

        ``redis://``, ``rediss://`` and ``unix://`` name a standalone server;
        ``redis+cluster://host:port`` (or ``rediss+cluster://``), or
        ``cluster=True``, a Cluster;
        ``redis+sentinel://host:port[,host2:port2]/service_name[/db]`` the
        master that those Sentinels name ``service_name``, found again after a
        failover. ``options`` go to redis-py (for Sentinel, to
        ``redis.asyncio.sentinel.Sentinel``: they configure the connections to
        the master, and ``sentinel_kwargs`` those to the Sentinels).

        Each running job keeps up to one command in flight and each follower one,
        so redis-py's default cap of 100 connections is too small for a busy
        server: a standalone client gets a pool of up to 512 connections that
        waits (20 s) for a free one rather than failing, a Cluster client up to
        1024 per node. ``max_connections`` and ``timeout`` override these.

        :raises ValueError: a ``redis+sentinel://`` URL with ``cluster=True``,
            without a host, a port or a service name, with a password or a
            query (pass ``password=`` and ``sentinel_kwargs=`` instead) or a db
            that is not a number.
        """
        scheme, sep, rest = url.partition("://")
        if scheme in _CLUSTER_SCHEMES:
            cluster, url = True, f"{_CLUSTER_SCHEMES[scheme]}{sep}{rest}"
        client: Any
        if scheme == _SENTINEL_SCHEME and sep:
            if cluster:
                raise ValueError("a redis+sentinel:// URL names no Cluster")
            client = _sentinel_client(rest, options)
        elif cluster:
            options.setdefault("max_connections", _MAX_CONNECTIONS)
            client = RedisCluster.from_url(url, **options)
        else:
            client = Redis.from_pool(_blocking_pool(url, options))
        store = cls(client, prefix=prefix, ttl=ttl, limits=limits)
        store._owns_client = True
        return store

    @property
    def client(self) -> Any:
        """The redis-py client the store uses."""
        return self._client

    # -- lifecycle ---------------------------------------------------------------

    async def initialize(self) -> None:
        """Check that Redis answers, learn its version and load the scripts.

        :raises BackendUnavailable: Redis is unreachable or failed.
        """
        async with self._init_lock:
            if self._ready:
                return
            await self.ping()
            sharded = await self._redis.server_version() >= (7, 0)
            await self._redis.load()
            self._publish = b"SPUBLISH" if sharded else b"PUBLISH"
            self._bells = BellHub(self._client, sharded=sharded)
            self._ready = True
            logger.debug("Redis job store ready (prefix %s)", self._keys.prefix)

    async def aclose(self) -> None:
        """Close the pub/sub connections, and the client if the store made it."""
        self._ready = False
        bells, self._bells = self._bells, None
        if bells is not None:
            await bells.aclose()
        if self._owns_client:
            self._owns_client = False
            await self._client.aclose()

    async def ping(self) -> None:
        """Check that Redis (every primary of a Cluster) answers.

        :raises BackendUnavailable: it does not.
        """
        if self._redis.cluster:
            await self._redis.command("PING", target_nodes=RedisCluster.PRIMARIES)
        else:
            await self._redis.command("PING")

    async def _hub(self) -> BellHub:
        if self._bells is None:
            await self.initialize()
        assert self._bells is not None
        return self._bells

    # -- job records -------------------------------------------------------------

    async def create_job(
        self,
        stream_id: str,
        user_id: str,
        *,
        conversation_id: str | None = None,
        **fields: Any,
    ) -> Job:
        """Create a running job; see :meth:`JobStore.create_job`."""
        keys = self._keys.job(stream_id)
        user_key = self._keys.user(user_id)
        values = check_job_fields(fields)
        values["conversation_id"] = conversation_id
        encoded, _ = encode_fields(values)
        args = (
            self._running_ms,
            self._call_id(),
            "stream_id",
            stream_id,
            "user_id",
            user_id,
        )
        # The indexes are written first: on Cluster they live in other slots than
        # the job, so they cannot share its script, and a process that dies between
        # the two steps must leave an index entry without a job (which cleanup
        # drops), never a running job that no index leads cleanup to.
        indexed = await self._redis.pipeline(
            [
                self._index(
                    self._keys.running, "nx", stream_id, now_ms() + self._running_ms
                ),
                self._index(user_key, "nx", stream_id, "+inf", prune=True),
            ]
        )
        try:
            reply = await self._redis.script(
                "create", (keys.job,), (*args, *flatten(encoded)), stream_id
            )
        except JobExists:
            await self._unindex(stream_id, user_key, indexed)
            raise
        created = int(reply[0])
        lease = created + self._running_ms
        logger.debug("job %s created", stream_id)
        return Job(
            stream_id,
            user_id,
            created_at=created,
            updated_at=created,
            lease_expires_at=lease,
            **{name: decode(blob) for name, blob in encoded.items()},
        )

    async def get_job(self, stream_id: str) -> Job | None:
        """The job's record, or ``None``."""
        keys = self._keys.job(stream_id)
        return decode_job(await self._redis.command("HGETALL", keys.job))

    async def has_job(self, stream_id: str) -> bool:
        """Whether the job exists."""
        keys = self._keys.job(stream_id)
        return bool(await self._redis.command("EXISTS", keys.job))

    async def update_job(self, stream_id: str, **fields: Any) -> None:
        """Set record fields; see :meth:`JobStore.update_job`.

        :raises TypeError: an unknown field, or ``status``.
        :raises InvalidEvent: a value is not JSON.
        :raises JobNotFound: no such job.
        """
        keys = self._keys.job(stream_id)
        encoded, removed = encode_fields(check_job_fields(fields))
        args = (len(encoded), *flatten(encoded), *removed)
        await self._redis.script("update", (keys.job,), args, stream_id)

    async def delete_job(self, stream_id: str) -> bool:
        """Delete the job; its followers stop with :class:`JobNotFound`."""
        keys = self._keys.job(stream_id)
        self._local.clear(stream_id)
        if not self._ready:
            await self.initialize()
        user = await self._redis.script(
            "delete", keys.stored, (self._publish, keys.bell), stream_id
        )
        if user is None:
            return False
        # The running index is scored by lease expiry, not record expiry: never
        # pruned by score, or cleanup would miss the jobs it must end.
        scored_by_expiry = [self._keys.user(user.decode())]
        scored_by_expiry += [self._keys.done(status) for status in _TERMINAL]
        calls = [self._index(self._keys.running, "rem", stream_id)]
        calls += [
            self._index(k, "rem", stream_id, prune=True) for k in scored_by_expiry
        ]
        await self._redis.pipeline(calls)
        logger.debug("job %s deleted", stream_id)
        return True

    async def get_running_jobs(self) -> list[Job]:
        """Every running job, oldest first: two round trips however many."""
        ids = await self._redis.command("ZRANGE", self._keys.running, 0, -1)
        jobs = await self._jobs([member.decode() for member in ids])
        return [job for job in jobs if job.status is JobStatus.RUNNING]

    async def get_user_jobs(
        self, user_id: str, *, status: JobStatus | None = None
    ) -> list[Job]:
        """The user's jobs that still exist, oldest first, optionally by status."""
        user_key = self._keys.user(user_id)
        wanted = None if status is None else JobStatus(status)
        ids = [m.decode() for m in await self._redis.command("ZRANGE", user_key, 0, -1)]
        jobs = [job for job in await self._jobs(ids) if job.user_id == user_id]
        stale = set(ids).difference(job.stream_id for job in jobs)
        if stale:
            # The job expired or its id went to another user: drop the entry.
            await self._redis.pipeline(
                [self._index(user_key, "rem", member, prune=True) for member in stale]
            )
        return [job for job in jobs if wanted is None or job.status is wanted]

    async def _jobs(self, stream_ids: Sequence[str]) -> list[Job]:
        """The records of the jobs that exist, oldest first: one pipeline."""
        calls = [("HGETALL", self._keys.job(sid).job) for sid in stream_ids]
        raws = sorted(await self._redis.pipeline(calls), key=job_order)
        return [job for raw in raws if (job := decode_job(raw)) is not None]

    async def cleanup(self) -> int:
        """End running jobs whose lease expired, and heal the running index.

        Candidates come from the running index (lease expiry by the server's
        clock); each is checked against its record's lease by a script, which
        ends it only if the lease really expired, so several processes may clean
        up at once and each job is ended once. Index entries of jobs that are
        gone are dropped, those of finished jobs are moved to their status.
        Returns the number of jobs ended plus the index entries of vanished jobs
        removed (each counted by the one process whose removal took effect).
        """
        self._local.prune()
        if not self._ready:
            await self.initialize()
        due = await self._redis.script("due", (self._keys.running,), ())
        ids = [member.decode() for member in due]
        if not ids:
            return 0
        calls = [
            self._redis.script_call(
                "finish", (keys := self._keys.job(sid)).stored, self._finish_args(keys)
            )
            for sid in ids
        ]
        replies = await self._redis.pipeline(calls)
        pairs = list(zip(ids, replies, strict=True))
        fixes = [self._heal(stream_id, reply) for stream_id, reply in pairs]
        results = await self._redis.pipeline([call for fix in fixes for call in fix])
        ended = removed = 0
        offset = 0
        for (stream_id, reply), fix in zip(pairs, fixes, strict=True):
            if reply[0] == 3:
                ended += 1
                logger.info("job %s ended: its lease expired", stream_id)
            elif reply[0] == 0:
                # Count the entry only if this process's removal took effect.
                removed += int(results[offset])
            offset += len(fix)

        return ended + removed

    def _heal(self, stream_id: str, reply: list[Any]) -> list[list[Any]]:
        """Index calls after a reap attempt; the first one touches ``running``."""
        running = self._keys.running
        if reply[0] == 0:
            return [self._index(running, "rem", stream_id)]
        if reply[0] == 2:
            return [self._index(running, "xx", stream_id, reply[1])]
        status = JobStatus.ERROR if reply[0] == 3 else JobStatus(reply[1].decode())
        return self._finished_index(stream_id, status, reply[2], reply[3].decode())

    async def get_job_count(self) -> int:
        """The number of jobs that exist, in any status: two round trips."""
        done = [self._keys.done(status) for status in _TERMINAL]
        calls: list[Any] = [("ZRANGE", self._keys.running, 0, -1)]
        calls += [self._index(key, "", "", prune=True) for key in done]
        ids, *counts = await self._redis.pipeline(calls)
        return await self._count_running(ids) + sum(map(int, counts))

    async def get_job_count_by_status(self, status: JobStatus) -> int:
        """The exact number of existing jobs in ``status``."""
        wanted = JobStatus(status)
        if wanted is JobStatus.RUNNING:
            ids = await self._redis.command("ZRANGE", self._keys.running, 0, -1)
            return await self._count_running(ids)
        call = self._index(self._keys.done(wanted), "", "", prune=True)
        return int((await self._redis.pipeline([call]))[0])

    async def _count_running(self, ids: Sequence[bytes]) -> int:
        calls = [("HGET", self._keys.job(m.decode()).job, "status") for m in ids]
        return sum(status == b"running" for status in await self._redis.pipeline(calls))

    def _index(
        self,
        key: str,
        op: str,
        member: str,
        score: Any = 0,
        *,
        prune: bool = False,
        ttl_ms: int | None = None,
    ) -> list[Any]:
        """A call of the ``index`` script: one sorted set, its TTL refreshed."""
        ttl = self._index_ms if ttl_ms is None else ttl_ms
        args = (ttl, b"1" if prune else b"0", op, score, member)
        return self._redis.script_call("index", (key,), args)

    async def _unindex(self, stream_id: str, user_key: str, added: list[Any]) -> None:
        """Take back the index entries a failed create added (not an old job's)."""
        keys = (self._keys.running, user_key)
        calls = [
            self._index(key, "rem", stream_id)
            for key, was_added in zip(keys, added, strict=True)
            if int(was_added)
        ]
        if calls:
            await self._redis.pipeline(calls)

    def _finished_index(
        self, stream_id: str, status: JobStatus, expiry: int, user_id: str
    ) -> list[list[Any]]:
        """Index calls for a finished job; the first one removes it from running."""
        return [
            self._index(self._keys.running, "rem", stream_id),
            self._index(self._keys.done(status), "add", stream_id, expiry, prune=True),
            self._index(self._keys.user(user_id), "xx", stream_id, expiry, prune=True),
        ]

    # -- the log -----------------------------------------------------------------

    async def append_chunks(self, stream_id: str, events: Sequence[Any]) -> int:
        """Append a batch atomically in one script call; see the base class."""
        keys = self._keys.job(stream_id)
        if isinstance(events, str | bytes):
            raise TypeError("events must be a sequence of events, not a string")
        blobs = encode_events(events, self.limits.max_event_bytes)
        if not self._ready:
            await self.initialize()
        call = self._call_id()
        args = (self._publish, keys.bell, self._running_ms, self._cap, call, *blobs)
        return int(await self._redis.script("append", keys.stored, args, stream_id))

    async def read_chunks(
        self, stream_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[Chunk]:
        """The chunks after ``after`` in one script call; see the class docstring."""
        keys = self._keys.job(stream_id)
        _check_cursor(after)
        _check_limit(limit)
        return (await self._read(keys, stream_id, after, limit)).chunks

    async def _read(
        self, keys: JobKeys, stream_id: str, after: int, limit: int | None
    ) -> _Page:
        args = (after, b"" if limit is None else limit)
        reply = await self._redis.script(
            "read", (keys.job, keys.log, keys.snap), args, stream_id
        )
        last_seq, status, entries = int(reply[0]), reply[1], reply[2]
        chunks: list[Chunk] = []
        extra = reply[4] if len(reply) > 4 else None
        if extra is not None and reply[3] == b"snap":
            snapshot = parse_snapshot(extra)
            event = {"event": "snapshot", "data": snapshot.data}
            chunks.append(Chunk(snapshot.seq, event))
        elif extra is not None:
            chunks.append(Chunk(last_seq, decode(extra)))
        chunks += entry_chunks(entries)
        return _Page(chunks, last_seq, status != b"running")

    def follow(self, stream_id: str, *, after: int = 0) -> AsyncIterator[Chunk]:
        """Replay from ``after``, then live chunks, through the terminal chunk."""
        return self._follow(stream_id, after)

    async def _follow(self, stream_id: str, after: int) -> AsyncIterator[Chunk]:
        keys = self._keys.job(stream_id)
        _check_cursor(after)
        async with contextlib.AsyncExitStack() as stack:
            bell = None
            while True:
                page = await self._read(keys, stream_id, after, _PAGE)
                for chunk in page.chunks:
                    yield chunk
                    after = chunk.seq

                if page.finished and after >= page.last_seq:
                    return
                if len(page.chunks) == _PAGE:
                    continue
                if bell is None:
                    # Subscribe only for a job that exists and still runs, then
                    # read once more: a chunk may have come before the subscription.
                    hub = await self._hub()
                    bell = await stack.enter_async_context(hub.listen(keys.bell))
                    continue
                await bell.wait(after, _POLL_SECONDS)

    async def wait_finished(self, stream_id: str) -> Job | None:
        """Wait until the job leaves ``running``; ``None`` if it is gone."""
        keys = self._keys.job(stream_id)
        job = await self.get_job(stream_id)
        if job is None or job.status.is_terminal:
            return job
        hub = await self._hub()
        async with hub.listen(keys.bell) as bell:
            while True:
                job = await self.get_job(stream_id)
                if job is None or job.status.is_terminal:
                    return job
                # Appends ring too; only an end, a deletion or the poll wakes this.
                await bell.wait(sys.maxsize, _POLL_SECONDS)

    async def finish(
        self,
        stream_id: str,
        status: JobStatus,
        *,
        error: str | None = None,
        final_event: Any = None,
    ) -> bool:
        """The one compare-and-set out of ``running``; see :meth:`JobStore.finish`.

        :raises TypeError: ``error`` is not a str or None.
        """
        keys = self._keys.job(stream_id)
        status = JobStatus(status)
        if not status.is_terminal:
            raise ValueError("finish() needs a terminal status, not running")
        if error is not None and not isinstance(error, str):
            raise TypeError("error must be a str or None")
        chunk = encode_event(
            terminal_event(status.value, error, final_event),
            self.limits.max_event_bytes,
        )
        args = (
            b"finish",
            status.value,
            b"" if error is None else encode_event(error, sys.maxsize),
            chunk,
            b"" if final_event is None else encode_event(final_event, sys.maxsize),
        )
        if not self._ready:
            await self.initialize()
        reply = await self._redis.script(
            "finish", keys.stored, self._finish_args(keys, args), stream_id
        )
        if reply[0] == 0:
            raise JobNotFound(f"no job {stream_id}")
        if reply[0] != 3:
            return False
        calls = self._finished_index(stream_id, status, reply[2], reply[3].decode())
        await self._redis.pipeline(calls)
        logger.debug("job %s finished: %s", stream_id, status.value)
        return True

    def _finish_args(
        self, keys: JobKeys, how: tuple[Any, ...] | None = None
    ) -> tuple[Any, ...]:
        """The arguments of the ``finish`` script; by default, a reap."""
        ttl = self.ttl
        return (
            self._publish,
            keys.bell,
            *(how or self._reap_args),
            ttl.completed * 1000,
            ttl.chunks_after_complete * 1000,
            ttl.run_steps_after_complete * 1000,
            self._cap,
            self._call_id(),
        )

    def _call_id(self) -> str:
        return f"{self._call_prefix}.{next(self._calls)}"

    async def renew_lease(self, stream_id: str, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s lease by the server's clock; see the base class.

        :raises ValueError: ``ttl`` is not a positive number of seconds.
        """
        keys = self._keys.job(stream_id)
        validate_id(owner, "owner")
        if isinstance(ttl, bool) or not isinstance(ttl, int | float):
            raise ValueError("ttl must be a number of seconds")
        if not math.isfinite(ttl) or ttl <= 0:
            raise ValueError("ttl must be a positive, finite number of seconds")
        lease_ms = max(1, round(ttl * 1000))
        args = (owner, lease_ms, self._running_ms)
        reply = await self._redis.script("renew", keys.stored, args, stream_id)
        if not reply:
            return False
        expires, user = int(reply[0]), reply[1].decode()
        index_ms = max(self._index_ms, 2 * lease_ms)
        await self._redis.pipeline(
            [
                self._index(
                    self._keys.running, "xx", stream_id, expires, ttl_ms=index_ms
                ),
                self._redis.script_call(
                    "index", (self._keys.user(user),), (index_ms, b"0", b"", 0, b"")
                ),
            ]
        )
        return True

    # -- snapshots and content -----------------------------------------------------

    async def save_snapshot(self, stream_id: str, seq: int, data: Any) -> None:
        """Keep ``data`` as the content up to ``seq``; older snapshots are ignored."""
        keys = self._keys.job(stream_id)
        _check_cursor(seq, "seq")
        blob = snapshot_blob(seq, encode_event(data, sys.maxsize))
        args = (seq, blob, self._running_ms)
        await self._redis.script("snapshot", (keys.job, keys.snap), args, stream_id)

    async def get_snapshot(self, stream_id: str) -> Snapshot | None:
        """The latest snapshot, or ``None``."""
        keys = self._keys.job(stream_id)
        blob = await self._redis.command("GET", keys.snap)
        return None if blob is None else parse_snapshot(blob)

    def set_graph(self, stream_id: str, graph: ContentSource) -> None:
        """Keep a weak reference to the job's live content source in this process."""
        self._local.set_graph(validate_id(stream_id), graph)

    def set_content_parts(self, stream_id: str, parts: list[Any]) -> None:
        """Keep the job's content parts in this process."""
        self._local.set_parts(validate_id(stream_id), parts)

    async def get_content_parts(self, stream_id: str) -> list[Any] | None:
        """Local parts first, else rebuilt from the snapshot and the log after it."""
        keys = self._keys.job(stream_id)
        parts = self._local.content_parts(stream_id)
        if parts is not None:
            return parts

        from ..aggregate import rebuild

        snapshot = await self.get_snapshot(stream_id)
        after = 0 if snapshot is None else snapshot.seq
        try:
            page = await self._read(keys, stream_id, after, None)
        except (JobNotFound, InvalidCursor):
            return None
        base = None if snapshot is None else snapshot.data
        return rebuild(base, [chunk.event for chunk in page.chunks]) or None

    async def get_run_steps(self, stream_id: str) -> list[Any]:
        """The live graph's run steps, else the saved ones, else ``[]``."""
        keys = self._keys.job(stream_id)
        steps = self._local.run_steps(stream_id)
        if steps is not None:
            return steps
        blob = await self._redis.command("GET", keys.steps)
        return [] if blob is None else list(decode(blob))

    async def save_run_steps(self, stream_id: str, steps: list[Any]) -> None:
        """Keep the job's run steps.

        :raises InvalidEvent: ``steps`` is not JSON.
        :raises JobNotFound: no such job.
        """
        keys = self._keys.job(stream_id)
        blob = encode_event(list(steps), sys.maxsize)
        args = (blob, self._running_ms)
        await self._redis.script("steps", (keys.job, keys.steps), args, stream_id)

    async def clear_content_state(self, stream_id: str) -> None:
        """Drop the local graph and parts, the run steps and the snapshot."""
        keys = self._keys.job(stream_id)
        self._local.clear(stream_id)
        await self._redis.command("DEL", keys.steps, keys.snap)

    # -- consumer groups -----------------------------------------------------------

    async def create_consumer_group(
        self, stream_id: str, group: str, *, start_from: int = 0
    ) -> None:
        """Create a group delivering ``seq > start_from`` (``-1``: from now on).

        :raises JobNotFound: no such job.
        :raises InvalidCursor: ``start_from`` is below ``-1`` or ahead of the log.
        """
        keys = self._keys.job(stream_id)
        validate_id(group, "group")
        if start_from != -1:
            _check_cursor(start_from, "start_from")
        args = (b"create", start_from, group)
        await self._redis.script("group", (keys.job, keys.log), args, stream_id)

    async def read_chunks_from_group(
        self,
        stream_id: str,
        group: str,
        consumer: str = "consumer-1",
        *,
        count: int | None = None,
    ) -> list[Chunk]:
        """Deliver chunks the group has not delivered yet, pending for ``consumer``."""
        keys = self._keys.job(stream_id)
        validate_id(group, "group")
        validate_id(consumer, "consumer")
        _check_limit(count, "count")
        if count == 0:
            return []
        limit = () if count is None else ("COUNT", count)
        reply = await self._redis.command_or_none(
            "XREADGROUP",
            "GROUP",
            group,
            consumer,
            *limit,
            "STREAMS",
            keys.log,
            ">",
            absent="NOGROUP",
        )
        return group_chunks(reply)

    async def acknowledge_chunks(
        self, stream_id: str, group: str, seqs: Sequence[int]
    ) -> int:
        """Mark chunks processed; return how many of them were pending."""
        keys = self._keys.job(stream_id)
        validate_id(group, "group")
        ids = {f"{seq}-0" for seq in seqs if _is_seq(seq)}
        if not ids:
            return 0
        return int(await self._redis.command("XACK", keys.log, group, *ids))

    async def delete_consumer_group(self, stream_id: str, group: str) -> bool:
        """Delete a group; ``False`` if it did not exist."""
        keys = self._keys.job(stream_id)
        validate_id(group, "group")
        args = (b"destroy", 0, group)
        return bool(await self._redis.script("group", (keys.job, keys.log), args))

    async def get_pending_chunks(
        self, stream_id: str, group: str, consumer: str = "consumer-1"
    ) -> list[Chunk]:
        """Chunks delivered to ``consumer`` and not acknowledged, still in the log."""
        keys = self._keys.job(stream_id)
        validate_id(group, "group")
        validate_id(consumer, "consumer")
        reply = await self._redis.command_or_none(
            "XREADGROUP",
            "GROUP",
            group,
            consumer,
            "STREAMS",
            keys.log,
            "0",
            absent="NOGROUP",
        )
        return group_chunks(reply)


class _SentinelMaster(Redis):
    """The client of the master a Sentinel names; closing it closes the Sentinel's
    own connections too, as the store made both."""

    _sentinel: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        sentinel, self._sentinel = self._sentinel, None
        try:
            await super().aclose(close_connection_pool)
        finally:
            if sentinel is not None:
                await sentinel.aclose()


def _sentinel_client(address: str, options: dict[str, Any]) -> _SentinelMaster:
    """The client of ``host:port[,host:port]/service_name[/db]``'s master."""
    hosts, _, path = address.partition("/")
    service, _, db = path.partition("/")
    if "@" in hosts or "?" in address:
        raise ValueError(
            "a redis+sentinel:// URL takes no password or query: pass password= "
            "(the master's) and sentinel_kwargs= (the Sentinels') as options"
        )
    if not service or not (db == "" or db.isdigit()):
        raise ValueError("a redis+sentinel:// URL needs /service_name[/db]")
    sentinels = [_host_port(item) for item in hosts.split(",")]
    # Clients made by Sentinel.master_for do not retry by default, unlike
    # Redis.from_url's; a retry is what takes a command that the failover cut
    # off to the new master (the scripts recognise a call sent twice).
    retry = Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.01), 10)
    options = {"retry": retry, **options}
    sentinel = Sentinel(sentinels, **options)  # type: ignore[no-untyped-call]
    client: _SentinelMaster = sentinel.master_for(
        service, redis_class=_SentinelMaster, db=int(db or 0)
    )
    client._sentinel = sentinel
    return client


def _host_port(item: str) -> tuple[str, int]:
    host, _, port = item.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit():
        raise ValueError(f"a Sentinel address must be host:port, got {item!r}")
    return host, int(port)


def _check_cursor(after: object, what: str = "after") -> int:
    if not isinstance(after, int) or isinstance(after, bool):
        raise InvalidCursor(f"{what} must be an integer, got {type(after).__name__}")
    if after < 0:
        raise InvalidCursor(f"{what} must be >= 0, got {after}")
    return after


def _check_limit(limit: object, what: str = "limit") -> None:
    if limit is not None and (
        not isinstance(limit, int) or isinstance(limit, bool) or limit < 0
    ):
        raise ValueError(f"{what} must be None or an integer >= 0")


def _is_seq(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
