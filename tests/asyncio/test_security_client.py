"""Security of the asyncio client and server (issue 16): redirects, header injection, secrets in logs.

Every test runs real wsio peers on 127.0.0.1.
"""

from __future__ import annotations

import base64
import logging
import socket
import ssl
import time
from typing import Any

import pytest

import wsio
import wsio.asyncio.client
from wsio import InvalidURI, RedirectError, connect, serve, unix_serve
from wsio.protocol.http11 import Headers, Request, Response

from tests.helpers import self_signed_cert

from .conftest import RawClient

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
    return int(server.sockets[0].getsockname()[1])


async def close_at_once(ws: wsio.ServerConnection) -> None:
    await ws.close()


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
async def test_redirect_to_another_origin_sends_no_credentials(target_host: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wsio.client")
    target = Recorder()
    async with serve(close_at_once, "127.0.0.1", 0, process_request=target) as second:
        second_port = port_of(second)
        first = Recorder({"/start": f"ws://{target_host}:{second_port}/final"})
        async with serve(close_at_once, "127.0.0.1", 0, process_request=first) as server:
            uri = f"ws://user:{SECRET}@127.0.0.1:{port_of(server)}/start"
            async with connect(uri, additional_headers=CREDENTIALS) as ws:
                await ws.wait_closed()
    # The first origin got everything; the second, nothing of it.
    assert first.headers("/start")["Cookie"] == f"session={SECRET}"
    assert_no_credentials(target.headers("/final"))
    assert target.headers("/final")["Host"] == f"{target_host}:{second_port}"
    assert (
        "another origin: not sending Authorization, Cookie, Proxy-Authorization, X-Api-Key, the user info of the URI"
        in caplog.text
    )
    assert SECRET not in caplog.text


async def test_redirect_on_the_same_origin_keeps_credentials() -> None:
    async with serve(close_at_once, "127.0.0.1", 0, process_request=(recorder := Recorder())) as server:
        port = port_of(server)
        recorder.routes = {"/start": "/relative", "/relative": f"ws://127.0.0.1:{port}/absolute"}
        uri = f"ws://user:{SECRET}@127.0.0.1:{port}/start"
        async with connect(uri, additional_headers={"Cookie": f"session={SECRET}", "X-Api-Key": SECRET}) as ws:
            await ws.wait_closed()
    for path in ("/relative", "/absolute"):
        headers = recorder.headers(path)
        assert headers["Authorization"] == BASIC  # from the user info, also after an absolute Location
        assert headers["Cookie"] == f"session={SECRET}" and headers["X-Api-Key"] == SECRET


async def test_redirect_back_to_the_first_origin_gets_credentials_again() -> None:
    async with serve(close_at_once, "127.0.0.1", 0, process_request=(first := Recorder())) as server:
        async with serve(close_at_once, "127.0.0.1", 0, process_request=(second := Recorder())) as other:
            second.routes = {"/detour": f"ws://127.0.0.1:{port_of(server)}/final"}
            first.routes = {"/start": f"ws://127.0.0.1:{port_of(other)}/detour"}
            async with connect(f"ws://127.0.0.1:{port_of(server)}/start", additional_headers=CREDENTIALS) as ws:
                await ws.wait_closed()
    assert_no_credentials(second.headers("/detour"))
    assert first.headers("/final")["Authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize("pin", ["host", "port", "sock"])
async def test_redirect_to_another_origin_is_refused_when_the_caller_fixed_where_to_connect(pin: str) -> None:
    target = Recorder()
    async with serve(close_at_once, "127.0.0.1", 0, process_request=target) as second:
        first = Recorder({"/": f"ws://127.0.0.1:{port_of(second)}/"})
        async with serve(close_at_once, "127.0.0.1", 0, process_request=first) as server:
            port = port_of(server)
            options: dict[str, Any] = {
                "host": {"host": "127.0.0.1"},
                "port": {"port": port},
                "sock": {"sock": socket.create_connection(("127.0.0.1", port))},
            }[pin]
            with pytest.raises(RedirectError, match=f"connect\\(\\) was given {pin}=") as excinfo:
                await connect(f"ws://127.0.0.1:{port}/", additional_headers=CREDENTIALS, **options)
            assert "another origin refused" in str(excinfo.value)
    assert first.requests and target.requests == []


async def test_redirect_to_another_origin_is_refused_with_server_hostname(tmp_path: Any) -> None:
    cert, key = self_signed_cert(str(tmp_path), "wsio.test")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=cert)
    target = Recorder()
    async with serve(close_at_once, "127.0.0.1", 0, ssl=server_context, process_request=target) as second:
        first = Recorder({"/": f"wss://127.0.0.1:{port_of(second)}/"})
        async with serve(close_at_once, "127.0.0.1", 0, ssl=server_context, process_request=first) as server:
            with pytest.raises(RedirectError, match="connect\\(\\) was given server_hostname="):
                await connect(f"wss://127.0.0.1:{port_of(server)}/", ssl=client_context, server_hostname="wsio.test")
    assert first.requests and target.requests == []


async def test_redirect_on_the_same_origin_with_a_socket_connects_to_the_uri() -> None:
    async with serve(close_at_once, "127.0.0.1", 0, process_request=(recorder := Recorder({"/": "/next"}))) as server:
        sock = socket.create_connection(("127.0.0.1", port_of(server)))
        async with connect(f"ws://127.0.0.1:{port_of(server)}/", sock=sock, additional_headers=CREDENTIALS) as ws:
            await ws.wait_closed()
    assert recorder.headers("/next")["X-Api-Key"] == SECRET


async def test_redirect_over_a_unix_socket(tmp_path: Any) -> None:
    target = Recorder()
    async with serve(close_at_once, "127.0.0.1", 0, process_request=target) as second:
        routes = {"/away": f"ws://127.0.0.1:{port_of(second)}/", "/here": "/there"}
        path = f"{tmp_path}/ws.sock"
        async with unix_serve(close_at_once, path, process_request=(recorder := Recorder(routes))):
            with pytest.raises(RedirectError, match="a Unix socket"):
                await wsio.unix_connect(path, "ws://localhost/away", additional_headers=CREDENTIALS)
            async with wsio.unix_connect(path, "ws://localhost/here", additional_headers=CREDENTIALS) as ws:
                await ws.wait_closed()
    assert target.requests == []
    assert recorder.headers("/there")["X-Api-Key"] == SECRET


async def test_redirect_from_wss_to_ws_is_still_refused(tmp_path: Any) -> None:
    cert, key = self_signed_cert(str(tmp_path), "localhost")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    target = Recorder()
    async with serve(close_at_once, "127.0.0.1", 0, process_request=target) as plain:
        first = Recorder({"/": f"ws://localhost:{port_of(plain)}/"})
        async with serve(close_at_once, "127.0.0.1", 0, ssl=server_context, process_request=first) as server:
            context = ssl.create_default_context(cafile=cert)
            with pytest.raises(RedirectError, match="wss:// to ws:// refused"):
                await connect(f"wss://localhost:{port_of(server)}/", ssl=context, additional_headers=CREDENTIALS)
    assert first.requests and target.requests == []


# -- header injection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"additional_headers": {"X-Api-Key": "key\r\nX-Evil: 1"}},
        {"additional_headers": [("Authorization", "Bearer x\nX-Evil: 1")]},
        {"extra_headers": {"Cookie": "a=1\r\n\r\nGET / HTTP/1.1"}},
        {"origin": "https://example.com\r\nX-Evil: 1"},
        {"user_agent_header": "agent\r\nX-Evil: 1"},
    ],
)
async def test_header_with_crlf_raises_value_error_at_once(kwargs: dict[str, Any]) -> None:
    async with serve(close_at_once, "127.0.0.1", 0, process_request=(recorder := Recorder())) as server:
        start = time.monotonic()
        with pytest.raises(ValueError, match="header value"):
            async with connect(f"ws://127.0.0.1:{port_of(server)}/", open_timeout=3, **kwargs):
                pass
        assert time.monotonic() - start < 1
    assert recorder.requests == []


