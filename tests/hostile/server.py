"""A wsio server for the hostile-peer tests, run in its own process.

``python tests/hostile/server.py asyncio|sync PORT [JSON_OPTIONS]``: serves on
127.0.0.1:PORT with the default settings except the ``serve()`` options in
JSON_OPTIONS; prints ``pid PID`` and then ``listening`` on stdout; logs at INFO
to stderr (the tests read the rejection lines there, and look for tracebacks).

The handler depends on the path:

- ``/`` and anything else: echo every message;
- ``/firehose``: send 64 KiB messages until the connection closes (for a client that never reads);
- ``/idle``: never read; wait until the connection closes (for ``max_queue``);
- ``/close``: close at once (for a client that never answers the close frame).

``GET /stats`` (plain HTTP, through ``process_request``) answers a JSON object:
RSS in KiB, open file descriptors, asyncio tasks, threads, connections and the
bytes buffered for writing across them.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import resource
import sys
import threading
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))

import wsio  # noqa: E402
import wsio.sync.server  # noqa: E402

FIREHOSE_MESSAGE = b"\x00" * 65536


def rss_kib() -> int:
    """Resident memory of this process, from /proc (no psutil)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def base_stats() -> dict[str, Any]:
    gc.collect()
    return {
        "pid": os.getpid(),
        "rss_kib": rss_kib(),
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
        "objects": len(gc.get_objects()),  # Python objects the collector tracks: a leak shows here first
        "blocks": sys.getallocatedblocks(),  # memory blocks Python's allocator holds (bytes included)
    }


def stats_response(stats: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    return 200, [("Content-Type", "application/json"), ("Cache-Control", "no-store")], json.dumps(stats).encode()


# -- asyncio ----------------------------------------------------------------------


async def async_handler(websocket: Any) -> None:
    path = websocket.request.path
    if path == "/firehose":
        while True:
            await websocket.send(FIREHOSE_MESSAGE)
    elif path == "/idle":
        await websocket.wait_closed()
    elif path == "/close":
        return
    else:
        async for message in websocket:
            await websocket.send(message)


async def serve_asyncio(port: int, options: dict[str, Any]) -> None:
    server_holder: list[Any] = []

    def process_request(connection: Any, request: Any) -> Any:
        if request.path != "/stats":
            return None
        server = server_holder[0]
        connections = [c for c in server.connections if c is not connection]
        stats = base_stats()
        stats.update(
            tasks=len(asyncio.all_tasks()),
            connections=len(connections),
            write_buffered=sum(c.transport.get_write_buffer_size() for c in connections if c.transport is not None),
            write_buffered_max=max((c.transport.get_write_buffer_size() for c in connections if c.transport is not None), default=0),
        )
        return stats_response(stats)

    async with wsio.serve(async_handler, "127.0.0.1", port, process_request=process_request, **options) as server:
        server_holder.append(server)
        print("listening", flush=True)
        await server.serve_forever()


# -- threads ----------------------------------------------------------------------


def sync_handler(websocket: Any) -> None:
    path = websocket.request.path
    if path == "/firehose":
        while True:
            websocket.send(FIREHOSE_MESSAGE)
    elif path == "/idle":
        websocket.wait_closed()
    elif path == "/close":
        return
    else:
        for message in websocket:
            websocket.send(message)


def serve_sync(port: int, options: dict[str, Any]) -> None:
    server_holder: list[Any] = []

    def process_request(connection: Any, request: Any) -> Any:
        if request.path != "/stats":
            return None
        server = server_holder[0]
        connections = [c for c in list(server.connections) if c is not connection]
        pending = [sum(map(len, list(c._pending))) for c in connections]
        stats = base_stats()
        stats.update(tasks=0, connections=len(connections), write_buffered=sum(pending), write_buffered_max=max(pending, default=0))
        return stats_response(stats)

    with wsio.sync.server.serve(sync_handler, "127.0.0.1", port, process_request=process_request, **options) as server:
        server_holder.append(server)
        print("listening", flush=True)
        server.serve_forever()


def raise_fd_limit() -> None:
    """Each connection is a file descriptor: take the hard limit as the soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main() -> None:
    raise_fd_limit()
    mode, port = sys.argv[1], int(sys.argv[2])
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    print(f"pid {os.getpid()}", flush=True)
    if mode == "asyncio":
        asyncio.run(serve_asyncio(port, options))
    else:
        serve_sync(port, options)


if __name__ == "__main__":
    main()
