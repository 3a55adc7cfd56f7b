"""The load generator's WebSocket side on wsio's callback client, where picows isn't installed.

Same interface as ws_picows. It is slower than picows' client (and it compresses
with a context of its own rather than sending messages compressed in advance),
so figures taken with it are a floor: the output says which client was used.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import wsio

from .common import MAX_SIZE, HOST, Stats, abort_socket, binary_payload, json_messages

NAME = f"wsio {wsio.__version__} callback client (picows isn't installed)"


class Messages:
    def __init__(self, size: int, deflate: bool) -> None:
        if deflate:
            self.items: list[Any] = json_messages(64, size)
        else:
            self.items = [binary_payload(size)]
        self.deflate = deflate


class WsClient(wsio.Listener):
    """Keeps ``window`` messages in flight; counts replies; optionally checks each one."""

    def __init__(self, stats: Stats, messages: Messages | None, window: int, verify: bool) -> None:
        self.stats = stats
        self.messages = messages
        self.window = window
        self.verify = verify
        self.connection: wsio.ListenerConnection | None = None
        self.next = 0
        self.expected: collections.deque[Any] = collections.deque()
        self.done = 0
        self.disconnected = asyncio.get_running_loop().create_future()

    def on_open(self, connection: wsio.ListenerConnection) -> None:
        self.connection = connection

    def start(self) -> None:
        for _ in range(self.window):
            self.send()

    def send(self) -> None:
        m = self.messages
        assert m is not None and self.connection is not None
        i = self.next
        self.next = (i + 1) % len(m.items)
        self.connection.send(m.items[i])
        if self.verify:
            self.expected.append(m.items[i])

    def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
        if self.verify and self.messages is not None:
            expected = self.expected.popleft() if self.expected else None
            if message != expected and len(self.stats.errors) < 5:
                self.stats.errors.append(f"echo mismatch: got {len(message)}, expected {len(expected or b'')}")
        self.done += 1
        self.stats.count += 1
        if self.stats.running and self.messages is not None:
            self.send()

    def on_close(self, connection: wsio.ListenerConnection, exc: Exception) -> None:
        if not self.disconnected.done():
            self.disconnected.set_result(None)


class Trigger(WsClient):
    """The connection that asks for broadcasts: one more trigger per delivery."""

    def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
        self.done += 1
        self.stats.count += 1
        if self.stats.running:
            self.send()


async def ws_open(port: int, factory: Any, deflate: bool) -> tuple[Any, WsClient]:
    client: WsClient | None = None

    def make() -> WsClient:
        nonlocal client
        client = factory()
        return client

    connection = await wsio.connect_listener(
        make, f"ws://{HOST}:{port}/", compression="deflate" if deflate else None, max_size=MAX_SIZE, ping_interval=None
    )
    assert client is not None
    if deflate and "permessage-deflate" not in (connection.response_headers.get("Sec-WebSocket-Extensions") or ""):
        connection.transport.abort()
        raise RuntimeError("the server didn't accept permessage-deflate")
    return connection, client


async def ws_close(connection: Any, client: WsClient) -> None:
    connection.close()
    await asyncio.wait_for(client.disconnected, 5)


def ws_close_all(clients: list[Any]) -> None:
    for connection, _ in clients:
        abort_socket(connection.transport.get_extra_info("socket"))
        connection.transport.abort()
