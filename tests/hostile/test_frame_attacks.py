"""Attacks with frames and messages on an open connection: each fails fast with its close code and a reason.

Against a server in a subprocess (asyncio, threads, uvicorn + wsio's engine), default settings.
"""

from __future__ import annotations

import struct

import pytest

from .conftest import Watcher
from .peer import MASK, OP_BINARY, OP_TEXT, FrameReader, deflate, frame, open_websocket, wait_eof

MAX_SIZE = 1 << 20  # the default


def attack(server, payload: bytes, *extra: str) -> tuple[int, str] | None:
    """Open a connection, send ``payload``, return the server's close frame (code, reason)."""
    sock, rest = open_websocket(server.port, "/", *extra)
    with sock:
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may fail the connection before all of it is sent
        reader = FrameReader(sock, rest)
        close = reader.close_frame(timeout=5)
        wait_eof(sock, timeout=5)
        return close


def test_64_bit_length_is_refused_before_any_allocation(start_server) -> None:
    """A header announcing 2**63-1 bytes: 1009 at once, from the header alone."""
    server = start_server()
    header = struct.pack("!BBQ", 0x82, 0xFF, (1 << 63) - 1) + MASK
    with Watcher(server) as watcher:
        for _ in range(20):
            code, reason = attack(server, header + b"x" * 1000)
            assert code == 1009, (code, reason)
            assert "max_size" in reason
    server.wait_log(
        r"INFO wsio\.server 127\.0\.0\.1:\d+ connection closed: .*1009",
        uvicorn=r'INFO uvicorn\.error 127\.0\.0\.1:\d+ - "WebSocket /" closed: failed with 1009: ',
    )
    watcher.check()


@pytest.mark.parametrize("fragments", [1, 32], ids=["one-frame", "fragmented"])
def test_message_over_max_size(start_server, fragments: int) -> None:
    """A message of max_size + 1 bytes, whole or in fragments, fails with 1009."""
    server = start_server()
    data = b"m" * (MAX_SIZE + 1)
    step = -(-len(data) // fragments)
    pieces = [data[i : i + step] for i in range(0, len(data), step)]
    payload = b"".join(frame(OP_BINARY if i == 0 else 0, piece, fin=i == len(pieces) - 1) for i, piece in enumerate(pieces))
    with Watcher(server) as watcher:
        for _ in range(5):
            code, reason = attack(server, payload)
            assert code == 1009 and "max_size" in reason, (code, reason)
    watcher.check()


def test_compression_bomb_stops_at_max_size(start_server) -> None:
    """64 MiB of zeros deflated to ~64 KiB: 1009, after inflating at most max_size."""
    server = start_server()
    bomb = deflate(b"\x00" * (64 << 20))
    assert len(bomb) < 128 << 10
    with Watcher(server) as watcher:
        for _ in range(10):
            code, reason = attack(server, frame(OP_BINARY, bomb, rsv1=True), "Sec-WebSocket-Extensions: permessage-deflate")
            assert code == 1009 and "max_size=1048576" in reason, (code, reason)  # names the knob
    watcher.check()


def test_too_many_fragments(start_server) -> None:
    """5,000 empty fragments (the limit is 4,096): 1009."""
    server = start_server()
    payload = frame(OP_TEXT, b"", fin=False) + frame(0, b"", fin=False) * 5000 + frame(0, b"")
    with Watcher(server) as watcher:
        code, reason = attack(server, payload)
    assert code == 1009 and "fragments" in reason, (code, reason)
    watcher.check()


@pytest.mark.parametrize(
    "payload, code, words",
    [
        (frame(OP_TEXT, b"caf\xc3"), 1007, "UTF-8"),
        (frame(OP_TEXT, b"ok", fin=False) + frame(0, b"\xed\xa0\x80"), 1007, "UTF-8"),
        (frame(OP_TEXT, b"hello", mask=None), 1002, "unmasked"),
        (frame(0x3, b"reserved opcode"), 1002, "opcode"),
        (frame(0x9, b"p" * 126), 1002, "control frame"),
    ],
    ids=["invalid-utf8", "invalid-utf8-fragmented", "unmasked", "reserved-opcode", "long-ping"],
)
def test_protocol_errors_fail_fast(start_server, payload: bytes, code: int, words: str) -> None:
    server = start_server()
    with Watcher(server) as watcher:
        got = attack(server, payload)
    assert got is not None and got[0] == code and words in got[1], got
    watcher.check()
