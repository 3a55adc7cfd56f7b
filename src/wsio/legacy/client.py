"""Legacy client names (``websockets.legacy.client``), pointing at wsio's asyncio client."""

from __future__ import annotations

from ..asyncio.client import ClientConnection, connect, unix_connect

__all__ = ["connect", "unix_connect", "WebSocketClientProtocol"]

#: The legacy client connection class: :class:`wsio.ClientConnection`.
WebSocketClientProtocol = ClientConnection
