"""WebSocket URIs, at the path websockets has them (``websockets.uri``)."""

from __future__ import annotations

from .protocol.uri import WebSocketURI, parse_uri

__all__ = ["parse_uri", "WebSocketURI"]
