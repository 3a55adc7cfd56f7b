"""websocket-client's ``_http``: opening the TCP (or TLS, or proxied) socket and reading an HTTP head.

:class:`~wsio.websocket_client.WebSocket` connects through wsio's client
(which does proxies, TLS-in-TLS and SOCKS itself); these functions serve
programs and tests that want websocket-client's socket-level pieces.
Proxy selection follows :func:`~wsio.websocket_client._url.get_proxy_info`,
TLS options :func:`~wsio.websocket_client._ssl_compat.ssl_context_from_sslopt`.
"""

from __future__ import annotations

import base64
import errno
import os
import socket
from typing import Any

from ._exceptions import WebSocketAddressException, WebSocketException, WebSocketProxyException
from ._logging import debug, dump, trace
from ._socket import DEFAULT_SOCKET_OPTION, recv_line, send
from ._ssl_compat import HAVE_SSL, ssl, ssl_context_from_sslopt
from ._url import get_proxy_info, parse_url

__all__ = ["proxy_info", "connect", "read_headers"]

try:
    from python_socks._errors import ProxyConnectionError, ProxyError, ProxyTimeoutError
    from python_socks._types import ProxyType
    from python_socks.sync import Proxy

    HAVE_PYTHON_SOCKS = True
except ImportError:  # SOCKS needs: pip install wsio[socks]
    HAVE_PYTHON_SOCKS = False

    class ProxyError(Exception):  # type: ignore[no-redef]
        """A SOCKS proxy failed (python-socks isn't installed, so this is never raised by it)."""

    class ProxyTimeoutError(Exception):  # type: ignore[no-redef]
        """A SOCKS proxy timed out."""

    class ProxyConnectionError(Exception):  # type: ignore[no-redef]
        """A SOCKS proxy couldn't be reached."""

    class ProxyType:  # type: ignore[no-redef]
        """Placeholder for python-socks' proxy types."""


_PROXY_PROTOCOLS = ("http", "socks4", "socks4a", "socks5", "socks5h")


class proxy_info:
    """The proxy options of a connection, from websocket-client's keyword names.

    ``http_proxy_host``, ``http_proxy_port``, ``http_proxy_auth``,
    ``http_no_proxy``, ``proxy_type`` (default ``"http"``) and
    ``http_proxy_timeout``; without ``http_proxy_host`` the others are ignored.
    """

    def __init__(self, **options: Any) -> None:
        self.proxy_host = options.get("http_proxy_host")
        if self.proxy_host:
            self.proxy_port = options.get("http_proxy_port", 0)
            self.auth = options.get("http_proxy_auth")
            self.no_proxy = options.get("http_no_proxy")
            self.proxy_protocol = options.get("proxy_type", "http")
            self.proxy_timeout = options.get("http_proxy_timeout")
            if self.proxy_protocol not in _PROXY_PROTOCOLS:
                raise ProxyError(f"Only {', '.join(_PROXY_PROTOCOLS)} proxy protocols are supported")
        else:
            self.proxy_port = 0
            self.auth = None
            self.no_proxy = None
            self.proxy_protocol = "http"
            self.proxy_timeout = None


def _start_proxied_socket(url: str, options: Any, proxy: proxy_info) -> tuple[Any, tuple[str, int, str]]:
    if proxy.proxy_host and not proxy.proxy_port:
        raise WebSocketProxyException("Cannot use port 0 when proxy_host specified")
    if not HAVE_PYTHON_SOCKS:
        raise WebSocketException("SOCKS proxies need the python-socks package: pip install wsio[socks]")
    hostname, port, resource, is_secure = parse_url(url)
    version, remote_dns = {
        "socks4": (ProxyType.SOCKS4, False),
        "socks4a": (ProxyType.SOCKS4, True),
        "socks5": (ProxyType.SOCKS5, False),
        "socks5h": (ProxyType.SOCKS5, True),
    }[proxy.proxy_protocol]
    socks = Proxy.create(
        proxy_type=version,
        host=proxy.proxy_host,
        port=int(proxy.proxy_port),
        username=proxy.auth[0] if proxy.auth else None,
        password=proxy.auth[1] if proxy.auth else None,
        rdns=remote_dns,
    )
    sock = socks.connect(hostname, port, timeout=proxy.proxy_timeout)
    if is_secure:
        sock = _ssl_socket(sock, options.sslopt, hostname)
    return sock, (hostname, port, resource)


def connect(url: str, options: Any, proxy: proxy_info, socket: Any) -> tuple[Any, tuple[str, int, str]]:
    """Open the socket for ``url``: ``(sock, (hostname, port, resource))``.

    ``options`` is a :class:`~wsio.websocket_client._socket.sock_opt`;
    ``socket``, if given, is used as is. Through an HTTP proxy the socket is
    a ``CONNECT`` tunnel; ``wss://`` wraps it in TLS.
    """
    if proxy.proxy_host and not socket and proxy.proxy_protocol != "http":
        return _start_proxied_socket(url, options, proxy)
    hostname, port, resource, is_secure = parse_url(url)
    if socket:
        return socket, (hostname, port, resource)
    addrinfo_list, need_tunnel, auth = _get_addrinfo_list(hostname, port, is_secure, proxy)
    if not addrinfo_list:
        raise WebSocketException(f"Host not found.: {hostname}:{port}")
    sock = None
    try:
        sock = _open_socket(addrinfo_list, options.sockopt, options.timeout)
        if need_tunnel:
            sock = _tunnel(sock, hostname, port, auth)
        if is_secure:
            if not HAVE_SSL:
                raise WebSocketException("SSL not available.")
            sock = _ssl_socket(sock, options.sslopt, hostname)
        return sock, (hostname, port, resource)
    except BaseException:
        if sock:
            sock.close()
        raise


