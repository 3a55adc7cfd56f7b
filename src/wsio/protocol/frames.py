"""RFC 6455 framing: opcodes, close codes, masking, and the frame parse loop.

The parse loop works over one buffer with offsets and returns every complete
frame it finds in one call, as ``(head, payload)`` pairs where ``head`` is the
frame's first byte (FIN, RSV1-3, opcode) and ``payload`` is already unmasked.
It stops at the first incomplete frame; the connection streams the payload of
an incomplete data frame itself (see :mod:`wsio.protocol.machine`).

``wsio.protocol._speedups`` provides C versions of :func:`apply_mask`,
:func:`parse_frames` and :func:`parse_messages` with exactly the same contract; the pure-Python versions
here are the reference and the fallback (``WSIO_NO_SPEEDUPS=1`` forces them).
"""

from __future__ import annotations

import enum
import operator
import os
import struct
from dataclasses import dataclass

from .errors import ProtocolError

__all__ = [
    "Opcode",
    "CloseCode",
    "Close",
    "OP_CONT",
    "OP_TEXT",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "apply_mask",
    "parse_frames",
    "parse_messages",
    "parse_header",
    "build_frame",
    "frame_header",
    "LARGE_PAYLOAD",
    "close_code_explanation",
    "is_valid_close_code",
    "MaskSource",
    "MaskedPayload",
]

# Plain ints for the hot paths; the enum is for people.
OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

