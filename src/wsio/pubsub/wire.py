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

A hub that keeps history (``history_size``) publishes its messages with their
place in the topic's history, under the types ``b"t"`` (text) and ``b"b"``
(binary), between the header and the payload::

    bytes 17-24  the message's offset in its topic, big-endian
    byte  25     n, the length of the epoch
    bytes 26-    the epoch (n ASCII bytes), then the payload

Such a message is written by a script in Redis (the offset is drawn there), so
that a topic's messages are published in the order of their offsets. A hub
without history delivers these too; messages of the
first form are still read by every hub.

**Presence events** (a connection joined or left a topic's presence) travel on the
topic's channel too, written by the presence scripts in Redis::

    byte  0      b"P"
    bytes 1-16   an id of the event (random, then a counter), so that it is delivered once
    bytes 17-    {"type": "join" or "leave", "client": ..., "info": ..., "count": ...}, JSON

A hub older than these events ignores them (it logs a warning).
"""

from __future__ import annotations

import struct

__all__ = ["TEXT", "BINARY", "TEXT_AT", "BINARY_AT", "PRESENCE", "HEADER_SIZE", "encode", "decode", "decode_position"]

TEXT = b"T"
BINARY = b"B"
TEXT_AT = b"t"
BINARY_AT = b"b"
PRESENCE = b"P"
_OFFSET = struct.Struct("!Q")
_HEADER = struct.Struct("!c8sQ")
HEADER_SIZE = _HEADER.size  # 17

_MASK_64 = (1 << 64) - 1


def encode(text: bool, origin: bytes, seq: int, payload: bytes | bytearray | memoryview) -> bytes:
    """The Redis message for one WebSocket message."""
    return _HEADER.pack(TEXT if text else BINARY, origin, seq & _MASK_64) + payload


def decode(data: bytes) -> tuple[bool, bytes, bytes, bytes]:
    """``(text, origin, message_id, payload)`` of a Redis message; ``ValueError`` if it isn't one.

    ``message_id`` is the origin and sequence number together (16 bytes). A
    message with a position (``b"t"``, ``b"b"``) is returned without it: see
    :func:`decode_position`.
    """
    text, origin, message_id, payload, _ = decode_position(data)
    return text, origin, message_id, payload


def decode_position(data: bytes) -> tuple[bool, bytes, bytes, bytes, tuple[int, str] | None]:
    """As :func:`decode`, plus ``(offset, epoch)`` for a message with a position, else ``None``."""
    if len(data) < HEADER_SIZE:
        raise ValueError(f"message of {len(data)} bytes is shorter than the {HEADER_SIZE}-byte header")
    kind = data[0:1]
    if kind == TEXT or kind == TEXT_AT:
        text = True
    elif kind == BINARY or kind == BINARY_AT:
        text = False
    else:
        raise ValueError(f"unknown message type {kind!r} (expected {TEXT!r}, {BINARY!r}, {TEXT_AT!r} or {BINARY_AT!r})")
    if kind == TEXT or kind == BINARY:
        return text, data[1:9], data[1:17], data[17:], None
    if len(data) < HEADER_SIZE + 9:
        raise ValueError(f"message of {len(data)} bytes is too short for its position")
    (offset,) = _OFFSET.unpack_from(data, HEADER_SIZE)
    n = data[HEADER_SIZE + 8]
    start = HEADER_SIZE + 9
    if len(data) < start + n:
        raise ValueError(f"message of {len(data)} bytes is too short for its {n}-byte epoch")
    try:
        epoch = data[start : start + n].decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("the epoch isn't ASCII") from None
    return text, data[1:9], data[1:17], data[start + n :], (offset, epoch)
