"""Closing on the wire like the peers wsio talks to (threading API).

The same behaviours as tests/asyncio/test_close_behaviour.py, on wsio.sync:
the close reply carries the reason back; a failed connection reads on until
the peer closes, so a peer that keeps sending reads the close code and gets no
reset; ``shutdown(close_connections=False)`` waits for the kept connections;
handshake and TLS errors say what to do.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from typing import Any

import pytest

from tests.close_peers import FrameReader, client_handshake, invalid_utf8_then_flood, oversized_then_rest
from tests.sync.helpers import echo, run_server, self_signed_cert, server_ssl_context, uri
from wsio.exceptions import CertificateVerificationError, ConnectionClosedError, InvalidStatus
from wsio.protocol.frames import build_frame
from wsio.sync import connect, serve


def port_of(server: Any) -> int:
    return int(server.socket.getsockname()[1])


def test_close_reply_echoes_code_and_reason() -> None:
    with run_server(echo) as server:
        sock = client_handshake(port_of(server))
        try:
            sock.sendall(build_frame(0x88, struct.pack("!H", 4000) + "à bientôt".encode(), b"abcd"))
            reader = FrameReader()
            while reader.close is None:
                data = sock.recv(4096)
                assert data, "EOF before the close frame"
                reader.feed(data)
            assert reader.close == (4000, "à bientôt")
        finally:
            sock.close()


def test_sync_client_echoes_the_servers_reason() -> None:
    def closer(ws: Any) -> None:
        ws.close(4003, "see you")

    with run_server(closer) as server:
        with connect(uri(server)) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                ws.recv()
    assert info.value.sent is not None and (info.value.sent.code, info.value.sent.reason) == (4003, "see you")


def test_invalid_utf8_then_flood_reads_1007_without_reset() -> None:
    with run_server(echo) as server:
        outcome = invalid_utf8_then_flood(port_of(server))
    assert outcome.reset is None, f"reset after {outcome.sent} bytes: {outcome.reset!r}"
    assert outcome.close_code == 1007
    assert outcome.eof


def test_oversized_message_then_rest_reads_1009_without_reset() -> None:
    with run_server(echo, max_size=1000) as server:
        outcome = oversized_then_rest(port_of(server))
    assert outcome.reset is None, f"reset after {outcome.sent} bytes: {outcome.reset!r}"
    assert outcome.close_code == 1009
    assert "max_size=1000" in outcome.close_reason
    assert outcome.eof


def test_failed_connection_gives_up_after_close_timeout() -> None:
    tcp_closed: list[float] = []

    def handler(ws: Any) -> None:
        with contextlib.suppress(ConnectionClosedError):
            for _ in ws:
                pass
        ws.wait_closed(5)
        tcp_closed.append(time.monotonic())

    with run_server(handler, close_timeout=1.0) as server:
        sock = client_handshake(port_of(server))
        try:
            sock.sendall(build_frame(0x81, b"\xff", b"abcd"))
            start = time.monotonic()
            reader = FrameReader()
            while True:  # the close frame, then EOF at once (the server half-closes); we never answer
                data = sock.recv(4096)
                if not data:
                    break
                reader.feed(data)
            assert reader.close is not None and reader.close[0] == 1007
            assert time.monotonic() - start < 0.6  # well before close_timeout, with room for a loaded machine
            # With neither a close frame nor EOF from us, the server closes TCP after close_timeout.
            deadline = time.monotonic() + 4
            while not tcp_closed and time.monotonic() < deadline:
                time.sleep(0.01)
            assert tcp_closed and 0.9 < tcp_closed[0] - start < 3.5
        finally:
            sock.close()


def test_shutdown_keeping_connections_waits_for_them() -> None:
    server = serve(echo, "127.0.0.1", 0)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    client = connect(uri(server))
    ws = client.__enter__()
    done = threading.Event()

    def stop() -> None:
        server.shutdown(close_connections=False)
        done.set()

    stopper = threading.Thread(target=stop, daemon=True)
    stopper.start()
    try:
        assert not done.wait(0.3)  # the kept connection is open
        ws.send("served")
        assert ws.recv(timeout=5) == "served"
        ws.close()
        assert done.wait(5)  # returned once it ended
    finally:
        ws.close()
        server.shutdown(timeout=5)
        serving.join(5)
        server.__exit__(None, None, None)


def test_shutdown_keeping_connections_honours_timeout() -> None:
    with run_server(echo) as server:
        with connect(uri(server)):
            start = time.monotonic()
            server.shutdown(close_connections=False, timeout=0.2)
            assert 0.15 < time.monotonic() - start < 2


def test_plain_http_page_says_it_is_not_a_websocket_endpoint() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def page() -> None:
        sock, _ = listener.accept()
        with sock:
            request = b""
            while b"\r\n\r\n" not in request:
                request += sock.recv(4096)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello")

    thread = threading.Thread(target=page, daemon=True)
    thread.start()
    try:
        with pytest.raises(InvalidStatus) as info:
            with connect(f"ws://127.0.0.1:{port}/feed"):
                pass
        assert str(info.value) == (
            f"the server answered HTTP 200 with a page, not a WebSocket handshake: "
            f"is ws://127.0.0.1:{port}/feed a WebSocket endpoint?"
        )
    finally:
        thread.join(5)
        listener.close()


def test_untrusted_certificate_says_what_to_do(tmp_path: Any) -> None:
    cert, key = self_signed_cert(str(tmp_path))
    with run_server(echo, ssl=server_ssl_context(cert, key)) as server:
        target = f"wss://localhost:{port_of(server)}/"
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            with connect(target):
                pass
        assert isinstance(info.value, CertificateVerificationError)
        message = str(info.value)
        assert "certificate verify failed" in message
        assert target in message and "ssl=ssl.create_default_context(cafile=" in message and "wsio -k" in message
        with connect(target, ssl=ssl.create_default_context(cafile=cert)) as ws:
            ws.send("trusted")
            assert ws.recv(timeout=5) == "trusted"
