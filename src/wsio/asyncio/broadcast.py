"""``broadcast()``: one message to many connections, framed once, never waiting."""

from __future__ import annotations

import logging
import sys
from typing import Any, Hashable, Iterable

from ..protocol.connection import Side, State
from ..protocol.frames import FIN, OP_BINARY, OP_TEXT, RSV1, build_frame
from .connection import Connection

__all__ = ["broadcast"]

logger = logging.getLogger("wsio.server")

_PLAIN = object()  # cache key of the uncompressed frame


def broadcast(
    connections: Iterable[Connection],
    message: str | bytes | bytearray | memoryview,
    raise_exceptions: bool = False,
    compress: bool | None = None,
) -> int:
    """Send ``message`` to every open connection in ``connections``; return how many it reached.

    The frame is built once, and compressed once per distinct permessage-deflate
    setting without context takeover (a connection that keeps its compression
    context gets its own compressed frame, as its peer's decompressor expects).
    Connections whose write buffer is above their ``write_limit`` are skipped
    (a slow reader never makes the others wait nor grows memory), as are
    closed ones and ones in the middle of sending a fragmented message.
    ``broadcast`` never awaits; it is a plain function.
    """
    if isinstance(message, str):
        payload: bytes | bytearray | memoryview = message.encode()
        head = FIN | OP_TEXT
    elif isinstance(message, (bytes, bytearray, memoryview)):
        payload = message
        head = FIN | OP_BINARY
    else:
        raise TypeError(f"broadcast() takes str or bytes, not {type(message).__name__}")
    size = len(payload)
    frames: dict[Hashable, bytes] = {}
    reached = skipped = 0
    errors: list[Exception] = []
    for connection in connections:
        protocol = connection.protocol
        if protocol.state is not State.OPEN:
            continue
        transport = connection.transport
        lock = connection._fragment_lock
        if (lock is not None and lock.locked()) or transport.get_write_buffer_size() > connection.write_limit:
            skipped += 1
            continue
        deflate = protocol.deflate
        use_deflate = deflate is not None and compress is not False and (compress or size >= protocol.compression_threshold)
        key: Any = deflate.key if use_deflate else _PLAIN  # type: ignore[union-attr]
        if protocol.side is Side.CLIENT or key is None:
            # Masked frames, or a compression context of its own: frame for this one.
            try:
                data = protocol.send_message(message, compress)
            except Exception as exc:
                if raise_exceptions:
                    errors.append(exc)
                continue
        else:
            data = frames.get(key)  # type: ignore[assignment]
            if data is None:
                if key is _PLAIN:
                    data = build_frame(head, payload)
                else:
                    data = build_frame(head | RSV1, deflate.compress(payload))  # type: ignore[union-attr]
                frames[key] = data
        transport.write(data)
        reached += 1
    if skipped:
        logger.debug("broadcast skipped %d slow connections", skipped)
    if errors:
        if sys.version_info >= (3, 11):
            raise ExceptionGroup("broadcast failed for some connections", errors)  # noqa: F821
        raise errors[0]
    return reached
