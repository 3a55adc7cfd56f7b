"""wsio's callback client (``connect_listener``): ``send()`` doesn't await, writes are batched per read."""

from __future__ import annotations

import asyncio
from typing import Any

import wsio

from ..common import MAX_SIZE, run_loop
from ._cli import Messages, Window, check, main, within


class Echo(wsio.Listener):
    def __init__(self, case: dict[str, Any], window: Window, done: asyncio.Future[None], autostart: bool = True) -> None:
        self.case = case
        self.autostart = autostart  # else start() sends the first messages
        self.window = window
        self.done = done
        self.messages = Messages(case["size"], case["deflate"])
        self.verify = case.get("verify", False)
        self.pending: list[Any] = []
        self.head = 0

    def send(self, connection: wsio.ListenerConnection) -> None:
        message = self.messages.next()
        if self.verify:
            self.pending.append(message)
        connection.send(message)

    def on_open(self, connection: wsio.ListenerConnection) -> None:
        if self.autostart:
            self.start(connection)

    def start(self, connection: wsio.ListenerConnection) -> None:
        for _ in range(self.case["window"]):
            self.send(connection)

    def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
        if self.done.done():
            return
        if self.verify:
            check(message, self.pending[self.head])
            self.head += 1
        if self.window.add():
            self.send(connection)
        else:
            self.done.set_result(None)

    def on_close(self, connection: wsio.ListenerConnection, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


async def run_async(url: str, case: dict[str, Any], window: Window) -> None:
    if case["op"] == "connrate":
        while True:
            connection = await wsio.connect_listener(wsio.Listener, url, compression=None)
            connection.close()
            await connection.wait_closed()
            if not window.add():
                return
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    compression = "deflate" if case["deflate"] else None
    if case.get("conns", 1) > 1:
        return await within(run_conns(url, case, window, done, compression), case)
    connection = await wsio.connect_listener(lambda: Echo(case, window, done), url, compression=compression, max_size=MAX_SIZE)
    try:
        await done
    finally:
        connection.close()
        await connection.wait_closed()


async def run_conns(url: str, case: dict[str, Any], window: Window, done: asyncio.Future[None], compression: str | None) -> None:
    """``case["conns"]`` connections, opened one after another; then each sends its first messages.
    One window counts the replies of all; the first to see it over sets ``done``; all are closed."""

    async def open_one() -> tuple[Echo, wsio.ListenerConnection]:
        listener = Echo(case, window, done, autostart=False)
        connection = await wsio.connect_listener(lambda: listener, url, compression=compression, max_size=MAX_SIZE)
        return listener, connection

    opened: list[tuple[Echo, wsio.ListenerConnection]] = []
    try:
        for _ in range(case["conns"]):
            opened.append(await open_one())
        window.begin()
        for listener, connection in opened:
            listener.start(connection)
        await done
    finally:
        for _, connection in opened:
            connection.close()
        await asyncio.gather(*(connection.wait_closed() for _, connection in opened), return_exceptions=True)


if __name__ == "__main__":
    main(lambda url, case, window: run_loop(run_async(url, case, window)), __doc__)
