"""A real Redis Cluster for the tests: 6 ``redis-server`` processes (3 masters, 3 replicas) on free loopback ports.

Each node runs in its own temporary directory, without persistence, with
``cluster-node-timeout`` 1000 ms so that a replica takes over a dead master
within a few seconds. Stopped by PID.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from typing import Iterator

import pytest

from .redis_server import REDIS_SERVER, RedisServer

REDIS_CLI = shutil.which("redis-cli")


def cluster_port() -> int:
    """A free loopback port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = random.randrange(20000, 50000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of ports")


class ClusterNode(RedisServer):
    """One node of the cluster: a redis-server with the cluster options."""

    def extra_options(self) -> list[str]:
        return [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            os.path.join(self.dir, "nodes.conf"),
            "--cluster-node-timeout",
            "1000",
            "--repl-diskless-sync-delay",
            "0",  # replicas sync at once (the default waits 5 s)
        ]

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def info(self, section: str) -> dict[str, str]:
        text = self.command("INFO", section) if section != "cluster" else self.command("CLUSTER", "INFO")
        fields = {}
        for line in text.decode().splitlines():
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip()] = value.strip()
        return fields


class RedisCluster:
    """Six nodes joined by ``redis-cli --cluster create ... --cluster-replicas 1``."""

    def __init__(self, nodes: int = 6) -> None:
        if REDIS_SERVER is None or REDIS_CLI is None:
            raise RuntimeError("redis-server and redis-cli are not installed (make system-deps installs them)")
        self.nodes = [ClusterNode(cluster_port()) for _ in range(nodes)]
        self.started_in = 0.0

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming every node (any of them would do)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self, timeout: float = 60) -> None:
        began = time.monotonic()
        try:
            for i, node in enumerate(self.nodes):
                for attempt in range(5):
                    try:
                        node.start()
                        break
                    except RuntimeError:
                        # Its port or bus port was taken meanwhile (a connection's ephemeral port): another pair.
                        if attempt == 4:
                            raise
                        node.close()
                        node = self.nodes[i] = ClusterNode(cluster_port())
            assert REDIS_CLI is not None
            subprocess.run(
                [REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{node.port}" for node in self.nodes)]
                + ["--cluster-replicas", "1", "--cluster-yes"],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
            )
            self.wait_ok(timeout - (time.monotonic() - began))
        except BaseException:
            self.close()
            raise
        self.started_in = time.monotonic() - began

    def alive(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.process is not None]

    def wait_ok(self, timeout: float = 30) -> None:
        """Until every live node says ``cluster_state:ok``, agrees on who serves every slot, and replicas are synced."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if all(node.info("cluster").get("cluster_state") == "ok" for node in self.alive()) and self._agree():
                    return
            except (OSError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster isn't ok after {timeout:.0f}s")
            time.sleep(0.05)

    def _agree(self) -> bool:
        """Every node sees the same masters for the same slots, and every replica has synced (else it can't take over)."""
        for node in self.alive():
            replication = node.info("replication")
            if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                return False
        views = set()
        for node in self.alive():
            slots = node.command("CLUSTER", "SLOTS")
            if isinstance(slots, Exception):
                return False
            views.add(tuple(sorted((int(s[0]), int(s[1]), int(s[2][1])) for s in slots)))
        live = {node.port for node in self.alive()}
        return len(views) == 1 and all(port in live for _, _, port in next(iter(views)))

    def masters(self) -> list[ClusterNode]:
        return [node for node in self.alive() if node.info("replication").get("role") == "master"]

    def master_of(self, key: str) -> ClusterNode:
        """The node that serves ``key`` (as the first live node sees it)."""
        node = self.alive()[0]
        slot = int(node.command("CLUSTER", "KEYSLOT", key))
        for start, end, master, *_ in node.command("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return next(n for n in self.nodes if n.port == int(master[1]))
        raise LookupError(key)

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL one node by its PID."""
        if node.process is not None:
            os.kill(node.process.pid, signal.SIGKILL)
            node.process.wait(10)
            node.process = None

    def close(self) -> None:
        for node in self.nodes:
            node.close()


def started_cluster() -> Iterator[RedisCluster]:
    """A fresh 6-node cluster for one test module (its module-scoped fixture yields from this), stopped by PID after."""
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed (make system-deps installs it)")
    cluster = RedisCluster()
    cluster.start()
    print(f"\nRedis Cluster of 6 nodes up in {cluster.started_in:.2f}s")
    try:
        yield cluster
    finally:
        cluster.close()
