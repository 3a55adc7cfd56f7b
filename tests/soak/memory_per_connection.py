"""Measure the server's memory per idle connection: ``python tests/soak/memory_per_connection.py [N]``.

Opens N idle connections (handler waiting in ``recv()``) to a wsio asyncio
server in another process, without compression and then with
permessage-deflate negotiated, and prints the RSS growth per connection, read
from ``/proc`` through the server's ``GET /stats``. The figure in
``docs/topics/security.md`` comes from here.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "src"))

import wsio  # noqa: E402
from tests.helpers import free_port, wait_for_line  # noqa: E402
from tests.soak.load import raise_fd_limit  # noqa: E402
from tests.soak.soak import stats, wait_idle  # noqa: E402


async def hold(port: int, count: int, compression: str | None) -> list[object]:
    connections = []
    for start in range(0, count, 100):
        batch = await asyncio.gather(
            *(
                wsio.connect(f"ws://127.0.0.1:{port}/", compression=compression, ping_interval=None)
                for _ in range(start, min(start + 100, count))
            )
        )
        connections.extend(batch)
    return connections


def measure(port: int, count: int, compression: str | None) -> float:
    async def run() -> float:
        before = wait_idle(port)["rss_kib"]
        connections = await hold(port, count, compression)
        # Let the server settle: every handler waiting in recv().
        deadline = time.monotonic() + 30
        while stats(port)["connections"] < count and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        after = stats(port)["rss_kib"]
        await asyncio.gather(*(c.close() for c in connections))  # type: ignore[attr-defined]
        return (after - before) / count

    return asyncio.run(run())


def fresh_server_measure(count: int, compression: str | None) -> float:
    """A new server per measurement: memory freed by an earlier run would hide the cost."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests", "hostile", "server.py"), "asyncio", str(port), "{}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        wait_for_line(server, "listening")
        measure(port, 50, compression)  # warm-up: first-use imports and caches
        return measure(port, count, compression)
    finally:
        server.terminate()  # our own child, by its handle
        server.wait(10)


def main() -> None:
    raise_fd_limit()
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    results = {
        "connections": count,
        "idle_kib_per_connection": round(fresh_server_measure(count, None), 2),
        "idle_deflate_kib_per_connection": round(fresh_server_measure(count, "deflate"), 2),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
