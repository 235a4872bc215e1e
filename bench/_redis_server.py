"""A private ``redis-server`` for one benchmark run, on a free loopback port."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["BenchRedisError", "private_redis"]

_START_ATTEMPTS = 5
_READY_SECONDS = 10.0


class BenchRedisError(RuntimeError):
    """The benchmark's own ``redis-server`` could not be started."""


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """Start ``redis-server`` without persistence; yield its URL; stop it after."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchRedisError(
            "redis-server is not installed (apt-get install redis-server), "
            "or pass --redis-url"
        )
    with tempfile.TemporaryDirectory(prefix="reattach-bench-") as folder:
        process, port = _start(binary, Path(folder))
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            _stop(process)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(binary: str, folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    for _ in range(_START_ATTEMPTS):
        port = _free_port()
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if _wait_ready(process, port):
            return process, port
        _stop(process)
    raise BenchRedisError("redis-server did not start on a free port")


def _wait_ready(process: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + _READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _answers_ping(port):
            return True
        time.sleep(0.02)
    return False


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
