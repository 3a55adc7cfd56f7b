"""The thread client, wss:// through an https:// proxy: TLS with the server inside TLS with the proxy.

The proxy is tinyproxy behind a TLS front (see conftest.py); the server is a
wsio.sync TLS server with a self-signed certificate for ``localhost``. Each
test that connects proves the tunnel was used: the server sees the proxy's
side of it, and tinyproxy logs the CONNECT.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator

import pytest

import wsio
from wsio import sync as websocket
from wsio.sync.client import connect as sync_connect
from wsio.sync.tls_in_tls import TLSInTLSSocket
from wsio.exceptions import CertificateVerificationError

from tests.helpers import ROOT
from tests.sync.helpers import raw_server, run_server, server_ssl_context

from .conftest import Certificates, RunningProxy, tls_front

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def https_proxy(tinyproxy: Any, certificates: Certificates) -> Iterator[Callable[[int], tuple[RunningProxy, str]]]:
    """``https_proxy(target_port)``: tinyproxy behind a TLS front; returns it and the https:// proxy URI."""
    with contextlib.ExitStack() as stack:

        def start(target_port: int) -> tuple[RunningProxy, str]:
            proxy = tinyproxy(connect_ports=[target_port])
            front_context = server_ssl_context(certificates.cert_path, certificates.key_path)
            front_port = stack.enter_context(tls_front(proxy.port, front_context))
            return proxy, f"https://localhost:{front_port}"

        yield start


def proxied_connect(certificates: Certificates, server_port: int, proxy_uri: str, **kwargs: Any) -> sync_connect:
    kwargs.setdefault("ssl", certificates.client_context())
    return sync_connect(f"wss://localhost:{server_port}/", proxy=proxy_uri, proxy_ssl=certificates.client_context(), **kwargs)


def assert_tunnelled(ws: Any, proxy_uri: str) -> None:
    """TLS inside TLS, to the proxy's port; the server saw another address than the client's."""
    seen_by_server = ws.recv(timeout=10)
    assert isinstance(ws.socket, TLSInTLSSocket)
    assert isinstance(ws.socket.outer_socket, ssl.SSLSocket)
    assert ws.remote_address[1] == int(proxy_uri.rsplit(":", 1)[1])
    assert seen_by_server != f"127.0.0.1:{ws.local_address[1]}"
    # The inner session is the server's: its certificate, not the proxy's TLS front.
    assert ws.socket.server_hostname == "localhost"
    assert dict(item[0] for item in ws.socket.getpeercert()["subject"])["commonName"] == "localhost"
    assert ws.socket.version() is not None and ws.socket.cipher() is not None


@pytest.mark.parametrize("size", [0, 16, 65536, 1 << 20])
def test_echo_sizes(https_proxy: Any, wss_server: int, certificates: Certificates, size: int) -> None:
    proxy, proxy_uri = https_proxy(wss_server)
    payload = os.urandom(size)
    text = "é" * (size // 2)
    with proxied_connect(certificates, wss_server, proxy_uri) as ws:
        assert_tunnelled(ws, proxy_uri)
        ws.send(payload)
        assert ws.recv(timeout=20) == payload
        ws.send(text)
        assert ws.recv(timeout=20) == text
    assert ws.closed
    assert f"localhost:{wss_server}" in proxy.log()


def test_eight_threads_send_while_the_reader_receives(https_proxy: Any, wss_server: int, certificates: Certificates) -> None:
    """Every message arrives whole, and each thread's messages in the order it sent them."""
    threads_count, per_thread = 8, 60
    proxy, proxy_uri = https_proxy(wss_server)

    def message(thread: int, index: int) -> str:
        # Mostly small; every 15th crosses the wrapper's 128 KiB encryption chunks.
        size = 300_000 if index % 15 == 7 else (index * 997) % 5000
        return f"{thread}:{index}:" + chr(ord("a") + thread) * size

    with proxied_connect(certificates, wss_server, proxy_uri, max_size=None) as ws:
        assert_tunnelled(ws, proxy_uri)
        errors: list[BaseException] = []
        start = threading.Barrier(threads_count)

        def sender(thread: int) -> None:
            try:
                start.wait()
                for index in range(per_thread):
                    ws.send(message(thread, index))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        senders = [threading.Thread(target=sender, args=(n,), daemon=True) for n in range(threads_count)]
        for thread in senders:
            thread.start()
        next_index = [0] * threads_count
        for _ in range(threads_count * per_thread):
            received = ws.recv(timeout=30)
            thread_text, index_text, _ = received.split(":", 2)
            thread, index = int(thread_text), int(index_text)
            assert index == next_index[thread], f"thread {thread}: got {index}, expected {next_index[thread]}"
            assert received == message(thread, index)
            next_index[thread] += 1
        for thread in senders:
            thread.join(10)
        assert not errors, errors
        assert next_index == [per_thread] * threads_count
        assert ws.ping().wait(10)
    assert f"localhost:{wss_server}" in proxy.log()


@pytest.fixture
def closing_server(certificates: Certificates) -> Iterator[tuple[int, list[tuple[Any, Any]]]]:
    """An echo server over TLS that closes with 4001 on "close me" and records how each connection closed."""
    seen: list[tuple[Any, Any]] = []

    def handler(ws: Any) -> None:
        try:
            for message in ws:
                if message == "close me":
                    ws.close(4001, "server says bye")
                else:
                    ws.send(message)
        except wsio.ConnectionClosed:
            pass
        seen.append((ws.close_code, ws.close_reason))

    context = server_ssl_context(certificates.cert_path, certificates.key_path)
    with run_server(handler, ssl=context) as server:
        yield server.socket.getsockname()[1], seen


def test_client_closes_with_code_and_reason(
    https_proxy: Any, closing_server: tuple[int, list[Any]], certificates: Certificates
) -> None:
    port, seen = closing_server
    _, proxy_uri = https_proxy(port)
    ws = proxied_connect(certificates, port, proxy_uri)._create()
    ws.send("ping?")
    assert ws.recv(timeout=10) == "ping?"
    started = time.monotonic()
    ws.close(4000, "client says bye")
    assert ws.closed and time.monotonic() - started < 5
    assert ws.close_code == 4000  # the server's echo of the code (without the reason)
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seen == [(4000, "client says bye")]


def test_server_closes_with_code_and_reason(
    https_proxy: Any, closing_server: tuple[int, list[Any]], certificates: Certificates
) -> None:
    port, _ = closing_server
    _, proxy_uri = https_proxy(port)
    with proxied_connect(certificates, port, proxy_uri) as ws:
        ws.send("close me")
        with pytest.raises(wsio.ConnectionClosedError) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "server says bye")
        assert ws.wait_closed(5)


