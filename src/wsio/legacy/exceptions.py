"""Legacy exception names (``websockets.legacy.exceptions``)."""

from __future__ import annotations

from ..exceptions import (
    AbortHandshake,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatusCode,
    RedirectHandshake,
    WebSocketProtocolError,
)

__all__ = [
    "AbortHandshake",
    "InvalidHandshake",
    "InvalidMessage",
    "InvalidStatusCode",
    "RedirectHandshake",
    "WebSocketProtocolError",
]
