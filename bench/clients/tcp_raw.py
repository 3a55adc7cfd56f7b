"""The limit for clients: an asyncio TCP protocol with no WebSocket framing (against the TCP echo)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..common import READ_BUFFER, binary_payload, run_loop
from ._cli import Window, main, within


class Echo(asyncio.BufferedProtocol):
    """``window`` chunks of ``size`` bytes in flight; a chunk back counts as a message."""

    def __init__(self, size: int, window: int, clock: Window | None, done: asyncio.Future[None], autostart: bool = True) -> None:
        self.size = size
        self.autostart = autostart  # else start() sends the first chunks
        self.window = window
        self.clock = clock
        self.done = done
        self.payload = binary_payload(size)
        self.received = 0
        self.completed = 0
        self.paused = False
        self.owed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        if self.autostart:
            self.start()

    def start(self) -> None:
        for _ in range(self.window):
            self.send()

    def send(self) -> None:
        # Flow control: past the high-water mark, owe the message (asyncio's write
        # buffer copies itself on each write once it is large, before Python 3.12).
        if self.paused:
            self.owed += 1
        else:
            self.transport.write(self.payload)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        while self.owed and not self.paused:
            self.owed -= 1
            self.transport.write(self.payload)

    def get_buffer(self, sizehint: int) -> memoryview:
        return READ_BUFFER  # only counted

    def buffer_updated(self, nbytes: int) -> None:
        self.received += nbytes
        completed = self.received // self.size
        for _ in range(completed - self.completed):
            if self.done.done():
                return
            if self.clock is None:
                self.done.set_result(None)
            elif self.clock.add():
                self.send()
            else:
                self.done.set_result(None)
        self.completed = completed

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed by the server"))


async def run_async(url: str, case: dict[str, Any], window: Window) -> None:
    loop = asyncio.get_running_loop()
    port = int(url.rsplit(":", 1)[1].strip("/"))
    if case["op"] == "connrate":
        while True:  # connect, one byte there and back (in place of the upgrade), close
            done = loop.create_future()
            transport, _ = await loop.create_connection(lambda: Echo(1, 1, None, done), "127.0.0.1", port)
            await done
            transport.close()
            if not window.add():
                return
    done = loop.create_future()
    if case.get("conns", 1) > 1:
        return await within(run_conns(port, case, window, done), case)
    transport, _ = await loop.create_connection(lambda: Echo(case["size"], case["window"], window, done), "127.0.0.1", port)
    try:
        await done
    finally:
        transport.close()


async def run_conns(port: int, case: dict[str, Any], window: Window, done: asyncio.Future[None]) -> None:
    """``case["conns"]`` connections, opened one after another; then each sends its first chunks.
    One window counts the chunks back on all; the first to see it over sets ``done``; all are closed."""
    loop = asyncio.get_running_loop()
    opened: list[tuple[asyncio.BaseTransport, Echo]] = []
    try:
        for _ in range(case["conns"]):
            opened.append(
                await loop.create_connection(
                    lambda: Echo(case["size"], case["window"], window, done, autostart=False), "127.0.0.1", port
                )
            )
        window.begin()
        for _, protocol in opened:
            protocol.start()
        await done
    finally:
        for transport, _ in opened:
            transport.close()


if __name__ == "__main__":
    main(lambda url, case, window: run_loop(run_async(url, case, window)), __doc__)
