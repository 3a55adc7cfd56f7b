"""wsio on threads: ``connect``, ``serve`` and the websocket-client API, with no event loop.

::

    from wsio.sync import connect

    with connect("ws://localhost:8765") as websocket:
        websocket.send("hello")
        print(websocket.recv(timeout=5))

Code written for websocket-client runs with one changed line,
``from wsio import sync as websocket``: :func:`create_connection`,
:class:`WebSocket`, :class:`WebSocketApp`, :class:`ABNF` and the
``WebSocket*Exception`` classes are here too, from
:mod:`wsio.websocket_client` (which also mirrors websocket-client's modules).
"""

from .client import ClientConnection, connect, unix_connect
from .connection import Connection
from .server import Server, ServerConnection, basic_response, serve, unix_serve

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..websocket_client import (
        WebSocket,
        WebSocketAddressException,
        WebSocketApp,
        WebSocketBadStatusException,
        WebSocketConnectionClosedException,
        WebSocketException,
        WebSocketHandshakeException,
        WebSocketPayloadException,
        WebSocketProtocolException,
        WebSocketProxyException,
        WebSocketTimeoutException,
        create_connection,
        enableTrace,
        getdefaulttimeout,
        setdefaulttimeout,
        ssl_context_from_sslopt,
    )
    from ..websocket_client._abnf import *  # noqa: F403

# The websocket-client names come from wsio.websocket_client, which is built
# on this package's client module: they are loaded on first use, so that
# importing either package first works.
_compat_all = [
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
    "ABNF",
    "STATUS_NORMAL",
    "STATUS_GOING_AWAY",
    "STATUS_PROTOCOL_ERROR",
    "STATUS_UNSUPPORTED_DATA_TYPE",
    "STATUS_STATUS_NOT_AVAILABLE",
    "STATUS_ABNORMAL_CLOSED",
    "STATUS_INVALID_PAYLOAD",
    "STATUS_POLICY_VIOLATION",
    "STATUS_MESSAGE_TOO_BIG",
    "STATUS_INVALID_EXTENSION",
    "STATUS_UNEXPECTED_CONDITION",
    "STATUS_SERVICE_RESTART",
    "STATUS_TRY_AGAIN_LATER",
    "STATUS_BAD_GATEWAY",
    "STATUS_TLS_HANDSHAKE_ERROR",
]


def __getattr__(name: str) -> Any:
    if name in _compat_all:
        from .. import websocket_client

        value = getattr(websocket_client, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_compat_all})


__all__ = [
    "connect",
    "unix_connect",
    "serve",
    "unix_serve",
    "basic_response",
    "Server",
    "Connection",
    "ServerConnection",
    "ClientConnection",
    *_compat_all,
]
