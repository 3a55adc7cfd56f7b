"""websocket-client's ``ABNF`` frame class and ``STATUS_*`` close codes."""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

from ..protocol import frames as _frames
from ._exceptions import WebSocketPayloadException, WebSocketProtocolException
from ._utils import validate_utf8

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

#: Close codes a close frame may carry, besides 3000-4999 (RFC 6455 7.4).
VALID_CLOSE_STATUS = (
    STATUS_NORMAL,
    STATUS_GOING_AWAY,
    STATUS_PROTOCOL_ERROR,
    STATUS_UNSUPPORTED_DATA_TYPE,
    STATUS_INVALID_PAYLOAD,
    STATUS_POLICY_VIOLATION,
    STATUS_MESSAGE_TOO_BIG,
    STATUS_INVALID_EXTENSION,
    STATUS_UNEXPECTED_CONDITION,
    STATUS_SERVICE_RESTART,
    STATUS_TRY_AGAIN_LATER,
    STATUS_BAD_GATEWAY,
)


class ABNF:
    """One frame, as websocket-client describes it: ``fin``, ``rsv1-3``, ``opcode``, ``mask_value``, ``data``.

    What ``recv_data_frame()`` / ``recv_frame()`` return and ``send_frame()``
    takes. Building and masking use wsio's frame code.
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
        self.data: str | bytes = "" if data is None else data
        self.get_mask_key: Callable[[int], bytes] = os.urandom

    def __str__(self) -> str:
        shown = self.data if isinstance(self.data, str) else repr(self.data)
        return f"fin={self.fin} opcode={self.opcode} data={shown}"

    def __repr__(self) -> str:
        return f"ABNF({self})"

    @staticmethod
    def create_frame(data: Any, opcode: int, fin: int = 1) -> ABNF:
        """A masked frame to send; text ``str`` data is encoded to UTF-8."""
        if opcode == ABNF.OPCODE_TEXT and isinstance(data, str):
            data = data.encode("utf-8")
        return ABNF(fin, 0, 0, 0, opcode, 1, data)

    @staticmethod
    def _is_valid_close_status(code: int) -> bool:
        return code in VALID_CLOSE_STATUS or 3000 <= code < 5000

    def validate(self, skip_utf8_validation: bool = False) -> None:
        """Raise :class:`~wsio.sync.WebSocketProtocolException` if the frame breaks RFC 6455.

        Checks: no RSV bit (no extension negotiated here), a known opcode, a
        final ping of 125 bytes at most, and for a close frame: no 1-byte payload, at most 125
        bytes, a valid close code, and a reason in valid UTF-8 (unless
        ``skip_utf8_validation``).
        """
        if self.rsv1 or self.rsv2 or self.rsv3:
            raise WebSocketProtocolException("rsv is not implemented, yet")
        if self.opcode not in ABNF.OPCODES:
            raise WebSocketProtocolException(f"Invalid opcode {self.opcode!r}")
        if self.opcode == ABNF.OPCODE_PING and (not self.fin or len(self.data) > 125):
            raise WebSocketProtocolException("Invalid ping frame.")
        if self.opcode != ABNF.OPCODE_CLOSE or not self.data:
            return
        data = self.data.encode("utf-8") if isinstance(self.data, str) else bytes(self.data)
        if len(data) == 1 or len(data) > 125:
            raise WebSocketProtocolException("Invalid close frame.")
        if len(data) > 2 and not skip_utf8_validation and not validate_utf8(data[2:]):
            raise WebSocketProtocolException("Invalid close frame.")
        code = int.from_bytes(data[:2], "big")
        if not self._is_valid_close_status(code):
            raise WebSocketProtocolException(f"Invalid close opcode {code!r}")

    def format(self) -> bytes:
        """The frame's bytes on the wire (masked with ``get_mask_key(4)`` if ``mask_value``).

        Raises :class:`ValueError` for flags other than 0 or 1, an unknown
        opcode, or data of 2**63 bytes or more.
        """
        if any(flag not in (0, 1) for flag in (self.fin, self.rsv1, self.rsv2, self.rsv3)):
            raise ValueError("not 0 or 1")
        if self.opcode not in ABNF.OPCODES:
            raise ValueError("Invalid OPCODE")
        data = self.data.encode("utf-8") if isinstance(self.data, str) else bytes(self.data)
        if len(data) >= ABNF.LENGTH_63:
            raise ValueError("data is too long")
        head = self.fin << 7 | self.rsv1 << 6 | self.rsv2 << 5 | self.rsv3 << 4 | self.opcode
        if not self.mask_value:
            return _frames.frame_header(head, len(data)) + data
        return _frames.frame_header(head, len(data), masked=True) + self._get_masked(self.get_mask_key(4))

    def _get_masked(self, mask_key: str | bytes) -> bytes:
        """The masking key followed by the masked data."""
        key = mask_key.encode("latin-1") if isinstance(mask_key, str) else bytes(mask_key)
        return key + ABNF.mask(key, self.data)

    @staticmethod
    def mask(mask_key: str | bytes, data: str | bytes | None) -> bytes:
        """Mask or unmask ``data`` with a 4-byte key (``str`` arguments are taken as Latin-1)."""
        if data is None:
            data = b""
        if isinstance(mask_key, str):
            mask_key = mask_key.encode("latin-1")
        if isinstance(data, str):
            data = data.encode("latin-1")
        return bytes(_frames.apply_mask(data, mask_key, 0))


class frame_buffer:
    """Reads frames from a ``recv(bufsize)`` function, one header field at a time.

    A frame cut short by a timeout is resumed by the next :meth:`recv_frame`:
    the fields already read (``header``, ``length``, ``mask_value``) and the
    bytes in ``recv_buffer`` are kept.
    """

    _HEADER_MASK_INDEX = 5
    _HEADER_LENGTH_INDEX = 6

    def __init__(self, recv_fn: Callable[[int], bytes], skip_utf8_validation: bool) -> None:
        self.recv = recv_fn
        self.skip_utf8_validation = skip_utf8_validation
        self.recv_buffer: list[bytes] = []
        self.clear()
        self.lock = threading.Lock()

    def clear(self) -> None:
        """Forget the fields of the frame being read."""
        self.header: tuple[int, int, int, int, int, int, int] | None = None
        self.length: int | None = None
        self.mask_value: bytes | str | None = None

    def needs_header(self) -> bool:
        return self.header is None

    def recv_header(self) -> None:
        """Read the first two bytes: ``(fin, rsv1, rsv2, rsv3, opcode, has_mask, length_bits)``."""
        first, second = self.recv_strict(2)
        self.header = (
            first >> 7 & 1,
            first >> 6 & 1,
            first >> 5 & 1,
            first >> 4 & 1,
            first & 0xF,
            second >> 7 & 1,
            second & 0x7F,
        )

    def has_mask(self) -> bool | int:
        if not self.header:
            return False
        return self.header[frame_buffer._HEADER_MASK_INDEX]

    def needs_length(self) -> bool:
        return self.length is None

    def recv_length(self) -> None:
        """Read the payload length (7 bits, or 16 or 64 more)."""
        if self.header is None:
            raise WebSocketProtocolException("Header not received")
        bits = self.header[frame_buffer._HEADER_LENGTH_INDEX] & 0x7F
        if bits == 126:
            self.length = int.from_bytes(self.recv_strict(2), "big")
        elif bits == 127:
            self.length = int.from_bytes(self.recv_strict(8), "big")
        else:
            self.length = bits

    def needs_mask(self) -> bool:
        return self.mask_value is None

    def recv_mask(self) -> None:
        self.mask_value = self.recv_strict(4) if self.has_mask() else ""

    def recv_frame(self) -> ABNF:
        """Read one whole frame and :meth:`ABNF.validate` it."""
        with self.lock:
            if self.needs_header():
                self.recv_header()
            if self.header is None:
                raise WebSocketProtocolException("Header not received")
            fin, rsv1, rsv2, rsv3, opcode, has_mask, _ = self.header
            if self.needs_length():
                self.recv_length()
            if self.needs_mask():
                self.recv_mask()
            if self.length is None:
                raise WebSocketProtocolException("Length not received")
            payload = self.recv_strict(self.length)
            if has_mask:
                if self.mask_value is None:
                    raise WebSocketProtocolException("Mask not received")
                payload = ABNF.mask(self.mask_value, payload)
            self.clear()
            frame = ABNF(fin, rsv1, rsv2, rsv3, opcode, has_mask, payload)
            frame.validate(self.skip_utf8_validation)
        return frame

    def recv_strict(self, bufsize: int) -> bytes:
        """Read ``bufsize`` bytes, 16 KiB per ``recv()`` at most (TLS records are 16 KiB).

        Extra bytes a ``recv()`` returned stay in ``recv_buffer`` for the next
        call; if ``recv()`` returns something other than bytes, what is there
        is returned.
        """
        if not isinstance(bufsize, int):
            raise ValueError("bufsize must be an integer")
        shortage = bufsize - sum(len(chunk) for chunk in self.recv_buffer)
        while shortage > 0:
            chunk = self.recv(min(16384, shortage))
            if not isinstance(chunk, bytes):
                break
            self.recv_buffer.append(chunk)
            shortage -= len(chunk)
        joined = b"".join(self.recv_buffer)
        if shortage == 0:
            self.recv_buffer = []
            return joined
        self.recv_buffer = [joined[bufsize:]]
        return joined[:bufsize]


class continuous_frame:
    """Joins the frames of a fragmented message (or, with ``fire_cont_frame``, passes each on)."""

    def __init__(self, fire_cont_frame: bool, skip_utf8_validation: bool) -> None:
        self.fire_cont_frame = fire_cont_frame
        self.skip_utf8_validation = skip_utf8_validation
        self.cont_data: list[Any] | None = None
        self.recving_frames: int | None = None

    def validate(self, frame: ABNF) -> None:
        """Raise :class:`~wsio.sync.WebSocketProtocolException` for a continuation frame outside a message,
        or a new message inside one."""
        if not self.recving_frames and frame.opcode == ABNF.OPCODE_CONT:
            raise WebSocketProtocolException("Illegal frame")
        if self.recving_frames and frame.opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
            raise WebSocketProtocolException("Illegal frame")

    def add(self, frame: ABNF) -> None:
        if self.cont_data:
            self.cont_data[1] += frame.data
        else:
            if frame.opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
                self.recving_frames = frame.opcode
            self.cont_data = [frame.opcode, frame.data]
        if frame.fin:
            self.recving_frames = None

    def is_fire(self, frame: ABNF) -> bool | int:
        """Whether to deliver now: the message is complete, or pieces are delivered one by one."""
        return frame.fin or self.fire_cont_frame

    def extract(self, frame: ABNF) -> tuple[int, ABNF]:
        """``(opcode of the message, frame carrying the data gathered)``; text is checked for UTF-8."""
        gathered = self.cont_data
        if gathered is None:
            raise WebSocketProtocolException("No continuation data available")
        self.cont_data = None
        frame.data = gathered[1]
        if (
            not self.fire_cont_frame
            and gathered[0] == ABNF.OPCODE_TEXT
            and not self.skip_utf8_validation
            and not validate_utf8(frame.data)
        ):
            raise WebSocketPayloadException(f"cannot decode: {frame.data!r}")
        return gathered[0], frame
