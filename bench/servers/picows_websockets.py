"""picows' websockets-compatible API (``picows.websockets.serve``)."""

from __future__ import annotations

import asyncio

import picows
import picows.websockets as pws

from ..common import BACKLOG, HOST, MAX_SIZE, ready, run_loop
from ._cli import main


async def echo(ws: pws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def serve(port: int, scenario: str) -> None:
    server = None

    async def fan_out(ws: pws.ServerConnection) -> None:
        async for message in ws:
            pws.broadcast(server.connections, message)  # type: ignore[union-attr]

    handler = echo if scenario == "echo" else fan_out
    server = await pws.serve(handler, HOST, port, max_size=MAX_SIZE, backlog=BACKLOG)
    ready(library="picows", version=picows.__version__)
    await asyncio.Future()


if __name__ == "__main__":
    main(lambda port, scenario: run_loop(serve(port, scenario)), __doc__)
