"""A Starlette echo endpoint served by uvicorn; the WebSocket engine is the one thing that varies.

uvicorn as ``uvicorn[standard]`` runs it in production, which is also what
its ``auto`` settings pick when those packages are installed: httptools parses
HTTP, the loop is uvloop. Everything else is uvicorn's default (keepalive pings
every 20 s, permessage-deflate offered back when the client asks, ``ws_max_queue``
32) except the message size limit (the benchmark's, as for every server), the
backlog, no lifespan and no per-connection log lines: the benchmark measures
the engines, not logging.
"""

from __future__ import annotations

import contextlib
from importlib import metadata
from typing import Any, Iterator

import starlette
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from ..common import BACKLOG, HOST, MAX_SIZE, ready

HTTP = "httptools"
LOOP = "uvloop"

OPEN: set[WebSocket] = set()


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None:
            await websocket.send_text(text)
        else:
            await websocket.send_bytes(message["bytes"])


async def fan_out(websocket: WebSocket) -> None:
    await websocket.accept()
    OPEN.add(websocket)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            for target in list(OPEN):  # no broadcast helper in ASGI: one send each
                try:
                    await target.send(dict(message, type="websocket.send"))
                except Exception:  # noqa: BLE001 - a listener that went away
                    OPEN.discard(target)
    finally:
        OPEN.discard(websocket)


class Server(uvicorn.Server):
    """Says READY once it listens; leaves SIGTERM to the benchmark's exit guard (an immediate exit)."""

    def __init__(self, config: uvicorn.Config, info: dict[str, Any]) -> None:
        super().__init__(config)
        self.info = info

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            ready(**self.info)


def serve(ws: Any, library: str, port: int, scenario: str) -> None:
    """Serve the echo (or broadcast) endpoint with ``ws`` as uvicorn's WebSocket protocol."""
    endpoint = echo if scenario == "echo" else fan_out
    app = Starlette(routes=[WebSocketRoute("/", endpoint)])
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        ws=ws,
        http=HTTP,
        loop=LOOP,
        lifespan="off",
        log_level="warning",
        access_log=False,
        backlog=BACKLOG,
        ws_max_size=MAX_SIZE,
    )
    info = {
        "library": library,
        "version": metadata.version(library),
        "uvicorn": uvicorn.__version__,
        "starlette": starlette.__version__,
        "http": HTTP,
        "loop": LOOP,
    }
    Server(config, info).run()
