"""The load generator's WebSocket side on picows' C-accelerated client (the default)."""

from __future__ import annotations

import asyncio
import collections
import zlib
from typing import Any

import picows
from picows import WSFrame, WSListener, WSMsgType, WSTransport

from .common import DEFLATE_OFFER, HOST, MAX_SIZE, Stats, abort_socket, binary_payload, deflate_message, json_messages

NAME = f"picows {picows.__version__} (C-accelerated client)"
TIMEOUT = 60.0  # a handshake, on a busy machine

MASK_KEY = b"\x37\xfa\x21\x3d"  # fixed and non-zero: servers unmask as they would any frame


def client_frame(opcode: int, payload: bytes, rsv1: bool) -> bytes:
    """A whole masked client frame (RFC 6455 section 5.2), built once and sent many times."""
    n = len(payload)
    first = 0x80 | (0x40 if rsv1 else 0) | opcode
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 65536:
        head = bytes([first, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + n.to_bytes(8, "big")
    key = (MASK_KEY * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big") if n else b""
    return head + MASK_KEY + masked


class Messages:
    """What a connection sends, in turn: plain bytes, or JSON texts compressed once each in advance.

    Every message is framed and masked once, here: sending one is then a copy,
    so the load generator spends its time counting replies, not building frames.
    """

    def __init__(self, size: int, deflate: bool) -> None:
        if deflate:
            texts = json_messages(64, size)
            self.plain = [t.encode() for t in texts]
            self.frames = [client_frame(0x1, deflate_message(p), True) for p in self.plain]
        else:
            self.plain = [binary_payload(size)]
            self.frames = [client_frame(0x2, p, False) for p in self.plain]


class WsClient(WSListener):
    """Keeps ``window`` messages in flight; counts replies; optionally checks each one.

    Replies are counted as picows parses them; the messages that replace them
    go out in one write per read from the socket (``frame.last_in_buffer``).
    """

    def __init__(self, stats: Stats, messages: Messages | None, window: int, verify: bool) -> None:
        self.stats = stats
        self.messages = messages
        self.window = window
        self.verify = verify
        self.transport: WSTransport | None = None
        self.raw: Any = None
        self.next = 0
        self.owed = 0
        self.expected: collections.deque[bytes] = collections.deque()
        self.parts: list[bytes] = []
        self.rsv1 = False
        self.inflater = zlib.decompressobj(-15)
        self.done = 0  # messages received
        self.disconnected = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.raw = transport.underlying_transport

    def start(self) -> None:
        self.owed = self.window
        self.flush()

    def flush(self) -> None:
        m = self.messages
        owed = self.owed
        if m is None or not owed:
            return
        self.owed = 0
        frames = m.frames
        count = len(frames)
        i = self.next
        if count == 1:
            data = frames[0] * owed if owed > 1 else frames[0]
        else:
            data = b"".join([frames[(i + k) % count] for k in range(owed)])
        if self.verify:
            plain = m.plain
            self.expected.extend(plain[(i + k) % count] for k in range(owed))
        self.next = (i + owed) % count
        self.raw.write(data)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.BINARY or kind is WSMsgType.TEXT or kind is WSMsgType.CONTINUATION:
            if not frame.fin:
                if self.verify:
                    if kind is not WSMsgType.CONTINUATION:
                        self.rsv1 = frame.rsv1
                    self.parts.append(frame.get_payload_as_bytes())
                return
            if self.verify:
                self.check(frame, kind)
            self.done += 1
            self.stats.count += 1
            if self.stats.running and self.messages is not None:
                self.owed += 1
                if frame.last_in_buffer:
                    self.flush()
        elif kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def check(self, frame: WSFrame, kind: WSMsgType) -> None:
        if kind is WSMsgType.CONTINUATION:
            data = b"".join(self.parts) + frame.get_payload_as_bytes()
            rsv1 = self.rsv1
        else:
            data, rsv1 = frame.get_payload_as_bytes(), frame.rsv1
        self.parts = []
        if rsv1:
            data = self.inflater.decompress(data + b"\x00\x00\xff\xff")
        if self.messages is None:
            return  # broadcast: nothing to compare with
        expected = self.expected.popleft() if self.expected else None
        if data != expected and len(self.stats.errors) < 5:
            self.stats.errors.append(f"echo mismatch: got {len(data)} bytes {data[:32]!r}, expected {len(expected or b'')}")

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.disconnected.done():
            self.disconnected.set_result(None)


class Trigger(WsClient):
    """The connection that asks for broadcasts: ``window`` triggers in flight, one more per delivery."""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if (kind is WSMsgType.BINARY or kind is WSMsgType.TEXT) and frame.fin:
            self.done += 1
            self.stats.count += 1
            if self.stats.running:
                self.owed += 1
                if frame.last_in_buffer:
                    self.flush()
        elif kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


async def ws_open(port: int, factory: Any, deflate: bool) -> tuple[WSTransport, WsClient]:
    headers = {"Sec-WebSocket-Extensions": DEFLATE_OFFER} if deflate else None
    transport, client = await picows.ws_connect(
        factory, f"ws://{HOST}:{port}/", max_frame_size=MAX_SIZE, extra_headers=headers, websocket_handshake_timeout=TIMEOUT
    )
    if deflate:
        agreed = transport.response.headers.get("sec-websocket-extensions", "")
        if "permessage-deflate" not in agreed:
            transport.disconnect(False)
            raise RuntimeError("the server didn't accept permessage-deflate")
    return transport, client  # type: ignore[return-value]


async def ws_close(transport: WSTransport, client: WsClient) -> None:
    """The closing handshake, then wait for the server to close TCP."""
    transport.send_close(picows.WSCloseCode.OK)
    await asyncio.wait_for(client.disconnected, 5)


def ws_close_all(clients: list[Any]) -> None:
    for transport, _ in clients:
        abort_socket(transport.underlying_transport.get_extra_info("socket"))
        transport.disconnect(False)
