"""The ``reattach`` command: ``serve``, ``jobs ls|show|abort`` and ``bench``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from . import __version__
from ._errors import BackendUnavailable, ReattachError
from ._types import Job, JobStatus

__all__ = ["main"]

logger = logging.getLogger(__name__)

_SERVE_ENV = """\
Every option can also come from the environment: REATTACH_HOST, REATTACH_PORT,
REATTACH_REDIS_URL, REATTACH_UPSTREAM_URL, REATTACH_UPSTREAM_KEY, REATTACH_MODEL,
REATTACH_TOKENS ("user=token,user2=token2"), REATTACH_MAX_BODY_BYTES,
REATTACH_MAX_JOBS_PER_USER, REATTACH_MAX_EVENT_BYTES, REATTACH_ECHO_DELAY_MS,
REATTACH_HEARTBEAT_SECONDS. An option given on the command line wins.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["bench"]:
        # The benchmark parses its own options.
        bench = importlib.import_module("reattach_bench")
        return int(bench.main(args[1:]) or 0)

    parser = _parser()
    options = parser.parse_args(args)
    if options.command == "serve":
        return _serve(options, parser, os.environ)
    if options.command == "jobs":
        return _jobs(options, parser, os.environ)
    parser.print_help(sys.stderr)
    return 2


# -- the parser ----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reattach",
        description="LLM generations that outlive the connection that started them.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_serve(commands)
    _add_jobs(commands)
    commands.add_parser(
        "bench",
        help="run the benchmarks (reattach bench --help)",
        add_help=False,
    )
    return parser


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the HTTP/SSE server and its chat page",
        description="Run the HTTP/SSE server and its chat page. With no options:\n"
        "memory store, the built-in echo model, 127.0.0.1:8000, loopback clients.",
        epilog=_SERVE_ENV,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = serve.add_argument
    add("--host", help="address to bind (default 127.0.0.1)")
    add("--port", type=int, help="port to bind (default 8000)")
    add(
        "--redis-url",
        help="Redis URL (redis+cluster:// for a Cluster); default: memory",
    )
    add("--upstream-url", help="base URL of an OpenAI-compatible API, e.g. .../v1")
    add("--upstream-key", help="API key sent upstream (prefer REATTACH_UPSTREAM_KEY)")
    add("--model", help="the upstream model to offer (required with --upstream-url)")
    add(
        "--token",
        action="append",
        metavar="USER=TOKEN",
        help="accept this bearer token as USER (repeatable); none: loopback only",
    )
    add("--max-body-bytes", type=int, help="largest request body (default 1 MiB)")
    add("--max-jobs-per-user", type=int, help="running jobs per user (default 10)")
    add("--max-event-bytes", type=int, help="largest event, as JSON (default 1 MiB)")
    add("--echo-delay-ms", type=int, help="pause before each echoed word (default 50)")
    add(
        "--heartbeat-seconds",
        type=float,
        help="SSE comment after this much silence (default 15)",
    )
    add(
        "--log-level",
        default=os.environ.get("REATTACH_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="default info",
    )


def _add_jobs(commands: Any) -> None:
    jobs = commands.add_parser(
        "jobs",
        help="list, show or abort jobs in a server's Redis store",
        description="Read the store a server uses. Needs --redis-url or "
        "REATTACH_REDIS_URL: a memory store lives inside its server process.",
    )
    jobs.add_argument("--redis-url", help="the server's Redis URL")
    actions = jobs.add_subparsers(dest="action", metavar="ACTION", required=True)

    ls = actions.add_parser("ls", help="running jobs, or one user's jobs")
    ls.add_argument("--user", help="list this user's jobs (any status)")
    ls.add_argument("--status", choices=[s.value for s in JobStatus])
    ls.add_argument("--json", action="store_true", help="one JSON object per line")

    show = actions.add_parser("show", help="one job's record")
    show.add_argument("stream_id")

    abort = actions.add_parser("abort", help="abort a running job")
    abort.add_argument("stream_id")


# -- serve ---------------------------------------------------------------------------


def _serve(
    options: argparse.Namespace,
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str],
) -> int:
    from .server.settings import SettingsError

    try:
        settings = serve_settings(options, environ)
    except SettingsError as exc:
        parser.error(str(exc))

    logging.basicConfig(
        level=options.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(_run_server(settings, options.log_level))
    except BackendUnavailable as exc:
        print(f"reattach serve: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def serve_settings(options: argparse.Namespace, environ: Mapping[str, str]) -> Any:
    """The server's settings: options over ``REATTACH_*`` variables over defaults.

    :raises SettingsError: a value is not usable.
    """
    from .server.settings import Settings, env_values, parse_tokens

    values = env_values(environ)
    for name in (
        "host",
        "port",
        "redis_url",
        "upstream_url",
        "upstream_key",
        "model",
        "max_body_bytes",
        "max_jobs_per_user",
        "max_event_bytes",
        "echo_delay_ms",
        "heartbeat_seconds",
    ):
        value = getattr(options, name)
        if value is not None:
            values[name] = value
    if options.token:
        values["tokens"] = parse_tokens(options.token)
    return Settings(**values)


async def _run_server(settings: Any, log_level: str) -> None:
    import uvicorn

    from .server import create_app, open_runtime

    async with open_runtime(settings) as runtime:
        config = uvicorn.Config(
            create_app(runtime=runtime),
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            # Event streams stay open for as long as their jobs run; past this
            # many seconds a shutdown cuts them and clients reconnect elsewhere.
            timeout_graceful_shutdown=3,
        )
        with _signals_left_to_uvicorn():
            await uvicorn.Server(config).serve()


@contextlib.contextmanager
def _signals_left_to_uvicorn() -> Iterator[None]:
    # uvicorn handles SIGINT and SIGTERM while it serves, then raises the signal
    # again for the handler it found. With the default handlers that would kill
    # the process before the manager ends its jobs and releases their leases, so
    # the handlers it finds here ignore what uvicorn has already dealt with.
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, _already_handled) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _already_handled(signum: int, frame: FrameType | None) -> None:
    logger.debug("signal %d: the server has shut down already", signum)


# -- jobs ----------------------------------------------------------------------------


def _jobs(
    options: argparse.Namespace,
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str],
) -> int:
    url = options.redis_url or environ.get("REATTACH_REDIS_URL")
    if not url:
        parser.error(
            "reattach jobs reads a server's Redis store: pass --redis-url or set "
            "REATTACH_REDIS_URL (a memory store cannot be read from outside its "
            "server process)"
        )
    try:
        return asyncio.run(_run_jobs(options, url))
    except ReattachError as exc:
        print(f"reattach jobs: {exc}", file=sys.stderr)
        return 1


