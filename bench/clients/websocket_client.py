"""websocket-client (``websocket.create_connection``), threads and blocking sockets; no compression."""

from __future__ import annotations

from typing import Any

import websocket

from ._cli import Window, echo_sync, main


def run(url: str, case: dict[str, Any], window: Window) -> None:
    if case["op"] == "connrate":
        while True:
            websocket.create_connection(url).close()
            if not window.add():
                return
    ws = websocket.create_connection(url)
    try:
        echo_sync(ws.send_binary, ws.recv, case, window)
    finally:
        ws.close()


if __name__ == "__main__":
    main(run, __doc__)
