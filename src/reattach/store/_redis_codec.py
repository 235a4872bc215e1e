"""How the Redis store names its keys and lays out records, chunks and snapshots."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .._ids import validate_id
from .._json import decode, encode_event
from .._types import JOB_FIELDS, Chunk, Job, JobStatus, Snapshot

__all__ = [
    "JobKeys",
    "KeySpace",
    "decode_job",
    "encode_fields",
    "entry_chunks",
    "flatten",
    "group_chunks",
    "job_order",
    "parse_snapshot",
    "snapshot_blob",
]

# Caller fields (and ``error``) are stored as JSON, so every value comes back as
# it went in; the fields the store manages are plain text or integers.
_JSON_FIELDS = frozenset(JOB_FIELDS | {"error"})
_INT_FIELDS = frozenset(
    {"created_at", "updated_at", "completed_at", "last_seq", "lease_expires_at"}
)


class JobKeys(NamedTuple):
    """The keys of one job; they share the hash tag ``{stream_id}``."""

    job: str
    log: str
    steps: str
    snap: str
    bell: str

    @property
    def stored(self) -> tuple[str, str, str, str]:
        """The four keys that hold data, in the order the scripts take them."""
        return (self.job, self.log, self.steps, self.snap)


class KeySpace:
    """Every key name the Redis store uses, derived from one prefix.

    A job's keys carry the hash tag ``{stream_id}``, so a Cluster keeps one job
    in one slot and each script touches one slot. The global indexes live in
    other slots and are updated by separate commands.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = validate_id(prefix, "prefix")
        self.running = f"{prefix}:running"

    def job(self, stream_id: str) -> JobKeys:
        """The keys of job ``stream_id``; raises ``InvalidId`` for a bad id."""
        tag = f"{self.prefix}:{{{validate_id(stream_id)}}}"
        return JobKeys(
            f"{tag}:job", f"{tag}:log", f"{tag}:steps", f"{tag}:snap", f"{tag}:bell"
        )

    def user(self, user_id: str) -> str:
        """The sorted set of one user's jobs, scored by when each record expires."""
        return f"{self.prefix}:user:{validate_id(user_id, 'user_id')}"

    def done(self, status: JobStatus) -> str:
        """The sorted set of finished jobs in ``status``, scored by record expiry."""
        return f"{self.prefix}:status:{status.value}"


def encode_fields(fields: Mapping[str, Any]) -> tuple[dict[str, bytes], list[str]]:
    """The JSON of each field that has a value, and the names set to ``None``.

    :raises InvalidEvent: a value is not JSON.
    """
    values = {
        name: encode_event(value, sys.maxsize)
        for name, value in fields.items()
        if value is not None
    }
    return values, [name for name, value in fields.items() if value is None]


def flatten(values: Mapping[str, bytes]) -> list[Any]:
    """``[name, value, name, value, ...]``, as ``HSET`` takes them."""
    return [item for pair in values.items() for item in pair]


def decode_job(raw: Mapping[bytes, bytes]) -> Job | None:
    """A job from its hash, or ``None`` when the hash is empty."""
    if b"status" not in raw:
        return None
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.decode()
        if name in _JSON_FIELDS:
            values[name] = decode(value)
        elif name in _INT_FIELDS:
            values[name] = int(value)

    return Job(
        raw[b"stream_id"].decode(),
        raw[b"user_id"].decode(),
        status=JobStatus(raw[b"status"].decode()),
        lease_owner=_text(raw.get(b"lease_owner")),
        **values,
    )


def job_order(raw: Mapping[bytes, bytes]) -> int:
    """The creation time in microseconds of the server, to list jobs oldest first."""
    return int(raw.get(b"created_us", 0))


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def entry_chunks(entries: Iterable[Any]) -> list[Chunk]:
    """Chunks from raw stream entries ``[[b"<seq>-0", [b"e", json]], ...]``."""
    # Every entry id is "<seq>-0": the seq is the id without its last two bytes.
    return [Chunk(int(key[:-2]), decode(fields[1])) for key, fields in entries]


def group_chunks(reply: Any) -> list[Chunk]:
    """Chunks from an ``XREADGROUP`` reply; entries trimmed since are skipped."""
    if not reply:
        return []
    if isinstance(reply, dict):
        # RESP3: {stream: [[entry, ...]]}
        streams = [_unwrap(entries) for entries in reply.values()]
    else:
        # RESP2: [[stream, [entry, ...]], ...]
        streams = [stream[1] for stream in reply]
    return [
        Chunk(int(entry_id.partition(b"-")[0]), decode(fields[b"e"]))
        for entries in streams
        for entry_id, fields in entries
        if fields and b"e" in fields
    ]


def _unwrap(entries: Any) -> Any:
    if entries and isinstance(entries[0], list):
        return entries[0]
    return entries


def snapshot_blob(seq: int, data: bytes) -> bytes:
    """A snapshot as stored: ``b"<seq>\\n<json>"`` (the scripts read the seq)."""
    return b"%d\n%s" % (seq, data)


def parse_snapshot(blob: bytes) -> Snapshot:
    """The snapshot held by ``blob``."""
    seq, _, data = blob.partition(b"\n")
    return Snapshot(int(seq), decode(data))
