"""The floor of the ASGI suite: the same Starlette app on uvicorn with a stub for a WebSocket engine.

The stub answers the upgrade and runs the app the way every engine must (a
scope with the request's headers, the app's task, a ``receive()`` that waits)
and does nothing else: it has no framing, so it can only hold idle
connections. Its memory per idle connection is what uvicorn, Starlette, the
app and asyncio cost before any engine adds its own: no engine can use less.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

from ._cli import main
from ._uvicorn import serve

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class FloorProtocol(asyncio.Protocol):
    """Not a WebSocket implementation: the handshake, then nothing (see the module's docstring)."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: Any = None) -> None:
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.app_state = app_state
        self.transport: Any = None
        self.key = b""
        self.started = False
        self.connect_pending = True
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def shutdown(self) -> None:
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.started:
            return  # frames: this stub doesn't read them
        self.started = True
        lines = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        _, target, _ = lines[0].split(b" ", 2)
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
        self.key = dict(headers).get(b"sec-websocket-key", b"")
        path, _, query = target.partition(b"?")
        peer, local = self.transport.get_extra_info("peername"), self.transport.get_extra_info("sockname")
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "ws",
            "server": (local[0], local[1]),
            "client": (peer[0], peer[1]),
            "root_path": "",
            "path": path.decode("ascii"),
            "raw_path": path,
            "query_string": query,
            "headers": headers,
            "subprotocols": [],
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        task = self.loop.create_task(self.app(scope, self.receive, self.send))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def receive(self) -> dict[str, Any]:
        if self.connect_pending:
            self.connect_pending = False
            return {"type": "websocket.connect"}
        self.waiter = self.loop.create_future()
        await self.waiter
        return {"type": "websocket.disconnect", "code": 1006}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.accept":
            accept = base64.b64encode(hashlib.sha1(self.key + _GUID).digest())
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )


if __name__ == "__main__":
    main(lambda port, scenario: serve(FloorProtocol, "uvicorn", port, scenario), __doc__)
