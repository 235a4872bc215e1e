"""A follower in another process, for the latency workload.

Run as ``python -m reattach_bench._follower REDIS_URL PREFIX USER_ID``. It reads one
line of JSON (the stream ids) from stdin, follows each job through its own
GenerationManager, prints ``ready`` once every job's first event has arrived, and,
when every job has ended, one line of JSON with each tick's index and latency.
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson

from ._paced import Stamps, follow_all, wait_ready
from ._redis_clients import plain_client

__all__ = ["main"]

_READY_SECONDS = 60.0


async def _follow(url: str, prefix: str, user_id: str) -> Stamps:
    from reattach.manager import GenerationManager
    from reattach.store import RedisJobStore

    line = await asyncio.to_thread(sys.stdin.readline)
    stream_ids: list[str] = orjson.loads(line)
    client = plain_client(url)
    store = RedisJobStore(client, prefix=prefix)
    stamps = Stamps()
    try:
        async with GenerationManager(store) as manager:
            ready, done = await follow_all(manager, stream_ids, user_id, stamps)
            await wait_ready(ready, done, _READY_SECONDS)
            print("ready", flush=True)
            cpu = time.process_time()
            await done
            stamps.cpu_seconds = time.process_time() - cpu
    finally:
        await store.aclose()
        await client.aclose()
    return stamps


def main(argv: list[str] | None = None) -> int:
    """Follow the jobs named on stdin and print what was measured."""
    url, prefix, user_id = (sys.argv[1:] if argv is None else argv)[:3]
    stamps = asyncio.run(_follow(url, prefix, user_id))
    report = {"ticks": stamps.ticks, "cpu_seconds": stamps.cpu_seconds}
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