FIN = 0x80
RSV1 = 0x40
RSV_ALL = 0x70


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 section 5.2)."""

    CONT = OP_CONT
    TEXT = OP_TEXT
    BINARY = OP_BINARY
    CLOSE = OP_CLOSE
    PING = OP_PING
    PONG = OP_PONG


class CloseCode(enum.IntEnum):
    """Close codes (RFC 6455 section 7.4 and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  # never on the wire
    ABNORMAL_CLOSURE = 1006  # never on the wire
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never on the wire


_EXPLANATIONS = {
    1000: "OK",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received [internal]",
    1006: "connection closed abnormally",
    1007: "invalid frame payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "extension is required",
    1011: "unexpected error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure [internal]",
}


def close_code_explanation(code: int) -> str:
    """Return a few words that say what a close code means."""
    if code in _EXPLANATIONS:
        return _EXPLANATIONS[code]
    if 3000 <= code < 4000:
        return "registered"
    if 4000 <= code < 5000:
        return "private use"
    return "unknown"


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame on the wire (RFC 6455 7.4)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


@dataclass(frozen=True)
class Close:
    """The content of a close frame: a code and a reason.

    Code 1005 stands for a close frame without a payload; it is never sent.
    """

    code: int
    reason: str = ""

    def __str__(self) -> str:
        text = f"code = {self.code} ({close_code_explanation(self.code)}), "
        return text + (f"reason = {self.reason}" if self.reason else "no reason")

    @classmethod
    def parse(cls, payload: bytes) -> Close:
        """Parse a close frame's payload; raise :class:`ProtocolError` if it is invalid."""
        if not payload:
            return cls(1005, "")
        if len(payload) == 1:
            raise ProtocolError("close frame with a 1-byte payload", 1002)
        (code,) = struct.unpack_from("!H", payload)
        if not is_valid_close_code(code):
            raise ProtocolError(f"close frame with invalid close code {code}", 1002)
        try:
            reason = payload[2:].decode()
        except UnicodeDecodeError:
            raise ProtocolError("close frame with a reason that is not valid UTF-8", 1007) from None
        return cls(code, reason)

    def check(self) -> None:
        """Raise :class:`ProtocolError` unless ``code`` may be sent in a close frame (websockets' ``Close.check()``)."""
        if not is_valid_close_code(self.code):
            raise ProtocolError(f"invalid status code {self.code}")

    def serialize(self) -> bytes:
        """The close frame's payload; empty for 1005."""
        if self.code == 1005:
            return b""
        payload = struct.pack("!H", self.code) + self.reason.encode()
        if len(payload) > 125:
            raise ValueError(f"close reason of {len(payload) - 2} bytes exceeds 123 bytes")
        return payload


def apply_mask(data: bytes | bytearray | memoryview, mask: bytes, offset: int = 0) -> bytes:
    """XOR ``data`` with the 4-byte ``mask``, starting at byte ``offset`` of the mask.

    Masking is its own inverse. One big-integer XOR does the whole payload in C
    time, which beats a byte loop by two orders of magnitude.
    """
    n = len(data)
    if n == 0:
        return b""
    if offset & 3:
        offset &= 3
        mask = mask[offset:] + mask[:offset]
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class Assembly:
    """A payload of ``size`` bytes put together as its pieces arrive.

    ``feed()`` each piece (unmasked on the way when a mask is given), then
    ``done()`` returns the bytes. The C version unmasks each piece straight
    into the bytes object it returns, so a large frame arriving over many reads
    is allocated and copied once; this one keeps the pieces and joins them.
    """

    __slots__ = ("_pieces", "_left")

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")
        self._pieces: list[bytes] | None = []
        self._left = size

    def feed(self, data: bytes | bytearray | memoryview, mask: bytes | None = None, offset: int = 0) -> None:
        """Append ``data``, XORed with ``mask`` from byte ``offset`` of the mask if one is given."""
        if self._pieces is None:
            raise ValueError("feed() after done()")
        if len(data) > self._left:
            raise ValueError("more bytes than the announced size")
        self._pieces.append(apply_mask(data, mask, offset) if mask is not None else bytes(data))
        self._left -= len(data)

    def done(self) -> bytes:
        """Return the payload; :exc:`ValueError` if it isn't complete."""
        if self._pieces is None or self._left:
            raise ValueError("payload incomplete")
        pieces, self._pieces = self._pieces, None
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def parse_header(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int, bytes | None, int] | None:
    """Decode the frame header at ``buf[pos:]`` without any validation.

    Return ``(head, length, mask, payload_start)``, or ``None`` if the header is
    not complete yet. ``mask`` is ``None`` for an unmasked frame.
    """
    end = len(buf)
    if end - pos < 2:
        return None
    head = buf[pos]
    second = buf[pos + 1]
    length = second & 0x7F
    p = pos + 2
    if length == 126:
        if end - p < 2:
            return None
        length = (buf[p] << 8) | buf[p + 1]
        p += 2
    elif length == 127:
        if end - p < 8:
            return None
        (length,) = struct.unpack_from("!Q", buf, p)
        p += 8
    if second & 0x80:
        if end - p < 4:
            return None
        return head, length, bytes(buf[p : p + 4]), p + 4
    return head, length, None, p


def check_header(head: int, length: int, masked: bool, expect_masked: bool, rsv1_ok: bool) -> tuple[int, str] | None:
    """Validate a frame header; return ``(close_code, reason)`` if it breaks RFC 6455."""
    opcode = head & 0x0F
    if masked != expect_masked:
        return 1002, ("peer sent an unmasked frame" if expect_masked else "peer sent a masked frame")
    if head & RSV_ALL:
        if head & 0x30 or not rsv1_ok:
            return 1002, "peer set a reserved bit without an extension that allows it"
        if opcode == OP_CONT or opcode >= 8:
            return 1002, "peer set RSV1 on a continuation or control frame"
    if opcode >= 8:
        if opcode > OP_PONG:
            return 1002, f"peer sent a frame with reserved opcode {opcode}"
        if not head & FIN:
            return 1002, "peer sent a fragmented control frame"
        if length > 125:
            return 1002, f"peer sent a control frame of {length} bytes; the limit is 125"
    elif opcode > OP_BINARY:
        return 1002, f"peer sent a frame with reserved opcode {opcode}"
    if length >> 63:
        return 1002, "peer sent a 64-bit length with the most significant bit set"
    return None


def parse_frames(
    buf: bytes | bytearray | memoryview, pos: int, expect_masked: bool, rsv1_ok: bool
) -> tuple[list[tuple[int, bytes]], int, tuple[int, str] | None]:
    """Parse every complete frame in ``buf`` from ``pos``.

    Return ``(frames, pos, error)``: the frames as ``(head, payload)`` pairs,
    the offset of the first byte not consumed (the start of an incomplete frame,
    or the end), and ``(close_code, reason)`` if a header broke RFC 6455 (the
    frames before it are returned; ``pos`` then points at the bad header).
    """
    frames: list[tuple[int, bytes]] = []
    end = len(buf)
    while True:
        header = parse_header(buf, pos)
        if header is None:
            return frames, pos, None
        head, length, mask, start = header
        error = check_header(head, length, mask is not None, expect_masked, rsv1_ok)
        if error is not None:
            return frames, pos, error
        stop = start + length
        if stop > end:
            return frames, pos, None
        if mask is None:
            frames.append((head, bytes(buf[start:stop])))
        else:
            frames.append((head, apply_mask(buf[start:stop], mask)))
        pos = stop


def parse_messages(
    buf: bytes | bytearray | memoryview, pos: int, expect_masked: bool, max_size: int | None
) -> tuple[list[str | bytes], int]:
    """Parse the whole messages at ``buf[pos:]`` that need nothing but a frame each.

    The common case of a read, in one call: complete frames with FIN set, no
    RSV bit, opcode text or binary, masked as ``expect_masked`` says, at most
    ``max_size`` bytes (``None``: no limit), and, for text, valid UTF-8. Each
    becomes a message (``str`` for text, ``bytes`` for binary), as the general
    path (:func:`parse_frames`, then the state machine) would make it.

    Return ``(messages, pos)``: ``pos`` is the first frame that is anything
    else (a control frame, a fragment, a compressed or incomplete frame, a
    header that breaks RFC 6455, a message over ``max_size``, invalid UTF-8),
    which is left, unparsed, to the general path; or the end. ``buf`` is a
    contiguous buffer. Call it only between messages (none in progress).
    """
    messages: list[str | bytes] = []
    expect = bool(expect_masked)
    while True:
        header = parse_header(buf, pos)
        if header is None:
            break
        head, length, mask, start = header
        opcode = head & 0x0F
        if head & 0xF0 != FIN or not (opcode == OP_TEXT or opcode == OP_BINARY) or (mask is not None) != expect:
            break
        stop = start + length
        if stop > len(buf) or (max_size is not None and length > max_size):
            break
        payload = bytes(buf[start:stop]) if mask is None else apply_mask(buf[start:stop], mask)
        if opcode == OP_TEXT:
            try:
                messages.append(payload.decode())
            except UnicodeDecodeError:
                break
        else:
            messages.append(payload)
        pos = stop
    return messages, pos


_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack


#: Payloads this large are worth writing apart from their header
#: (:meth:`Connection.send_message_parts`): copying them into one frame costs
#: more than a second write.
LARGE_PAYLOAD = 65536


def flat_bytes(view: memoryview) -> memoryview | bytes:
    """``view`` as one byte per item, so that ``len()`` counts bytes.

    A view of an ``array('i')`` or a 2-D buffer has ``len()`` in items or
    rows, which would frame a wrong payload length.
    """
    if view.itemsize == 1 and view.ndim == 1 and view.c_contiguous:
        return view
    return view.cast("B") if view.c_contiguous else view.tobytes()


def _head_byte(head: object) -> int:
    """``head`` as an int from 0 to 255, or raise wsio's error (the C version raises the same)."""
    try:
        value = operator.index(head)  # type: ignore[arg-type]  # any object: index() is the check
    except TypeError:
        raise TypeError(f"frame head must be an integer, not {type(head).__name__}") from None
    if not 0 <= value <= 255:
        raise ValueError(f"frame head must be in range(0, 256), not {value}")
    return value


def frame_header(head: int, length: int, masked: bool = False) -> bytes:
    """The header of a frame of ``length`` bytes, up to (not including) the masking key."""
    if type(head) is not int or head >> 8:
        # Checked here, not left to bytes() or struct, whose words differ and
        # change between Python versions.
        head = _head_byte(head)
    bit = 0x80 if masked else 0
    if length < 126:
        return bytes((head, bit | length))
    if length < 65536:
        return _pack_short(head, bit | 126, length)
    return _pack_long(head, bit | 127, length)


def build_frame(head: int, payload: bytes | bytearray | memoryview, mask: bytes | None = None) -> bytes:
    """Serialize one frame: ``head`` is FIN | RSV | opcode, ``mask`` 4 bytes for a client."""
    header = frame_header(head, len(payload), mask is not None)
    if mask is None:
        return header + payload
    return header + mask + apply_mask(payload, mask)


class MaskSource:
    """Masking keys from the OS's strong random source, fetched 4 KiB at a time.

    RFC 6455 10.3 wants keys an intermediary can't predict; one ``os.urandom``
    call per frame would cost a system call per message.
    """

    __slots__ = ("_pool", "_pos")

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def __call__(self) -> bytes:
        pos = self._pos
        if pos + 4 > len(self._pool):
            self._pool = os.urandom(4096)
            pos = 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


class MaskedPayload:
    """A client's large payload, masked a slice at a time as it is written.

    Masking a large payload whole makes a second copy as big as the message;
    with the message received just before it, that is two large blocks freed
    at once, which the allocator gives back to the system and takes again on
    the next message: every 4 KiB page of the copy then costs a page fault
    (measured: 250 per message; without them the asyncio client's 1 MiB
    echo is 1.4x as fast). Masked as the transport drains, the copies are a slice long
    and reuse the same memory. ``data`` must be immutable (``bytes``);
    ``len()`` is what is left to mask and write.
    """

    __slots__ = ("_data", "_key", "_pos")

    def __init__(self, data: bytes, key: bytes) -> None:
        self._data = data
        self._key = key
        self._pos = 0

    def __len__(self) -> int:
        return len(self._data) - self._pos

    def take(self, size: int) -> bytes:
        """The next ``size`` bytes (fewer at the end), masked."""
        pos = self._pos
        end = self._pos = min(pos + size, len(self._data))
        return apply_mask(memoryview(self._data)[pos:end], self._key, pos)


# The C accelerator replaces the hot functions when it is built and allowed.
py_apply_mask, py_parse_frames, py_build_frame, PyAssembly = apply_mask, parse_frames, build_frame, Assembly
py_parse_messages, PyMaskSource = parse_messages, MaskSource
if not os.environ.get("WSIO_NO_SPEEDUPS"):
    try:
        # The C Assembly is another class with the same methods (see _speedups.pyi): mypy
        # keeps this module's, and the functions' signatures are the same.
        from ._speedups import (  # type: ignore[assignment]  # noqa: F811
            Assembly,
            MaskSource,
            apply_mask,
            build_frame,
            parse_frames,
            parse_messages,
        )
    except ImportError:  # not built: the pure-Python versions stay
        pass
SPEEDUPS = apply_mask is not py_apply_mask
