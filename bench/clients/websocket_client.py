"""websocket-client (``websocket.create_connection``), threads and blocking sockets; no compression."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import websocket

from ._cli import Window, echo_sync, echo_sync_conns, main


def run(url: str, case: dict[str, Any], window: Window) -> None:
    if case["op"] == "connrate":
        while True:
            websocket.create_connection(url).close()
            if not window.add():
                return
    if case.get("conns", 1) > 1:  # a thread per connection

        @contextlib.contextmanager
        def opener() -> Iterator[Any]:
            ws = websocket.create_connection(url)
            try:
                yield ws.send_binary, ws.recv
            finally:
                ws.close()

        return echo_sync_conns(opener, case, window)
    ws = websocket.create_connection(url)
    try:
        echo_sync(ws.send_binary, ws.recv, case, window)
    finally:
        ws.close()


if __name__ == "__main__":
    main(run, __doc__)
