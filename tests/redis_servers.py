"""Real ``redis-server`` processes for the tests: standalone, Sentinel and Cluster.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "RedisCluster",
    "RedisSentinel",
    "RedisServer",
    "free_port",
    "redis_cluster",
    "redis_sentinel",
    "redis_server",
]

#: The name the Sentinel monitors its master by.
SENTINEL_SERVICE = "reattach-master"
# A replica syncs at once (diskless sync otherwise waits 5 s for more replicas).
# A master refuses writes while no replica follows it: without that, a former
# master accepts writes until the Sentinel turns it into a replica, and those
# acknowledged writes vanish when it does (Redis replication is asynchronous).
_DATA_NODE = (
    "--repl-diskless-sync-delay",
    "0",
    "--min-replicas-to-write",
    "1",
    "--min-replicas-max-lag",
    "1",
)


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


@dataclass
class RedisSentinel:
    """A master, one replica and one Sentinel watching them.

    ``nodes`` are the two data servers, the first one the master at the start;
    after a failover the Sentinel names the other one (see :meth:`master`).
    """

    nodes: list[RedisServer]
    sentinel: RedisServer
    service: str = SENTINEL_SERVICE

    @property
    def sentinel_port(self) -> int:
        return self.sentinel.port

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL of :meth:`RedisJobStore.from_url`."""
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.service}"

    def master_port(self) -> int | None:
        """The port of the master as the Sentinel names it now, if it names one."""
        reply = self.sentinel.cli("SENTINEL", "get-master-addr-by-name", self.service)
        lines = reply.split()
        return int(lines[1]) if len(lines) == 2 else None

    def master(self) -> RedisServer:
        """The node the Sentinel names master."""
        port = self.master_port()
        return next(node for node in self.nodes if node.port == port)

    def replica(self) -> RedisServer:
        """The node the Sentinel does not name master."""
        port = self.master_port()
        return next(node for node in self.nodes if node.port != port)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until the Sentinel names a master whose replica is in sync and
        known to the Sentinel: the state a failover needs."""
        _poll(self._healthy, timeout, "the Sentinel setup did not become healthy")

    def failover(self, timeout: float = 30.0) -> RedisServer:
        """Promote the replica with ``SENTINEL FAILOVER``; the new master.

        Returns once the Sentinel names the former replica as master.
        """
        self.wait_healthy(timeout)
        replica = self.replica()
        self.sentinel.cli("SENTINEL", "FAILOVER", self.service)
        _poll(
            lambda: self.master_port() == replica.port,
            timeout,
            "the Sentinel did not name the replica master",
        )
        return replica

    def _healthy(self) -> bool:
        port = self.master_port()
        if port is None or port not in {node.port for node in self.nodes}:
            return False
        master = _info(self.master().cli("INFO", "replication"))
        replica = _info(self.replica().cli("INFO", "replication"))
        if master.get("role") != "master" or replica.get("master_link_status") != "up":
            return False
        if master.get("master_repl_offset") != replica.get("master_repl_offset"):
            return False  # a write the replica has not received yet
        known = self.sentinel.cli("SENTINEL", "REPLICAS", self.service).split()
        # redis-cli prints each replica's fields one per line: name, then value.
        return str(self.replica().port) in known and _field(known, "flags") == "slave"


def _info(text: str) -> dict[str, str]:
    """The ``name:value`` lines of an ``INFO`` reply."""
    pairs = (line.partition(":") for line in text.splitlines())
    return {name: value.strip() for name, sep, value in pairs if sep}


def _field(lines: list[str], name: str) -> str | None:
    for index, line in enumerate(lines[:-1]):
        if line == name:
            return lines[index + 1]
    return None


def _poll(ready: Callable[[], bool], timeout: float, failure: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(subprocess.CalledProcessError):
            if ready():
                return
        time.sleep(0.05)
    raise RuntimeError(failure)


def _start_sentinel(folder: Path, master_port: int) -> RedisServer:
    for _ in range(5):
        port = free_port()
        config = folder / "sentinel.conf"
        # Sentinel rewrites its configuration file, so it lives in the temp folder.
        config.write_text(
            f"port {port}\n"
            "bind 127.0.0.1\n"
            f"dir {folder}\n"
            f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n"
            f"sentinel failover-timeout {SENTINEL_SERVICE} 5000\n"
        )
        process = subprocess.Popen(
            [_binary("redis-server"), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = RedisServer(port, process, folder)
        if _wait_ready(server):
            # Shorter timers (Redis 7 test knobs): the Sentinel reads each node's
            # INFO every 100 ms instead of 10 s, so it turns a former master into
            # a replica about a second after a failover instead of ten.
            server.cli(
                "SENTINEL", "DEBUG", "INFO-PERIOD", "100", "PUBLISH-PERIOD", "200"
            )
            return server
        server.stop()
    raise RuntimeError("redis-server --sentinel did not start on a free port")


@contextlib.contextmanager
def redis_sentinel() -> Iterator[RedisSentinel]:
    """Start a master, a replica of it and a Sentinel monitoring them."""
    with tempfile.TemporaryDirectory(prefix="reattach-sentinel-") as root:
        folders = [Path(root) / name for name in ("master", "replica", "sentinel")]
        for folder in folders:
            folder.mkdir()

        started: list[RedisServer] = []
        try:
            master = _start(folders[0], *_DATA_NODE)
            started.append(master)
            replicaof = ("--replicaof", "127.0.0.1", str(master.port))
            replica = _start(folders[1], *_DATA_NODE, *replicaof)
            started.append(replica)
            started.append(replica)
            sentinel = _start_sentinel(folders[2], master.port)
            started.append(sentinel)
            setup = RedisSentinel([master, replica], sentinel)
            setup.wait_healthy()
            yield setup
        finally:
            for server in reversed(started):
                server.stop()
