"""wsio: WebSocket server and client for Python.

asyncio, threads and callbacks on one fast sans-I/O core::

    import wsio

    async def handler(websocket):
        async for message in websocket:
            await websocket.send(message)

    async with wsio.serve(handler, "localhost", 8765) as server:
        await server.serve_forever()
"""

from .asyncio import (
    ClientConnection,
    Connection,
    Listener,
    ListenerClientConnection,
    ListenerConnection,
    ListenerServerConnection,
    Server,
    ServerConnection,
    WebSocketClientProtocol,
    WebSocketServerProtocol,
    basic_response,
    broadcast,
    connect,
    connect_listener,
    serve,
    serve_listener,
    unix_connect,
    unix_serve,
)
from .asyncio.router import Router, route, unix_route
from .asyncio.server import basic_auth
from .exceptions import *  # noqa: F403
from .exceptions import AbortHandshake, RedirectHandshake, WebSocketProtocolError
from .exceptions import __all__ as _exceptions_all
from .frames import Frame
from .legacy.auth import BasicAuthWebSocketServerProtocol, basic_auth_protocol_factory
from .legacy.protocol import WebSocketCommonProtocol
from .legacy.server import WebSocketServer
from .protocol import ClientProtocol, Close, CloseCode, Opcode, Protocol, ServerProtocol, Side, State
from .protocol.http11 import HandshakeLimits, Request, Response
from .protocol.datastructures import Headers, HeadersLike, MultipleValuesError
from .typing import Data, ExtensionName, ExtensionParameter, LoggerLike, Origin, StatusLike, Subprotocol
from .pubsub import Hub, HubUnavailable
from .runner import run
from .version import version

__version__ = version


def install_uvloop() -> None:
    """Make asyncio use uvloop (``pip install wsio[uvloop]``); wsio never needs it."""
    import asyncio

    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


__all__ = [
    "serve",
    "unix_serve",
    "connect",
    "unix_connect",
    "broadcast",
    "Hub",
    "HubUnavailable",
    "run",
    "basic_response",
    "Listener",
    "ListenerConnection",
    "ListenerServerConnection",
    "ListenerClientConnection",
    "serve_listener",
    "connect_listener",
    "install_uvloop",
    "Server",
    "Connection",
    "ServerConnection",
    "ClientConnection",
    "WebSocketServerProtocol",
    "WebSocketClientProtocol",
    "Close",
    "CloseCode",
    "Opcode",
    "State",
    "Headers",
    "MultipleValuesError",
    "Request",
    "Response",
    "HandshakeLimits",
    "version",
    # The rest of websockets' names, at the same place.
    "route",
    "unix_route",
    "Router",
    "basic_auth",
    "Protocol",
    "ServerProtocol",
    "ClientProtocol",
    "Side",
    "Frame",
    "HeadersLike",
    "Data",
    "ExtensionName",
    "ExtensionParameter",
    "LoggerLike",
    "Origin",
    "StatusLike",
    "Subprotocol",
    # websockets' deprecated legacy names (see wsio.legacy).
    "BasicAuthWebSocketServerProtocol",
    "basic_auth_protocol_factory",
    "AbortHandshake",
    "RedirectHandshake",
    "WebSocketProtocolError",
    "WebSocketCommonProtocol",
    "WebSocketServer",
    *_exceptions_all,
]
