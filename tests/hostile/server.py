"""A wsio server for the hostile-peer tests, run in its own process.

``python tests/hostile/server.py MODE PORT [JSON_OPTIONS]``: serves on
127.0.0.1:PORT (0: a port the system picks) with the default settings except
the ``serve()`` options in JSON_OPTIONS; prints ``pid PID`` and then
``listening PORT`` (the port it listens on) on stdout; logs at INFO
to stderr (the tests read the rejection lines there, and look for tracebacks).

MODE is ``asyncio`` or ``sync`` (wsio's own servers), or ``uvicorn-httptools``
or ``uvicorn-h11``: a Starlette app on uvicorn with wsio's engine
(``wsio.asgi.UvicornProtocol``) and that HTTP protocol, with uvicorn's
settings set to wsio's defaults (see :data:`UVICORN_SETTINGS`).

The handler depends on the path:

- ``/`` and anything else: echo every message;
- ``/firehose``: send 64 KiB messages until the connection closes (for a client that never reads);
- ``/idle``: never read; wait until the connection closes (for ``max_queue``);
- ``/close``: close at once (for a client that never answers the close frame).

``GET /stats`` (plain HTTP, through ``process_request``) answers a JSON object:
RSS in KiB, open file descriptors, asyncio tasks, threads, connections (and their
clients' ports) and the bytes buffered for writing across them.
"""

from __future__ import annotations

import asyncio
import contextlib
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


def peer_ports(connections: list[Any]) -> list[int]:
    """The client ports of ``connections``: a test can wait for its own to go while others come and go."""
    ports = []
    for connection in connections:
        # wsio's connections have remote_address; uvicorn's HTTP protocols, client.
        address = getattr(connection, "remote_address", None) or getattr(connection, "client", None)
        if address:
            ports.append(int(address[1]))
    return ports


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
            peer_ports=peer_ports(connections),
            write_buffered=sum(c.transport.get_write_buffer_size() for c in connections if c.transport is not None),
            write_buffered_max=max(
                (c.transport.get_write_buffer_size() for c in connections if c.transport is not None), default=0
            ),
        )
        return stats_response(stats)

    async with wsio.serve(async_handler, "127.0.0.1", port, process_request=process_request, **options) as server:
        server_holder.append(server)
        print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
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
        stats.update(
            tasks=0,
            connections=len(connections),
            peer_ports=peer_ports(connections),
            write_buffered=sum(pending),
            write_buffered_max=max(pending, default=0),
        )
        return stats_response(stats)

    with wsio.sync.server.serve(sync_handler, "127.0.0.1", port, process_request=process_request, **options) as server:
        server_holder.append(server)
        print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
        server.serve_forever()


# -- uvicorn + wsio's engine ---------------------------------------------------------

#: uvicorn's settings, at wsio's defaults where uvicorn's differ (16 MiB, 32 messages).
UVICORN_SETTINGS: dict[str, Any] = {
    "ws_max_size": 1 << 20,
    "ws_max_queue": 16,
    "ws_ping_interval": 20.0,
    "ws_ping_timeout": 20.0,
}
#: serve() options and the uvicorn setting each one is. (open_timeout has none:
#: uvicorn's HTTP protocols give a request head no deadline; close_timeout is a
#: class attribute of the engine.)
UVICORN_OPTIONS = {
    "ping_interval": "ws_ping_interval",
    "ping_timeout": "ws_ping_timeout",
    "max_connections": "limit_concurrency",
    "backlog": "backlog",
}


def serve_uvicorn(http: str, port: int, options: dict[str, Any]) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    from wsio.asgi import UvicornProtocol, wsio_connection

    # The Starlette echo endpoint the Autobahn run of the engine uses too.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "asgi"))
    from autobahn_echo import echo

    class Engine(UvicornProtocol):
        close_timeout = options.pop("close_timeout", UvicornProtocol.close_timeout)

    settings = dict(UVICORN_SETTINGS)
    for name, value in options.items():
        settings[UVICORN_OPTIONS[name]] = value  # a KeyError names an option with no uvicorn equivalent
    server_holder: list[Any] = []

    async def firehose(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_bytes(FIREHOSE_MESSAGE)
        except WebSocketDisconnect:
            pass

    async def idle(websocket: WebSocket) -> None:
        await websocket.accept()
        await wsio_connection(websocket).wait_closed()  # never receive()

    async def close(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    async def stats(request: Request) -> Response:
        server = server_holder[0]
        me = (request.client.host, request.client.port) if request.client else None
        connections = [c for c in list(server.server_state.connections) if getattr(c, "client", None) != me]
        buffered = [c.transport.get_write_buffer_size() for c in connections if isinstance(c, UvicornProtocol)]
        result = base_stats()
        result.update(
            tasks=len(asyncio.all_tasks()),
            connections=len(connections),
            peer_ports=peer_ports(connections),
            write_buffered=sum(buffered),
            write_buffered_max=max(buffered, default=0),
        )
        status, headers, body = stats_response(result)
        return Response(body, status, dict(headers))

    app = Starlette(
        routes=[
            Route("/stats", stats),
            WebSocketRoute("/firehose", firehose),
            WebSocketRoute("/idle", idle),
            WebSocketRoute("/close", close),
            WebSocketRoute("/{path:path}", echo),
        ]
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=http,
        ws=Engine,
        lifespan="off",
        log_config=None,  # the root logger's format, as for wsio's servers
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=2,
        **settings,
    )

    class Server(uvicorn.Server):
        def capture_signals(self) -> Any:
            # SIGTERM ends the process at once, as it does wsio's servers here:
            # the tests stop a server after each test, and look at nothing after.
            return contextlib.nullcontext()

    server = Server(config)
    server_holder.append(server)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        print(f"listening {server.servers[0].sockets[0].getsockname()[1]}", flush=True)
        await task

    asyncio.run(main())


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
    elif mode == "sync":
        serve_sync(port, options)
    else:
        serve_uvicorn(mode.removeprefix("uvicorn-"), port, options)


if __name__ == "__main__":
    main()
