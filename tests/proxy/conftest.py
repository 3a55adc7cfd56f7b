"""Real proxies for the proxy tests: tinyproxy (HTTP CONNECT), microsocks and danted (SOCKS).

Each fixture starts its own process on a free 127.0.0.1 port, with its
configuration and log in ``tmp_path``, and ends it by PID (its process group
for danted, which forks helpers). A missing binary fails the test: ``make
test`` installs the Debian packages ``tinyproxy``, ``microsocks`` and ``dante-server``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest


from tests.helpers import free_port, pump
from tests.sync.helpers import raw_server, run_server, self_signed_cert, server_ssl_context


PROXY_USER = "alice"
PROXY_PASSWORD = "s3cret"


def _binary(name: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install tinyproxy microsocks dante-server (make test does it)")
    return path


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"proxy exited with {process.returncode}: {log.read_text(errors='replace')[-2000:] if log.exists() else ''}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    pytest.fail(f"proxy not listening on {port} after {timeout} s")


def _stop(process: subprocess.Popen[bytes], group: bool = False) -> None:
    if process.poll() is None:
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
            process.wait(5)


@dataclass
class RunningProxy:
    """A proxy process: where it listens and what it logged."""

    scheme: str
    port: int
    log_path: Path
    username: str | None = None
    password: str | None = None

    def uri(self, username: str | None = None, password: str | None = None, scheme: str | None = None) -> str:
        """The proxy's URI, with its own credentials unless others are given."""
        username = username if username is not None else self.username
        password = password if password is not None else self.password
        userinfo = f"{username}:{password}@" if username is not None else ""
        return f"{scheme or self.scheme}://{userinfo}127.0.0.1:{self.port}"

    def log(self) -> str:
        # Some proxies write their log lines a moment after the connection.
        time.sleep(0.1)
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Callable[..., RunningProxy]]:
    """Start tinyproxy: ``tinyproxy(connect_ports=[...], auth=True)``."""
    binary = _binary("tinyproxy")
    processes: list[subprocess.Popen[bytes]] = []

    def start(connect_ports: list[int] | None = None, auth: bool = False) -> RunningProxy:
        port = free_port()
        directory = tmp_path / f"tinyproxy-{port}"
        directory.mkdir()
        directory.chmod(0o777)  # tinyproxy may drop root for "nobody" and must still write its log
        log_path = directory / "tinyproxy.log"
        lines = [
            f"Port {port}",
            "Listen 127.0.0.1",
            "Timeout 30",
            f'LogFile "{log_path}"',
            "LogLevel Info",
            "MaxClients 50",
            "Allow 127.0.0.1",
            # No ConnectPort line allows every port; "0" would forbid CONNECT.
            *(f"ConnectPort {allowed}" for allowed in connect_ports or []),
        ]
        if auth:
            lines.append(f"BasicAuth {PROXY_USER} {PROXY_PASSWORD}")
        config = directory / "tinyproxy.conf"
        config.write_text("\n".join(lines) + "\n")
        process = subprocess.Popen([binary, "-d", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(process)
        _wait_listening(port, process, log_path)
        return RunningProxy("http", port, log_path, PROXY_USER if auth else None, PROXY_PASSWORD if auth else None)

    yield start
    for process in processes:
        _stop(process)


@pytest.fixture
def microsocks(tmp_path: Path) -> Iterator[Callable[..., RunningProxy]]:
    """Start microsocks (SOCKS5): ``microsocks(auth=True)``; its stdout, which lists connections, is the log."""
    binary = _binary("microsocks")
    processes: list[subprocess.Popen[bytes]] = []

    def start(auth: bool = False) -> RunningProxy:
        port = free_port()
        log_path = tmp_path / f"microsocks-{port}.log"
        args = [binary, "-i", "127.0.0.1", "-p", str(port)]
        if auth:
            args += ["-u", PROXY_USER, "-P", PROXY_PASSWORD]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        _wait_listening(port, process, log_path)
        return RunningProxy("socks5", port, log_path, PROXY_USER if auth else None, PROXY_PASSWORD if auth else None)

    yield start
    for process in processes:
        _stop(process)


@pytest.fixture
def danted(tmp_path: Path) -> Iterator[RunningProxy]:
    """Start danted (SOCKS4 and SOCKS5, no authentication), logging each connection."""
    binary = _binary("danted")
    port = free_port()
    log_path = tmp_path / "danted.log"
    config = tmp_path / "danted.conf"
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    config.write_text(
        f"logoutput: {log_path}\n"
        f"internal: 127.0.0.1 port = {port}\n"
        "external: 127.0.0.1\n"
        "clientmethod: none\n"
        "socksmethod: none\n"
        f"user.privileged: {user}\n"
        f"user.unprivileged: {user}\n"
        "client pass {\n    from: 127.0.0.0/8 to: 0.0.0.0/0\n    log: connect\n}\n"
        "socks pass {\n    from: 127.0.0.0/8 to: 0.0.0.0/0\n    command: connect\n    log: connect\n}\n"
    )
    # Its own session: danted forks helper processes, all ended with its group.
    process = subprocess.Popen(
        [binary, "-f", str(config), "-p", str(tmp_path / "danted.pid"), "-N", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_listening(port, process, log_path)
        yield RunningProxy("socks5", port, log_path)
    finally:
        _stop(process, group=True)


# -- a TLS front, making tinyproxy an https:// proxy ---------------------------------------------


@contextlib.contextmanager
def tls_front(backend_port: int, context: ssl.SSLContext) -> Iterator[int]:
    """Accept TLS on a free port and relay the clear bytes to ``backend_port``; yield the port."""
    sockets: list[socket.socket] = []

    def serve_one(raw: socket.socket) -> None:
        try:
            raw.settimeout(5)
            client = context.wrap_socket(raw, server_side=True)
            client.settimeout(None)
            backend = socket.create_connection(("127.0.0.1", backend_port), 5)
        except OSError:
            raw.close()
            return
        sockets.extend((client, backend))
        threading.Thread(target=pump, args=(backend, client), daemon=True).start()
        pump(client, backend)

    with raw_server(serve_one) as port:
        try:
            yield port
        finally:
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.close()


# -- WebSocket servers that say which address they see --------------------------------------------


def peer_reporting_echo(ws: Any) -> None:
    """Send the client's address as the server sees it ("host:port"), then echo."""
    host, port = ws.remote_address[:2]
    ws.send(f"{host}:{port}")
    for message in ws:
        ws.send(message)


@dataclass
class Certificates:
    cert_path: str
    key_path: str

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cert_path)
        return context


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    """A self-signed certificate for ``localhost`` (CA too, so clients can trust it)."""
    directory = tmp_path / "certs"
    directory.mkdir()
    return Certificates(*self_signed_cert(str(directory), "localhost"))


@pytest.fixture
def ws_server() -> Iterator[int]:
    """A plain wsio.sync server on 127.0.0.1 running :func:`peer_reporting_echo`; yields its port."""
    with run_server(peer_reporting_echo) as server:
        yield server.socket.getsockname()[1]


@pytest.fixture
def wss_server(certificates: Certificates) -> Iterator[int]:
    """The same over TLS, with the ``localhost`` certificate; yields its port."""
    context = server_ssl_context(certificates.cert_path, certificates.key_path)
    with run_server(peer_reporting_echo, ssl=context) as server:
        yield server.socket.getsockname()[1]


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test without proxy variables; tests that want them set them."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
