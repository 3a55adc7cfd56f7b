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
from .exceptions import *  # noqa: F403
from .exceptions import __all__ as _exceptions_all
from .protocol import Close, CloseCode, Opcode, State
from .protocol.http11 import HandshakeLimits, Headers, MultipleValuesError, Request, Response
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
    *_exceptions_all,
]
