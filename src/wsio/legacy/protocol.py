"""Legacy connection names (``websockets.legacy.protocol``), pointing at wsio's asyncio connection."""

from __future__ import annotations

from ..asyncio.broadcast import broadcast
from ..asyncio.connection import Connection

__all__ = ["WebSocketCommonProtocol", "broadcast"]

#: The legacy base of both connection classes: :class:`wsio.Connection`.
WebSocketCommonProtocol = Connection
