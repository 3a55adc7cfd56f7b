"""wsio on threads: ``connect``, ``serve`` and the websocket-client API, with no event loop.

::

    from wsio.sync import connect

    with connect("ws://localhost:8765") as websocket:
        websocket.send("hello")
        print(websocket.recv(timeout=5))

Code written for websocket-client runs with one changed line,
``from wsio import sync as websocket``: :func:`create_connection`,
:class:`WebSocket`, :class:`WebSocketApp`, :class:`ABNF` and the
``WebSocket*Exception`` classes are here too.
"""

from .client import ClientConnection, connect, unix_connect
from .compat import *  # noqa: F403
from .compat import __all__ as _compat_all
from .connection import Connection
from .server import Server, ServerConnection, basic_response, serve, unix_serve

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
