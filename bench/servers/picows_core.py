"""picows' callback core (``ws_create_server`` and a ``WSListener``); it has no compression."""

from __future__ import annotations

import asyncio

import picows
from picows import WSFrame, WSListener, WSMsgType, WSTransport

from ..common import BACKLOG, HOST, MAX_SIZE, ready, run_loop
from ._cli import main

OPEN: set[WSTransport] = set()


class Echo(WSListener):
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.kind = WSMsgType.BINARY

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.BINARY or kind is WSMsgType.TEXT:
            if frame.fin:
                self.message(transport, kind, frame.get_payload_as_memoryview())
            else:
                self.kind = kind
                self.parts = [frame.get_payload_as_bytes()]
        elif kind is WSMsgType.CONTINUATION:
            self.parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                self.message(transport, self.kind, b"".join(self.parts))
                self.parts = []
        elif kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    def message(self, transport: WSTransport, kind: WSMsgType, payload: object) -> None:
        transport.send(kind, payload)  # type: ignore[arg-type]


class FanOut(Echo):
    def on_ws_connected(self, transport: WSTransport) -> None:
        OPEN.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        OPEN.discard(transport)

    def message(self, transport: WSTransport, kind: WSMsgType, payload: object) -> None:
        data = bytes(payload)  # type: ignore[call-overload]
        for target in OPEN:
            target.send(kind, data)


async def serve(port: int, scenario: str) -> None:
    factory = Echo if scenario == "echo" else FanOut
    await picows.ws_create_server(lambda request: factory(), HOST, port, max_frame_size=MAX_SIZE, backlog=BACKLOG)
    ready(library="picows", version=picows.__version__)
    await asyncio.Future()


if __name__ == "__main__":
    main(lambda port, scenario: run_loop(serve(port, scenario)), __doc__)
