"""Raw peers, on blocking sockets, that keep sending after they broke the protocol.

What a real peer does (libwebsockets' test client sending invalid UTF-8 in
compressed fragments, a client streaming a large upload): it doesn't stop to
read between writes. wsio must send its close frame, then read on and discard
until the peer's close frame or EOF before closing TCP: closing with unread
data resets the connection, and the peer's next write fails before it ever
reads the close frame.

The peers run in a thread (``asyncio.to_thread`` from asyncio tests) and
return what they saw: the close frame's code and reason, and whether the
connection was reset.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from dataclasses import dataclass

from wsio.protocol.frames import build_frame, frame_header
from wsio.protocol.handshake import accept_key

BAD_UTF8 = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"


@dataclass
class Outcome:
    close_code: int | None = None
    close_reason: str = ""
    reset: BaseException | None = None  # ConnectionResetError or BrokenPipeError, if any
    sent: int = 0  # bytes written after the bad frame
    eof: bool = False


def mask() -> bytes:
    return os.urandom(4)


class FrameReader:
    """Collects frames from bytes read; keeps the first close frame."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.close: tuple[int, str] | None = None

    def feed(self, data: bytes) -> None:
        self.buf += data
        while self.close is None and len(self.buf) >= 2:
            head, second = self.buf[0], self.buf[1]
            length, pos = second & 0x7F, 2
            if length == 126:
                if len(self.buf) < 4:
                    return
                (length,) = struct.unpack_from("!H", self.buf, 2)
                pos = 4
            elif length == 127:
                if len(self.buf) < 10:
                    return
                (length,) = struct.unpack_from("!Q", self.buf, 2)
                pos = 10
            masking = None
            if second & 0x80:
                masking = bytes(self.buf[pos : pos + 4])
                pos += 4
            if len(self.buf) < pos + length:
                return
            payload = bytes(self.buf[pos : pos + length])
            if masking is not None:
                payload = bytes(b ^ masking[i % 4] for i, b in enumerate(payload))
            del self.buf[: pos + length]
            if head & 0x0F == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close = (code, payload[2:].decode())


def client_handshake(port: int, extensions: str = "") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # one byte at a time: no frame read past the response
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def flood_then_close(sock: socket.socket, start: bytes, flood: list[bytes], masked: bool, seconds: float = 0.0) -> Outcome:
    """Send ``start`` (the bad part), then every piece of ``flood`` (repeated for ``seconds``
    if given) without waiting for anything, reading what arrives between writes; then answer
    the close frame and read until EOF."""
    outcome = Outcome()
    reader = FrameReader()
    sock.settimeout(10)

    def read_available() -> None:
        sock.setblocking(False)
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    outcome.eof = True
                    return
                reader.feed(data)
        except BlockingIOError:
            pass
        finally:
            sock.settimeout(10)

    try:
        sock.sendall(start)
        deadline = time.monotonic() + seconds
        first = True
        while first or time.monotonic() < deadline:
            first = False
            for piece in flood:
                sock.sendall(piece)
                outcome.sent += len(piece)
                read_available()
        # Done sending: now read the close frame, answer it, wait for EOF.
        while reader.close is None and not outcome.eof:
            data = sock.recv(65536)
            if not data:
                outcome.eof = True
                break
            reader.feed(data)
        if reader.close is not None:
            outcome.close_code, outcome.close_reason = reader.close
            code = struct.pack("!H", outcome.close_code)
            sock.sendall(build_frame(0x88, code, mask() if masked else None))
        while not outcome.eof:
            data = sock.recv(65536)
            if not data:
                outcome.eof = True
    except (ConnectionResetError, BrokenPipeError) as exc:
        outcome.reset = exc
    finally:
        sock.close()
    return outcome


def invalid_utf8_then_flood(port: int, seconds: float = 0.5) -> Outcome:
    """A client: invalid UTF-8 in a text message, then binary messages for ``seconds``."""
    sock = client_handshake(port)
    start = build_frame(0x81, BAD_UTF8, mask())
    flood = [build_frame(0x82, os.urandom(16384), mask()) for _ in range(4)]
    return flood_then_close(sock, start, flood, masked=True, seconds=seconds)


def oversized_then_rest(port: int, size: int = 4 << 20) -> Outcome:
    """A client: a binary frame of ``size`` bytes, sent whole without reading in between."""
    sock = client_handshake(port)
    start = frame_header(0x82, size, masked=True) + mask()
    chunk = os.urandom(65536)
    flood = [chunk] * (size // len(chunk))
    return flood_then_close(sock, start, flood, masked=True)


def server_answer(request: bytes) -> bytes:
    key = next(
        line.split(b":", 1)[1].strip() for line in request.split(b"\r\n") if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = accept_key(key.decode())
    return (
        f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    ).encode()


def serve_invalid_utf8_then_flood(listener: socket.socket, seconds: float = 0.5) -> Outcome:
    """A server: accept one client, send it invalid UTF-8, then binary messages for ``seconds``."""
    sock, _ = listener.accept()
    sock.settimeout(10)
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = sock.recv(4096)
        assert chunk, request
        request += chunk
    sock.sendall(server_answer(request))
    start = build_frame(0x81, BAD_UTF8, None)
    flood = [build_frame(0x82, os.urandom(16384), None) for _ in range(4)]
    return flood_then_close(sock, start, flood, masked=False, seconds=seconds)


__all__ = [
    "Outcome",
    "FrameReader",
    "client_handshake",
    "flood_then_close",
    "invalid_utf8_then_flood",
    "oversized_then_rest",
    "serve_invalid_utf8_then_flood",
]
