"""Attacks on memory, time and file descriptors: peers that don't read, don't answer, flood or vanish.

Against a server in a subprocess (asyncio, threads, uvicorn + wsio's engine).
Options a test names are the only ones changed from the defaults (under
uvicorn, the settings they are: see tests/hostile/server.py).
"""

from __future__ import annotations

import socket
import struct
import threading
import time

from .conftest import Watcher
from .peer import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    FrameReader,
    abort,
    connect,
    echo_roundtrip,
    frame,
    open_websocket,
    read_head,
    request_bytes,
    wait_eof,
)

WRITE_LIMIT = 65536  # the default
FIREHOSE_MESSAGE = 65536
READ_SIZE = 1 << 20  # the most wsio's asyncio connections take from a socket at once (the sync reader: 64 KiB)


def small_receive_buffer() -> socket.socket:
    """A client socket with a small receive window, so that not reading fills it fast."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


def open_with(sock: socket.socket, port: int, path: str) -> bytes:
    sock.connect(("127.0.0.1", port))
    sock.sendall(request_bytes(path))
    status, _, rest = read_head(sock)
    assert status == 101
    return rest


def flood(sock: socket.socket, chunk: bytes, seconds: float) -> int:
    """Send ``chunk`` again and again without ever reading, for ``seconds``; return the bytes the kernel took."""
    sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + seconds
    view = memoryview(chunk)
    offset = 0
    while time.monotonic() < deadline:
        try:
            n = sock.send(view[offset:])
        except BlockingIOError:
            time.sleep(0.01)  # the server stopped reading: its window and ours are full
            continue
        except OSError:
            break
        sent += n
        offset = (offset + n) % len(chunk)
    return sent


def test_client_that_never_reads_while_the_server_sends(start_server) -> None:
    """The server's buffer for it stays at write_limit (plus the message being written); keepalive then closes it."""
    server = start_server(ping_interval=1, ping_timeout=1, close_timeout=1)
    with Watcher(server) as watcher:
        sock = small_receive_buffer()
        open_with(sock, server.port, "/firehose")
        worst = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            worst = max(worst, server.stats()["write_buffered_max"])
            time.sleep(0.1)
        assert worst <= WRITE_LIMIT + FIREHOSE_MESSAGE + 1024, worst
        # No pong can come from a client that doesn't read: 1011 within ping_interval + ping_timeout + close_timeout.
        # This connection, by its port: the watcher's come and go meanwhile, one every 100 ms.
        port = sock.getsockname()[1]
        server.wait_for(lambda s: port not in s["peer_ports"], timeout=6, what="the server dropping the non-reader")
        sock.close()
    server.wait_log(
        r"INFO wsio\.server 127\.0\.0\.1:\d+ no pong within ping_timeout=1",
        uvicorn=r'INFO uvicorn\.error 127\.0\.0\.1:\d+ - "WebSocket /firehose" closed: failed with 1011: .*no pong within ping_timeout=1',
    )
    watcher.check()


def test_ping_flood_from_a_client_that_never_reads(start_server) -> None:
    """Pings as fast as the socket takes them, never reading the pongs: reading pauses, pongs stay bounded."""
    server = start_server()
    ping = frame(OP_PING, b"p" * 125)
    with Watcher(server) as watcher:
        sock = small_receive_buffer()
        open_with(sock, server.port, "/")
        result: dict[str, int] = {}
        flooder = threading.Thread(target=lambda: result.update(sent=flood(sock, ping * 512, 3)))
        flooder.start()
        worst = 0
        while flooder.is_alive():
            worst = max(worst, server.stats()["write_buffered_max"])
            time.sleep(0.1)
        flooder.join()
        # Unbounded, the server would answer every ping it read: gigabytes in 3 s on loopback.
        # Bounded: write_limit, plus the pongs to one read's worth of pings (wsio's asyncio reads 1 MiB at a time).
        assert worst <= WRITE_LIMIT + READ_SIZE, worst
        assert result["sent"] < 32 << 20, f"the server kept reading: {result['sent']} bytes of pings taken"
        abort(sock)
    watcher.check()


def test_max_queue_pauses_reading(start_server) -> None:
    """A handler that never reads: after max_queue (16) messages the server stops reading; the client's sends block."""
    server = start_server()
    message = frame(OP_BINARY, b"q" * 65536)
    with Watcher(server) as watcher:
        sock, _ = open_websocket(server.port, "/idle")
        sent = flood(sock, message, 3)
        # 16 messages of 64 KiB queued, plus what the two kernels' buffers hold.
        assert sent < 24 << 20, f"the server kept reading: {sent} bytes taken"
        abort(sock)
    watcher.check()


