"""Hand-written seed inputs per fuzz target: valid exchanges and every attack of tests/hostile.

The fuzzer starts from these when a corpus directory is empty; the first byte
of each is the harness's configuration byte.
"""

from __future__ import annotations

import zlib

from wsio.protocol.frames import py_build_frame
from wsio.protocol.handshake import accept_key

from .harness import KEY

MASK = b"\x11\x22\x33\x44"


def _request(*extra: str, method: str = "GET", version: str = "HTTP/1.1", key: str | None = KEY) -> bytes:
    lines = [
        f"{method} /chat {version}",
        "Host: example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
    ]
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    return ("\r\n".join([*lines, *extra]) + "\r\n\r\n").encode()


def request_seeds() -> list[bytes]:
    bodies = [
        _request(),
        _request("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_no_context_takeover"),
        _request("Sec-WebSocket-Protocol: chat, superchat", "Origin: http://example.com"),
        _request(version="HTTP/1.0"),
        _request(method="POST"),
        _request("Content-Length: 5") + b"hello",
        _request("Transfer-Encoding: chunked") + b"0\r\n\r\n",
        _request(f"Sec-WebSocket-Key: {KEY}"),
        _request(key=f"{KEY}, {KEY}"),
        _request(key="c2hvcnQ="),
        _request("Sec-WebSocket-Version: 8"),
        _request("X-Spaces: a" + " " * 200 + "\t" * 50 + "b"),
        b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 40 + b"\r\n",
        b"GET / HTTP/1.1\n\n",
    ]
    return [bytes([config]) + body for body in bodies for config in (0x00, 0x81)]


def response_seeds() -> list[bytes]:
    accept = accept_key(KEY)
    head = f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    bodies = [
        (head + "\r\n").encode(),
        (head + "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n").encode(),
        (head + "\r\n").encode() + py_build_frame(0x81, b"hello"),
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nno way",
        b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nbody until eof",
        b"HTTP/1.0 101 Switching Protocols\r\n\r\n",
    ]
    return [bytes([config]) + body for body in bodies for config in (0x00, 0x41, 0x83)]


def _deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def frame_seeds() -> list[bytes]:
    """Frames a client would send to a server (masked) and a server to a client (unmasked)."""
    seeds = []
    for client_role in (False, True):
        mask = None if client_role else MASK

        def frame(head: int, payload: bytes) -> bytes:
            return py_build_frame(head, payload, mask)

        streams = [
            frame(0x81, b"hello") + frame(0x82, b"\x00\x01") + frame(0x89, b"ping") + frame(0x88, b"\x03\xe8bye"),
            frame(0x01, b"hel") + frame(0x89, b"") + frame(0x80, b"lo"),
            frame(0x81, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5") + frame(0x81, b"\xed\xa0\x80"),
            frame(0xC1, _deflated(b"compressed " * 20)) + frame(0xC2, _deflated(b"\0" * 100000)),
            frame(0x41, _deflated(b"a" * 300)) + frame(0x80, _deflated(b"b" * 300)),
            frame(0x82, b"x" * 300),
            bytes([0x82, 0xFF]) + b"\x7f" + b"\xff" * 7 + MASK,
            bytes([0x82, 0x7F]) + b"\x7f" + b"\xff" * 7,
            frame(0x8A, b"unsolicited") + frame(0x88, b"\x03\xe8"),
            frame(0x8F, b"") + frame(0x09, b"fragmented ping"),
            b"".join(frame(0x00 if i else 0x02, b"") for i in range(100)) + frame(0x80, b""),
        ]
        role = 0x08 if client_role else 0x00
        for body in streams:
            for extra in (0x00, 0x10 | 0x01, 0x30 | 0x40 | 0x03):
                seeds.append(bytes([role | extra]) + body)
    return seeds


def differential_seeds() -> list[bytes]:
    # The differential target reads bit 0 as expect_masked and bit 1 as rsv1_ok for the raw parse.
    return frame_seeds()


SEEDS = {"request": request_seeds, "response": response_seeds, "frames": frame_seeds, "differential": differential_seeds}
