"""Proxies, without I/O: choosing one, parsing its URI, and the HTTP CONNECT exchange.

The asyncio and thread clients share everything here and only add sockets:

- :func:`select_proxy` turns the ``proxy`` argument of ``connect()`` into a
  :class:`ProxyURI` or ``None``, reading ``HTTP_PROXY`` / ``HTTPS_PROXY`` /
  ``ALL_PROXY`` / ``NO_PROXY`` from the environment when asked to.
- :class:`ConnectTunnel` builds the ``CONNECT host:port`` request (RFC 9110
  9.3.6) and parses the proxy's answer with hard limits on its size.
- :func:`socks_options` and :func:`import_python_socks` prepare the SOCKS
  connection that the optional ``python-socks`` package makes.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import urllib.parse
import types
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import InvalidHandshake, InvalidProxy
from .http11 import HandshakeLimits, Request, Response, ResponseParser
from .datastructures import Headers

__all__ = [
    "ProxyURI",
    "parse_proxy_uri",
    "proxy_from_environment",
    "proxy_bypassed",
    "select_proxy",
    "ConnectTunnel",
    "ConnectResponseParser",
    "PROXY_RESPONSE_LIMITS",
    "socks_options",
    "import_python_socks",
    "proxy_error_is_retryable",
]

#: Schemes a proxy URI may have. ``socks4a`` and ``socks5h`` let the proxy resolve the host name.
PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")
SOCKS_SCHEMES = frozenset({"socks4", "socks4a", "socks5", "socks5h"})
#: The port used when a proxy URI has none.
DEFAULT_PROXY_PORTS = {"http": 80, "https": 443, "socks4": 1080, "socks4a": 1080, "socks5": 1080, "socks5h": 1080}

#: Limits on the proxy's answer to CONNECT: a status line and a few headers
#: fit easily; a proxy that sends more is broken or hostile. The body of an
#: error answer is never read (the connection is dropped instead).
PROXY_RESPONSE_LIMITS = HandshakeLimits(max_line=4096, max_headers=64, max_size=16384, max_body=0)

#: Statuses after which trying the same proxy again later may work.
RETRYABLE_PROXY_STATUSES = frozenset({500, 502, 503, 504})

SOCKS_MISSING_MESSAGE = "SOCKS proxies need the python-socks package: pip install wsio[socks]"


@dataclass(frozen=True)
class ProxyURI:
    """A parsed proxy URI; its ``repr`` and ``str`` never show the password.

    Attributes:
        scheme: one of :data:`PROXY_SCHEMES`.
        host: host name or IP address (IPv6 without brackets).
        port: TCP port (default: 80 for http, 443 for https, 1080 for SOCKS).
        username: user name for the proxy, or ``None``.
        password: password for the proxy, or ``None``.
    """

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def is_socks(self) -> bool:
        """True for the SOCKS schemes (which need python-socks)."""
        return self.scheme in SOCKS_SCHEMES

    @property
    def remote_dns(self) -> bool:
        """True when the proxy resolves the target's host name (socks4a, socks5h, http, https)."""
        return self.scheme in ("socks4a", "socks5h", "http", "https")

    @property
    def redacted(self) -> str:
        """The URI, with ``***`` in place of a password, for logs and messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        userinfo = ""
        if self.username is not None:
            userinfo = urllib.parse.quote(self.username, safe="")
            if self.password is not None:
                userinfo += ":***"
            userinfo += "@"
        return f"{self.scheme}://{userinfo}{host}:{self.port}"

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"ProxyURI({self.redacted!r})"


def _redact_text(uri: str) -> str:
    """Hide whatever follows ``user:`` in the userinfo of a URI that didn't parse."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, rest = "", uri
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        return uri
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{hostpart}" if ":" in userinfo else uri