async def _run_jobs(options: argparse.Namespace, url: str) -> int:
    from .server.runtime import open_store

    async with open_store(url) as store:
        if options.action == "ls":
            jobs = await _list(store, options)
            _print_jobs(jobs, as_json=options.json)
            return 0
        job = await store.get_job(options.stream_id)
        if job is None:
            print(f"reattach jobs: no job {options.stream_id!r}", file=sys.stderr)
            return 1
        if options.action == "show":
            print(json.dumps(_record(job), indent=2))
            return 0
        return await _abort(store, job)


async def _list(store: Any, options: argparse.Namespace) -> list[Job]:
    status = JobStatus(options.status) if options.status else None
    if options.user:
        jobs: list[Job] = await store.get_user_jobs(options.user, status=status)
        return jobs
    if status not in (None, JobStatus.RUNNING):
        raise ReattachError("without --user only running jobs can be listed")
    running: list[Job] = await store.get_running_jobs()
    return running


async def _abort(store: Any, job: Job) -> int:
    from .manager import GenerationManager

    async with GenerationManager(store) as manager:
        aborted = await manager.abort(job.stream_id, job.user_id)
    if aborted:
        print(f"aborted {job.stream_id}")
        return 0
    now = await store.get_job(job.stream_id)
    status = now.status.value if now is not None else "deleted"
    print(f"{job.stream_id} had already finished ({status})")
    return 0


def _print_jobs(jobs: list[Job], *, as_json: bool) -> None:
    if as_json:
        for job in jobs:
            print(json.dumps(_record(job)))
        return

    rows = [("STREAM_ID", "USER", "STATUS", "MODEL", "EVENTS", "CREATED")]
    rows += [
        (
            job.stream_id,
            job.user_id,
            job.status.value,
            job.model or "-",
            str(job.last_seq),
            _time(job.created_at),
        )
        for job in jobs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def _record(job: Job) -> dict[str, Any]:
    record = job.to_dict()
    record.pop("user_message", None)
    return record


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


if __name__ == "__main__":
    sys.exit(main())
