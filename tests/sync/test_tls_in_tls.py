"""TLSInTLSSocket on its own: a TLS session inside another one, over socket pairs, with real OpenSSL peers.

The outer TLS server relays clear bytes to the inner TLS server, as an
https:// proxy's tunnel does. The WebSocket client through a real proxy is
tested in tests/proxy/test_tls_in_tls_proxy.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from wsio.sync.connection import _shutdown
from wsio.sync.tls_in_tls import TLSInTLSSocket

from tests.helpers import pump

from .helpers import self_signed_cert, server_ssl_context

pytestmark = pytest.mark.timeout(60)

Behaviour = Callable[[ssl.SSLSocket], None]


@pytest.fixture
def cert(tmp_path: Path) -> tuple[str, str]:
    return self_signed_cert(str(tmp_path), "localhost")


def client_context(cert: tuple[str, str], alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cert[0])
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def _close_quietly(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # wakes a thread blocked on it; close() doesn't
        with contextlib.suppress(OSError):
            sock.close()


@contextlib.contextmanager
def tunnel(cert: tuple[str, str], inner: Behaviour, alpn: list[str] | None = None) -> Iterator[ssl.SSLSocket]:
    """Yield the client end of an outer TLS session whose server relays to a TLS server running ``inner``."""
    outer_client, outer_server = socket.socketpair()
    relay_end, inner_end = socket.socketpair()
    context = server_ssl_context(*cert)
    if alpn:
        context.set_alpn_protocols(alpn)
    opened: list[socket.socket] = [outer_client, outer_server, relay_end, inner_end]

    def relay() -> None:
        try:
            front = server_ssl_context(*cert).wrap_socket(outer_server, server_side=True)
        except OSError:
            return
        opened.append(front)
        threading.Thread(target=pump, args=(relay_end, front), daemon=True).start()
        pump(front, relay_end)

    def server() -> None:
        try:
            sock = context.wrap_socket(inner_end, server_side=True)
        except OSError:
            return
        opened.append(sock)
        try:
            inner(sock)
        except OSError:
            pass

    threads = [threading.Thread(target=relay, daemon=True), threading.Thread(target=server, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        client = client_context(cert).wrap_socket(outer_client, server_hostname="localhost")
        opened.append(client)
        yield client
    finally:
        _close_quietly(*opened)
        for thread in threads:
            thread.join(5)


def echo(sock: ssl.SSLSocket) -> None:
    while data := sock.recv(65536):
        sock.sendall(data)


def connected(outer: ssl.SSLSocket, cert: tuple[str, str], alpn: list[str] | None = None) -> TLSInTLSSocket:
    tls = TLSInTLSSocket(outer, client_context(cert, alpn), "localhost")
    tls.do_handshake(lambda: 5.0)
    # Blocking, as the connection sets it after its handshake: an SSLSocket with a
    # timeout can't be read and written by two threads at once (OpenSSL's retry state is shared).
    tls.settimeout(None)
    return tls


def recv_exactly(sock: TLSInTLSSocket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 65536))
        assert chunk, "EOF"
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def test_echo_and_session_details(cert: tuple[str, str]) -> None:
    with tunnel(cert, echo, alpn=["x-test"]) as outer:
        tls = connected(outer, cert, alpn=["x-test"])
        for size in (1, 16, 16384, 16385, 65536, 1 << 20):
            payload = os.urandom(size)
            # From another thread: the echo comes back while the rest is still being sent.
            writer = threading.Thread(target=tls.sendall, args=(payload,), daemon=True)
            writer.start()
            assert recv_exactly(tls, size) == payload
            writer.join(5)
        tls.sendall(memoryview(b"abcd").cast("B", (2, 2)))  # any contiguous bytes-like
        assert recv_exactly(tls, 4) == b"abcd"
        assert tls.pending() == 0
        assert tls.selected_alpn_protocol() == "x-test"
        assert tls.version() == "TLSv1.3"
        assert tls.cipher() is not None
        assert dict(item[0] for item in tls.getpeercert()["subject"])["commonName"] == "localhost"
        assert tls.getpeercert(binary_form=True)
        assert tls.server_hostname == "localhost" and not tls.server_side
        assert tls.fileno() == outer.fileno()
        assert tls.family == outer.family and tls.type == outer.type
        assert tls.getsockname() == outer.getsockname()
        tls.settimeout(3.5)
        assert tls.gettimeout() == outer.gettimeout() == 3.5
        assert "localhost" in repr(tls)
        tls.close()
        assert outer.fileno() == -1


def test_close_notify_is_eof(cert: tuple[str, str]) -> None:
    def say_bye(sock: ssl.SSLSocket) -> None:
        sock.sendall(b"bye")
        sock.unwrap()

    with tunnel(cert, say_bye) as outer:
        tls = connected(outer, cert)
        assert recv_exactly(tls, 3) == b"bye"
        assert tls.recv(10) == b""
        assert tls.pending()  # the reader's next recv() returns at once
        assert tls.recv(10) == b""


def test_tunnel_closed_without_close_notify_is_eof(cert: tuple[str, str]) -> None:
    def drop(sock: ssl.SSLSocket) -> None:
        sock.sendall(b"x")
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # no close_notify

    with tunnel(cert, drop) as outer:
        tls = connected(outer, cert)
        assert tls.recv(10) == b"x"
        assert tls.recv(10) == b""


def test_timeout_propagates_and_nothing_is_lost(cert: tuple[str, str]) -> None:
    go = threading.Event()

    def late(sock: ssl.SSLSocket) -> None:
        go.wait(10)
        sock.sendall(b"late")
        sock.recv(1)

    with tunnel(cert, late) as outer:
        tls = connected(outer, cert)
        tls.settimeout(0.2)
        with pytest.raises(socket.timeout):
            tls.recv(10)
        go.set()
        tls.settimeout(5)
        assert recv_exactly(tls, 4) == b"late"


def test_pending_counts_what_poll_cant_see(cert: tuple[str, str]) -> None:
    def two_records(sock: ssl.SSLSocket) -> None:
        sock.sendall(b"a" * 10)
        sock.sendall(b"b" * 10)
        sock.recv(1)

    with tunnel(cert, two_records) as outer:
        tls = connected(outer, cert)
        tls.settimeout(5)
        first = tls.recv(5)
        assert first == b"aaaaa"
        assert tls.pending() >= 5  # the rest of the record, decrypted already
        received = first
        while len(received) < 20:
            received += tls.recv(100)
        assert received == b"a" * 10 + b"b" * 10
        assert tls.pending() == 0


def test_writers_in_threads_while_one_thread_reads(cert: tuple[str, str]) -> None:
    """8 threads call sendall() at once: each message comes back whole and in its thread's order."""
    threads_count, per_thread = 8, 40
    header = struct.Struct("!BHI")

    def message(thread: int, index: int) -> bytes:
        size = 200_000 if index % 10 == 3 else (index * 4099) % 20000
        return header.pack(thread, index, size) + bytes([thread]) * size

    with tunnel(cert, echo) as outer:
        tls = connected(outer, cert)
        errors: list[BaseException] = []
        start = threading.Barrier(threads_count)

        def writer(thread: int) -> None:
            try:
                start.wait()
                for index in range(per_thread):
                    tls.sendall(message(thread, index))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        writers = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(threads_count)]
        for thread in writers:
            thread.start()
        next_index = [0] * threads_count
        for _ in range(threads_count * per_thread):
            thread, index, size = header.unpack(recv_exactly(tls, header.size))
            assert index == next_index[thread]
            assert recv_exactly(tls, size) == bytes([thread]) * size
            next_index[thread] += 1
        for thread in writers:
            thread.join(10)
        assert not errors, errors
        assert tls.pending() == 0


