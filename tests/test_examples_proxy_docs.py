"""Run the programs of examples/docs/proxies/ (docs/topics/proxies.md includes them) through real proxies.

Each program takes the proxy URI and the server URI as arguments. The proxies
(tinyproxy, microsocks, danted, and a TLS front that makes tinyproxy an
https:// proxy) come from the fixtures of tests/proxy/conftest.py; the server
is a wsio.sync echo server on 127.0.0.1. The proxy's log shows the program
went through it; a dead proxy in the environment shows that ``proxy=None``
and ``--no-proxy`` went around it.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
from typing import Any, Iterator

import pytest

from tests.helpers import free_port
from tests.proxy.conftest import (  # noqa: F401  (fixtures, used by name)
    Certificates,
    RunningProxy,
    certificates,
    danted,
    microsocks,
    no_proxy_environment,
    tinyproxy,
    tls_front,
)
from tests.sync.helpers import echo, run_server, self_signed_cert, server_ssl_context

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "docs" / "proxies"
PAGE = ROOT / "docs" / "topics" / "proxies.md"
TIMEOUT = 30

TESTED = {"proxy_http.py", "proxy_socks_sync.py", "proxy_https.py", "proxy_websocket_client.py", "proxy_cli.sh"}

pytestmark = pytest.mark.timeout(90)


def run_example(program: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a program of examples/docs/proxies/ and return what it printed; it must succeed."""
    command = ["sh"] if program.endswith(".sh") else [sys.executable]
    # The shell example runs the wsio command of this Python.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    result = subprocess.run(
        [*command, program, *args],
        cwd=EXAMPLES,
        env={**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, f"exit code {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A ws:// echo server on 127.0.0.1; yields its port."""
    with run_server(echo) as server:
        yield server.socket.getsockname()[1]


@pytest.fixture
def dead_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> str:
    """HTTP(S)_PROXY, both spellings, naming a port nothing listens on: a client that uses them fails."""
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead)
        monkeypatch.setenv(name.upper(), dead)
    return dead


def connects_to(proxy: RunningProxy, target: str) -> int:
    """How many CONNECT requests for ``target`` tinyproxy logged."""
    return len(re.findall(rf"CONNECT {re.escape(target)} HTTP/1\.1", proxy.log()))


def test_every_example_is_tested_and_shown() -> None:
    assert {path.name for path in EXAMPLES.iterdir() if path.suffix in (".py", ".sh")} == TESTED
    page = PAGE.read_text(encoding="utf-8")
    included = set(re.findall(r"^```\{literalinclude\}\s+\.\./\.\./examples/docs/proxies/(\S+)", page, re.MULTILINE))
    assert included == TESTED


def test_http_proxy_and_proxy_none(tinyproxy: Any, echo_port: int, dead_proxy_environment: str) -> None:
    proxy = tinyproxy(connect_ports=[echo_port], auth=True)
    output = run_example("proxy_http.py", proxy.uri(), f"ws://127.0.0.1:{echo_port}/")
    assert output == "through the proxy: 'hello'\nwithout a proxy: 'hello'\n"
    assert connects_to(proxy, f"127.0.0.1:{echo_port}") == 1  # the second connection went around it


def test_socks5h_proxy_with_credentials(microsocks: Any, echo_port: int) -> None:
    proxy = microsocks(auth=True)
    # socks5h: the proxy resolves "localhost".
    output = run_example("proxy_socks_sync.py", proxy.uri(scheme="socks5h"), f"ws://localhost:{echo_port}/")
    assert output == "through the proxy: 'hello'\n"
    assert f"connected to localhost:{echo_port}" in proxy.log()


def test_socks4_proxy(danted: RunningProxy, echo_port: int) -> None:
    # danted refuses socks4a (names): socks4 with an address.
    output = run_example("proxy_socks_sync.py", danted.uri(scheme="socks4"), f"ws://127.0.0.1:{echo_port}/")
    assert output == "through the proxy: 'hello'\n"
    assert f"127.0.0.1.{echo_port}" in danted.log()  # dante writes host.port


def test_https_proxy_to_wss_server(
    tinyproxy: Any, certificates: Certificates, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server has a certificate of its own, trusted through the default
    # trust store (SSL_CERT_FILE); only proxy_ssl trusts the proxy's.
    server_directory = tmp_path / "server-certs"
    server_directory.mkdir()
    server_cert, server_key = self_signed_cert(str(server_directory), "localhost")
    with run_server(echo, ssl=server_ssl_context(server_cert, server_key)) as server:
        port = server.socket.getsockname()[1]
        proxy = tinyproxy(connect_ports=[port])
        front_context = server_ssl_context(certificates.cert_path, certificates.key_path)
        with tls_front(proxy.port, front_context) as front_port:
            proxy_uri, server_uri = f"https://localhost:{front_port}", f"wss://localhost:{port}/"
            env = {"SSL_CERT_FILE": server_cert}
            output = run_example("proxy_https.py", proxy_uri, server_uri, certificates.cert_path, env=env)
            assert output == "through the proxy: 'hello'\n"
            # Without the proxy's CA, the same program fails: proxy_ssl is what trusts the proxy.
            with pytest.raises(AssertionError, match="InvalidProxy"):
                run_example("proxy_https.py", proxy_uri, server_uri, server_cert, env=env)
    assert connects_to(proxy, f"localhost:{port}") == 1


def test_websocket_client_options(tinyproxy: Any, echo_port: int) -> None:
    proxy = tinyproxy(connect_ports=[echo_port], auth=True)
    output = run_example("proxy_websocket_client.py", proxy.uri(), f"ws://127.0.0.1:{echo_port}/")
    assert output == "through the proxy: 'hello'\n"
    assert connects_to(proxy, f"127.0.0.1:{echo_port}") == 1


def test_command_line(tinyproxy: Any, echo_port: int, dead_proxy_environment: str) -> None:
    proxy = tinyproxy(connect_ports=[echo_port], auth=True)
    output = run_example("proxy_cli.sh", proxy.uri(), f"ws://127.0.0.1:{echo_port}/")
    assert output == "< hello\n" * 3
    # --proxy and the environment went through it; --no-proxy went around the dead one.
    assert connects_to(proxy, f"127.0.0.1:{echo_port}") == 2
