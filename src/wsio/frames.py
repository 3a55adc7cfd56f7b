"""Frames and close codes, at the path websockets has them (``websockets.frames``).

:class:`Opcode`, :class:`CloseCode` and :class:`Close` are wsio's own (see
:mod:`wsio.protocol.frames`). :class:`Frame` is a plain record of one frame
for code that builds or inspects frames itself: wsio's connections parse
frames internally and never hand out ``Frame`` objects.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

from .exceptions import ProtocolError
from .protocol.frames import FIN, Close, CloseCode, Opcode, build_frame

__all__ = ["Opcode", "CloseCode", "Frame", "Close"]

#: Opcodes of control frames: at most 125 bytes of payload, never fragmented.
CTRL_OPCODES = (Opcode.CLOSE, Opcode.PING, Opcode.PONG)

#: Opcodes of data frames.
DATA_OPCODES = (Opcode.CONT, Opcode.TEXT, Opcode.BINARY)


@dataclasses.dataclass
class Frame:
    """One WebSocket frame: opcode, payload and the FIN and RSV bits.

    Attributes:
        opcode: the :class:`Opcode`.
        data: the (unmasked) payload.
        fin: whether this is the last frame of its message (``True``).
        rsv1, rsv2, rsv3: the reserved bits (``False``); RSV1 marks a
            compressed message under permessage-deflate.
    """

    opcode: Opcode
    data: bytes | bytearray | memoryview
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False

    def __str__(self) -> str:
        flags = "" if self.fin else " (not final)"
        return f"{self.opcode.name} {bytes(self.data)[:75]!r} [{len(self.data)} bytes]{flags}"

    def check(self) -> None:
        """Raise :class:`~wsio.ProtocolError` if the frame breaks RFC 6455's rules for its opcode."""
        if self.rsv2 or self.rsv3:
            raise ProtocolError("reserved bits must be 0")
        if self.opcode in CTRL_OPCODES:
            if len(self.data) > 125:
                raise ProtocolError("control frame too long")
            if not self.fin:
                raise ProtocolError("fragmented control frame")

    def serialize(self, *, mask: bool, extensions: Sequence[Any] | None = None) -> bytes:
        """The frame as bytes on the wire; ``mask=True`` for a frame a client sends.

        ``extensions`` (objects with an ``encode(frame)`` method, applied in
        order) transform the frame first; wsio's connections compress
        messages themselves and don't need this.
        """
        frame = self
        for extension in extensions or ():
            frame = extension.encode(frame)
        frame.check()
        head = (FIN if frame.fin else 0) | (0x40 if frame.rsv1 else 0) | int(frame.opcode)
        return build_frame(head, frame.data, os.urandom(4) if mask else None)
