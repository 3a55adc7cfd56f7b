"""websocket-client's ``ABNF`` frame class and ``STATUS_*`` close codes."""

from __future__ import annotations

import os
from typing import Any, Callable

from ..protocol import frames as _frames

__all__ = [
    "ABNF",
    "STATUS_NORMAL",
    "STATUS_GOING_AWAY",
    "STATUS_PROTOCOL_ERROR",
    "STATUS_UNSUPPORTED_DATA_TYPE",
    "STATUS_STATUS_NOT_AVAILABLE",
    "STATUS_ABNORMAL_CLOSED",
    "STATUS_INVALID_PAYLOAD",
    "STATUS_POLICY_VIOLATION",
    "STATUS_MESSAGE_TOO_BIG",
    "STATUS_INVALID_EXTENSION",
    "STATUS_UNEXPECTED_CONDITION",
    "STATUS_SERVICE_RESTART",
    "STATUS_TRY_AGAIN_LATER",
    "STATUS_BAD_GATEWAY",
    "STATUS_TLS_HANDSHAKE_ERROR",
]

STATUS_NORMAL = 1000
STATUS_GOING_AWAY = 1001
STATUS_PROTOCOL_ERROR = 1002
STATUS_UNSUPPORTED_DATA_TYPE = 1003
STATUS_STATUS_NOT_AVAILABLE = 1005
STATUS_ABNORMAL_CLOSED = 1006
STATUS_INVALID_PAYLOAD = 1007
STATUS_POLICY_VIOLATION = 1008
STATUS_MESSAGE_TOO_BIG = 1009
STATUS_INVALID_EXTENSION = 1010
STATUS_UNEXPECTED_CONDITION = 1011
STATUS_SERVICE_RESTART = 1012
STATUS_TRY_AGAIN_LATER = 1013
STATUS_BAD_GATEWAY = 1014
STATUS_TLS_HANDSHAKE_ERROR = 1015


class ABNF:
    """One frame, as websocket-client describes it: ``fin``, ``opcode``, ``data``.

    wsio frames and parses internally; this class is what ``recv_data_frame()``
    returns and what ``send_frame()`` takes.
    """

    OPCODE_CONT = 0x0
    OPCODE_TEXT = 0x1
    OPCODE_BINARY = 0x2
    OPCODE_CLOSE = 0x8
    OPCODE_PING = 0x9
    OPCODE_PONG = 0xA

    OPCODES = (OPCODE_CONT, OPCODE_TEXT, OPCODE_BINARY, OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG)
    OPCODE_MAP = {
        OPCODE_CONT: "cont",
        OPCODE_TEXT: "text",
        OPCODE_BINARY: "binary",
        OPCODE_CLOSE: "close",
        OPCODE_PING: "ping",
        OPCODE_PONG: "pong",
    }

    LENGTH_7 = 0x7E
    LENGTH_16 = 1 << 16
    LENGTH_63 = 1 << 63

    def __init__(
        self,
        fin: int = 0,
        rsv1: int = 0,
        rsv2: int = 0,
        rsv3: int = 0,
        opcode: int = OPCODE_TEXT,
        mask_value: int = 1,
        data: str | bytes | None = "",
    ) -> None:
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3
        self.opcode = opcode
        self.mask_value = mask_value
        self.data = b"" if data is None else data
        self.get_mask_key: Callable[[int], bytes] = os.urandom

    def __str__(self) -> str:
        return f"fin={self.fin} opcode={self.opcode} data={self.data!r}"

    def __repr__(self) -> str:
        return f"ABNF({self})"

    @staticmethod
    def create_frame(data: Any, opcode: int, fin: int = 1) -> ABNF:
        """A frame to send; text ``str`` data is encoded to UTF-8."""
        if opcode == ABNF.OPCODE_TEXT and isinstance(data, str):
            data = data.encode("utf-8")
        return ABNF(fin, 0, 0, 0, opcode, 1, data)

    def validate(self, skip_utf8_validation: bool = False) -> None:
        """Raise :class:`WebSocketProtocolException` if the frame is invalid."""
        from ._exceptions import WebSocketProtocolException

        if self.rsv1 or self.rsv2 or self.rsv3:
            raise WebSocketProtocolException("rsv is not implemented, yet")
        if self.opcode not in ABNF.OPCODES:
            raise WebSocketProtocolException(f"Invalid opcode {self.opcode!r}")
        if self.opcode >= ABNF.OPCODE_CLOSE and (not self.fin or len(self.data) > 125):
            raise WebSocketProtocolException("Invalid ping frame.")

    def format(self) -> bytes:
        """The frame's bytes on the wire (masked, as a client sends them)."""
        data = self.data.encode("utf-8") if isinstance(self.data, str) else bytes(self.data)
        head = (0x80 if self.fin else 0) | (self.rsv1 << 6) | (self.rsv2 << 5) | (self.rsv3 << 4) | self.opcode
        mask = self.get_mask_key(4) if self.mask_value else None
        return _frames.build_frame(head, data, mask)

    @staticmethod
    def mask(mask_key: str | bytes, data: str | bytes) -> bytes:
        """Mask or unmask ``data`` with a 4-byte key."""
        if isinstance(mask_key, str):
            mask_key = mask_key.encode("latin-1")
        if isinstance(data, str):
            data = data.encode("latin-1")
        return bytes(_frames.apply_mask(data, mask_key, 0))
