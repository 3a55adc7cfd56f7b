"""websocket-client's proxy options (``from wsio import sync as websocket``) and ``wsio --proxy``, through real proxies."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

import pytest

import wsio
from wsio import sync as websocket

from tests.helpers import ROOT, free_port

from .conftest import PROXY_PASSWORD, PROXY_USER, RunningProxy

pytestmark = pytest.mark.timeout(60)


def test_create_connection_through_http_proxy_with_auth(tinyproxy: Any, ws_server: int) -> None:
    proxy: RunningProxy = tinyproxy(connect_ports=[ws_server], auth=True)
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{ws_server}/",
        timeout=10,
        http_proxy_host="127.0.0.1",
        http_proxy_port=proxy.port,
        http_proxy_auth=(PROXY_USER, PROXY_PASSWORD),
    )
    try:
        seen_by_server = ws.recv()
        assert seen_by_server != f"127.0.0.1:{ws.sock.getsockname()[1]}"
        assert ws.sock.getpeername()[1] == proxy.port
        ws.send("hi")
        assert ws.recv() == "hi"
    finally:
        ws.close()
    assert f"127.0.0.1:{ws_server}" in proxy.log()


def test_create_connection_proxy_refuses(tinyproxy: Any, ws_server: int) -> None:
    proxy = tinyproxy(connect_ports=[ws_server], auth=True)
    with pytest.raises(websocket.WebSocketProxyException) as info:
        websocket.create_connection(f"ws://127.0.0.1:{ws_server}/", http_proxy_host="127.0.0.1", http_proxy_port=proxy.port)
    assert info.value.proxy_status == 407
    assert isinstance(info.value, wsio.InvalidProxy)


def test_create_connection_http_no_proxy(ws_server: int) -> None:
    # websocket-client's rule: a host in http_no_proxy skips even an explicit proxy.
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{ws_server}/",
        http_proxy_host="127.0.0.1",
        http_proxy_port=free_port(),  # nothing listens: would fail if used
        http_no_proxy=["127.0.0.1"],
    )
    try:
        assert ws.recv() == f"127.0.0.1:{ws.sock.getsockname()[1]}"
    finally:
        ws.close()


def test_create_connection_reads_http_proxy_variable(tinyproxy: Any, ws_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = tinyproxy(connect_ports=[ws_server])
    monkeypatch.setenv("http_proxy", proxy.uri())
    ws = websocket.create_connection(f"ws://127.0.0.1:{ws_server}/", sockopt=[])
    try:
        assert ws.sock.getpeername()[1] == proxy.port
    finally:
        ws.close()


def test_websocket_connect_socks5h(microsocks: Any, ws_server: int) -> None:
    proxy = microsocks(auth=True)
    ws = websocket.WebSocket()
    ws.connect(
        f"ws://localhost:{ws_server}/",
        http_proxy_host="127.0.0.1",
        http_proxy_port=proxy.port,
        http_proxy_auth=(PROXY_USER, PROXY_PASSWORD),
        proxy_type="socks5h",
        http_proxy_timeout=10,
    )
    try:
        assert ws.sock.getpeername()[1] == proxy.port
        ws.send("x")
        ws.recv()  # the server's report of the address it sees
        assert ws.recv() == "x"
    finally:
        ws.close()


def test_unknown_proxy_type() -> None:
    with pytest.raises(websocket.WebSocketProxyException, match="proxy types"):
        websocket.create_connection("ws://127.0.0.1:1/", http_proxy_host="h", http_proxy_port=1, proxy_type="ftp")


def test_websocket_app_run_forever_through_socks5(microsocks: Any, ws_server: int) -> None:
    proxy = microsocks()
    received: list[str] = []
    errors: list[BaseException] = []

    def on_message(app: Any, message: str) -> None:
        received.append(message)
        if len(received) == 1:
            app.send("through socks")
        else:
            app.close()

    app = websocket.WebSocketApp(
        f"ws://127.0.0.1:{ws_server}/", on_message=on_message, on_error=lambda app, exc: errors.append(exc)
    )
    runner = threading.Thread(
        target=app.run_forever,
        kwargs=dict(http_proxy_host="127.0.0.1", http_proxy_port=proxy.port, proxy_type="socks5"),
        daemon=True,
    )
    runner.start()
    runner.join(20)
    assert not runner.is_alive()
    assert not errors, errors
    assert received[1] == "through socks"
    assert f"connected to 127.0.0.1:{ws_server}" in proxy.log()


def test_websocket_app_reports_proxy_errors(ws_server: int) -> None:
    errors: list[BaseException] = []
    app = websocket.WebSocketApp(f"ws://127.0.0.1:{ws_server}/", on_error=lambda app, exc: errors.append(exc))
    assert app.run_forever(http_proxy_host="127.0.0.1", http_proxy_port=free_port()) is True
    assert isinstance(errors[0], websocket.WebSocketProxyException)


# -- the CLI ---------------------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsio", *args],
        input="over the proxy\n",
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def test_cli_proxy_option(tinyproxy: Any, ws_server: int) -> None:
    proxy = tinyproxy(connect_ports=[ws_server], auth=True)
    result = run_cli(f"ws://127.0.0.1:{ws_server}/", "--proxy", proxy.uri())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "< over the proxy"
    assert f"127.0.0.1:{ws_server}" in proxy.log()


def test_cli_proxy_refused_is_reported_without_password(tinyproxy: Any, ws_server: int) -> None:
    proxy = tinyproxy(connect_ports=[ws_server], auth=True)
    result = run_cli(f"ws://127.0.0.1:{ws_server}/", "--proxy", proxy.uri(password="Hunter2x"))
    assert result.returncode == 1
    assert "Failed to connect" in result.stderr and "401" in result.stderr
    assert "Hunter2x" not in result.stderr


def test_cli_no_proxy_ignores_environment(ws_server: int) -> None:
    env = {"HTTP_PROXY": f"http://127.0.0.1:{free_port()}", "http_proxy": f"http://127.0.0.1:{free_port()}"}
    assert run_cli(f"ws://127.0.0.1:{ws_server}/", env=env).returncode == 1  # the dead proxy is used by default
    result = run_cli(f"ws://127.0.0.1:{ws_server}/", "--no-proxy", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "< over the proxy"
