"""websockets' asyncio API (``websockets.asyncio.server.serve``)."""

from __future__ import annotations

import asyncio

import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve as ws_serve

from ..common import BACKLOG, HOST, MAX_SIZE, ready, run_loop
from ._cli import main


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def serve(port: int, scenario: str) -> None:
    server = None

    async def fan_out(ws: ServerConnection) -> None:
        async for message in ws:
            broadcast(server.connections, message)  # type: ignore[union-attr]

    handler = echo if scenario == "echo" else fan_out
    server = await ws_serve(handler, HOST, port, max_size=MAX_SIZE, backlog=BACKLOG)
    ready(library="websockets", version=websockets.__version__)
    await asyncio.Future()


if __name__ == "__main__":
    main(lambda port, scenario: run_loop(serve(port, scenario)), __doc__)
