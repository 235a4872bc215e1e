"""Workload 5: how many SSE followers one ``reattach serve`` process holds.

The server runs as a subprocess on the memory store with the built-in echo model,
paced slowly so that its jobs stay open. Idle jobs are created first (nobody
follows them), then followers are opened in steps; after each step every
connection must receive an event within a window of two echo periods. Memory is
the server's resident set (``VmRSS`` in ``/proc/<pid>/status``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ._context import BenchContext, WorkloadUnavailable
from ._figures import WorkloadResult
from ._http import HttpError, SseFollower, get_status, post_json

__all__ = ["ScaleWorkload"]

_HOST = "127.0.0.1"
_START_SECONDS = 30.0
_CONNECT_SECONDS = 30.0
_OPENING_AT_ONCE = 64
_IDLE_BATCHES = 3
_STOP_SECONDS = 10.0
# Runs the console script's entry point the way the ``reattach`` command does.
_SERVE = (
    "import sys; from reattach.cli import main; sys.argv[0] = 'reattach'; "
    "sys.exit(main())"
)


@dataclass(slots=True)
class _Server:
    process: asyncio.subprocess.Process
    port: int
    log: IO[bytes]

    def rss_bytes(self) -> int:
        """The server's resident memory now (``VmRSS``)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status")


class ScaleWorkload:
    """Followers held by one server process, and its memory per follower and job."""

    name = "scale"
    title = "SSE followers held by one reattach serve process"

    def __init__(self) -> None:
        self.result = WorkloadResult(self.name, self.title)
        fig = self.result.figure
        self.held = fig("followers_held", "followers held, all receiving", "followers")
        self.per_follower = fig(
            "rss_per_follower_kib", "server memory per follower", "KiB"
        )
        self.per_job = fig("rss_per_idle_job_kib", "server memory per idle job", "KiB")
        self.baseline = fig("rss_baseline_mib", "server memory, no jobs", "MiB")

    def steps(self, ctx: BenchContext) -> int:
        """How many progress steps the workload reports."""
        return 1 + _IDLE_BATCHES + len(ctx.sizes.scale_steps)

    async def run(self, ctx: BenchContext) -> None:
        """Measure once: one sample per batch of idle jobs and per ramp step."""
        if not _has_proc():
            raise WorkloadUnavailable("needs /proc to read the server's memory")
        ctx.progress.label("scale: starting reattach serve")
        async with _serve(ctx) as server:
            ctx.progress.advance()
            await _create_jobs(server, 1, ctx.sizes.scale_words)
            self.baseline.add(server.rss_bytes() / 2**20)
            jobs = await self._idle_jobs(ctx, server)
            await self._ramp(ctx, server, jobs)

    async def _idle_jobs(self, ctx: BenchContext, server: _Server) -> list[str]:
        total = max(_IDLE_BATCHES, ctx.sizes.scale_idle_jobs)
        jobs: list[str] = []
        for number in range(_IDLE_BATCHES):
            batch = total // _IDLE_BATCHES + (number < total % _IDLE_BATCHES)
            ctx.progress.label(f"scale: idle jobs {number + 1}/{_IDLE_BATCHES}")
            before = server.rss_bytes()
            jobs += await _create_jobs(server, batch, ctx.sizes.scale_words)
            self.per_job.add((server.rss_bytes() - before) / batch / 1024)
            ctx.progress.advance()

        self.result.details["idle_jobs"] = len(jobs)
        return jobs

    async def _ramp(self, ctx: BenchContext, server: _Server, jobs: list[str]) -> None:
        window = 2 * ctx.sizes.scale_echo_delay_ms / 1000 + 1.0
        followers: list[SseFollower] = []
        steps: list[dict[str, float]] = []
        held = 0
        try:
            for target in ctx.sizes.scale_steps:
                ctx.progress.label(f"scale: {target} followers")
                before = server.rss_bytes()
                added = target - len(followers)
                opening = time.monotonic()
                await _open(server, jobs, followers, added)
                opened = time.monotonic() - opening
                receiving = await _receiving(followers, window)
                rss = server.rss_bytes()
                steps.append(
                    {
                        "followers": target,
                        "receiving": receiving,
                        "rss_bytes": rss,
                        "open_seconds": round(opened, 2),
                    }
                )
                ctx.progress.advance()
                if receiving < target:
                    break
                held = target
                self.per_follower.add((rss - before) / added / 1024)
        finally:
            await asyncio.gather(*(follower.close() for follower in followers))

        self.held.add(held)
        self.result.details.update(
            steps=steps,
            window_seconds=window,
            echo_delay_ms=ctx.sizes.scale_echo_delay_ms,
            errors=sorted({f.error for f in followers if f.error})[:5],
        )


async def _create_jobs(server: _Server, count: int, words: int) -> list[str]:
    text = " ".join(f"word{i}" for i in range(words))
    body = {"messages": [{"role": "user", "content": text}]}
    limit = asyncio.Semaphore(_OPENING_AT_ONCE)

    async def create() -> str:
        async with limit:
            answer = await post_json(_HOST, server.port, "/v1/jobs", body)
        return str(answer["stream_id"])

    return list(await asyncio.gather(*(create() for _ in range(count))))


async def _open(
    server: _Server, jobs: list[str], followers: list[SseFollower], count: int
) -> None:
    limit = asyncio.Semaphore(_OPENING_AT_ONCE)

    async def open_one(index: int) -> None:
        stream_id = jobs[index % len(jobs)]
        follower = SseFollower(_HOST, server.port, f"/v1/jobs/{stream_id}/events")
        followers.append(follower)
        async with limit:
            follower.open()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CONNECT_SECONDS):
                    await follower.connected.wait()

    start = len(followers)
    await asyncio.gather(*(open_one(start + i) for i in range(count)))


async def _receiving(followers: list[SseFollower], window: float) -> int:
    """How many followers got an event during the next ``window`` seconds."""
    started = asyncio.get_running_loop().time()
    # Watching a span of time is the measurement itself: a follower counts if an
    # event reached it inside the window.
    await asyncio.sleep(window)
    return sum(1 for f in followers if not f.ended and f.last_event_at >= started)


@contextlib.asynccontextmanager
async def _serve(ctx: BenchContext) -> AsyncIterator[_Server]:
    port = _free_port()
    # Settings from REATTACH_* variables (a Redis URL, say) must not leak in: this
    # workload measures the memory store.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REATTACH_")}
    options = {
        "--host": _HOST,
        "--port": str(port),
        "--echo-delay-ms": str(ctx.sizes.scale_echo_delay_ms),
        "--max-jobs-per-user": str(10 * ctx.sizes.scale_idle_jobs + 10),
        "--log-level": "warning",
    }
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _SERVE,
            "serve",
            *(part for pair in options.items() for part in pair),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        server = _Server(process, port, log)
        try:
            await _wait_ready(server)
            yield server
        finally:
            await _stop(process)


async def _wait_ready(server: _Server) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _START_SECONDS
    while loop.time() < deadline:
        if server.process.returncode is not None:
            raise WorkloadUnavailable(
                f"reattach serve exited ({server.process.returncode}): "
                + _tail(server.log)
            )
        with contextlib.suppress(OSError, HttpError):
            if await get_status(_HOST, server.port, "/healthz") == 200:
                return
        # Nothing announces that the server listens: ask again shortly.
        await asyncio.sleep(0.1)
    raise WorkloadUnavailable("reattach serve did not answer /healthz in time")


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    lines = log.read().decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _has_proc() -> bool:
    return os.path.exists("/proc/self/status")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            async with asyncio.timeout(_STOP_SECONDS):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