def test_silent_peer_is_closed_by_keepalive(start_server) -> None:
    """A peer that opens and then says nothing (no FIN, no data, no pongs): 1011 "no pong within ping_timeout"."""
    server = start_server(ping_interval=0.5, ping_timeout=0.5)
    with Watcher(server) as watcher:
        sock, rest = open_websocket(server.port, "/")
        started = time.monotonic()
        with sock:
            close = FrameReader(sock, rest).close_frame(timeout=5)
            elapsed = time.monotonic() - started
    assert close is not None and close[0] == 1011, close
    # Under uvicorn the reason is uvicorn's words, as its own engines send them
    # (its tests check them); the log line says which timeout it was.
    assert ("keepalive ping timeout" if server.uvicorn else "no pong within ping_timeout") in close[1], close
    assert 0.9 <= elapsed < 2.5, elapsed
    server.wait_log(
        r"INFO wsio\.server 127\.0\.0\.1:\d+ no pong within ping_timeout=0\.5s; closing",
        uvicorn=r'INFO uvicorn\.error 127\.0\.0\.1:\d+ - "WebSocket /" closed: failed with 1011: keepalive ping timeout \(no pong within ping_timeout=0\.5s\)',
    )
    watcher.check()


def test_peer_that_never_answers_a_close(start_server) -> None:
    """The server closes (handler returned); the peer never sends its close frame: TCP is dropped after close_timeout."""
    server = start_server(close_timeout=1)
    with Watcher(server) as watcher:
        sock, rest = open_websocket(server.port, "/close")
        with sock:
            reader = FrameReader(sock, rest)
            got = reader.next_frame(timeout=5)
            assert got is not None and got[0] == OP_CLOSE and struct.unpack("!H", got[1][:2])[0] == 1000, got
            elapsed = wait_eof(sock, timeout=5)
    assert 0.8 <= elapsed < 2.5, elapsed
    server.wait_log(
        r"INFO wsio\.server 127\.0\.0\.1:\d+ connection closed: .*no close frame within close_timeout=1",
        uvicorn=r'INFO uvicorn\.error 127\.0\.0\.1:\d+ - "WebSocket /close" closed: app closed with 1000 \(no close frame within close_timeout=1s\)',
    )
    watcher.check()


def test_thousands_of_abrupt_drops_leave_nothing_behind(start_server, mode: str) -> None:
    """2,000 connections (1,000 on threads) reset mid-handshake, right after it, or mid-message: no fd, task, thread or memory left."""
    server = start_server()
    # What the warm-up and earlier /stats requests leave must be gone before counting.
    before = server.settled_stats()
    total = 1000 if mode == "sync" else 2000
    partial_message = frame(OP_BINARY, b"z" * 1000)[:500]
    with Watcher(server) as watcher:
        for batch_start in range(0, total, 100):
            socks = []
            for i in range(batch_start, batch_start + 100):
                sock = connect(server.port)
                kind = i % 3
                sock.sendall(request_bytes("/")[: 40 if kind == 0 else None])
                socks.append((kind, sock))
            for kind, sock in socks:
                if kind:
                    read_head(sock)
                if kind == 2:
                    sock.sendall(partial_message)
                abort(sock)
    after = server.wait_for(
        lambda s: (
            s["connections"] == 0
            and s["fds"] <= before["fds"]
            and s["tasks"] <= before["tasks"]
            and s["threads"] <= before["threads"]
        ),
        timeout=15,
        what="every dropped connection released",
    )
    assert after["fds"] <= before["fds"] and after["threads"] <= before["threads"], (before, after)
    watcher.check()


def test_accept_storm_is_bounded_by_max_connections(start_server) -> None:
    """50 connections held, then 300 at once: each extra one gets 503 with Retry-After and an INFO line, fast."""
    # A listen queue for the whole storm: with the default (100), the kernel drops
    # the SYNs of the connections the server hasn't accepted yet, and those clients
    # retry after TCP's 1 s timeout, whatever the server does (seen: 1.03 s to
    # connect, then 0.02 s to the 503, on a busy machine). The test is about the answer.
    server = start_server(max_connections=50, backlog=512)
    # Each got its 101, so each is counted (GET /stats would get a 503 now, like anyone).
    held = [open_websocket(server.port, "/idle")[0] for _ in range(50)]
    statuses: list[int] = []
    retry_after: set[str] = set()
    slowest = 0.0

    def client() -> None:
        nonlocal slowest
        try:
            with connect(server.port) as sock:
                started = time.monotonic()
                sock.sendall(request_bytes("/"))
                status, headers, _ = read_head(sock, timeout=5)
        except OSError as exc:
            statuses.append(-1)
            raise AssertionError(f"refused without an answer: {exc!r}") from exc
        slowest = max(slowest, time.monotonic() - started)
        statuses.append(status)
        if "retry-after" in headers:
            retry_after.add(headers["retry-after"])

    storm = [threading.Thread(target=client) for _ in range(300)]
    for thread in storm:
        thread.start()
    for thread in storm:
        thread.join()
    assert statuses.count(503) >= 290 and set(statuses) <= {101, 503}, sorted(set(statuses))
    assert retry_after == {"5"}
    assert slowest < 1, f"a refused client waited {slowest:.2f}s for its 503"
    server.wait_log(
        r"INFO wsio\.server 127\.0\.0\.1:\d+ rejected: HTTP 503: 50 connections open, max_connections=50",
        # uvicorn's limit counts the connections still in its HTTP layer too, and app tasks.
        uvicorn=r'INFO uvicorn\.error 127\.0\.0\.1:\d+ - "WebSocket /" 503: \d+ connections open, limit_concurrency=50',
    )
    for sock in held:
        sock.close()
    server.wait_for(lambda s: s["connections"] == 0, what="the held connections closed")
    assert echo_roundtrip(server.port) < 1
