"""How a message crosses Redis between hubs: a 17-byte header, then the payload as is.

::

    byte  0      b"T": text (the payload is UTF-8), b"B": binary
    bytes 1-8    origin: a random id of the publishing hub, so that it skips its own echo
    bytes 9-16   the message's sequence number at its origin, big-endian; with the
                 origin, it identifies the message, so that a process subscribed to a
                 channel by name and by pattern delivers it once
    bytes 17-    the payload: what the WebSocket frame carries

The type travels with the message: a binary message arrives as ``bytes``, a text
one as ``str``. Another program can publish to wsio hubs in this format.
"""

from __future__ import annotations

import struct

__all__ = ["TEXT", "BINARY", "HEADER_SIZE", "encode", "decode"]

TEXT = b"T"
BINARY = b"B"
_HEADER = struct.Struct("!c8sQ")
HEADER_SIZE = _HEADER.size  # 17

_MASK_64 = (1 << 64) - 1


def encode(text: bool, origin: bytes, seq: int, payload: bytes | bytearray | memoryview) -> bytes:
    """The Redis message for one WebSocket message."""
    return _HEADER.pack(TEXT if text else BINARY, origin, seq & _MASK_64) + payload


def decode(data: bytes) -> tuple[bool, bytes, bytes, bytes]:
    """``(text, origin, message_id, payload)`` of a Redis message; ``ValueError`` if it isn't one.

    ``message_id`` is the origin and sequence number together (16 bytes).
    """
    if len(data) < HEADER_SIZE:
        raise ValueError(f"message of {len(data)} bytes is shorter than the {HEADER_SIZE}-byte header")
    kind = data[0:1]
    if kind == TEXT:
        text = True
    elif kind == BINARY:
        text = False
    else:
        raise ValueError(f"unknown message type {kind!r} (expected {TEXT!r} or {BINARY!r})")
    return text, data[1:9], data[1:17], data[17:]
