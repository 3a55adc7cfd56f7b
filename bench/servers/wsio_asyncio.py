"""wsio's asyncio API: ``serve()`` and a handler coroutine per connection."""

from __future__ import annotations

import asyncio
import importlib.util

import wsio

from ..common import BACKLOG, HOST, MAX_SIZE, ready, run_loop
from ._cli import main


async def echo(ws: wsio.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def serve(port: int, scenario: str) -> None:
    server: wsio.Server

    async def fan_out(ws: wsio.ServerConnection) -> None:
        async for message in ws:
            wsio.broadcast(server.connections, message)

    handler = echo if scenario == "echo" else fan_out
    server = await wsio.serve(handler, HOST, port, max_size=MAX_SIZE, backlog=BACKLOG)
    ready(library="wsio", version=wsio.__version__, speedups=_speedups())
    await asyncio.Future()


def _speedups() -> bool:
    return importlib.util.find_spec("wsio.protocol._speedups") is not None


if __name__ == "__main__":
    main(lambda port, scenario: run_loop(serve(port, scenario)), __doc__)
