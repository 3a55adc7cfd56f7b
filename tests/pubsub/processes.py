"""Server processes running :mod:`tests.pubsub.app`, and a client that speaks its JSON commands."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import sys
from typing import Any

import wsio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ServerProcess:
    """``python -m tests.pubsub.app`` (``wsio.run`` with N workers) in a child process."""

    def __init__(
        self, port: int, redis_url: str | None, workers: int = 1, history: int = 0, presence_ttl: float | None = None
    ) -> None:
        self.port = port
        self.redis_url = redis_url
        self.workers = workers
        self.history = history
        self.presence_ttl = presence_ttl
        self.process: asyncio.subprocess.Process | None = None
        self.pids: list[int] = []
        self.log = os.path.join(ROOT, "reports", "pubsub", f"server-{port}.log")

    async def start(self, timeout: float = 20) -> ServerProcess:
        os.makedirs(os.path.dirname(self.log), exist_ok=True)
        args = [sys.executable, "-m", "tests.pubsub.app", "--port", str(self.port), "--workers", str(self.workers)]
        if self.redis_url:
            args += ["--redis", self.redis_url]
        if self.history:
            args += ["--history", str(self.history)]
        if self.presence_ttl is not None:
            args += ["--presence-ttl", str(self.presence_ttl)]
        with open(self.log, "wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"}
            )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        assert line.startswith(b"ready "), f"server didn't start: {line!r}; see {self.log}"
        self.pids = [int(pid) for pid in line.split()[2:]]
        return self

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
        for pid in self.pids:  # workers, should the parent have died first
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Peer:
    """A client of the test app: ``call()`` sends a command and returns its answer; deliveries are kept apart."""

    def __init__(self, ws: wsio.ClientConnection) -> None:
        self.ws = ws
        self.pending: collections.deque[str | bytes] = collections.deque()

    @classmethod
    async def connect(cls, port: int) -> Peer:
        return cls(await wsio.connect(f"ws://127.0.0.1:{port}/", compression=None, open_timeout=5))

    async def call(self, **command: Any) -> dict[str, Any]:
        await self.ws.send(json.dumps(command))
        while True:
            message = await self.ws.recv(timeout=10)
            if isinstance(message, str) and message.startswith("{"):
                return json.loads(message)  # type: ignore[no-any-return]
            self.pending.append(message)

    async def delivery(self, timeout: float = 5) -> str | bytes:
        if self.pending:
            return self.pending.popleft()
        message = await self.ws.recv(timeout=timeout)
        assert not (isinstance(message, str) and message.startswith("{")), f"an answer, not a delivery: {message}"
        return message

    async def nothing(self, wait: float = 0.3) -> bool:
        assert not self.pending, f"unexpected deliveries: {list(self.pending)}"
        try:
            message = await self.ws.recv(timeout=wait)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected message: {message!r}")

    async def close(self) -> None:
        await self.ws.close()
