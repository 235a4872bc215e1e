"""``reattach bench``: run the workloads, print the table, write the JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import logging
import os
import platform
import shlex
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import orjson
from redis.exceptions import RedisError

from ._append import AppendWorkload
from ._context import FULL, SMOKE, BenchContext, WorkloadUnavailable
from ._figures import WorkloadResult
from ._footprint import FootprintWorkload
from ._latency import LatencyWorkload
from ._progress import Progress
from ._reattach import ReattachWorkload
from ._redis_clients import plain_client
from ._redis_server import BenchRedisError, private_redis
from ._report import render_table, to_json
from ._scale import ScaleWorkload

__all__ = ["WORKLOADS", "main"]

logger = logging.getLogger(__name__)


class Workload(Protocol):
    """What the runner needs of a workload."""

    name: str
    result: WorkloadResult

    def steps(self, ctx: BenchContext) -> int: ...

    async def run(self, ctx: BenchContext) -> None: ...


_REPEAT = 5

WORKLOADS = ("append", "latency", "reattach", "scale", "memory")
# The workloads that talk to Redis; only these need a server.
_NEEDS_REDIS = frozenset({"append", "latency", "reattach", "memory"})


def _make_workloads() -> list[Workload]:
    return [
        AppendWorkload(),
        LatencyWorkload(),
        ReattachWorkload(),
        ScaleWorkload(),
        FootprintWorkload(),
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reattach bench",
        description="Measure reattach: append throughput, Redis work per event, "
        "follower latency, reattach cost, SSE scale and memory.",
    )
    parser.add_argument("--json", metavar="PATH", type=Path, help="write JSON here")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help=f"repetitions per figure (default {_REPEAT}; 1 with --smoke)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, a few seconds (for CI)"
    )
    parser.add_argument(
        "--only",
        metavar="NAME[,NAME]",
        help=f"run only these workloads: {', '.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--redis-url",
        help="use this Redis (keys under a unique prefix, removed afterwards) "
        "instead of starting a private redis-server",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _selected(parser: argparse.ArgumentParser, only: str | None) -> list[str]:
    if only is None:
        return list(WORKLOADS)
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown or not names:
        parser.error(f"--only takes names from {', '.join(WORKLOADS)}; got {only!r}")
    return [name for name in WORKLOADS if name in names]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``reattach bench`` with ``argv`` (default: the command line's arguments).

    Returns the exit status: 0 when the run finished (targets missed or not),
    2 for bad options, 1 when Redis could not be started or reached.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    names = _selected(parser, args.only)
    repeat = args.repeat if args.repeat is not None else (1 if args.smoke else _REPEAT)
    if repeat < 1:
        parser.error("--repeat must be at least 1")
    workloads = [w for w in _make_workloads() if w.name in names]
    sizes = SMOKE if args.smoke else FULL
    progress = Progress.for_terminal(
        sum(w.steps(_sizing(sizes, repeat)) for w in workloads), quiet=args.quiet
    )
    started = time.monotonic()
    header = _header(argv, sizes, repeat)
    try:
        with (
            _tally_library_logs() as tally,
            _redis(args.redis_url, needed=bool(_NEEDS_REDIS & set(names))) as url,
        ):
            ctx = BenchContext(url, sizes, repeat, progress, smoke=args.smoke)
            asyncio.run(_run_all(ctx, workloads, header))
    except BenchRedisError as exc:
        progress.close()
        print(f"reattach bench: {exc}", file=sys.stderr)
        return 1
    finally:
        progress.close()

    header["seconds"] = round(time.monotonic() - started, 1)
    header["library_log"] = dict(tally.counts.most_common())
    _warn_about_logs(tally.counts)
    results = [w.result for w in workloads]
    sys.stdout.write(_preamble(header) + render_table(results))
    if args.json is not None:
        document = to_json(results, header)
        args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return 0


class _LogTally(logging.Handler):
    """Counts the library's warnings by message template instead of printing each."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        # The template, not the formatted message: no ids or payloads, and one
        # line for a thousand jobs that failed the same way.
        self.counts[f"{record.levelname} {record.name}: {record.msg}"] += 1


