"""Legacy server names (``websockets.legacy.server``), pointing at wsio's asyncio server."""

from __future__ import annotations

from ..asyncio.broadcast import broadcast
from ..asyncio.server import Server, ServerConnection, serve, unix_serve

__all__ = ["broadcast", "serve", "unix_serve", "WebSocketServerProtocol", "WebSocketServer"]

#: The legacy connection class that servers subclass: :class:`wsio.ServerConnection`.
WebSocketServerProtocol = ServerConnection

#: The legacy server class: :class:`wsio.Server`.
WebSocketServer = Server
