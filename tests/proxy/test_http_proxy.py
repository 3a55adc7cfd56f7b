"""The asyncio and thread clients through tinyproxy (HTTP CONNECT), and tinyproxy behind a TLS front (https://).

Each test proves the bytes went through the proxy: the server reports the
address it sees, which is the proxy's side of the tunnel, not the client's
socket; and tinyproxy's log lists the CONNECT.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import pytest

import wsio
import wsio.sync
from wsio.asyncio.client import connect as async_connect
from wsio.asyncio.client import process_exception
from wsio.sync.client import connect as sync_connect

from tests.helpers import free_port
from tests.sync.helpers import server_ssl_context

from .conftest import Certificates, RunningProxy, tls_front

pytestmark = pytest.mark.timeout(60)


def assert_proxied_sync(ws: Any, proxy_port: int) -> None:
    """The server saw the proxy's end of the tunnel; the client talks to the proxy's port."""
    seen_by_server = ws.recv(timeout=5)
    client_port = ws.local_address[1]
    assert ws.remote_address[1] == proxy_port
    assert seen_by_server != f"127.0.0.1:{client_port}"
    ws.send("hello")
    assert ws.recv(timeout=5) == "hello"


async def assert_proxied_async(ws: Any, proxy_port: int) -> None:
    seen_by_server = await asyncio.wait_for(ws.recv(), 5)
    assert ws.remote_address[1] == proxy_port
    assert seen_by_server != f"127.0.0.1:{ws.local_address[1]}"
    await ws.send("hello")
    assert await asyncio.wait_for(ws.recv(), 5) == "hello"


def wss_context(certificates: Certificates) -> ssl.SSLContext:
    return certificates.client_context()


# -- CONNECT, ws:// and wss:// -------------------------------------------------------------------


def test_sync_ws_through_http_proxy(tinyproxy: Any, ws_server: int, caplog: pytest.LogCaptureFixture) -> None:
    proxy: RunningProxy = tinyproxy(connect_ports=[ws_server])
    with caplog.at_level(logging.INFO, logger="wsio.client"):
        with sync_connect(f"ws://127.0.0.1:{ws_server}/", proxy=proxy.uri()) as ws:
            assert_proxied_sync(ws, proxy.port)
    assert f"CONNECT 127.0.0.1:{ws_server}" in proxy.log() or f"127.0.0.1:{ws_server}" in proxy.log()
    assert f"through proxy http://127.0.0.1:{proxy.port}" in caplog.text


def test_sync_wss_through_http_proxy(tinyproxy: Any, wss_server: int, certificates: Certificates) -> None:
    proxy = tinyproxy(connect_ports=[wss_server])
    with sync_connect(f"wss://localhost:{wss_server}/", proxy=proxy.uri(), ssl=wss_context(certificates)) as ws:
        assert_proxied_sync(ws, proxy.port)
        assert isinstance(ws.socket, ssl.SSLSocket)
    assert f"localhost:{wss_server}" in proxy.log()


async def test_async_ws_through_http_proxy(tinyproxy: Any, ws_server: int) -> None:
    proxy = tinyproxy(connect_ports=[ws_server])
    async with async_connect(f"ws://127.0.0.1:{ws_server}/", proxy=proxy.uri()) as ws:
        await assert_proxied_async(ws, proxy.port)
    assert f"127.0.0.1:{ws_server}" in proxy.log()


async def test_async_wss_through_http_proxy(tinyproxy: Any, wss_server: int, certificates: Certificates) -> None:
    proxy = tinyproxy(connect_ports=[wss_server])
    async with async_connect(f"wss://localhost:{wss_server}/", proxy=proxy.uri(), ssl=wss_context(certificates)) as ws:
        await assert_proxied_async(ws, proxy.port)
        assert ws.transport.get_extra_info("ssl_object") is not None
    assert f"localhost:{wss_server}" in proxy.log()


# -- Basic auth -------------------------------------------------------------------------------------


def test_sync_basic_auth_accepted(tinyproxy: Any, ws_server: int) -> None:
    proxy = tinyproxy(connect_ports=[ws_server], auth=True)
    with sync_connect(f"ws://127.0.0.1:{ws_server}/", proxy=proxy.uri()) as ws:
        assert_proxied_sync(ws, proxy.port)


async def test_async_basic_auth_accepted(tinyproxy: Any, ws_server: int) -> None:
    proxy = tinyproxy(connect_ports=[ws_server], auth=True)
    async with async_connect(f"ws://127.0.0.1:{ws_server}/", proxy=proxy.uri()) as ws:
        await assert_proxied_async(ws, proxy.port)


def test_sync_wrong_password(tinyproxy: Any, ws_server: int) -> None:
    proxy = tinyproxy(connect_ports=[ws_server], auth=True)
    with pytest.raises(wsio.InvalidProxy) as info:
        sync_connect(f"ws://127.0.0.1:{ws_server}/", proxy=proxy.uri(password="Hunter2x"), open_timeout=10)._create()
    # tinyproxy answers 407 without credentials but 401 to wrong ones; the status is the proxy's.
    assert info.value.proxy_status == 401
    assert "wrong user name or password" in str(info.value)
    assert "Hunter2x" not in str(info.value) and "***" in str(info.value)
    assert process_exception(info.value) is info.value  # not worth retrying


async def test_async_missing_credentials_is_407(tinyproxy: Any, ws_server: int) -> None:
    proxy = tinyproxy(connect_ports=[ws_server], auth=True)
    with pytest.raises(wsio.InvalidProxy) as info:
        await async_connect(f"ws://127.0.0.1:{ws_server}/", proxy=f"http://127.0.0.1:{proxy.port}")
    assert info.value.proxy_status == 407
    assert "user name and password" in str(info.value)


async def test_async_reconnecting_iterator_raises_407_at_once(tinyproxy: Any, ws_server: int) -> None:
    proxy = tinyproxy(connect_ports=[ws_server], auth=True)
    with pytest.raises(wsio.InvalidProxy):
        async for _ in async_connect(f"ws://127.0.0.1:{ws_server}/", proxy=proxy.uri(password="nope")):
            pytest.fail("connected with a wrong password")


# -- refusals and failures ----------------------------------------------------------------------------


def test_sync_forbidden_port(tinyproxy: Any, ws_server: int) -> None:
    proxy = tinyproxy(connect_ports=[ws_server + 1 if ws_server < 65535 else ws_server - 1])
    with pytest.raises(wsio.InvalidProxy) as info:
        sync_connect(f"ws://127.0.0.1:{ws_server}/", proxy=proxy.uri())._create()
    assert info.value.proxy_status == 403
    assert "403" in str(info.value)


async def test_async_forbidden_port(tinyproxy: Any, ws_server: int) -> None:
    proxy = tinyproxy(connect_ports=[ws_server + 1 if ws_server < 65535 else ws_server - 1])
    with pytest.raises(wsio.InvalidProxy) as info:
        await async_connect(f"ws://127.0.0.1:{ws_server}/", proxy=proxy.uri())
    assert info.value.proxy_status == 403


def test_sync_target_down_is_the_proxys_5xx(tinyproxy: Any) -> None:
    proxy = tinyproxy()
    closed_port = free_port()
    with pytest.raises(wsio.InvalidProxy) as info:
        sync_connect(f"ws://127.0.0.1:{closed_port}/", proxy=proxy.uri())._create()
    assert info.value.proxy_status in (500, 502, 503, 504)
    assert process_exception(info.value) is None  # like a refused server: retried


def test_sync_proxy_down() -> None:
    port = free_port()
    with pytest.raises(wsio.InvalidProxy) as info:
        sync_connect("ws://127.0.0.1:1/", proxy=f"http://127.0.0.1:{port}")._create()
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert info.value.proxy_status is None
    assert f"127.0.0.1:{port}" in str(info.value)
    assert process_exception(info.value) is None


async def test_async_proxy_down() -> None:
    port = free_port()
    with pytest.raises(wsio.InvalidProxy) as info:
        await async_connect("ws://127.0.0.1:1/", proxy=f"http://u:pw@127.0.0.1:{port}")
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert "pw" not in str(info.value)
    assert process_exception(info.value) is None


# -- https:// proxies -----------------------------------------------------------------------------------


def test_sync_ws_through_https_proxy(tinyproxy: Any, ws_server: int, certificates: Certificates) -> None:
    proxy = tinyproxy(connect_ports=[ws_server])
    front_context = server_ssl_context(certificates.cert_path, certificates.key_path)
    with tls_front(proxy.port, front_context) as front_port:
        with sync_connect(
            f"ws://127.0.0.1:{ws_server}/", proxy=f"https://localhost:{front_port}", proxy_ssl=certificates.client_context()
        ) as ws:
            assert_proxied_sync(ws, front_port)
            assert isinstance(ws.socket, ssl.SSLSocket)  # TLS to the proxy
    assert f"127.0.0.1:{ws_server}" in proxy.log()


def test_sync_wss_through_https_proxy(tinyproxy: Any, wss_server: int, certificates: Certificates) -> None:
    """TLS to the proxy, CONNECT, then TLS to the server inside it (more in test_tls_in_tls_proxy.py)."""
    proxy = tinyproxy(connect_ports=[wss_server])
    front_context = server_ssl_context(certificates.cert_path, certificates.key_path)
    with tls_front(proxy.port, front_context) as front_port:
        with sync_connect(
            f"wss://localhost:{wss_server}/",
            proxy=f"https://localhost:{front_port}",
            proxy_ssl=certificates.client_context(),
            ssl=certificates.client_context(),
        ) as ws:
            assert_proxied_sync(ws, front_port)
    assert f"localhost:{wss_server}" in proxy.log()


async def test_async_wss_through_https_proxy(tinyproxy: Any, wss_server: int, certificates: Certificates) -> None:
    """TLS to the proxy, CONNECT, then TLS to the server inside it."""
    proxy = tinyproxy(connect_ports=[wss_server])
    front_context = server_ssl_context(certificates.cert_path, certificates.key_path)
    with tls_front(proxy.port, front_context) as front_port:
        async with async_connect(
            f"wss://localhost:{wss_server}/",
            proxy=f"https://localhost:{front_port}",
            proxy_ssl=certificates.client_context(),
            ssl=certificates.client_context(),
        ) as ws:
            await assert_proxied_async(ws, front_port)
    assert f"localhost:{wss_server}" in proxy.log()


async def test_async_https_proxy_with_untrusted_certificate(tinyproxy: Any, certificates: Certificates) -> None:
    proxy = tinyproxy()
    front_context = server_ssl_context(certificates.cert_path, certificates.key_path)
    with tls_front(proxy.port, front_context) as front_port:
        with pytest.raises(wsio.InvalidProxy) as info:
            await async_connect("ws://127.0.0.1:1/", proxy=f"https://localhost:{front_port}")
    assert isinstance(info.value.__cause__, ssl.SSLError)


@pytest.fixture
def proxy_named_otherwise(tinyproxy: Any, tmp_path: Any) -> Any:
    """``start(target_port)``: tinyproxy behind a TLS front whose certificate names ``proxy.test``, not
    ``localhost`` (the address the proxy URI gives); returns the proxy, the URI, a context trusting the
    certificate, and the names clients sent in SNI."""
    import contextlib

    from tests.helpers import self_signed_cert

    directory = tmp_path / "proxy-cert"
    directory.mkdir()
    cert_path, key_path = self_signed_cert(str(directory), "proxy.test")
    names: list[str | None] = []
    with contextlib.ExitStack() as stack:

        def start(target_port: int) -> tuple[RunningProxy, str, ssl.SSLContext, list[str | None]]:
            proxy = tinyproxy(connect_ports=[target_port])
            front_context = server_ssl_context(cert_path, key_path)
            front_context.sni_callback = lambda _sslobj, name, _context: names.append(name)  # type: ignore[assignment]
            front_port = stack.enter_context(tls_front(proxy.port, front_context))
            return proxy, f"https://localhost:{front_port}", ssl.create_default_context(cafile=cert_path), names

        yield start


def test_sync_proxy_server_hostname(proxy_named_otherwise: Any, wss_server: int, certificates: Certificates) -> None:
    """The name checked in the https:// proxy's certificate, and sent in SNI, is proxy_server_hostname."""
    proxy, proxy_uri, proxy_context, names = proxy_named_otherwise(wss_server)
    uri = f"wss://localhost:{wss_server}/"
    with pytest.raises(wsio.InvalidProxy) as caught:
        sync_connect(uri, proxy=proxy_uri, proxy_ssl=proxy_context, ssl=certificates.client_context())
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
    assert "proxy.test" not in names
    with sync_connect(
        uri,
        proxy=proxy_uri,
        proxy_ssl=proxy_context,
        proxy_server_hostname="proxy.test",
        ssl=certificates.client_context(),
    ) as ws:
        assert_proxied_sync(ws, int(proxy_uri.rsplit(":", 1)[1]))
        # The server's own certificate is still checked against the URI's host.
        assert ws.socket.server_hostname == "localhost"
    assert names[-1] == "proxy.test"
    assert f"localhost:{wss_server}" in proxy.log()
    # reconnect() takes it too (connect() passes its options to reconnect()).
    for ws in wsio.sync.client.reconnect(
        uri, proxy=proxy_uri, proxy_ssl=proxy_context, proxy_server_hostname="proxy.test", ssl=certificates.client_context()
    ):
        assert_proxied_sync(ws, int(proxy_uri.rsplit(":", 1)[1]))
        break


