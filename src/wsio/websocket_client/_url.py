"""websocket-client's ``_url``: ``parse_url()`` and ``get_proxy_info()``, on wsio's URI and proxy rules."""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from typing import Any, Sequence

from ..protocol.uri import parse_uri
from ..protocol.proxy import _getenv, proxy_bypassed
from ._exceptions import WebSocketProxyException

__all__ = ["parse_url", "get_proxy_info"]


def parse_url(url: str) -> tuple[str, int, str, bool]:
    """Split a ``ws://`` or ``wss://`` URL into ``(hostname, port, resource, is_secure)``.

    ``resource`` is the path (``/`` if empty) with the query. An invalid URL
    raises :class:`wsio.InvalidURI`, which is a :class:`ValueError`.
    """
    wsuri = parse_uri(url)
    return wsuri.host, wsuri.port, wsuri.resource_name, wsuri.secure


def _is_ip_address(addr: str) -> bool:
    if not isinstance(addr, str):
        raise TypeError("_is_ip_address() argument 1 must be str")
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        return False
    return True


def _is_subnet_address(hostname: str) -> bool:
    try:
        ipaddress.ip_network(hostname)
    except ValueError:
        return False
    return True


def _is_address_in_network(ip: str, net: str) -> bool:
    try:
        return ipaddress.ip_network(ip).subnet_of(ipaddress.ip_network(net))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _no_proxy_entries(no_proxy: Sequence[str] | str | None) -> str:
    if not no_proxy:
        return _getenv(os.environ, "NO_PROXY") or ""
    if isinstance(no_proxy, str):
        return no_proxy
    return ",".join(no_proxy)


def _is_no_proxy_host(hostname: str, no_proxy: Sequence[str] | str | None) -> bool:
    """Whether ``hostname`` is reached without the proxy: listed in ``no_proxy`` (default: ``NO_PROXY``).

    Matching follows :func:`wsio.protocol.proxy.proxy_bypassed`: ``*``, a
    name and its subdomains (``example.com``, ``.example.com``), an address,
    a network (``10.0.0.0/8``).
    """
    if not isinstance(hostname, str):
        raise TypeError(f"hostname must be str, not {type(hostname).__name__}")
    return proxy_bypassed(hostname, 0, _no_proxy_entries(no_proxy))


def get_proxy_info(
    hostname: str,
    is_secure: bool,
    proxy_host: str | None = None,
    proxy_port: int = 0,
    proxy_auth: Any = None,
    no_proxy: Sequence[str] | None = None,
    proxy_type: str = "http",
) -> tuple[str | None, int | None, Any]:
    """The proxy to use for ``hostname``: ``(proxy_host, proxy_port, (user, password) or None)``.

    ``(None, 0, None)`` means a direct connection (``hostname`` listed in
    ``no_proxy``, or no proxy given). ``proxy_host`` needs ``proxy_port``;
    without ``proxy_host`` the proxy comes from ``https_proxy`` (``is_secure``)
    or ``http_proxy``, lowercase names first.
    """
    if _is_no_proxy_host(hostname, no_proxy):
        return None, 0, None
    if proxy_host:
        if not proxy_port:
            raise WebSocketProxyException("Cannot use port 0 when proxy_host specified")
        return proxy_host, proxy_port, proxy_auth
    value = _getenv(os.environ, "HTTPS_PROXY" if is_secure else "HTTP_PROXY")
    if not value:
        return None, 0, None
    proxy = urllib.parse.urlparse(value.replace(" ", ""))
    auth = (urllib.parse.unquote(proxy.username or ""), urllib.parse.unquote(proxy.password or "")) if proxy.username else None
    return proxy.hostname, proxy.port, auth
