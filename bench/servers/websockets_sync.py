"""websockets' threaded API (``websockets.sync.server.serve``): a thread per connection."""

from __future__ import annotations

import threading

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve as ws_serve

from ..common import BACKLOG, HOST, MAX_SIZE, ready
from ._cli import main

OPEN: set[ServerConnection] = set()
LOCK = threading.Lock()


def echo(ws: ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def fan_out(ws: ServerConnection) -> None:
    with LOCK:
        OPEN.add(ws)
    try:
        for message in ws:
            with LOCK:
                targets = list(OPEN)
            for target in targets:  # no broadcast() in the sync API: one send each
                try:
                    target.send(message)
                except ConnectionClosed:
                    pass
    finally:
        with LOCK:
            OPEN.discard(ws)


def serve(port: int, scenario: str) -> None:
    handler = echo if scenario == "echo" else fan_out
    with ws_serve(handler, HOST, port, max_size=MAX_SIZE, backlog=BACKLOG) as server:
        ready(library="websockets", version=websockets.__version__)
        server.serve_forever()


if __name__ == "__main__":
    main(serve, __doc__)