def test_bad_certificate_same_error_as_sslsocket(cert: tuple[str, str], tmp_path: Path) -> None:
    """Trusting another certificate: the error of a direct SSLSocket handshake, raised as is."""
    (tmp_path / "other").mkdir()
    other = self_signed_cert(str(tmp_path / "other"), "localhost")
    with tunnel(cert, echo) as outer:
        with pytest.raises(ssl.SSLError) as inner_error:
            TLSInTLSSocket(outer, client_context(other), "localhost").do_handshake(lambda: 5.0)
    a, b = socket.socketpair()
    server = threading.Thread(target=_try_accept, args=(b, cert), daemon=True)
    server.start()
    try:
        with pytest.raises(ssl.SSLError) as direct_error:
            client_context(other).wrap_socket(a, server_hostname="localhost")
    finally:
        _close_quietly(a, b)
        server.join(5)
    assert type(inner_error.value) is type(direct_error.value) is ssl.SSLCertVerificationError
    assert inner_error.value.verify_message == direct_error.value.verify_message  # type: ignore[attr-defined]


def _try_accept(sock: socket.socket, cert: tuple[str, str]) -> None:
    with contextlib.suppress(OSError):
        server_ssl_context(*cert).wrap_socket(sock, server_side=True)


def test_handshake_timeout(cert: tuple[str, str]) -> None:
    """The server end of the tunnel never speaks TLS: socket.timeout once remaining() runs out."""
    silent_end, client_end = socket.socketpair()
    started = time.monotonic()
    try:
        with pytest.raises(socket.timeout):
            TLSInTLSSocket(_PlainOuter(client_end), client_context(cert), "localhost").do_handshake(lambda: 0.3)  # type: ignore[arg-type]
    finally:
        _close_quietly(silent_end, client_end)
    assert time.monotonic() - started < 3


class _PlainOuter:
    """Stands for the outer socket where only its reads and writes matter."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)


def test_shutdown_wakes_a_blocked_reader(cert: tuple[str, str]) -> None:
    """The connection's _shutdown() reaches the outer socket, which wakes a thread in recv()."""
    with tunnel(cert, echo) as outer:
        tls = connected(outer, cert)
        outcome: list[object] = []

        def reader() -> None:
            try:
                outcome.append(tls.recv(10))
            except OSError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        time.sleep(0.2)
        assert thread.is_alive()
        _shutdown(tls)  # type: ignore[arg-type]
        thread.join(5)
        assert not thread.is_alive()
        assert outcome and (outcome[0] == b"" or isinstance(outcome[0], OSError))
        with pytest.raises(OSError):
            tls.sendall(b"after shutdown")
