"""wsio on asyncio: ``serve``, ``connect``, ``broadcast`` and the connection class."""

from .broadcast import broadcast
from .client import ClientConnection, WebSocketClientProtocol, connect, unix_connect
from .connection import Connection
from .listener import (
    Listener,
    ListenerClientConnection,
    ListenerConnection,
    ListenerServerConnection,
    connect_listener,
    serve_listener,
)
from .router import Router, route, unix_route
from .server import Server, ServerConnection, WebSocketServerProtocol, basic_auth, basic_response, serve, unix_serve

__all__ = [
    "broadcast",
    "Listener",
    "ListenerConnection",
    "ListenerServerConnection",
    "ListenerClientConnection",
    "serve_listener",
    "connect_listener",
    "connect",
    "unix_connect",
    "serve",
    "unix_serve",
    "basic_response",
    "basic_auth",
    "route",
    "unix_route",
    "Router",
    "Server",
    "Connection",
    "ServerConnection",
    "ClientConnection",
    "WebSocketServerProtocol",
    "WebSocketClientProtocol",
]
