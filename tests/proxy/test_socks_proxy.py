"""The asyncio and thread clients through SOCKS proxies: microsocks (SOCKS5, user/password) and danted (SOCKS4/5)."""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

import pytest

import wsio
from wsio.asyncio.client import connect as async_connect
from wsio.asyncio.client import process_exception
from wsio.sync.client import connect as sync_connect

from tests.helpers import free_port

from .conftest import Certificates, RunningProxy
from .test_http_proxy import assert_proxied_async, assert_proxied_sync

pytestmark = pytest.mark.timeout(60)


def test_sync_socks5_without_auth(microsocks: Any, ws_server: int) -> None:
    proxy: RunningProxy = microsocks()
    with sync_connect(f"ws://127.0.0.1:{ws_server}/", proxy=proxy.uri()) as ws:
        assert_proxied_sync(ws, proxy.port)
    assert f"connected to 127.0.0.1:{ws_server}" in proxy.log()


def test_sync_socks5_with_auth_and_wss(microsocks: Any, wss_server: int, certificates: Certificates) -> None:
    proxy = microsocks(auth=True)
    with sync_connect(f"wss://localhost:{wss_server}/", proxy=proxy.uri(), ssl=certificates.client_context()) as ws:
        assert_proxied_sync(ws, proxy.port)


async def test_async_socks5_with_auth(microsocks: Any, ws_server: int) -> None:
    proxy = microsocks(auth=True)
    async with async_connect(f"ws://127.0.0.1:{ws_server}/", proxy=proxy.uri()) as ws:
        await assert_proxied_async(ws, proxy.port)
    assert f"connected to 127.0.0.1:{ws_server}" in proxy.log()


async def test_async_socks5_wss(microsocks: Any, wss_server: int, certificates: Certificates) -> None:
    proxy = microsocks()
    async with async_connect(f"wss://localhost:{wss_server}/", proxy=proxy.uri(), ssl=certificates.client_context()) as ws:
        await assert_proxied_async(ws, proxy.port)


def test_sync_socks5_wrong_password(microsocks: Any, ws_server: int) -> None:
    proxy = microsocks(auth=True)
    with pytest.raises(wsio.InvalidProxy) as info:
        sync_connect(f"ws://127.0.0.1:{ws_server}/", proxy=proxy.uri(password="Hunter2x"))._create()
    assert "Hunter2x" not in str(info.value)
    assert info.value.proxy_status is None
    assert process_exception(info.value) is info.value  # credentials: not retried


async def test_async_socks5_proxy_down() -> None:
    with pytest.raises(wsio.InvalidProxy) as info:
        await async_connect("ws://127.0.0.1:1/", proxy=f"socks5://127.0.0.1:{free_port()}")
    assert isinstance(info.value.__cause__, OSError)
    assert process_exception(info.value) is None  # like a refused server: retried


def test_sync_socks5h_resolves_on_the_proxy(microsocks: Any, ws_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """With socks5h:// the client never resolves "localhost": the proxy does."""
    proxy = microsocks()
    resolved: list[Any] = []
    real_getaddrinfo = socket.getaddrinfo

    def recording_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        resolved.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording_getaddrinfo)
    with sync_connect(f"ws://localhost:{ws_server}/", proxy=proxy.uri(scheme="socks5h")) as ws:
        assert_proxied_sync(ws, proxy.port)
    assert "localhost" not in resolved
    assert f"connected to localhost:{ws_server}" in proxy.log() or f":{ws_server}" in proxy.log()


async def test_async_socks5h_resolves_on_the_proxy(microsocks: Any, ws_server: int) -> None:
    proxy = microsocks()
    async with async_connect(f"ws://localhost:{ws_server}/", proxy=proxy.uri(scheme="socks5h")) as ws:
        await assert_proxied_async(ws, proxy.port)


def test_sync_socks4_through_danted(danted: RunningProxy, ws_server: int) -> None:
    with sync_connect(f"ws://127.0.0.1:{ws_server}/", proxy=danted.uri(scheme="socks4")) as ws:
        assert_proxied_sync(ws, danted.port)
    assert f"127.0.0.1.{ws_server}" in danted.log()  # dante writes host.port


async def test_async_socks4_through_danted(danted: RunningProxy, ws_server: int) -> None:
    async with async_connect(f"ws://127.0.0.1:{ws_server}/", proxy=danted.uri(scheme="socks4")) as ws:
        await assert_proxied_async(ws, danted.port)


async def test_async_socks4a_rejected_by_danted(danted: RunningProxy, ws_server: int) -> None:
    """dante doesn't do SOCKS4a (names resolved by the proxy): its reply code is in the InvalidProxy."""
    with pytest.raises(wsio.InvalidProxy) as info:
        await async_connect(f"ws://localhost:{ws_server}/", proxy=danted.uri(scheme="socks4a"))
    assert "SOCKS reply code 91" in str(info.value)
    assert process_exception(info.value) is info.value


async def test_async_socks5_through_danted(danted: RunningProxy, ws_server: int) -> None:
    async with async_connect(f"ws://127.0.0.1:{ws_server}/", proxy=danted.uri()) as ws:
        await assert_proxied_async(ws, danted.port)
    assert f"127.0.0.1.{ws_server}" in danted.log()


def test_socks_from_all_proxy(microsocks: Any, ws_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = microsocks()
    monkeypatch.setenv("ALL_PROXY", proxy.uri())
    with sync_connect(f"ws://127.0.0.1:{ws_server}/") as ws:
        assert_proxied_sync(ws, proxy.port)


def test_missing_python_socks_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes "import python_socks" fail, as when it isn't installed.
    for module in [name for name in sys.modules if name.startswith("python_socks")]:
        monkeypatch.delitem(sys.modules, module)
    for module in ("python_socks", "python_socks.sync", "python_socks.async_.asyncio"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r"pip install wsio\[socks\]"):
        sync_connect("ws://127.0.0.1:1/", proxy="socks5://127.0.0.1:1080")._create()
    with pytest.raises(ImportError, match=r"pip install wsio\[socks\]"):
        asyncio.run(async_connect("ws://127.0.0.1:1/", proxy="socks5://127.0.0.1:1080")._create())
