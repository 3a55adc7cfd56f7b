"""Attacks on the opening handshake, by raw sockets, against a server in a subprocess (asyncio and threads).

Each test asserts the HTTP status (or the dropped connection), the one INFO
line that says who was refused and why, and, through the watcher, that a
well-behaved client is served within 1 s during and after the attack and
that the server's RSS grows by less than 16 MiB. The fixture fails a test
whose server logged a traceback, a warning or an error.
"""

from __future__ import annotations

import socket
import time

import pytest

from .conftest import Watcher
from .peer import KEY, connect, http_status, read_head, request_bytes


def test_slow_loris_is_dropped_at_open_timeout(start_server) -> None:
    """Fifty clients trickle their headers a byte at a time: each is dropped when open_timeout (2 s) passes."""
    server = start_server(open_timeout=2)
    raw = request_bytes("/", *[f"X-Padding-{i}: {'a' * 40}" for i in range(20)])
    with Watcher(server) as watcher:
        socks = [connect(server.port) for _ in range(50)]
        started = time.monotonic()
        dropped: set[int] = set()
        position = 0
        while len(dropped) < len(socks) and time.monotonic() - started < 6:
            for index, sock in enumerate(socks):
                if index in dropped:
                    continue
                try:
                    sock.send(raw[position : position + 1])
                    sock.setblocking(False)
                    if sock.recv(1) == b"":
                        dropped.add(index)
                except BlockingIOError:
                    pass
                except OSError:
                    dropped.add(index)
            position = min(position + 1, len(raw) - 5)  # never the final CRLF
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        for sock in socks:
            sock.close()
    assert len(dropped) == len(socks), f"{len(socks) - len(dropped)} slow clients still connected after {elapsed:.1f}s"
    assert 1.9 <= elapsed < 4, elapsed
    server.wait_log(r"INFO wsio\.server 127\.0\.0\.1:\d+ rejected: no complete request within open_timeout=2")
    watcher.check()


@pytest.mark.parametrize(
    "what, raw, status",
    [
        ("request line", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
        ("header line", request_bytes("/", "X-Big: " + "b" * 9000), 431),
        ("header count", request_bytes("/", *[f"X-{i}: v" for i in range(200)]), 431),
        ("total headers", request_bytes("/", *[f"X-{i}: {'c' * 1000}" for i in range(100)]), 431),
    ],
)
def test_oversized_head(start_server, what: str, raw: bytes, status: int) -> None:
    """Request line over 8 KiB: 414; a header line over 8 KiB, over 128 headers, a head over 64 KiB: 431."""
    server = start_server()
    with Watcher(server) as watcher:
        for _ in range(20):
            got, _ = http_status(server.port, raw)
            assert got == status, (what, got)
    line = server.wait_log(rf"127\.0\.0\.1:\d+ rejected: HTTP {status}: ")
    assert line.startswith("INFO wsio.server 127.0.0.1:"), line
    watcher.check()


@pytest.mark.parametrize(
    "what, raw, status, reason",
    [
        ("HTTP/1.0", request_bytes("/", version="HTTP/1.0"), 400, "HTTP version"),
        ("POST", request_bytes("/", method="POST"), 405, "method POST"),
        ("Content-Length body", request_bytes("/", "Content-Length: 5") + b"hello", 400, "body"),
        ("Transfer-Encoding body", request_bytes("/", "Transfer-Encoding: chunked") + b"5\r\nhello\r\n0\r\n\r\n", 400, "Transfer-Encoding"),
        ("two Sec-WebSocket-Key headers", request_bytes("/", f"Sec-WebSocket-Key: {KEY}"), 400, "Sec-WebSocket-Key"),
        ("comma-joined Sec-WebSocket-Key", request_bytes("/", key=f"{KEY}, {KEY}"), 400, "Sec-WebSocket-Key"),
        ("key of 5 bytes", request_bytes("/", key="c2hvcnQ="), 400, "Sec-WebSocket-Key"),
        ("key not base64", request_bytes("/", key="!" * 24), 400, "Sec-WebSocket-Key"),
    ],
)
def test_bad_request_refused(start_server, what: str, raw: bytes, status: int, reason: str) -> None:
    """Each malformed handshake gets its 4xx and one INFO line naming the peer and the reason."""
    server = start_server()
    with Watcher(server) as watcher:
        got, _ = http_status(server.port, raw)
        assert got == status, what
    line = server.wait_log(rf"rejected: HTTP {status}: .*{reason}")
    assert line.startswith("INFO wsio.server 127.0.0.1:"), line
    watcher.check()


def test_wrong_version_gets_426_with_supported_version(start_server) -> None:
    server = start_server()
    with Watcher(server) as watcher:
        status, headers = http_status(server.port, request_bytes("/", ws_version="8"))
    assert status == 426
    assert headers.get("sec-websocket-version") == "13"
    server.wait_log(r"INFO wsio\.server 127\.0\.0\.1:\d+ rejected: HTTP 426: .*Sec-WebSocket-Version")
    watcher.check()


@pytest.mark.parametrize(
    "header",
    [
        "Sec-WebSocket-Extensions: " + "permessage-deflate;" * 400 + "x=",
        "Sec-WebSocket-Extensions: permessage-deflate; a=" + '"' + "\\a" * 3000,
        "Connection: " + "Upgrade, " * 800 + "," * 1000,
        "Sec-WebSocket-Protocol: " + "a," * 3000 + " " * 1000 + "!",
        "X-Spaces: a" + " \t" * 3500 + "b",
        "Upgrade: " + "websocket " * 700 + "\x00",
    ],
    ids=["extension-params", "quoted-escapes", "connection-commas", "protocol-list", "whitespace", "upgrade-tokens"],
)
def test_header_values_parse_in_linear_time(start_server, header: str) -> None:
    """Header values built to make a backtracking regex take minutes are answered at once."""
    server = start_server()
    raw = request_bytes("/", header)
    with Watcher(server) as watcher:
        started = time.monotonic()
        for _ in range(10):
            with connect(server.port) as sock:
                sock.sendall(raw)
                status, _, _ = read_head(sock, timeout=2)
                assert status in (101, 400, 431), status
        elapsed = time.monotonic() - started
    assert elapsed < 2, f"10 requests took {elapsed:.2f}s"
    watcher.check()


def test_eof_and_garbage_during_the_handshake_are_one_info_line(start_server) -> None:
    """Clients that send garbage, or connect and leave, cost a line at INFO, nothing more."""
    server = start_server()
    with Watcher(server) as watcher:
        for _ in range(50):
            with connect(server.port) as sock:
                sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n")  # a TLS hello
                try:
                    read_head(sock, timeout=2)
                except ConnectionError:
                    pass
            with connect(server.port) as sock:
                sock.sendall(b"GET / HT")
            sock = connect(server.port)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
    server.wait_log(r"INFO wsio\.server 127\.0\.0\.1:\d+ rejected: HTTP 400")
    watcher.check()
