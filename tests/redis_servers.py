"""Real ``redis-server`` processes for the tests: standalone and a three-node Cluster.

Each server runs on free loopback ports in its own temporary folder, without
persistence, and is stopped when the test session ends.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RedisCluster", "RedisServer", "free_port", "redis_cluster", "redis_server"]


def free_port(*, below: int = 50_000) -> int:
    """A loopback port that is free now (and, for a cluster, whose bus port is too)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < below and _is_free(port + 10_000):
            return port


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"{name} is not installed; scripts/test installs it (apt-get install "
            "redis-server)"
        )
    return path


@dataclass
class RedisServer:
    """One running ``redis-server``."""

    port: int
    process: subprocess.Popen[bytes]
    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cli(self, *args: str) -> str:
        """Run ``redis-cli`` against this server and return what it printed."""
        done = subprocess.run(
            [_binary("redis-cli"), "-p", str(self.port), *args],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return done.stdout.decode()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _start(folder: Path, *extra: str) -> RedisServer:
    for _ in range(5):
        port = free_port()
        process = subprocess.Popen(
            [
                _binary("redis-server"),
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
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = RedisServer(port, process, folder)
        if _wait_ready(server):
            return server
        server.stop()
    raise RuntimeError("redis-server did not start on a free port")


def _wait_ready(server: RedisServer, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        with contextlib.suppress(subprocess.CalledProcessError):
            if server.cli("PING").strip() == "PONG":
                return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Start a standalone server; stop it and remove its folder afterwards."""
    with tempfile.TemporaryDirectory(prefix="reattach-redis-") as folder:
        server = _start(Path(folder))
        try:
            yield server
        finally:
            server.stop()


@dataclass
class RedisCluster:
    """A running three-master Redis Cluster."""

    nodes: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", node.port) for node in self.nodes]


@contextlib.contextmanager
def redis_cluster(size: int = 3) -> Iterator[RedisCluster]:
    """Start ``size`` cluster-enabled servers and join them into one Cluster."""
    with tempfile.TemporaryDirectory(prefix="reattach-cluster-") as root:
        cluster = RedisCluster()
        try:
            for index in range(size):
                folder = Path(root) / str(index)
                folder.mkdir()
                cluster.nodes.append(
                    _start(
                        folder,
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(folder / "nodes.conf"),
                        "--cluster-node-timeout",
                        "5000",
                    )
                )
            addresses = [f"127.0.0.1:{node.port}" for node in cluster.nodes]
            cluster.nodes[0].cli(
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            )
            _wait_cluster_ok(cluster)
            yield cluster
        finally:
            for node in cluster.nodes:
                node.stop()


def _wait_cluster_ok(cluster: RedisCluster, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [node.cli("CLUSTER", "INFO") for node in cluster.nodes]
        if all("cluster_state:ok" in state for state in states):
            return
        time.sleep(0.1)
    raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
