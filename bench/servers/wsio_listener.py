"""wsio's callback API: ``serve_listener()``; ``send()`` doesn't await and writes are batched per read."""

from __future__ import annotations

import asyncio

import wsio

from ..common import BACKLOG, HOST, MAX_SIZE, ready, run_loop
from ._cli import main


class Echo(wsio.Listener):
    def on_message(self, connection: wsio.ListenerConnection, message: wsio.Data) -> None:  # type: ignore[name-defined]
        connection.send(message)


OPEN: set[wsio.ListenerConnection] = set()


class FanOut(wsio.Listener):
    def on_open(self, connection: wsio.ListenerConnection) -> None:
        OPEN.add(connection)

    def on_message(self, connection: wsio.ListenerConnection, message: object) -> None:
        wsio.broadcast(OPEN, message)  # type: ignore[arg-type]

    def on_close(self, connection: wsio.ListenerConnection, exc: Exception) -> None:
        OPEN.discard(connection)


async def serve(port: int, scenario: str) -> None:
    factory = Echo if scenario == "echo" else FanOut
    await wsio.serve_listener(factory, HOST, port, max_size=MAX_SIZE, backlog=BACKLOG)
    ready(library="wsio", version=wsio.__version__)
    await asyncio.Future()


if __name__ == "__main__":
    main(lambda port, scenario: run_loop(serve(port, scenario)), __doc__)