@pytest.mark.parametrize("problem", ["untrusted", "wrong name"])
def test_bad_certificate_fails_as_direct(https_proxy: Any, wss_server: int, certificates: Certificates, problem: str) -> None:
    """The inner TLS handshake fails with the very error a direct wss:// connection gets."""
    _, proxy_uri = https_proxy(wss_server)
    if problem == "untrusted":
        uri, context = f"wss://localhost:{wss_server}/", ssl.create_default_context()
    else:  # trusted, but issued for localhost, not 127.0.0.1
        uri, context = f"wss://127.0.0.1:{wss_server}/", certificates.client_context()
    with pytest.raises(Exception) as direct:
        sync_connect(uri, ssl=context, proxy=None)._create()
    with pytest.raises(Exception) as proxied:
        sync_connect(uri, ssl=context, proxy=proxy_uri, proxy_ssl=certificates.client_context())._create()
    # wsio's CertificateVerificationError: an ssl.SSLCertVerificationError whose message says what to do.
    assert type(proxied.value) is type(direct.value) is CertificateVerificationError
    assert isinstance(proxied.value, ssl.SSLCertVerificationError)
    assert proxied.value.verify_message == direct.value.verify_message  # type: ignore[attr-defined]
    assert proxied.value.verify_code == direct.value.verify_code  # type: ignore[attr-defined]


def test_inner_handshake_timeout(https_proxy: Any, certificates: Certificates) -> None:
    """A server that accepts the tunnel and never answers TLS: TimeoutError within open_timeout."""
    release = threading.Event()

    def silent(sock: Any) -> None:
        with sock:
            release.wait(10)

    with raw_server(silent) as port:
        _, proxy_uri = https_proxy(port)
        started = time.monotonic()
        try:
            with pytest.raises(TimeoutError, match="TLS handshake"):
                proxied_connect(certificates, port, proxy_uri, open_timeout=1)._create()
        finally:
            release.set()
        assert time.monotonic() - started < 4


# -- the websocket-client API and the command ----------------------------------------------------------


def test_create_connection_https_proxy_from_environment(
    https_proxy: Any, wss_server: int, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, proxy_uri = https_proxy(wss_server)
    # websocket-client's proxy_type has no "https": an https:// proxy comes from a URI.
    monkeypatch.setenv("https_proxy", proxy_uri)
    monkeypatch.setenv("SSL_CERT_FILE", certificates.cert_path)  # the default context then trusts the proxy
    ws = websocket.create_connection(f"wss://localhost:{wss_server}/", timeout=10, sslopt={"ca_certs": certificates.cert_path})
    try:
        seen_by_server = ws.recv()
        assert isinstance(ws.sock, TLSInTLSSocket) and ws.is_ssl()
        assert ws.sock.getpeername()[1] == int(proxy_uri.rsplit(":", 1)[1])
        assert seen_by_server != f"127.0.0.1:{ws.sock.getsockname()[1]}"
        ws.send("through https")
        assert ws.recv() == "through https"
        ws.send_binary(b"\x00" * 70000)
        assert ws.recv() == b"\x00" * 70000
    finally:
        ws.close()
    assert f"localhost:{wss_server}" in proxy.log()


def test_create_connection_proxy_option(https_proxy: Any, wss_server: int, certificates: Certificates) -> None:
    proxy, proxy_uri = https_proxy(wss_server)
    ws = websocket.create_connection(
        f"wss://localhost:{wss_server}/",
        timeout=10,
        sslopt={"ca_certs": certificates.cert_path},
        proxy=proxy_uri,
        proxy_ssl=certificates.client_context(),
    )
    try:
        ws.recv()
        ws.send("hi")
        assert ws.recv() == "hi"
    finally:
        ws.close()
    assert f"localhost:{wss_server}" in proxy.log()


def test_cli_wss_through_https_proxy(https_proxy: Any, wss_server: int, certificates: Certificates) -> None:
    proxy, proxy_uri = https_proxy(wss_server)
    result = subprocess.run(
        [sys.executable, "-m", "wsio", f"wss://localhost:{wss_server}/", "--proxy", proxy_uri],
        input="over TLS inside TLS\n",
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={**os.environ, "SSL_CERT_FILE": certificates.cert_path},  # trusts both the proxy and the server
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "< over TLS inside TLS"
    assert f"localhost:{wss_server}" in proxy.log()
