"""A real ``redis-server`` for the tests: on a free port, in a temporary directory, stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` without persistence, for one test; ``kill()`` and ``start()`` again on the same port."""

    def __init__(self, port: int | None = None) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed (make system-deps installs it)")
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="wsio-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def extra_options(self) -> list[str]:
        """Options a kind of server adds to the command line (a cluster node's)."""
        return []

    def start(self, timeout: float = 10) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.dir,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                os.path.join(self.dir, "redis.log"),
                *self.extra_options(),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {self.dir}/redis.log")
            try:
                if self.command("PING") == b"PONG":
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server didn't answer on port {self.port} within {timeout}s")
            time.sleep(0.02)

    def kill(self) -> None:
        """Stop it abruptly (SIGKILL, by PID): clients see their connections drop."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)

    def command(self, *args: str | bytes) -> Any:
        """Send one command; return the answer decoded from RESP (bytes, int, list, or an exception)."""
        items = [a.encode() if isinstance(a, str) else a for a in args]
        payload = b"*%d\r\n" % len(items) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in items)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(payload)
            with sock.makefile("rb") as stream:
                return _read_resp(stream)

    def channels(self, pattern: str = "*") -> set[str]:
        """``PUBSUB CHANNELS``: the channels with subscribers."""
        return {channel.decode() for channel in self.command("PUBSUB", "CHANNELS", pattern)}

    def numpat(self) -> int:
        """``PUBSUB NUMPAT``: how many patterns are subscribed to."""
        return int(self.command("PUBSUB", "NUMPAT"))

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _read_resp(stream: Any) -> Any:
    line = stream.readline()
    if not line:
        raise ConnectionError("redis-server closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        return RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = stream.read(n + 2)
        return data[:-2]
    if kind == b"*":
        return [_read_resp(stream) for _ in range(int(rest))]
    raise ValueError(f"unexpected RESP line {line!r}")
