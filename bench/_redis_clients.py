"""Redis clients for the workloads, and counting their work.

Commands are counted on the server (``INFO commandstats``), round trips on the
client (each write to a connection).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection

__all__ = [
    "MAX_CONNECTIONS",
    "RoundTrips",
    "command_calls",
    "commands_between",
    "counting_client",
    "plain_client",
]

#: redis-py's pool refuses a 101st connection by default; 100 jobs writing at
#: once, plus the bell's subscription, need more than that.
MAX_CONNECTIONS = 1024

# Commands the bench itself sends to read the counters; they are not the workload's.
_OWN_COMMANDS = frozenset({"info", "memory|usage", "scan", "config|resetstat"})


@dataclass(slots=True)
class RoundTrips:
    """How many times a client wrote to Redis and then waited for an answer.

    A pipeline of 64 commands is one round trip; so is one script call.
    """

    count: int = 0


def counting_client(url: str, counter: RoundTrips) -> Redis:
    """A redis-py client whose connections count each write in ``counter``."""

    class CountingConnection(Connection):
        async def send_packed_command(
            self, command: bytes | str | Iterable[bytes], check_health: bool = True
        ) -> None:
            counter.count += 1
            await super().send_packed_command(command, check_health)

    pool = ConnectionPool.from_url(
        url, connection_class=CountingConnection, max_connections=MAX_CONNECTIONS
    )
    return Redis(connection_pool=pool)


def plain_client(url: str) -> Redis:
    """A redis-py client with room for every connection a workload opens."""
    return Redis.from_url(url, max_connections=MAX_CONNECTIONS)


async def command_calls(client: Redis) -> Counter[str]:
    """The server's ``calls`` per command since start (``INFO commandstats``).

    Commands run by a script are counted under their own names, beside the
    ``evalsha`` or ``fcall`` that ran them.
    """
    info: dict[str, Any] = await client.info("commandstats")
    calls: Counter[str] = Counter()
    for name, stats in info.items():
        command = name.removeprefix("cmdstat_")
        if command not in _OWN_COMMANDS and isinstance(stats, dict):
            calls[command] = int(stats.get("calls", 0))
    return calls


def commands_between(before: Counter[str], after: Counter[str]) -> Counter[str]:
    """Calls per command made between two :func:`command_calls` readings."""
    delta = after.copy()
    delta.subtract(before)
    return Counter({name: count for name, count in delta.items() if count > 0})
