"""Starting, pinning, talking to and stopping the benchmark's child processes."""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_CPU = 0
LOAD_CPU = 1
LOG_DIR = os.path.join(tempfile.gettempdir(), f"wsio-bench-{os.getpid()}")  # made on first use


def pinning() -> bool:
    """Server and load on different cores: needs taskset and two cores."""
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """A child process whose stdout lines arrive on a queue; stderr goes to a log file."""

    live: set[Child] = set()

    def __init__(self, module: str, args: list[str], cpu: int | None, stdin: bool = False) -> None:
        self.module = module
        prefix = ["taskset", "-c", str(cpu)] if cpu is not None and pinning() else []
        os.makedirs(LOG_DIR, exist_ok=True)
        self.log_path = os.path.join(LOG_DIR, f"{module}.{time.monotonic_ns()}.log")
        self.log = open(self.log_path, "w")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # taskset execs Python: the PID is the benchmark process itself (its /proc figures are ours).
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=ROOT,
            env=env,
        )
        self.pid = self.proc.pid
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        Child.live.add(self)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                self.lines.put(line.rstrip("\n"))
        except (OSError, ValueError):
            pass  # closed by stop()
        self.lines.put(None)

    def expect(self, tag: str, timeout: float) -> dict[str, Any]:
        """The JSON after the next line starting with ``tag``; raise if it doesn't come in time."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.module}: no {tag} line within {timeout:.0f}s{self.stderr_tail()}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(5)
                raise RuntimeError(f"{self.module} exited with {self.proc.returncode}{self.stderr_tail()}")
            if line.startswith(tag + " "):
                return dict(json.loads(line[len(tag) + 1 :]))

    def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self, lines: int = 3) -> str:
        try:
            if not self.log.closed:
                self.log.flush()
            with open(self.log_path) as log:
                tail = [line.strip() for line in log.read().splitlines() if line.strip()][-lines:]
        except OSError:
            return ""
        return (": " + " | ".join(tail)) if tail else ""

    def stop(self) -> None:
        """End the process by its PID: SIGTERM, then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                try:
                    self.proc.wait(60)  # closing thousands of sockets can take a while on a busy machine
                except subprocess.TimeoutExpired:
                    print(f"warning: {self.module} (pid {self.pid}) didn't exit after SIGKILL", file=sys.stderr)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self.log.close()
        Child.live.discard(self)

    @classmethod
    def stop_all(cls) -> None:
        for child in list(cls.live):
            child.stop()
