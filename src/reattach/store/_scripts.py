"""The Redis store's calls: Lua scripts, commands, pipelines, and error translation.

Every call the Redis store makes goes through :class:`RedisCalls`, the one place
where redis-py errors become reattach errors: a script's own error replies
(``NOJOB``, ``FINISHED``, ``EXISTS``, ``AHEAD``) become the matching
:class:`~reattach.ReattachError`, and everything else (connection loss, timeouts,
cluster trouble, unexpected replies) becomes
:class:`~reattach.BackendUnavailable`, chained to the redis-py error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import RedisCluster
from redis.exceptions import (
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from .._errors import (
    BackendUnavailable,
    InvalidCursor,
    JobExists,
    JobFinished,
    JobNotFound,
    ReattachError,
)

__all__ = ["SCRIPTS", "RedisCalls", "Script", "translate"]

#: What redis-py raises when Redis is out of reach or answers with an error.
REDIS_ERRORS = (RedisError, RedisClusterException, OSError)


@dataclass(frozen=True, slots=True)
class Script:
    """One Lua script of ``store/lua``, with the SHA1 that ``EVALSHA`` names it by."""

    name: str
    source: bytes
    sha: str


def _load(name: str) -> Script:
    source = (resources.files(__package__) / "lua" / f"{name}.lua").read_bytes()
    return Script(name, source, hashlib.sha1(source).hexdigest())


SCRIPTS: dict[str, Script] = {
    name: _load(name)
    for name in (
        "append",
        "create",
        "delete",
        "due",
        "finish",
        "group",
        "index",
        "read",
        "renew",
        "snapshot",
        "steps",
        "update",
    )
}


def translate(exc: BaseException, subject: str = "") -> ReattachError:
    """The reattach error for a redis-py error; ``subject`` names the job."""
    if type(exc) is ResponseError:
        code, _, detail = str(exc).partition(" ")
        if code == "NOJOB":
            return JobNotFound(f"no job {subject}")
        if code == "FINISHED":
            return JobFinished(f"job {subject} is {detail}")
        if code == "EXISTS":
            return JobExists(f"job {subject} exists already")
        if code == "AHEAD":
            return InvalidCursor(
                f"the cursor is ahead of the log of job {subject} (last seq {detail})"
            )
    return BackendUnavailable(f"Redis failed: {type(exc).__name__}: {exc}")


class RedisCalls:
    """Runs commands, scripts and pipelines on one redis-py client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.cluster = isinstance(client, RedisCluster)

    async def load(self) -> None:
        """Load every script (on every primary of a Cluster)."""
        for script in SCRIPTS.values():
            await self.command("SCRIPT LOAD", script.source)

    async def server_version(self) -> tuple[int, ...]:
        """The version the server reports as ``redis_version`` (Valkey too)."""
        info = await self.command("INFO", "server")
        if "redis_version" not in info:
            info = next(iter(info.values()))
        return tuple(int(part) for part in str(info["redis_version"]).split("."))

    async def command(self, *args: Any, **options: Any) -> Any:
        """Run one command.

        :raises BackendUnavailable: Redis failed.
        """
        try:
            return await self.client.execute_command(*args, **options)
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc

    async def command_or_none(self, *args: Any, absent: str) -> Any:
        """Run one command; ``None`` when Redis answers with the error ``absent``."""
        try:
            return await self.client.execute_command(*args)
        except ResponseError as exc:
            if str(exc).startswith(absent):
                return None
            raise translate(exc) from exc
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc

    async def script(
        self, name: str, keys: Sequence[Any], args: Iterable[Any], subject: str = ""
    ) -> Any:
        """Run a script by its SHA1, sending its source once if Redis lacks it.

        :raises JobNotFound, JobFinished, JobExists, InvalidCursor: the script
            said so.
        :raises BackendUnavailable: Redis failed.
        """
        script = SCRIPTS[name]
        try:
            try:
                return await self.client.execute_command(
                    "EVALSHA", script.sha, len(keys), *keys, *args
                )
            except NoScriptError:
                # A restarted or failed-over server lost the script cache; EVAL
                # runs the script and caches it again on that node.
                return await self.client.execute_command(
                    "EVAL", script.source, len(keys), *keys, *args
                )
        except REDIS_ERRORS as exc:
            raise translate(exc, subject) from exc

    @staticmethod
    def script_call(name: str, keys: Sequence[Any], args: Iterable[Any]) -> list[Any]:
        """The arguments of a script call, for :meth:`pipeline`."""
        script = SCRIPTS[name]
        return ["EVALSHA", script.sha, len(keys), *keys, *args]

    async def pipeline(self, calls: Sequence[Sequence[Any]]) -> list[Any]:
        """Run commands in one pipeline (one round trip per node); their replies.

        The commands may touch any slots: a Cluster pipeline sends each node its
        part. It is not a transaction, so each command must be safe to repeat.

        :raises BackendUnavailable: Redis failed, or any command did.
        """
        if not calls:
            return []
        replies = await self._pipeline(calls)
        if any(isinstance(reply, NoScriptError) for reply in replies):
            await self.load()
            replies = await self._pipeline(calls)
        for reply in replies:
            if isinstance(reply, BaseException):
                raise translate(reply) from reply

        return replies

    async def _pipeline(self, calls: Sequence[Sequence[Any]]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command(*call)

        try:
            return list(await pipe.execute(raise_on_error=False))
        except REDIS_ERRORS as exc:
            raise translate(exc) from exc
