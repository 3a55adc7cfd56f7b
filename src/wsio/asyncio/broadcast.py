"""``broadcast()``: one message to many connections, framed once, never waiting."""

from __future__ import annotations

import logging
import sys
from typing import Hashable, Iterable

from ..protocol.machine import Side, State
from ..protocol.frames import FIN, OP_BINARY, OP_TEXT, RSV1, build_frame
from .connection import BaseConnection

__all__ = ["broadcast", "Framed"]

logger = logging.getLogger("wsio.server")

_PLAIN = object()  # cache key of the uncompressed frame


class Framed:
    """One message, framed once for many connections: what ``broadcast()`` and the pub/sub hub share.

    The uncompressed frame is built on first use and reused; a compressed one
    is built once per distinct permessage-deflate setting without context
    takeover (``protocol.deflate.key``). A connection that keeps its
    compression context, or a client connection (frames are masked), gets a
    frame of its own from its protocol. ``compress`` is as in
    :meth:`Connection.send` (``None``: compress from ``compression_threshold`` on).
    """

    __slots__ = ("payload", "head", "size", "compress", "wire_size", "_frames")

    def __init__(
        self,
        message: str | bytes | bytearray | memoryview,
        compress: bool | None = None,
        caller: str = "broadcast()",
    ) -> None:
        if isinstance(message, str):
            payload: bytes | bytearray | memoryview = message.encode()
            head = FIN | OP_TEXT
        elif isinstance(message, (bytes, bytearray, memoryview)):
            payload = message
            head = FIN | OP_BINARY
        else:
            raise TypeError(f"{caller} takes str or bytes, not {type(message).__name__}")
        self._init(payload, head, compress)

    @classmethod
    def from_payload(cls, text: bool, payload: bytes, compress: bool | None = None) -> Framed:
        """A message given as its payload: UTF-8 bytes if ``text``, else binary data."""
        framed = cls.__new__(cls)
        framed._init(payload, FIN | (OP_TEXT if text else OP_BINARY), compress)
        return framed

    def _init(self, payload: bytes | bytearray | memoryview, head: int, compress: bool | None) -> None:
        self.payload = payload
        self.head = head
        self.size = size = len(payload)
        self.compress = compress
        # An upper bound of the frame's length on the wire, compressed or not:
        # 14 bytes of header at most, and deflate grows incompressible data by
        # a few bytes per 16 KiB block plus its 4-byte flush marker.
        self.wire_size = size + 14 + (size >> 10) + 16
        self._frames: dict[Hashable, bytes] = {}

    def frame_for(self, connection: BaseConnection) -> bytes:
        """The bytes to write to ``connection``, which must be open.

        Raises what the connection's protocol raises when it frames the
        message itself (client side, or compression context takeover).
        """
        protocol = connection.protocol
        deflate = protocol.deflate
        compress = self.compress
        use_deflate = deflate is not None and compress is not False and (compress or self.size >= protocol.compression_threshold)
        # [union-attr]: use_deflate implies a deflate, which mypy can't follow through a bool.
        key: Hashable | None = deflate.key if use_deflate else _PLAIN  # type: ignore[union-attr]
        if protocol.side is Side.CLIENT or key is None:
            # Masked frames, or a compression context of its own: frame for this one.
            if self.head & 0x0F == OP_TEXT:
                return protocol.send_text(self.payload, compress)
            return protocol.send_binary(self.payload, compress)
        data = self._frames.get(key)
        if data is None:
            if key is _PLAIN:
                data = build_frame(self.head, self.payload)
            else:
                data = build_frame(self.head | RSV1, deflate.compress(self.payload))  # type: ignore[union-attr]  # key from a deflate
            self._frames[key] = data
        return data


def broadcast(
    connections: Iterable[BaseConnection],
    message: str | bytes | bytearray | memoryview,
    raise_exceptions: bool = False,
    compress: bool | None = None,
    *,
    text: bool | None = None,
) -> int:
    """Send ``message`` to every open connection in ``connections``; return how many it reached.

    The frame is built once, and compressed once per distinct permessage-deflate
    setting without context takeover (a connection that keeps its compression
    context gets its own compressed frame, as its peer's decompressor expects).
    Connections whose write buffer is above their ``write_limit`` are skipped
    (a slow reader never makes the others wait nor grows memory), as are
    closed ones and ones in the middle of sending a fragmented message.
    ``broadcast`` never awaits; it is a plain function. ``connections`` may mix
    both asyncio APIs (any :class:`~wsio.asyncio.connection.BaseConnection`):
    each is written to through its own batching (``_hold()``).

    ``text=True`` sends UTF-8 bytes as a text message and ``text=False`` a
    ``str`` as a binary one (websockets' option); by default ``str`` is text
    and bytes-like is binary.
    """
    if text is True and isinstance(message, (bytes, bytearray, memoryview)):
        framed = Framed.from_payload(True, bytes(message), compress)
    elif text is False and isinstance(message, str):
        framed = Framed.from_payload(False, message.encode(), compress)
    else:
        framed = Framed(message, compress)
    reached = skipped = 0
    errors: list[Exception] = []
    for connection in connections:
        protocol = connection.protocol
        if protocol.state is not State.OPEN:
            continue
        transport = connection.transport
        lock = connection._fragment_lock
        if (
            (lock is not None and lock.locked())
            or connection._backlog
            or transport.get_write_buffer_size() > connection.write_limit
        ):
            skipped += 1
            continue
        try:
            data = framed.frame_for(connection)
        except Exception as exc:
            if raise_exceptions:
                errors.append(exc)
            continue
        connection._hold(data)  # written with what else it is sent in this turn (or read, for a listener)
        reached += 1
    if skipped:
        logger.debug("broadcast skipped %d slow connections", skipped)
    if errors:
        if sys.version_info >= (3, 11):
            raise ExceptionGroup("broadcast failed for some connections", errors)  # noqa: F821
        raise errors[0]
    return reached
