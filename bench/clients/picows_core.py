"""picows' callback client (``ws_connect`` and a ``WSListener``); it has no compression."""

from __future__ import annotations

import asyncio
from typing import Any

import picows
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from ..common import MAX_SIZE, run_loop
from ._cli import Messages, Window, check, main, within


class Echo(WSListener):
    def __init__(
        self, case: dict[str, Any] | None, window: Window | None, done: asyncio.Future[None], autostart: bool = True
    ) -> None:
        self.case = case
        self.autostart = autostart  # else start() sends the first messages
        self.window = window
        self.done = done
        self.parts: list[bytes] = []
        if case is not None:
            self.messages = Messages(case["size"], False)
            self.verify = case.get("verify", False)
        self.pending: list[Any] = []
        self.head = 0

    def send(self, transport: WSTransport) -> None:
        message = self.messages.next()
        if self.verify:
            self.pending.append(message)
        transport.send(WSMsgType.BINARY, message)

    def on_ws_connected(self, transport: WSTransport) -> None:
        if self.autostart:
            self.start(transport)

    def start(self, transport: WSTransport) -> None:
        if self.case is not None:
            for _ in range(self.case["window"]):
                self.send(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if kind is not WSMsgType.BINARY and kind is not WSMsgType.CONTINUATION:
            return
        if not frame.fin:
            self.parts.append(frame.get_payload_as_bytes())
            return
        if self.done.done() or self.window is None:
            return
        if self.verify:
            payload = frame.get_payload_as_bytes()
            if self.parts:
                payload = b"".join(self.parts) + payload
                self.parts = []
            check(payload, self.pending[self.head])
            self.head += 1
        if self.window.add():
            self.send(transport)
        else:
            self.done.set_result(None)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def run_async(url: str, case: dict[str, Any], window: Window) -> None:
    loop = asyncio.get_running_loop()
    if case["op"] == "connrate":
        while True:
            closed = loop.create_future()
            transport, _ = await picows.ws_connect(lambda: Echo(None, None, closed), url)
            transport.send_close(WSCloseCode.OK)
            await transport.wait_disconnected()
            if not window.add():
                return
    done = loop.create_future()
    if case.get("conns", 1) > 1:
        return await within(run_conns(url, case, window, done), case)
    transport, _ = await picows.ws_connect(lambda: Echo(case, window, done), url, max_frame_size=MAX_SIZE)
    try:
        await done
    finally:
        transport.send_close(WSCloseCode.OK)
        transport.disconnect()
        await transport.wait_disconnected()


async def run_conns(url: str, case: dict[str, Any], window: Window, done: asyncio.Future[None]) -> None:
    """``case["conns"]`` connections, opened one after another; then each sends its first messages.
    One window counts the replies of all; the first to see it over sets ``done``; all are closed."""
    opened: list[tuple[WSTransport, Echo]] = []
    try:
        for _ in range(case["conns"]):
            transport, listener = await picows.ws_connect(
                lambda: Echo(case, window, done, autostart=False), url, max_frame_size=MAX_SIZE
            )
            opened.append((transport, listener))  # type: ignore[arg-type]
        window.begin()
        for transport, listener in opened:
            listener.start(transport)
        await done
    finally:
        for transport, _ in opened:
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()
        await asyncio.gather(*(transport.wait_disconnected() for transport, _ in opened), return_exceptions=True)


if __name__ == "__main__":
    main(lambda url, case, window: run_loop(run_async(url, case, window)), __doc__)
