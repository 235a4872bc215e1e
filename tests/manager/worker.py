"""A producing process for the multi-process tests: ``python -m tests.manager.worker``.

It runs one job on a GenerationManager backed by Redis, prints ``started`` when the
job exists and ``cleaned-up`` when the job's source runs its ``finally``, then exits
once the job has finished. With ``--events 0`` the source runs until aborted or
killed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

from reattach import GenerationManager, RedisJobStore

from .sources import delta


async def source(events: int, pace: float) -> AsyncIterator[Any]:
    try:
        index = 0
        while events == 0 or index < events:
            yield delta(index)
            index += 1
            await asyncio.sleep(pace)
    finally:
        print("cleaned-up", flush=True)


async def main(args: argparse.Namespace) -> None:
    client: Any
    if args.cluster:
        client = aioredis.RedisCluster(host="127.0.0.1", port=args.port)
    else:
        client = aioredis.Redis(host="127.0.0.1", port=args.port)
    store = RedisJobStore(client, prefix=args.prefix)
    async with store, GenerationManager(store, lease_ttl=args.lease_ttl) as manager:
        await manager.start(
            "alice", source(args.events, args.pace), stream_id=args.stream_id
        )
        print("started", flush=True)
        await store.wait_finished(args.stream_id)
    await client.aclose()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--stream-id", required=True)
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--pace", type=float, default=0.002)
    parser.add_argument("--lease-ttl", type=float, default=15.0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
