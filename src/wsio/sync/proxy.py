"""Blocking sockets through a proxy, for the thread client; the rules live in :mod:`wsio.protocol.proxy`."""

from __future__ import annotations

import socket
import ssl as ssl_module
from typing import Callable

from ..exceptions import InvalidProxy
from ..protocol.proxy import ConnectTunnel, ProxyURI, import_python_socks, socks_error, socks_options

__all__ = ["connect_through_proxy"]

_READ_SIZE = 4096


def connect_through_proxy(
    proxy: ProxyURI,
    host: str,
    port: int,
    remaining: Callable[[], float | None],
    *,
    source_address: tuple[str, int] | None = None,
    proxy_ssl: ssl_module.SSLContext | None = None,
    proxy_server_hostname: str | None = None,
    user_agent: str | None = None,
) -> socket.socket:
    """Return a socket connected to ``host:port`` through ``proxy``.

    For an https:// proxy the socket is an :class:`ssl.SSLSocket` to the
    proxy (``proxy_ssl``, default: a verifying default context; the name
    checked in its certificate and sent in SNI is ``proxy_server_hostname``,
    default the proxy URI's host), with the tunnel inside. ``remaining()`` gives the seconds left before the open
    timeout (``None``: no limit) and raises :class:`TimeoutError` when none are.

    Raises :class:`InvalidProxy` when the proxy can't be reached (the
    ``OSError`` as ``__cause__``), refuses (``proxy_status``) or misbehaves;
    :class:`TimeoutError` when it doesn't answer in time.
    """
    if proxy.is_socks:
        return _socks_connect(proxy, host, port, remaining(), source_address)
    try:
        sock = socket.create_connection((proxy.host, proxy.port), remaining(), source_address)
    except socket.timeout:
        raise TimeoutError("timed out connecting to the proxy") from None
    except OSError as exc:
        raise InvalidProxy(proxy.redacted, f"can't connect to the proxy: {exc}") from exc
    try:
        if proxy.scheme == "https":
            context = proxy_ssl or ssl_module.create_default_context()
            sock.settimeout(remaining())
            try:
                sock = context.wrap_socket(sock, server_hostname=proxy_server_hostname or proxy.host)
            except socket.timeout:
                raise TimeoutError("timed out during the TLS handshake with the proxy") from None
            except OSError as exc:  # ssl.SSLError included
                raise InvalidProxy(proxy.redacted, f"TLS with the proxy failed: {exc}") from exc
        _http_connect(sock, ConnectTunnel(proxy, host, port, user_agent), remaining)
    except BaseException:
        sock.close()
        raise
    sock.settimeout(None)
    return sock


def _http_connect(sock: socket.socket, tunnel: ConnectTunnel, remaining: Callable[[], float | None]) -> None:
    """Send CONNECT and read the answer, until the tunnel is open or the proxy refuses."""
    proxy = tunnel.proxy.redacted
    try:
        sock.settimeout(remaining())
        sock.sendall(tunnel.request())
        while True:
            sock.settimeout(remaining())
            data = sock.recv(_READ_SIZE)
            if not data:
                tunnel.receive_eof()
            if tunnel.receive_data(data) is not None:
                return
    except socket.timeout:
        raise TimeoutError("timed out waiting for the proxy's answer to CONNECT") from None
    except OSError as exc:
        raise InvalidProxy(proxy, f"connection to the proxy failed: {exc}") from exc


def _socks_connect(
    proxy: ProxyURI, host: str, port: int, timeout: float | None, source_address: tuple[str, int] | None
) -> socket.socket:
    sync_socks = import_python_socks("sync")
    python_socks = import_python_socks("")
    try:
        sock: socket.socket = sync_socks.Proxy(**socks_options(proxy)).connect(
            host, port, timeout=timeout, local_addr=source_address
        )
    except python_socks.ProxyTimeoutError:
        raise TimeoutError("timed out during the SOCKS handshake with the proxy") from None
    except (python_socks.ProxyError, python_socks.ProxyConnectionError, OSError) as exc:
        raise socks_error(proxy, exc) from exc
    sock.settimeout(None)
    return sock