async def test_error_building_the_request_reaches_the_caller_at_once() -> None:
    # An invalid subprotocol fails when the request is built, on the open
    # connection: connect() raises it, instead of the event loop logging it
    # and connect() waiting for open_timeout (the conftest fails on loop errors).
    async with serve(close_at_once, "127.0.0.1", 0) as server:
        start = time.monotonic()
        with pytest.raises(ValueError, match="invalid subprotocol"):
            await connect(f"ws://127.0.0.1:{port_of(server)}/", subprotocols=["two words"], open_timeout=3)
        assert time.monotonic() - start < 1


# -- ssl= --------------------------------------------------------------------------------------


async def test_ssl_false_with_wss_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="ssl=False goes with a ws:// URI, not wss://"):
        await connect("wss://127.0.0.1:1/", ssl=False)
    with pytest.raises(TypeError, match="ssl must be an ssl.SSLContext"):
        await connect("wss://127.0.0.1:1/", ssl="yes")
    async with serve(close_at_once, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/", ssl=False) as ws:
            await ws.wait_closed()


# -- response splitting through the reason phrase ---------------------------------------------


async def read_head(port: int, path: str = "/", headers: str = "") -> bytes:
    client = await RawClient.connect(port, path, headers, handshake=False)
    client.writer.write(RawClient.request(path, headers))
    try:
        return await client.reader.read(65536)
    finally:
        await client.close()


async def test_reason_phrase_with_crlf_from_process_request_gives_500(caplog: pytest.LogCaptureFixture) -> None:
    def split(connection: Any, request: Request) -> Response:
        return Response(200, "OK\r\nSet-Cookie: evil=1", Headers())

    async with serve(close_at_once, "127.0.0.1", 0, process_request=split) as server:
        head = await read_head(port_of(server))
    assert head.startswith(b"HTTP/1.1 500 ")
    assert b"Set-Cookie" not in head and b"evil" not in head
    assert "process_request or process_response failed" in caplog.text
    assert "reason phrase can't contain CR, LF" in caplog.text


async def test_reason_phrase_with_crlf_from_process_response_gives_500() -> None:
    def split(connection: Any, request: Request, response: Response) -> None:
        response.reason_phrase = "Switching Protocols\r\nSet-Cookie: evil=1"

    async with serve(close_at_once, "127.0.0.1", 0, process_response=split) as server:
        head = await read_head(port_of(server))
    assert head.startswith(b"HTTP/1.1 500 ") and b"Set-Cookie" not in head


# -- secrets in logs, errors and 400 bodies -------------------------------------------------------


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wsio._client_common, "BACKOFF_INITIAL_DELAY", 0.02)
    monkeypatch.setattr(wsio._client_common, "BACKOFF_MAX_DELAY", 0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_secrets_appear_in_no_log_line_error_or_400_body(caplog: pytest.LogCaptureFixture, fast_backoff: None) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    # A client retrying a URI with a password and a token.
    attempts = 0

    def retry_once(exc: Exception) -> Exception | None:
        nonlocal attempts
        attempts += 1
        return None if attempts == 1 else exc

    with pytest.raises(OSError) as refused:
        async for _ in connect(f"ws://user:{SECRET}@127.0.0.1:{free_port()}/?token={SECRET}", process_exception=retry_once):
            pass
    texts.append(str(refused.value))
    assert "retrying" in caplog.text

    # Redirects, with the token in the query of both URIs.
    async with serve(close_at_once, "127.0.0.1", 0) as second:
        routes = {f"/start?token={SECRET}": f"ws://localhost:{port_of(second)}/final?token={SECRET}"}
        async with serve(close_at_once, "127.0.0.1", 0, process_request=Recorder(routes)) as server:
            uri = f"ws://user:{SECRET}@127.0.0.1:{port_of(server)}/start?token={SECRET}"
            async with connect(uri, additional_headers=CREDENTIALS) as ws:
                await ws.wait_closed()

            # A malformed Authorization and Cookie: named, not echoed.
            for header in (f"Authorization: Bearer {SECRET}\x01\r\n", f"Cookie: a={SECRET}\x7f\r\n"):
                head = await read_head(port_of(server), f"/?token={SECRET}", header)
                assert head.startswith(b"HTTP/1.1 400 ")
                texts.append(head.decode("latin-1"))
    assert "redirected from ws://user:***@127.0.0.1" in caplog.text
    assert "connection open, path /final?token=***" in caplog.text
    assert "invalid character in Authorization header value" in caplog.text
    assert "invalid character in Cookie header value" in texts[-1]

    # Error texts.
    with pytest.raises(InvalidURI) as invalid:
        await connect(f"ws://user:{SECRET}@127.0.0.1:port/")
    texts.append(str(invalid.value))
    with pytest.raises(ValueError) as injected:
        connect("ws://127.0.0.1:1/", additional_headers={"Authorization": f"Bearer {SECRET}\r\n"})
    texts.append(str(injected.value))

    everything = caplog.text + "\n".join(texts)
    assert SECRET not in everything
    assert BASIC.split()[1] not in everything