async def test_async_proxy_server_hostname(proxy_named_otherwise: Any, ws_server: int) -> None:
    proxy, proxy_uri, proxy_context, names = proxy_named_otherwise(ws_server)
    uri = f"ws://127.0.0.1:{ws_server}/"
    with pytest.raises(wsio.InvalidProxy) as caught:
        await async_connect(uri, proxy=proxy_uri, proxy_ssl=proxy_context)
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
    async with async_connect(uri, proxy=proxy_uri, proxy_ssl=proxy_context, proxy_server_hostname="proxy.test") as ws:
        await assert_proxied_async(ws, int(proxy_uri.rsplit(":", 1)[1]))
    assert names[-1] == "proxy.test"
    assert f"127.0.0.1:{ws_server}" in proxy.log()


# -- the environment ------------------------------------------------------------------------------------------


def test_sync_http_proxy_from_environment(tinyproxy: Any, ws_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = tinyproxy(connect_ports=[ws_server])
    monkeypatch.setenv("HTTP_PROXY", proxy.uri())
    with sync_connect(f"ws://127.0.0.1:{ws_server}/") as ws:
        assert_proxied_sync(ws, proxy.port)


async def test_async_https_proxy_variable_for_wss(
    tinyproxy: Any, wss_server: int, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = tinyproxy(connect_ports=[wss_server])
    monkeypatch.setenv("https_proxy", proxy.uri())
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")  # for ws:// only: must not be used
    async with async_connect(f"wss://localhost:{wss_server}/", ssl=certificates.client_context()) as ws:
        await assert_proxied_async(ws, proxy.port)


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "example.com, 127.0.0.1", "127.0.0.0/8"])
def test_sync_no_proxy_bypasses(ws_server: int, monkeypatch: pytest.MonkeyPatch, no_proxy: str) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens: would fail
    monkeypatch.setenv("NO_PROXY", no_proxy)
    with sync_connect(f"ws://127.0.0.1:{ws_server}/") as ws:
        assert ws.recv(timeout=5) == f"127.0.0.1:{ws.local_address[1]}"  # direct


async def test_async_no_proxy_with_port(ws_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("no_proxy", f"127.0.0.1:{ws_server}")
    async with async_connect(f"ws://127.0.0.1:{ws_server}/") as ws:
        assert await ws.recv() == f"127.0.0.1:{ws.local_address[1]}"
    monkeypatch.setenv("no_proxy", f"127.0.0.1:{ws_server + 1}")  # another port: the proxy is used (and is down)
    with pytest.raises(wsio.InvalidProxy):
        await async_connect(f"ws://127.0.0.1:{ws_server}/")


def test_sync_proxy_none_ignores_environment(ws_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("ALL_PROXY", f"socks5://127.0.0.1:{free_port()}")
    with sync_connect(f"ws://127.0.0.1:{ws_server}/", proxy=None) as ws:
        assert ws.recv(timeout=5) == f"127.0.0.1:{ws.local_address[1]}"


async def test_async_proxy_none_ignores_environment(ws_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    async with async_connect(f"ws://127.0.0.1:{ws_server}/", proxy=None) as ws:
        assert await ws.recv() == f"127.0.0.1:{ws.local_address[1]}"
