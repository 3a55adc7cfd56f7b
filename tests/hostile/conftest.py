"""A wsio server in a subprocess per test, a watcher that plays the well-behaved client, and the checks every attack ends with.

Every test runs against wsio's asyncio and threading servers and against
uvicorn with wsio's engine (``uvicorn-httptools``; the handshake attacks also
with ``uvicorn-h11``, whose parser has limits of its own). uvicorn parses
HTTP and logs in its own words: where its answer differs from wsio's server,
the test says so, and why, next to the expectation.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Iterator

import pytest

from tests.helpers import ROOT, wait_for_line

from .peer import echo_roundtrip

SERVER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py")
#: What an attack may make the server's resident memory grow by.
RSS_BUDGET_KIB = 16 * 1024
#: How fast a well-behaved client must be served during and after an attack.
SERVED_WITHIN = 1.0


def read_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


#: Server kinds: wsio's asyncio and threading servers, and uvicorn + wsio's engine.
MODES = ["asyncio", "sync", "uvicorn-httptools"]
#: What uvicorn's HTTP layer (not wsio's engine, which never sees these) logs at
#: WARNING: a request its parser refuses (answered 400) and a plain HTTP request
#: (GET /stats here) past --limit-concurrency (503). wsio's servers log refusals at INFO.
UVICORN_HTTP_WARNINGS = ("Invalid HTTP request received.", "Exceeded concurrency limit.")


class ServerProcess:
    """A hostile-test server running in its own process (asyncio, threads, or uvicorn + wsio's engine)."""

    def __init__(self, mode: str, options: dict[str, Any]) -> None:
        self.mode = mode
        #: uvicorn + wsio's engine: uvicorn's HTTP layer and log format.
        self.uvicorn = mode.startswith("uvicorn")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._stderr = tempfile.NamedTemporaryFile(prefix="wsio-hostile-", suffix=".log", delete=False)
        # Port 0: the server binds a port the system picks and says which. (A port found
        # free here and bound there later may be taken meanwhile: CI runs several jobs.)
        self.process = subprocess.Popen(
            [sys.executable, SERVER_SCRIPT, mode, "0", json.dumps(options)],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=ROOT,
            env=env,
        )
        try:
            self.pid = int(wait_for_line(self.process, "pid ").split()[1])
            self.port = int(wait_for_line(self.process, "listening ").split()[1])
        except AssertionError as exc:
            log = self.log()
            self.stop()
            raise AssertionError(f"{exc}; its log: {log[-2000:]}") from None
        # Warm up: the first connection imports and allocates what every later one reuses.
        for _ in range(3):
            echo_roundtrip(self.port)
        self.stats()
        self.baseline_rss = read_rss_kib(self.pid)

    def rss_kib(self) -> int:
        return read_rss_kib(self.pid)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def settled_stats(self, timeout: float = 10) -> dict[str, Any]:
        """``stats()`` once no connection is open and fds, tasks and threads held still for three snapshots.

        A connection's thread or task ends a moment after the connection (later on
        a busy machine), and the /stats request before this one is a connection
        too: a single snapshot may count what is about to go.
        """
        deadline = time.monotonic() + timeout
        previous: tuple[int, int, int] | None = None
        same = 0
        while True:
            stats = self.stats()
            key = (stats["fds"], stats["tasks"], stats["threads"])
            same = same + 1 if stats["connections"] == 0 and key == previous else 0
            previous = key
            if same >= 2:
                return stats
            if time.monotonic() > deadline:
                raise AssertionError(f"the server didn't settle in {timeout}s: {stats}")
            time.sleep(0.2)

    def log(self) -> str:
        with open(self._stderr.name, errors="replace") as file:
            return file.read()

    def wait_log(self, pattern: str, timeout: float = 5, *, uvicorn: str | None = None) -> str:
        """Wait until a log line matches ``pattern`` (``uvicorn`` for uvicorn + wsio's engine); return it."""
        if self.uvicorn:
            if uvicorn is None:
                raise TypeError(f"say what uvicorn + wsio's engine logs instead of {pattern!r}")
            pattern = uvicorn
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.log())
            if match:
                start = self.log().rfind("\n", 0, match.start()) + 1
                end = self.log().find("\n", match.end())
                return self.log()[start : end if end >= 0 else None]
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matches {pattern!r}; log:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10, what: str = "") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        stats: dict[str, Any] = {}
        while True:
            try:
                stats = self.stats()
            except urllib.error.HTTPError as exc:
                if exc.code != 503:  # at max_connections, /stats waits its turn like anyone
                    raise
            else:
                if predicate(stats):
                    return stats
            if time.monotonic() > deadline:
                raise AssertionError(f"{what or 'condition'} not met in {timeout}s: {stats}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # this test's own child, by its Popen handle
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()
        os.unlink(self._stderr.name)


class Watcher:
    """The well-behaved client: an echo round trip every 100 ms while an attack runs, and RSS samples.

    ``check()`` asserts every round trip took less than SERVED_WITHIN and the
    server's RSS never grew by RSS_BUDGET_KIB or more; one more round trip
    after the attack is part of it.
    """

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.peak_rss = server.rss_kib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(0.1)

    def _sample(self) -> None:
        try:
            self.latencies.append(echo_roundtrip(self.server.port, timeout=SERVED_WITHIN * 3))
        except Exception as exc:  # noqa: BLE001 - recorded, and check() fails with it
            self.errors.append(repr(exc))
        self.peak_rss = max(self.peak_rss, self.server.rss_kib())

    def check(self) -> dict[str, float]:
        """Assert the server served well during and after the attack; return the numbers."""
        assert self.latencies or self.errors, "the watcher never ran"
        self._sample()  # after the attack
        assert not self.errors, f"the well-behaved client failed: {self.errors[:3]}"
        growth = self.peak_rss - self.server.baseline_rss
        worst = max(self.latencies)
        assert worst < SERVED_WITHIN, f"a well-behaved client waited {worst:.3f}s"
        assert growth < RSS_BUDGET_KIB, f"RSS grew by {growth} KiB"
        result = {"worst_latency_s": round(worst, 4), "rss_growth_kib": growth, "samples": len(self.latencies)}
        RESULTS.append((os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0], result))
        return result


RESULTS: list[tuple[str, dict[str, float]]] = []


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start_server(mode: str) -> Iterator[Callable[..., ServerProcess]]:
    """Start a server (``start_server(**serve_options)``); at the end, check its log and stop it."""
    servers: list[ServerProcess] = []

    def start(**options: Any) -> ServerProcess:
        server = ServerProcess(mode, options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        try:
            log = server.log()
            if server.uvicorn:
                log = "\n".join(
                    line for line in log.splitlines() if line.removeprefix("WARNING uvicorn.error ") not in UVICORN_HTTP_WARNINGS
                )
            # A peer's fault is an INFO line, never a traceback or an ERROR.
            assert "Traceback" not in log, log[-3000:]
            assert not re.search(r"^(ERROR|CRITICAL|WARNING) ", log, re.M), log[-3000:]
            assert server.process.poll() is None, "the server died"
        finally:
            server.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RESULTS:
        terminalreporter.write_sep("-", "hostile: worst well-behaved latency and RSS growth per attack")
        for name, result in RESULTS:
            terminalreporter.write_line(f"{name}: {result}")
