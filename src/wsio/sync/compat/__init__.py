"""websocket-client's API on wsio.sync: code written for it runs with ``from wsio import sync as websocket``.

- :func:`create_connection` and :class:`WebSocket`: blocking ``send()`` / ``recv()``.
- :class:`WebSocketApp`: callbacks and ``run_forever(reconnect=...)``.
- :class:`ABNF` and the ``STATUS_*`` close codes.
- The ``WebSocket*Exception`` classes, each also the matching wsio exception.
- ``sslopt`` dictionaries, ``setdefaulttimeout()``, ``enableTrace()``.
- Proxies: ``http_proxy_host``, ``http_proxy_port``, ``http_proxy_auth``,
  ``proxy_type`` (http, socks4, socks4a, socks5, socks5h), ``http_no_proxy``,
  ``http_proxy_timeout``, and the ``http_proxy`` / ``https_proxy`` variables.
"""

from __future__ import annotations

import logging

from .abnf import *  # noqa: F403
from .abnf import __all__ as _abnf_all
from .app import WebSocketApp
from .core import WebSocket, create_connection, getdefaulttimeout, setdefaulttimeout
from .exceptions import (
    WebSocketAddressException,
    WebSocketBadStatusException,
    WebSocketConnectionClosedException,
    WebSocketException,
    WebSocketHandshakeException,
    WebSocketPayloadException,
    WebSocketProtocolException,
    WebSocketProxyException,
    WebSocketTimeoutException,
)
from .sslopt import ssl_context_from_sslopt

__all__ = [
    "create_connection",
    "WebSocket",
    "WebSocketApp",
    "setdefaulttimeout",
    "getdefaulttimeout",
    "enableTrace",
    "ssl_context_from_sslopt",
    "WebSocketException",
    "WebSocketProtocolException",
    "WebSocketPayloadException",
    "WebSocketConnectionClosedException",
    "WebSocketTimeoutException",
    "WebSocketProxyException",
    "WebSocketBadStatusException",
    "WebSocketAddressException",
    "WebSocketHandshakeException",
    *_abnf_all,
]


def enableTrace(traceable: bool, handler: logging.Handler | None = None, level: str = "DEBUG") -> None:
    """Log what wsio does (handshakes, frames, closes) to ``handler`` (stderr by default), or stop."""
    wsio_logger = logging.getLogger("wsio")
    if traceable:
        wsio_logger.addHandler(handler or logging.StreamHandler())
        wsio_logger.setLevel(level)
    else:
        wsio_logger.setLevel(logging.WARNING)
