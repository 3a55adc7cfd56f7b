"""A Starlette echo app on uvicorn + wsio, for the Autobahn TestSuite (kosoku in fuzzingclient mode).

Usage: python tests/asgi/autobahn_echo.py PORT [HTTP]   (HTTP: h11 or httptools)
"""

from __future__ import annotations

import asyncio
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from wsio.asgi import UvicornProtocol
from wsio.protocol.deflate import ServerPerMessageDeflateFactory


class AutobahnProtocol(UvicornProtocol):
    # The suite sends messages in up to 64 Ki fragments. compression_threshold=0:
    # kosoku's 12.x/13.x cases can only check an echoed text message that comes
    # back compressed (see tests/autobahn/echo_server.py).
    max_fragments = None
    compression_threshold = 0
    # The default settings at level 1 (fastest; the default is 6): the cases check
    # what is negotiated and that every message comes back intact, not how small
    # it got, and at level 6 compressing 12.x/13.x's 128 MB per case was most of
    # this run's CPU time (see tests/autobahn/echo_server.py).
    per_message_deflate = ServerPerMessageDeflateFactory(
        server_max_window_bits=12, client_max_window_bits=12, compress_settings={"level": 1, "memLevel": 5}
    )


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass


app = Starlette(routes=[WebSocketRoute("/", echo)])


async def main(port: int, http: str) -> None:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=http,
        ws=AutobahnProtocol,
        ws_max_size=None,  # the suite sends messages up to 16 MiB
        ws_ping_interval=None,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    print("listening", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "httptools"))