def parse_proxy_uri(uri: str) -> ProxyURI:
    """Parse ``scheme://[user[:password]@]host[:port]``; a URI without scheme is an http:// one.

    User name and password are percent-decoded. Raises :class:`InvalidProxy`
    if the URI is malformed or its scheme isn't one of :data:`PROXY_SCHEMES`.
    """
    text = uri.strip()
    if "://" not in text:
        text = "http://" + text  # HTTP_PROXY=proxy:3128 is common and means http.
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidProxy(_redact_text(uri), f"invalid proxy URI: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise InvalidProxy(_redact_text(uri), f"unsupported proxy scheme {scheme!r}; expected one of {', '.join(PROXY_SCHEMES)}")
    if not parts.hostname:
        raise InvalidProxy(_redact_text(uri), "proxy URI has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidProxy(_redact_text(uri), "a proxy URI has no path, query or fragment")
    username = urllib.parse.unquote(parts.username) if parts.username is not None else None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    return ProxyURI(scheme, parts.hostname, port or DEFAULT_PROXY_PORTS[scheme], username, password)


# -- choosing the proxy -------------------------------------------------------------------------


def _getenv(environ: Mapping[str, str], name: str) -> str | None:
    """The lowercase variable first (curl's and urllib's rule), then the uppercase one.

    ``HTTP_PROXY`` in uppercase is ignored in a CGI script (``REQUEST_METHOD``
    set): there it may come from a client's ``Proxy:`` header ("httpoxy").
    """
    value = environ.get(name.lower())
    if not value and not (name == "HTTP_PROXY" and "REQUEST_METHOD" in environ):
        value = environ.get(name)
    return value.strip() if value and value.strip() else None


def _host_as_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _split_entry_port(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address -> (host, port)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        return host, int(port_text) if port_text.isdigit() else None
    if entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
        return host, int(port_text) if port_text.isdigit() else None
    return entry, None  # a name, or an IPv6 address without brackets


def proxy_bypassed(host: str, port: int, no_proxy: str | None) -> bool:
    """Whether ``NO_PROXY``-style ``no_proxy`` says to connect to ``host:port`` directly.

    Entries are separated by commas or spaces and compared without case:

    - ``*`` matches every host;
    - ``example.com``, ``.example.com`` and ``*.example.com`` match
      ``example.com`` and every name under it (``api.example.com``), not
      ``badexample.com``;
    - an IP address matches that address; ``10.0.0.0/8`` matches a network
      (only when ``host`` is written as an IP address: nothing is resolved);
    - ``host:port`` (``[::1]:8080`` for IPv6) matches only that port.
    """
    if not no_proxy:
        return False
    host = host.strip("[]").rstrip(".").lower()
    host_ip = _host_as_ip(host)
    for raw_entry in no_proxy.replace(",", " ").split():
        entry = raw_entry.lower()
        if entry == "*":
            return True
        entry_host, entry_port = _split_entry_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if "/" in entry_host and host_ip is not None:
            try:
                if host_ip in ipaddress.ip_network(entry_host, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry_ip = _host_as_ip(entry_host)
        if entry_ip is not None or host_ip is not None:
            if entry_ip is not None and entry_ip == host_ip:
                return True
            continue
        domain = entry_host.removeprefix("*").lstrip(".").rstrip(".")
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False


def proxy_from_environment(secure: bool, host: str, port: int, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy URI the environment gives for a ``ws://`` or ``wss://`` (``secure``) connection.

    ``wss://`` uses ``https_proxy`` / ``HTTPS_PROXY``, ``ws://`` uses
    ``http_proxy`` / ``HTTP_PROXY``; both fall back to ``all_proxy`` /
    ``ALL_PROXY``. ``no_proxy`` / ``NO_PROXY`` (see :func:`proxy_bypassed`)
    lists hosts reached directly. Returns ``None`` when no proxy applies.
    ``environ`` defaults to :data:`os.environ`.
    """
    env = os.environ if environ is None else environ
    if proxy_bypassed(host, port, _getenv(env, "NO_PROXY")):
        return None
    return _getenv(env, "HTTPS_PROXY" if secure else "HTTP_PROXY") or _getenv(env, "ALL_PROXY")


def select_proxy(
    proxy: str | bool | None, secure: bool, host: str, port: int, environ: Mapping[str, str] | None = None
) -> ProxyURI | None:
    """Turn the ``proxy`` argument of ``connect()`` into the proxy to use, or ``None``.

    - ``True`` (the default): the environment decides (:func:`proxy_from_environment`);
    - ``None`` or ``False``: no proxy;
    - a string: that proxy URI (``NO_PROXY`` doesn't apply to it).
    """
    if proxy is None or proxy is False:
        return None
    if proxy is True:
        uri = proxy_from_environment(secure, host, port, environ)
        return None if uri is None else parse_proxy_uri(uri)
    if isinstance(proxy, ProxyURI):
        return proxy
    if isinstance(proxy, str):
        return parse_proxy_uri(proxy)
    raise TypeError(f"proxy must be a URI string, True or None, not {type(proxy).__name__}")


def proxy_error_is_retryable(exc: InvalidProxy) -> bool:
    """Whether reconnecting later through this proxy may work.

    Yes if the proxy couldn't be reached or dropped the connection (an
    ``OSError`` or ``EOFError`` cause, like a refused server) or answered
    500, 502 (often: the target refused), 503 or 504. No for 407 (wrong
    credentials), 403 (forbidden port or host) and malformed URIs: retrying
    won't change them.
    """
    if exc.proxy_status is not None:
        return exc.proxy_status in RETRYABLE_PROXY_STATUSES
    return isinstance(exc.__cause__, (OSError, EOFError))


# -- HTTP CONNECT ---------------------------------------------------------------------------------


class ConnectResponseParser(ResponseParser):
    """:class:`ResponseParser` for the answer to CONNECT: the response ends with its head.

    After a 2xx the bytes that follow belong to the tunnel (RFC 9110 9.3.6:
    no body, whatever the headers say); after an error the body isn't
    needed, since the connection is dropped.
    """

    def _end_of_head(self) -> None:
        self._complete()


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ConnectTunnel:
    """One HTTP CONNECT exchange with a proxy, without I/O.

    Write :meth:`request` to the proxy, feed its answer to :meth:`receive_data`
    (and :meth:`receive_eof` if the connection ends) until it returns the
    :class:`Response`; a refusal or a malformed answer raises :class:`InvalidProxy`.

    Args:
        proxy: the HTTP or HTTPS proxy.
        host, port: the WebSocket server to reach through it.
        user_agent: the ``User-Agent`` header, or ``None`` for none.
        limits: size limits on the answer (default: :data:`PROXY_RESPONSE_LIMITS`).
    """

    def __init__(
        self,
        proxy: ProxyURI,
        host: str,
        port: int,
        user_agent: str | None = None,
        limits: HandshakeLimits = PROXY_RESPONSE_LIMITS,
    ) -> None:
        if proxy.scheme not in ("http", "https"):
            raise ValueError(f"CONNECT needs an http:// or https:// proxy, not {proxy.scheme}://")
        self.proxy = proxy
        self.host = host
        self.port = port
        self.user_agent = user_agent
        self._parser = ConnectResponseParser(limits)
        self.response: Response | None = None

    def request(self) -> bytes:
        """The CONNECT request, with ``Proxy-Authorization: Basic`` when the URI has a user name."""
        target = _authority(self.host.encode("idna").decode("ascii") if not self.host.isascii() else self.host, self.port)
        headers = Headers()
        headers["Host"] = target
        if self.proxy.username is not None:
            credentials = f"{self.proxy.username}:{self.proxy.password or ''}".encode("utf-8")
            headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
        if self.user_agent is not None:
            headers["User-Agent"] = self.user_agent
        return Request(target, headers, method="CONNECT").serialize()

    def receive_data(self, data: bytes) -> Response | None:
        """Parse bytes from the proxy; return its 2xx :class:`Response` once complete, else ``None``.

        Raises :class:`InvalidProxy`: with ``proxy_status`` for a non-2xx
        answer; without it for a malformed or oversized answer, or bytes
        arriving before the tunnel was used (a proxy must not send any).
        """
        try:
            response = self._parser.feed(data)
        except InvalidHandshake as exc:
            raise InvalidProxy(self.proxy.redacted, f"invalid answer to CONNECT: {exc}") from exc
        if response is None:
            return None
        return self._accept(response)

    def receive_eof(self) -> None:
        """The proxy closed the connection before answering: raise :class:`InvalidProxy`."""
        try:
            self._parser.feed_eof()
        except InvalidHandshake as exc:
            eof = EOFError(str(exc))
            eof.__cause__ = exc
            raise InvalidProxy(self.proxy.redacted, f"closed the connection: {exc}") from eof
        raise InvalidProxy(self.proxy.redacted, "closed the connection after its answer")  # pragma: no cover

    def _accept(self, response: Response) -> Response:
        self.response = response
        if not 200 <= response.status_code < 300:
            detail = f"{response.status_code} {response.reason_phrase}".rstrip()
            # 407 is the standard answer; some proxies (tinyproxy) say 401 to wrong credentials.
            if response.status_code in (401, 407):
                challenge = response.headers.get("Proxy-Authenticate") or response.headers.get("WWW-Authenticate")
                detail += "; " + (
                    "wrong user name or password" if self.proxy.username else "the proxy wants a user name and password"
                )
                if challenge:
                    detail += f" (challenge: {challenge})"
            raise InvalidProxy(
                self.proxy.redacted, f"CONNECT to {_authority(self.host, self.port)} refused: {detail}", response.status_code
            )
        if self._parser.leftover:
            raise InvalidProxy(self.proxy.redacted, "sent data before the WebSocket handshake started")
        return response


# -- SOCKS ---------------------------------------------------------------------------------------


def import_python_socks(module: str) -> types.ModuleType:
    """Import ``python_socks`` or its submodule ``module`` (``"sync"``, ``"async_.asyncio"``).

    Raises :class:`ImportError` that says to install ``wsio[socks]`` if it's missing.
    """
    import importlib

    try:
        return importlib.import_module(f"python_socks.{module}" if module else "python_socks")
    except ImportError as exc:
        raise ImportError(SOCKS_MISSING_MESSAGE) from exc


def socks_options(proxy: ProxyURI) -> dict[str, Any]:
    """Keyword arguments for python-socks' ``Proxy(...)`` for a SOCKS proxy URI."""
    python_socks = import_python_socks("")
    proxy_type = python_socks.ProxyType.SOCKS5 if proxy.scheme.startswith("socks5") else python_socks.ProxyType.SOCKS4
    return dict(
        proxy_type=proxy_type,
        host=proxy.host,
        port=proxy.port,
        username=proxy.username,
        password=proxy.password,
        rdns=proxy.remote_dns,
    )


def socks_error(proxy: ProxyURI, exc: BaseException) -> InvalidProxy:
    """The :class:`InvalidProxy` for an exception raised by python-socks (set it as ``__cause__``)."""
    error_code = getattr(exc, "error_code", None)
    message = str(exc) or type(exc).__name__
    if error_code is not None:
        message = f"{message} (SOCKS reply code {error_code})"
    error = InvalidProxy(proxy.redacted, message)
    error.__cause__ = exc
    return error