@contextlib.contextmanager
def _tally_library_logs() -> Iterator[_LogTally]:
    library = logging.getLogger("reattach")
    tally = _LogTally()
    propagate = library.propagate
    library.addHandler(tally)
    library.propagate = False
    try:
        yield tally
    finally:
        library.removeHandler(tally)
        library.propagate = propagate


def _warn_about_logs(counts: Counter[str]) -> None:
    for template, count in counts.most_common(5):
        print(f"reattach bench: logged {count} times: {template}", file=sys.stderr)


def _sizing(sizes: Any, repeat: int) -> BenchContext:
    # Only for counting steps: a context that runs nothing.
    return BenchContext("", sizes, repeat, Progress(1, enabled=False))


@contextlib.contextmanager
def _redis(url: str | None, *, needed: bool) -> Iterator[str]:
    if url is not None or not needed:
        yield url or ""
        return
    with private_redis() as private:
        yield private


async def _run_all(
    ctx: BenchContext, workloads: Sequence[Workload], header: dict[str, Any]
) -> None:
    clock = asyncio.create_task(_keep_ticking(ctx.progress))
    try:
        if ctx.redis_url:
            header["redis_version"] = await _redis_version(ctx.redis_url)
        for workload in workloads:
            await _run_one(ctx, workload)
    finally:
        clock.cancel()


async def _redis_version(url: str) -> str:
    client = plain_client(url)
    try:
        info: dict[str, Any] = await client.info("server")
    except RedisError as exc:
        raise BenchRedisError(f"cannot reach Redis at {_redact(url)}: {exc}") from exc
    finally:
        await client.aclose()
    return str(info.get("redis_version", "unknown"))


def _redact(url: str) -> str:
    # A password in the URL must not reach the terminal or the JSON.
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        return f"{scheme}{sep}***@{rest.rpartition('@')[2]}"
    return url


async def _run_one(ctx: BenchContext, workload: Workload) -> None:
    started = time.monotonic()
    done_before = ctx.progress.done
    workload.result.load_at_start = _load_average()
    try:
        await workload.run(ctx)
    except WorkloadUnavailable as exc:
        workload.result.mark_unavailable(str(exc))
    except Exception as exc:
        # A workload whose parts are missing or broken reports why; the others run.
        logger.debug("workload %s failed", workload.name, exc_info=True)
        workload.result.mark_unavailable(f"{type(exc).__name__}: {exc}")
    workload.result.seconds = time.monotonic() - started
    ctx.progress.advance(done_before + workload.steps(ctx) - ctx.progress.done)


async def _keep_ticking(progress: Progress) -> None:
    while True:
        await asyncio.sleep(0.5)
        progress.tick()


def _header(argv: Sequence[str] | None, sizes: Any, repeat: int) -> dict[str, Any]:
    args = [_redact(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    return {
        "command": shlex.join(["reattach", "bench", *args]),
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "repeat": repeat,
        "sizes": asdict(sizes),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_start": _load_average(),
        },
    }


def _load_average() -> float | None:
    """The one-minute load average: how busy the machine was (other work included)."""
    if not hasattr(os, "getloadavg"):
        return None
    return round(os.getloadavg()[0], 2)


def _preamble(header: dict[str, Any]) -> str:
    machine = header["machine"]
    return (
        f"`{header['command']}` — {header['started_at']}, {header['seconds']} s, "
        f"{machine['cpus']} CPUs, Python {machine['python']}, "
        f"Redis {header.get('redis_version', '-')}, "
        f"load {machine['load_average_at_start']} at start; "
        f"each figure is the median of {header['repeat']} repetitions\n\n"
    )
