"""``reattach serve`` in a subprocess on a free port, for tests that need sockets."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from ..redis_servers import free_port

__all__ = ["LiveServer", "start_server"]

_READY = "Uvicorn running on"


@dataclass
class LiveServer:
    """A running server process and what it has written to stderr."""

    port: int
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.reader is not None:
            self.reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``reattach ARGS`` as a subprocess, its stderr piped."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("REATTACH_")}
    full_env = {**inherited, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "reattach.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
    )


def start_server(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> LiveServer:
    """Start ``reattach serve ARGS`` on a free port and wait until it listens.

    :raises RuntimeError: the server exited or did not listen within ``timeout``;
        the message holds what it printed.
    """
    port = free_port()
    process = run_cli("serve", "--port", str(port), *args, env=env)
    server = LiveServer(port, process)
    lines: queue.Queue[str | None] = queue.Queue()
    server.reader = threading.Thread(target=_pump, args=(server, lines), daemon=True)
    server.reader.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0))
            if line is None:
                raise RuntimeError("the server exited:\n" + "".join(server.output))
            if _READY in line:
                return server
    except queue.Empty:
        server.stop()
        raise RuntimeError(
            "the server did not start:\n" + "".join(server.output)
        ) from None


def _pump(server: LiveServer, lines: queue.Queue[str | None]) -> None:
    # Keeps reading so that the pipe never fills and blocks the server.
    assert server.process.stdout is not None
    for line in server.process.stdout:
        server.output.append(line)
        lines.put(line)
    lines.put(None)