def _get_addrinfo_list(hostname: str, port: int, is_secure: bool, proxy: proxy_info) -> tuple[list[Any], bool, Any]:
    try:
        proxy_host, proxy_port, proxy_auth = get_proxy_info(
            hostname, is_secure, proxy.proxy_host, proxy.proxy_port, proxy.auth, proxy.no_proxy
        )
    except TypeError as exc:
        raise WebSocketAddressException(exc) from exc
    try:
        if not proxy_host:
            return socket.getaddrinfo(hostname, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP), False, None
        addrinfo = socket.getaddrinfo(proxy_host, proxy_port or 80, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        return addrinfo, True, proxy_auth
    except (socket.gaierror, TypeError) as exc:
        raise WebSocketAddressException(exc) from exc


_REFUSED = (errno.ECONNREFUSED, getattr(errno, "WSAECONNREFUSED", errno.ECONNREFUSED), errno.ENETUNREACH)


def _open_socket(addrinfo_list: list[Any], sockopt: list[tuple[Any, ...]], timeout: float | None) -> socket.socket:
    """Connect to the first address that accepts; a refused or unreachable one moves on to the next."""
    last_error: OSError | None = None
    for family, socktype, proto, _, address in addrinfo_list:
        sock = socket.socket(family, socktype, proto)
        sock.settimeout(timeout)
        for option in [*DEFAULT_SOCKET_OPTION, *sockopt]:
            sock.setsockopt(*option)
        try:
            sock.connect(address)
        except OSError as exc:
            sock.close()
            exc.remote_ip = str(address[0])  # type: ignore[attr-defined]
            if exc.errno not in _REFUSED:
                raise
            last_error = exc
            continue
        return sock
    if last_error is not None:
        raise last_error
    raise WebSocketException("no address to connect to")


def _wrap_sni_socket(sock: socket.socket, sslopt: dict[str, Any], hostname: str, check_hostname: bool) -> Any:
    """Wrap ``sock`` in TLS for ``hostname`` (SNI), with the context ``sslopt`` describes.

    Here, as in websocket-client, a missing ``cert_reqs`` means no verification;
    :func:`_ssl_socket` (what connecting uses) makes it ``CERT_REQUIRED``.
    """
    options = {"cert_reqs": ssl.CERT_NONE, **sslopt}
    if options["cert_reqs"] == ssl.CERT_NONE and options.get("check_hostname"):
        raise WebSocketException(
            "SSL certificate verification configuration failed: check_hostname cannot be enabled when cert_reqs is CERT_NONE"
        )
    context, _ = ssl_context_from_sslopt(options)
    keylog_file = os.environ.get("SSLKEYLOGFILE")
    if keylog_file is not None and "context" not in options:
        context.keylog_filename = keylog_file
    return context.wrap_socket(
        sock,
        do_handshake_on_connect=options.get("do_handshake_on_connect", True),
        suppress_ragged_eofs=options.get("suppress_ragged_eofs", True),
        server_hostname=hostname,
    )


def _ssl_socket(sock: socket.socket, user_sslopt: dict[str, Any], hostname: str) -> Any:
    """Wrap ``sock`` in TLS, verifying the certificate unless ``user_sslopt`` says otherwise
    (``$WEBSOCKET_CLIENT_CA_BUNDLE`` names the CA file or directory when it doesn't)."""
    sslopt: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED, **user_sslopt}
    if sslopt.get("server_hostname"):
        hostname = sslopt["server_hostname"]
    return _wrap_sni_socket(sock, sslopt, hostname, sslopt.get("check_hostname", True))


def _tunnel(sock: socket.socket, host: str, port: int, auth: Any) -> socket.socket:
    """Ask the HTTP proxy at the other end of ``sock`` for a tunnel to ``host:port``."""
    debug("Connecting proxy...")
    request = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if auth and auth[0]:
        credentials = auth[0] + (f":{auth[1]}" if auth[1] else "")
        request += f"Proxy-Authorization: Basic {base64.b64encode(credentials.encode()).decode()}\r\n"
    request += "\r\n"
    dump("request header", request)
    send(sock, request)
    try:
        status, _, _ = read_headers(sock)
    except (OSError, WebSocketException) as exc:
        raise WebSocketProxyException(str(exc)) from exc
    if status != 200:
        raise WebSocketProxyException(f"failed CONNECT via proxy status: {status}")
    return sock


def read_headers(sock: socket.socket) -> tuple[int | None, dict[str, str], str | None]:
    """Read an HTTP response head: ``(status, headers with lowercase names, reason phrase)``.

    Several ``Set-Cookie`` headers are joined with ``"; "``; other repeated
    headers keep the last value.
    """
    status: int | None = None
    reason: str | None = None
    headers: dict[str, str] = {}
    trace("--- response header ---")
    while True:
        raw = recv_line(sock)
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise WebSocketException(f"Invalid header line, not valid UTF-8 at byte {exc.start}: {raw!r}") from None
        if not line:
            break
        trace(line)
        if status is None:
            parts = line.split(" ", 2)
            try:
                status = int(parts[1])
            except (IndexError, ValueError):
                raise WebSocketException(f"Invalid status line: {line!r}") from None
            if len(parts) > 2:
                reason = parts[2]
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise WebSocketException("Invalid header")
        name = name.lower()
        value = value.strip()
        if name == "set-cookie" and headers.get("set-cookie"):
            headers[name] = f"{headers[name]}; {value}"
        else:
            headers[name] = value
    trace("-----------------------")
    return status, headers, reason
