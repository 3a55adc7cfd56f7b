"""Security of the thread client and server (issue 16): redirects, header injection, secrets in logs.

Every test runs real wsio peers on 127.0.0.1.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import ssl
import tempfile
import threading
import time
from typing import Any

import pytest

import wsio.asyncio.client
from wsio import InvalidURI, RedirectError
from wsio.protocol.http11 import Headers, Request, Response
from wsio.sync import connect, unix_connect, unix_serve
from wsio.sync.client import reconnect

from .helpers import run_server, self_signed_cert, server_ssl_context, uri

pytestmark = pytest.mark.timeout(60)

#: Values that must never leave the first origin nor reach a log.
SECRET = "s3cr3t-VALUE"
CREDENTIALS = {
    "Authorization": f"Bearer {SECRET}",
    "Cookie": f"session={SECRET}",
    "Proxy-Authorization": f"Basic {SECRET}",
    "X-Api-Key": SECRET,
}
BASIC = "Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode()


def port_of(server: Any) -> int:
    return int(server.socket.getsockname()[1])


def close_at_once(ws: Any) -> None:
    ws.close()


class Recorder:
    """A process_request that records each request and answers with ``routes[path]`` if any."""

    def __init__(self, routes: dict[str, str] | None = None) -> None:
        self.requests: list[Request] = []
        self.routes = routes or {}

    def __call__(self, connection: Any, request: Request) -> Any:
        self.requests.append(request)
        location = self.routes.get(request.path)
        return None if location is None else (302, {"Location": location}, b"")

    def headers(self, path: str) -> Headers:
        (request,) = [request for request in self.requests if request.path == path]
        return request.headers


def assert_no_credentials(headers: Headers) -> None:
    for name in ("Authorization", "Cookie", "Proxy-Authorization", "X-Api-Key"):
        assert name not in headers
    assert SECRET not in str(headers)


# -- redirects and credentials ---------------------------------------------------------


@pytest.mark.parametrize("target_host", ["127.0.0.1", "localhost"])
def test_redirect_to_another_origin_sends_no_credentials(target_host: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wsio.client")
    target = Recorder()
    with run_server(close_at_once, process_request=target) as second:
        first = Recorder({"/start": f"ws://{target_host}:{port_of(second)}/final"})
        with run_server(close_at_once, process_request=first) as server:
            with connect(f"ws://user:{SECRET}@127.0.0.1:{port_of(server)}/start", additional_headers=CREDENTIALS) as ws:
                ws.wait_closed(5)
            assert target.headers("/final")["Host"] == f"{target_host}:{port_of(second)}"
    assert first.headers("/start")["Cookie"] == f"session={SECRET}"
    assert_no_credentials(target.headers("/final"))
    assert (
        "another origin: not sending Authorization, Cookie, Proxy-Authorization, X-Api-Key, the user info of the URI"
        in caplog.text
    )
    assert SECRET not in caplog.text


def test_websocket_client_api_follows_a_redirect_to_another_origin_without_credentials() -> None:
    # create_connection() lets wsio's client open the socket, so a redirect to
    # another origin is followed (as websocket-client does) but carries none of
    # the caller's headers, cookie or URI credentials.
    from wsio.websocket_client import create_connection

    target = Recorder()
    with run_server(close_at_once, process_request=target) as second:
        first = Recorder({"/start": f"ws://localhost:{port_of(second)}/final"})
        with run_server(close_at_once, process_request=first) as server:
            ws = create_connection(
                f"ws://user:{SECRET}@127.0.0.1:{port_of(server)}/start",
                header=[f"X-Api-Key: {SECRET}", f"Authorization: Bearer {SECRET}"],
                cookie=f"session={SECRET}",
            )
            ws.close()
    assert first.headers("/start")["Cookie"] == f"session={SECRET}"
    assert_no_credentials(target.headers("/final"))


def test_redirect_on_the_same_origin_keeps_credentials() -> None:
    recorder = Recorder()
    with run_server(close_at_once, process_request=recorder) as server:
        port = port_of(server)
        recorder.routes = {"/start": "/relative", "/relative": f"ws://127.0.0.1:{port}/absolute"}
        with connect(f"ws://user:{SECRET}@127.0.0.1:{port}/start", additional_headers={"Cookie": SECRET}) as ws:
            ws.wait_closed(5)
    for path in ("/relative", "/absolute"):
        headers = recorder.headers(path)
        assert headers["Authorization"] == BASIC and headers["Cookie"] == SECRET


@pytest.mark.parametrize("pin", ["host", "port", "sock"])
def test_redirect_to_another_origin_is_refused_when_the_caller_fixed_where_to_connect(pin: str) -> None:
    target = Recorder()
    with run_server(close_at_once, process_request=target) as second:
        first = Recorder({"/": f"ws://127.0.0.1:{port_of(second)}/"})
        with run_server(close_at_once, process_request=first) as server:
            port = port_of(server)
            options: dict[str, Any] = {
                "host": {"host": "127.0.0.1"},
                "port": {"port": port},
                "sock": {"sock": socket.create_connection(("127.0.0.1", port))},
            }[pin]
            with pytest.raises(RedirectError, match=f"connect\\(\\) was given {pin}="):
                connect(f"ws://127.0.0.1:{port}/", additional_headers=CREDENTIALS, **options).__enter__()
    assert first.requests and target.requests == []


def test_redirect_on_the_same_origin_with_a_socket_connects_to_the_uri() -> None:
    recorder = Recorder({"/": "/next"})
    with run_server(close_at_once, process_request=recorder) as server:
        sock = socket.create_connection(("127.0.0.1", port_of(server)))
        with connect(uri(server), sock=sock, additional_headers=CREDENTIALS) as ws:
            ws.wait_closed(5)
    assert recorder.headers("/next")["X-Api-Key"] == SECRET


def test_redirect_over_a_unix_socket() -> None:
    target = Recorder()
    with run_server(close_at_once, process_request=target) as second, tempfile.TemporaryDirectory() as directory:
        recorder = Recorder({"/away": f"ws://127.0.0.1:{port_of(second)}/", "/here": "/there"})
        path = os.path.join(directory, "ws.sock")
        server = unix_serve(close_at_once, path, process_request=recorder)
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            with pytest.raises(RedirectError, match="a Unix socket"):
                unix_connect(path, "ws://localhost/away", additional_headers=CREDENTIALS).__enter__()
            with unix_connect(path, "ws://localhost/here", additional_headers=CREDENTIALS) as ws:
                ws.wait_closed(5)
        finally:
            server.shutdown()
            thread.join(5)
    assert target.requests == []
    assert recorder.headers("/there")["X-Api-Key"] == SECRET


def test_redirect_to_another_origin_is_refused_with_server_hostname() -> None:
    with tempfile.TemporaryDirectory() as directory:
        cert, key = self_signed_cert(directory, "wsio.test")
        context = ssl.create_default_context(cafile=cert)
        target = Recorder()
        with run_server(close_at_once, ssl=server_ssl_context(cert, key), process_request=target) as second:
            first = Recorder({"/": f"wss://127.0.0.1:{port_of(second)}/"})
            with run_server(close_at_once, ssl=server_ssl_context(cert, key), process_request=first) as server:
                with pytest.raises(RedirectError, match="connect\\(\\) was given server_hostname="):
                    connect(uri(server, scheme="wss"), ssl=context, server_hostname="wsio.test").__enter__()
    assert first.requests and target.requests == []


# -- header injection and ssl= ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"additional_headers": {"X-Api-Key": "key\r\nX-Evil: 1"}},
        {"extra_headers": [("Cookie", "a=1\r\n\r\nGET / HTTP/1.1")]},
        {"origin": "https://example.com\nX-Evil: 1"},
    ],
)
def test_header_with_crlf_raises_value_error_at_once(kwargs: dict[str, Any]) -> None:
    # Before any connection is opened: nothing reaches the listener.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(ValueError, match="header value"):
            with connect(f"ws://127.0.0.1:{port}/", **kwargs):
                pass
        assert time.monotonic() - start < 1
        listener.settimeout(0.2)
        with pytest.raises(socket.timeout):
            listener.accept()


def test_ssl_false_with_wss_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="ssl=False goes with a ws:// URI, not wss://"):
        connect("wss://127.0.0.1:1/", ssl=False).__enter__()
    with pytest.raises(TypeError, match="ssl must be an ssl.SSLContext"):
        connect("wss://127.0.0.1:1/", ssl="yes").__enter__()  # type: ignore[arg-type]
    with run_server(close_at_once) as server:
        with connect(uri(server), ssl=False) as ws:
            ws.wait_closed(5)


# -- response splitting through the reason phrase ---------------------------------------------


def read_head(port: int, path: str = "/", headers: str = "") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n".encode("latin-1")
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_reason_phrase_with_crlf_from_process_request_gives_500(caplog: pytest.LogCaptureFixture) -> None:
    def split(connection: Any, request: Request) -> Response:
        return Response(200, "OK\r\nSet-Cookie: evil=1", Headers())

    with run_server(close_at_once, process_request=split) as server:
        head = read_head(port_of(server))
    assert head.startswith(b"HTTP/1.1 500 ")
    assert b"Set-Cookie" not in head and b"evil" not in head
    assert "process_request or process_response failed" in caplog.text
    assert "reason phrase can't contain CR, LF" in caplog.text


def test_reason_phrase_with_crlf_from_process_response_gives_500() -> None:
    def split(connection: Any, request: Request, response: Response) -> None:
        response.reason_phrase = "Switching Protocols\r\nSet-Cookie: evil=1"

    with run_server(close_at_once, process_response=split) as server:
        head = read_head(port_of(server))
    assert head.startswith(b"HTTP/1.1 500 ") and b"Set-Cookie" not in head


# -- secrets in logs, errors and 400 bodies -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_secrets_appear_in_no_log_line_error_or_400_body(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wsio._client_common, "BACKOFF_INITIAL_DELAY", 0.02)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    attempts = 0

    def retry_once(exc: Exception) -> Exception | None:
        nonlocal attempts
        attempts += 1
        return None if attempts == 1 else exc

    with pytest.raises(OSError) as refused:
        for _ in reconnect(f"ws://user:{SECRET}@127.0.0.1:{free_port()}/?token={SECRET}", process_exception=retry_once):
            pass
    texts.append(str(refused.value))
    assert "retrying" in caplog.text

    with run_server(close_at_once) as second:
        routes = {f"/start?token={SECRET}": f"ws://localhost:{port_of(second)}/final?token={SECRET}"}
        with run_server(close_at_once, process_request=Recorder(routes)) as server:
            uri_with_secrets = f"ws://user:{SECRET}@127.0.0.1:{port_of(server)}/start?token={SECRET}"
            with connect(uri_with_secrets, additional_headers=CREDENTIALS) as ws:
                ws.wait_closed(5)
            for header in (f"Authorization: Bearer {SECRET}\x01\r\n", f"Cookie: a={SECRET}\x7f\r\n"):
                head = read_head(port_of(server), f"/?token={SECRET}", header)
                assert head.startswith(b"HTTP/1.1 400 ")
                texts.append(head.decode("latin-1"))
    assert "redirected from ws://user:***@127.0.0.1" in caplog.text
    assert "connection open, path /final?token=***" in caplog.text
    assert "invalid character in Authorization header value" in caplog.text
    assert "invalid character in Cookie header value" in texts[-1]

    with pytest.raises(InvalidURI) as invalid:
        connect(f"ws://user:{SECRET}@127.0.0.1:port/").__enter__()
    texts.append(str(invalid.value))

    everything = caplog.text + "\n".join(texts)
    assert SECRET not in everything
    assert BASIC.split()[1] not in everything
