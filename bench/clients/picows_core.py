"""picows' callback client (``ws_connect`` and a ``WSListener``); it has no compression."""

from __future__ import annotations

import asyncio
from typing import Any

import picows
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from ..common import MAX_SIZE, run_loop
from ._cli import Messages, Window, check, main


class Echo(WSListener):
    def __init__(self, case: dict[str, Any] | None, window: Window | None, done: asyncio.Future[None]) -> None:
        self.case = case
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
    transport, _ = await picows.ws_connect(lambda: Echo(case, window, done), url, max_frame_size=MAX_SIZE)
    try:
        await done
    finally:
        transport.send_close(WSCloseCode.OK)
        transport.disconnect()
        await transport.wait_disconnected()


if __name__ == "__main__":
    main(lambda url, case, window: run_loop(run_async(url, case, window)), __doc__)
