"""The WebSocket connection state machine, for both roles, with no I/O.

Bytes in, events out: :meth:`Protocol.receive_data` takes what the socket
read and returns the events it completed, in one list (see
:mod:`wsio.protocol.events`). Calls in, bytes out: ``send_*`` methods return
the bytes to write. Replies the protocol makes by itself (pongs, the echo of a
close frame, the close frame that fails a connection, the handshake response)
wait in :meth:`data_to_send`, which the I/O layer drains after each
``receive_data``.

Timers (keepalive, close and handshake timeouts) are the I/O layer's: this
module never looks at a clock.

Receiving is written for speed. Complete frames are parsed in one loop over one
buffer (:func:`~wsio.protocol.frames.parse_frames`, in C when built). A data
frame whose payload is still arriving is not buffered whole: its payload is
unmasked and passed on as it comes, which keeps memory flat for large
messages and lets invalid UTF-8 fail the connection at once (RFC 6455 8.1).
"""

from __future__ import annotations

import codecs
import enum
import functools
import logging
import os
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence, TypeVar, overload

from .deflate import PerMessageDeflate
from .errors import ConcurrencyError, InvalidHandshake, InvalidState, PayloadTooBig, ProtocolError
from .handshake import (
    InvalidStatus,
    client_handshake,
    client_request,
    generate_key,
    handshake_error_response,
    server_handshake,
)
from .http11 import DEFAULT_HANDSHAKE_LIMITS, HandshakeLimits, RequestParser, ResponseParser, whole_request
from . import frames as _frames
from .events import Event, Fragment, Ping, Pong
from .frames import FIN, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RSV1, Close, MaskSource

if TYPE_CHECKING:  # pragma: no cover
    from .handshake import (
        ClientExtensionFactory,
        Extension,
        ExtraHeaders,
        Origin,
        ServerExtensionFactory,
        ServerHandshakeResult,
        WebSocketURI,
    )
    from .http11 import Request, Response
    from .datastructures import HeadersLike

__all__ = ["State", "Side", "Protocol", "ServerProtocol", "ClientProtocol", "DEFAULT_MAX_SIZE"]

#: 1 MiB: large enough for most applications, small enough that a peer can't
#: make a server hold much memory per connection.
DEFAULT_MAX_SIZE = 1 << 20
#: A message in more fragments than this fails with 1009: empty fragments cost
#: no memory but each costs CPU, so their number is capped too.
DEFAULT_MAX_FRAGMENTS = 4096
#: A single-frame binary message up to this size that arrives over several
#: reads is put together in one buffer sized from its header (within max_size);
#: a larger one streams in pieces, so memory follows what actually arrived.
ASSEMBLE_LIMIT = 16 << 20
_WHOLE_BINARY_MASK = FIN | RSV1 | 0x0F  # FIN, uncompressed, binary
_WHOLE_BINARY = FIN | OP_BINARY

_new_mask = MaskSource()  # shared: one 4 KiB pool per process, not per connection
_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class State(enum.IntEnum):
    """Connection states (RFC 6455 4.1 and 7)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2  # we sent a close frame and wait for the peer's
    CLOSED = 3  # close frames exchanged, or the connection failed, or EOF


class Side(enum.IntEnum):
    SERVER = 0
    CLIENT = 1


_OPEN = State.OPEN
_CLOSED = State.CLOSED


def _describe(head: int, length: int) -> str:
    """A frame in a few words, for DEBUG logs: ``TEXT fin rsv1 [12 bytes]``."""
    try:
        name = _frames.Opcode(head & 0x0F).name
    except ValueError:
        name = f"OPCODE {head & 0x0F}"
    flags = "".join((" fin" if head & FIN else "", " rsv1" if head & RSV1 else ""))
    return f"{name}{flags} [{length} bytes]"


def _truncate_reason(reason: str) -> str:
    """Cut a close reason to the 123 bytes a close frame can carry, on a character boundary."""
    data = reason.encode()
    if len(data) <= 123:
        return reason
    return data[:123].decode(errors="ignore")


# The C accelerator copies a prototype's slots (see copier()); None without it.
clone_slots: Callable[[Any], Any] | None = None
if _frames.SPEEDUPS:
    from ._speedups import clone_slots

_T = TypeVar("_T")


def copier(prototype: _T) -> Callable[[_T], _T] | None:
    """A function that copies ``prototype`` without ``__init__``, its slots holding the same objects; None if it can't.

    It can with the C accelerator, for an object that is all ``__slots__``
    (no ``__dict__``, ``__weakref__`` or C base with state of its own). What
    each copy needs of its own, the caller makes (see ServerProtocol.maker()).
    """
    if clone_slots is None:
        return None
    try:
        clone_slots(prototype)
    except TypeError:  # not all slots: what a copy would leave out
        return None
    return clone_slots


class Protocol:
    """State shared by both roles: framing, messages, closing.

    Args:
        side: :attr:`Side.SERVER` or :attr:`Side.CLIENT`.
        max_size: largest message accepted, in bytes (after decompression);
            ``None`` for no limit. Larger messages fail the connection with 1009.
        max_fragments: largest number of frames in one message; ``None`` for no limit.
        compression_threshold: messages shorter than this are sent uncompressed
            even when permessage-deflate is on.
        logger: where frame-level DEBUG lines go.
    """

    # Slots: a server holds thousands of these; a dict per instance costs ~1.5 KiB.
    __slots__ = (
        "side", "state", "max_size", "max_fragments", "compression_threshold", "logger", "debug",
        "subprotocol", "extensions", "deflate", "close_rcvd", "close_sent", "close_rcvd_then_sent",
        "why", "failure", "handshake_exc", "eof_received", "_deferred_failure", "failure_pending", "_expect_masked",
        "_rsv1_ok", "_mask", "_buf", "outgoing", "_pings", "_pf_head", "_pf_left", "_pf_mask", "_pf_off",
        "_pf_assembly",
        "_msg_text", "_msg_compressed", "_msg_size", "_msg_frames", "_msg_decoder", "_msg_fin",
        "_fragmenting", "defer_failures", "discarding", "_discard_skip",
    )  # fmt: skip

    side: Side

    def __init__(
        self,
        side: Side,
        *,
        state: State = State.OPEN,
        max_size: int | None = DEFAULT_MAX_SIZE,
        max_fragments: int | None = DEFAULT_MAX_FRAGMENTS,
        compression_threshold: int = 128,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        self.side = side
        self.state = state
        self.max_size = max_size
        self.max_fragments = max_fragments
        self.compression_threshold = compression_threshold
        self.logger = logger or logging.getLogger("wsio.protocol")
        self._own_state()

        self.subprotocol: str | None = None
        self.deflate: PerMessageDeflate | None = None

        self.close_rcvd: Close | None = None
        self.close_sent: Close | None = None
        self.close_rcvd_then_sent: bool | None = None
        #: Why the connection closed, in words, when it wasn't a plain close handshake.
        self.why = ""
        #: The protocol error that failed the connection, if one did.
        self.failure: ProtocolError | None = None
        self.handshake_exc: Exception | None = None
        self.eof_received = False
        self._deferred_failure: ProtocolError | None = None
        #: Whether a protocol error waits behind the events just returned. Call
        #: :meth:`apply_deferred_failure` once the application has handled them, and
        #: the connection fails; data fed meanwhile is ignored. It is an attribute,
        #: not a property, because the I/O layers look at it after every read.
        self.failure_pending = False
        #: When true, every protocol error waits behind ``failure_pending`` for the
        #: I/O layer, not only one behind complete messages: an application on
        #: another thread may be answering a message it took a moment ago.
        self.defer_failures = False
        #: True after a failure while the peer may still be sending. What it sends is
        #: read and thrown away, frame by frame, until its close frame or EOF (see
        #: :meth:`should_close_transport`); closing TCP with unread data would
        #: reset the connection, and the peer would never read our close frame.
        self.discarding = False
        self._discard_skip = 0  # payload bytes of the frame being discarded; -1: all, until EOF

        self._expect_masked = side is Side.SERVER
        self._rsv1_ok = False
        self._mask: Callable[[], bytes] | None = _new_mask if side is Side.CLIENT else None
        self._pings: dict[bytes, object] | None = None  # payload -> waiter, in the order sent
        # A data frame whose payload is still arriving.
        self._pf_head = 0
        self._pf_left = 0
        self._pf_mask: bytes | None = None
        self._pf_off = 0
        self._pf_assembly: _frames.Assembly | None = None
        # The message being reassembled: None when no message is in progress.
        self._msg_text: bool | None = None
        self._msg_compressed = False
        self._msg_size = 0
        self._msg_frames = 0
        self._msg_decoder: codecs.IncrementalDecoder | None = None
        self._msg_fin = False
        self._fragmenting = False  # we are sending a fragmented message

    def _own_state(self) -> None:
        """Make what each protocol has of its own: mutable objects, and the logging level seen now.

        ``__init__`` calls it, and so does each copy :meth:`ServerProtocol.maker` makes of a prototype.
        """
        # Checked per protocol, not per frame: no logging work when DEBUG is off (and
        # DEBUG switched on while a server runs logs the new connections' frames).
        self.debug = self.logger.isEnabledFor(logging.DEBUG)
        self.extensions: list[Extension] = []
        self._buf = bytearray()
        #: What the protocol queued by itself (answers to pings and close frames,
        #: the handshake) until :meth:`data_to_send` takes it. Read it, don't change
        #: it: I/O layers test it (``if protocol.outgoing:``) to skip the call when
        #: there is nothing to write, on the hot path where a call costs.
        self.outgoing: list[bytes] = []

    # -- negotiated state ---------------------------------------------------

    def _set_extensions(self, extensions: Sequence[Extension]) -> None:
        if extensions:  # else the empty list from __init__ stays: no new one per connection
            self.extensions = list(extensions)
        for extension in self.extensions:
            if isinstance(extension, PerMessageDeflate):
                self.deflate = extension
        self._rsv1_ok = self.deflate is not None

    # -- receiving ----------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Return and forget the bytes the protocol queued by itself."""
        out = self.outgoing
        if not out:
            return b""
        self.outgoing = []
        return b"".join(out)

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes read from the network; return the events they complete."""
        if self.state is State.CONNECTING:
            return self._receive_handshake(data)
        events: list[Event] = []
        if self.discarding or self._deferred_failure is not None:
            # Nothing after a protocol error counts: it is read and thrown away.
            # A failure held back waits for apply_deferred_failure().
            if data and self.discarding:
                self._discard(data)
            return events
        if self.state is _CLOSED or self.eof_received:
            # RFC 6455 5.5.1: nothing after a close frame counts; nor after a
            # failure, or a failed opening handshake (frames from a connection
            # that never opened must not reach the application).
            return events
        buf = self._buf
        if buf:
            buf += data
            src: bytes | bytearray | memoryview = buf
        else:
            src = data
        end = len(src)
        pos = 0
        if self._msg_text is None and not self._pf_left and not self.debug:
            # The common case in one call: whole messages of one frame each (in C
            # when built). It stops at anything else, which the loop below takes.
            # [assignment]: its list holds only messages, which are events (a list is invariant).
            events, pos = _frames.parse_messages(src, 0, self._expect_masked, self.max_size)  # type: ignore[assignment]
            if pos == end:
                if src is buf:
                    buf.clear()
                return events
        parse_frames = _frames.parse_frames
        # Where the frames after a protocol error start (resume, after skipping
        # `skip` bytes of the bad frame's payload), and the batch of frames being
        # processed, which may hold the peer's close frame behind the bad one.
        resume = skip = 0
        frames: list[tuple[int, bytes]] = []
        try:
            while True:
                if self._pf_left:
                    resume = min(pos + self._pf_left, end)
                    skip = self._pf_left - (resume - pos)
                    pos = self._continue_partial(src, pos, end, events)
                    if self._pf_left or self._stopped():
                        break
                frames, pos, error = parse_frames(src, pos, self._expect_masked, self._rsv1_ok)
                resume, skip = pos, 0
                if frames:
                    if self.debug:
                        for head, payload in frames:
                            self.logger.debug("< %s", _describe(head, len(payload)))
                    self._process_frames(frames, events)
                    if self._stopped():
                        break
                frames = []
                if error is not None:
                    raise ProtocolError(error[1], error[0])
                if pos == end:
                    break
                # The frame at pos is incomplete: stream its payload if it's data.
                header = _frames.parse_header(src, pos)
                if header is None or header[0] & 0x08:
                    break  # header incomplete, or a control frame (<= 131 bytes): wait
                head, length, mask, start = header
                if self.debug:
                    self.logger.debug("< %s (arriving in pieces)", _describe(head, length))
                resume, skip = start, length
                self._begin_data_frame(head, length)
                self._pf_head, self._pf_left, self._pf_mask, self._pf_off = head, length, mask, 0
                if head & _WHOLE_BINARY_MASK == _WHOLE_BINARY and length <= ASSEMBLE_LIMIT:
                    # A whole binary message in one frame: put it together in
                    # place. Text and fragmented messages stream, so that invalid
                    # UTF-8 fails as soon as it arrives (and recv_streaming() gets pieces).
                    self._pf_assembly = _frames.Assembly(length)
                pos = start
        except ProtocolError as exc:
            if self.defer_failures or any(type(e) is str or type(e) is bytes or (type(e) is Fragment and e.last) for e in events):
                # Let the application see the messages that came before the error
                # (an echo server answers them), then fail on the next call:
                # Autobahn 3.x, 4.x, 5.15. A partial message is not worth waiting for.
                self._deferred_failure = exc
                self.failure_pending = True
            else:
                self._fail_with(exc)
            # Keep reading what the peer sends, to find its close frame, or EOF.
            # A close frame in the batch behind the bad frame means it is done.
            if not any(head & 0x0F == OP_CLOSE for head, _ in frames):
                self.discarding = True
                self._discard_skip = skip
                self._buf = bytearray()
                if resume < end:
                    self._discard(src[resume:end] if src is buf else memoryview(src)[resume:end])
                return events
        if self._stopped():
            self._buf = bytearray()
        elif src is buf:
            del buf[:pos]
        elif pos < end:
            buf += data[pos:]
        return events

    def apply_deferred_failure(self) -> None:
        """Fail the connection with the protocol error :attr:`failure_pending` held back.

        The I/O layer decides when: once the application has the messages that came
        before the error (an echo answers them first), or after ``close_timeout``.
        Does nothing if no failure is pending. The close frame waits in
        :meth:`data_to_send`.
        """
        failure = self._deferred_failure
        if failure is not None:
            self._fail_with(failure)

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed into events.

        During the opening handshake these are frames the peer sent behind its
        request or response: an I/O layer that waits on the application (a
        server in ``process_request``) stops reading past its own limit, rather
        than let them pile up.
        """
        return len(self._buf)

    @property
    def frame_remaining(self) -> int:
        """Bytes of the data frame being received that are still to arrive; 0 between frames.

        The peer owes at least this many bytes: the frame's header announced
        them. An I/O layer may ask its socket not to wake it for fewer
        (``SO_RCVLOWAT``), which saves the wake-ups and reads of a large
        frame arriving in pieces. 0 whenever what arrives is no longer parsed
        as frames (closed, failed, or skipping to the peer's close frame).
        """
        left = self._pf_left
        if left and (self.discarding or self._stopped() or self.state is _CLOSED or self.eof_received):
            return 0
        return left

    def _stopped(self) -> bool:
        return self.close_rcvd is not None or self.failure is not None or self._deferred_failure is not None

    def _process_frames(self, frames: list[tuple[int, bytes]], events: list[Event]) -> None:
        """Turn frames into events; raise ProtocolError at the first bad one."""
        max_size = self.max_size
        for head, payload in frames:
            opcode = head & 0x0F
            if opcode == OP_TEXT or opcode == OP_BINARY:
                if self._msg_text is not None:
                    raise ProtocolError("peer started a new message before finishing the previous one")
                if head & FIN:
                    # The common case: a whole message in one frame.
                    if head & RSV1:
                        assert self.deflate is not None
                        try:
                            payload = self.deflate.decompress(payload, True, max_size)
                        except PayloadTooBig:
                            raise self._too_big_decompressed() from None
                    elif max_size is not None and len(payload) > max_size:
                        raise PayloadTooBig(f"message of {len(payload)} bytes exceeds max_size={max_size}")
                    if opcode == OP_TEXT:
                        try:
                            events.append(payload.decode())
                        except UnicodeDecodeError:
                            raise ProtocolError("peer sent invalid UTF-8 in a text message", 1007) from None
                    else:
                        events.append(payload)
                    continue
                self._begin_data_frame(head, len(payload))
                self._data(payload, True, events)
            elif opcode == OP_CONT:
                self._begin_data_frame(head, len(payload))
                self._data(payload, True, events)
            else:
                self._control(opcode, payload, events)
                if self.close_rcvd is not None:
                    return

    def _begin_data_frame(self, head: int, length: int) -> None:
        """Check a data frame's header against the message state and limits."""
        opcode = head & 0x0F
        if opcode == OP_CONT:
            if self._msg_text is None:
                raise ProtocolError("peer sent a continuation frame outside a fragmented message")
        else:
            if self._msg_text is not None:
                raise ProtocolError("peer started a new message before finishing the previous one")
            self._msg_text = opcode == OP_TEXT
            self._msg_compressed = bool(head & RSV1)
            self._msg_size = 0
            self._msg_frames = 0
            self._msg_decoder = _utf8_decoder() if self._msg_text else None
        self._msg_frames += 1
        if self.max_fragments is not None and self._msg_frames > self.max_fragments:
            raise PayloadTooBig(f"message in more than {self.max_fragments} fragments exceeds max_fragments={self.max_fragments}")
        if not self._msg_compressed:
            self._msg_size += length
            if self.max_size is not None and self._msg_size > self.max_size:
                raise PayloadTooBig(f"message of at least {self._msg_size} bytes exceeds max_size={self.max_size}")
        self._msg_fin = bool(head & FIN)

    def _continue_partial(self, src: bytes | bytearray | memoryview, pos: int, end: int, events: list[Event]) -> int:
        """Consume what has arrived of a data frame's payload."""
        n = min(self._pf_left, end - pos)
        if n == 0:
            return pos
        # Read straight from the receive buffer: slicing it first would copy
        # the payload once more.
        assembly = self._pf_assembly
        if assembly is not None:
            with memoryview(src) as view:
                assembly.feed(view[pos : pos + n], self._pf_mask, self._pf_off)
            self._pf_off += n
            self._pf_left -= n
            if not self._pf_left:
                self._pf_assembly = None
                self._msg_text = None  # the message is complete
                events.append(assembly.done())
            return pos + n
        with memoryview(src) as view:
            if self._pf_mask is not None:
                chunk = _frames.apply_mask(view[pos : pos + n], self._pf_mask, self._pf_off)
                self._pf_off += n
            else:
                chunk = bytes(view[pos : pos + n])
        self._pf_left -= n
        self._data(chunk, self._pf_left == 0, events)
        return pos + n

    def _data(self, data: bytes, frame_done: bool, events: list[Event]) -> None:
        """Pass on a piece of the current message's payload."""
        last = frame_done and self._msg_fin
        if self._msg_compressed:
            assert self.deflate is not None
            limit = None if self.max_size is None else self.max_size - self._msg_size
            try:
                data = self.deflate.decompress(data, last, limit)
            except PayloadTooBig:
                raise self._too_big_decompressed() from None
            self._msg_size += len(data)
        piece: str | bytes = data
        if self._msg_decoder is not None:
            try:
                piece = self._msg_decoder.decode(data, last)
            except UnicodeDecodeError:
                raise ProtocolError("peer sent invalid UTF-8 in a text message", 1007) from None
        if piece or last:
            events.append(Fragment(piece, last))
        if last:
            self._msg_text = None
            self._msg_decoder = None

    def _too_big_decompressed(self) -> PayloadTooBig:
        # The same words as for an uncompressed message: the limit is on what
        # the application gets, and max_size is what to raise to accept more.
        return PayloadTooBig(
            f"compressed message of more than {self.max_size} bytes once decompressed exceeds max_size={self.max_size}"
        )

    def _control(self, opcode: int, payload: bytes, events: list[Event]) -> None:
        if opcode == OP_PING:
            if self.state is _OPEN:
                self.outgoing.append(self._frame(FIN | OP_PONG, payload))
            events.append(Ping(payload))
        elif opcode == OP_PONG:
            events.append(Pong(payload))
        else:
            assert opcode == OP_CLOSE
            close = Close.parse(payload)
            self.close_rcvd = close
            if self.state is _OPEN:
                # Echo the close frame (RFC 6455 5.5.1 "typically echos the status
                # code it received"): its code and reason, as websockets, Node's ws
                # and browsers do, so the initiator reads its own reason back. A
                # close frame without a payload (1005) gets one without a payload.
                reply = close
                self.outgoing.append(self._frame(FIN | OP_CLOSE, reply.serialize()))
                self.close_sent = reply
                self.close_rcvd_then_sent = True
            elif self.close_sent is not None:
                self.close_rcvd_then_sent = False
            self.state = _CLOSED
            if self.debug:
                self.logger.debug("< CLOSE %s", close)
            events.append(close)

    def _discard(self, data: bytes | bytearray | memoryview) -> None:
        """After a failure: skip what the peer sends, frame by frame, watching for its close frame.

        Frames are skipped by their length and not checked: memory stays at a
        frame header's few bytes however much arrives. The bad frame itself is
        skipped too when its header could be read; if not (the stream makes no
        sense), everything is discarded until EOF.
        """
        skip = self._discard_skip
        if skip < 0:
            return
        buf = self._buf
        if buf:
            buf += data
            data = buf
        end = len(data)
        pos = 0
        while True:
            if skip:
                n = min(skip, end - pos)
                skip -= n
                pos += n
                if skip:
                    break
            header = _frames.parse_header(data, pos)
            if header is None:
                break
            head, length, _, start = header
            if head & 0x0F == OP_CLOSE:
                # The peer's answer to our close frame, or its own: it is done sending.
                if self.debug:
                    self.logger.debug("< CLOSE [%d bytes] (discarded after the failure)", length)
                self.discarding = False
                self._buf = bytearray()
                return
            if length >> 63:
                skip = -1  # a length no frame can have: no frame boundary to follow
                break
            skip, pos = length, start
        self._discard_skip = skip
        # At most an incomplete frame header (13 bytes) waits for the next read.
        self._buf = bytearray(data[pos:end]) if skip == 0 and pos < end else bytearray()

    def should_close_transport(self) -> bool:
        """Whether the I/O layer should close the TCP connection now.

        True once the WebSocket connection is closed and nothing more is to be
        read: on the server side after the closing handshake (RFC 6455 7.1.1:
        the server closes TCP first), on both sides after EOF, a failed opening
        handshake, or a failure once the peer has sent its close frame. False
        while the client waits for the server to close TCP and while a failed
        connection discards what the peer still sends (:attr:`discarding`).
        In every case the I/O layer closes TCP anyway after ``close_timeout``.
        """
        if self.state is not _CLOSED:
            return False
        if self.eof_received or self.handshake_exc is not None:
            return True
        if self.failure is not None:
            return not self.discarding
        return self.side is Side.SERVER

    def should_send_eof(self) -> bool:
        """Whether the I/O layer should end its side of TCP now, and read on.

        True while a server that failed the connection discards what the peer
        still sends (:attr:`discarding`), once its close frame is written: the
        peer reads the close frame, then EOF, at once, and what it sends
        meanwhile is read and thrown away, so it gets no reset (RFC 6455 7.1.1:
        the server closes TCP first). A client waits for the server instead.
        Where the transport can't half-close (TLS), the I/O layer just reads on
        until :meth:`should_close_transport` or ``close_timeout``.
        """
        return self.discarding and self.side is Side.SERVER and self.state is _CLOSED

    def receive_eof(self) -> list[Event]:
        """The peer closed its side of the TCP connection."""
        if self.eof_received:
            return []
        self.eof_received = True
        if self.discarding:
            self.discarding = False
            self._buf = bytearray()
        if self.state is State.CONNECTING:
            return self._receive_handshake_eof()
        if self.state is not _CLOSED:
            self.why = self.why or "EOF without a close frame"
            self.state = _CLOSED
        return []

    # -- failing ------------------------------------------------------------

    def fail(self, code: int, reason: str, *, discard: bool = False) -> None:
        """Fail the connection (RFC 6455 7.1.7): send a close frame if we can, stop processing.

        ``code`` must be one that may go on the wire (not 1005, 1006, 1015).
        With ``discard``, what the peer still sends is read and thrown away until
        its close frame or EOF (see :meth:`should_close_transport`), so that it
        can read our close frame; without, the I/O layer may close TCP at once
        (the peer doesn't answer pings, or doesn't read).
        """
        if not _frames.is_valid_close_code(code):
            raise ValueError(f"close code {code} can't be sent")
        left = self._pf_left  # the payload still to come of a frame arriving in pieces
        self._fail_with(ProtocolError(reason, code))
        if discard and not self.eof_received and self.close_rcvd is None:
            self.discarding = True
            self._discard_skip = left  # _buf holds the start of the next frame, if any

    def _fail_with(self, exc: ProtocolError) -> None:
        reason = str(exc)
        if self.state is _OPEN:
            close = Close(exc.code, _truncate_reason(reason))
            self.outgoing.append(self._frame(FIN | OP_CLOSE, close.serialize()))
            self.close_sent = close
        self.failure = exc
        self._deferred_failure = None
        self.failure_pending = False
        self.why = self.why or reason
        self.state = _CLOSED
        self._pf_left = 0
        self._pf_assembly = None
        self._msg_text = None
        if self.debug:
            self.logger.debug("! failing connection with %d: %s", exc.code, reason)

    # -- sending ------------------------------------------------------------

    def _frame(self, head: int, payload: bytes | bytearray | memoryview) -> bytes:
        if self.debug:
            self.logger.debug("> %s", _describe(head, len(payload)))
        mask = self._mask
        return _frames.build_frame(head, payload, mask() if mask is not None else None)

    def _check_open(self) -> None:
        if self.state is not _OPEN:
            raise InvalidState(f"connection is {self.state.name}; can't send")

    def send_message(
        self, data: str | bytes | bytearray | memoryview, compress: bool | None = None, text: bool | None = None
    ) -> bytes:
        """Frame a whole message (``str`` -> text, bytes-like -> binary); return the bytes to write.

        ``compress=None`` compresses when permessage-deflate is on and the
        message is at least ``compression_threshold`` bytes; ``False`` never.
        ``text`` sets the frame type instead of ``data``'s type: ``True`` sends
        bytes as text (they must be UTF-8 already; they aren't checked),
        ``False`` sends ``str`` as binary (UTF-8 encoded).
        """
        if self.deflate is None and self.state is _OPEN and not self._fragmenting and not self.debug:
            # The common case, framed here: one call less per message than _message().
            mask = self._mask
            if type(data) is bytes:
                head = FIN | (OP_TEXT if text else OP_BINARY)
                return _frames.build_frame(head, data, mask() if mask is not None else None)
            if type(data) is str:
                head = FIN | (OP_BINARY if text is False else OP_TEXT)
                return _frames.build_frame(head, data.encode(), mask() if mask is not None else None)
        # isinstance after the exact check: str subclasses (StrEnum members) are text too.
        if type(data) is str or isinstance(data, str):
            return self._message(data.encode(), FIN | (OP_BINARY if text is False else OP_TEXT), compress)
        return self._message(data, FIN | (OP_TEXT if text else OP_BINARY), compress)

    def send_text(self, data: str | bytes | bytearray | memoryview, compress: bool | None = None) -> bytes:
        """Frame a text message; bytes-like data must already be UTF-8."""
        return self._message(data.encode() if isinstance(data, str) else data, FIN | OP_TEXT, compress)

    def send_binary(self, data: str | bytes | bytearray | memoryview, compress: bool | None = None) -> bytes:
        """Frame a binary message; ``str`` is encoded to UTF-8."""
        return self._message(data.encode() if isinstance(data, str) else data, FIN | OP_BINARY, compress)

    def send_message_parts(
        self,
        data: str | bytes | bytearray | memoryview,
        compress: bool | None = None,
        *,
        text: bool | None = None,
        mask_later: bool = False,
    ) -> tuple[bytes | bytearray | memoryview | _frames.MaskedPayload, ...]:
        """Frame a whole message as :meth:`send_message` does, as pieces to write in order.

        A payload of :data:`~wsio.protocol.frames.LARGE_PAYLOAD` bytes or more
        that needs no masking (the server side) comes back as it is, after its
        header, instead of being copied into one frame: for large messages and
        a transport that writes the pieces without joining them.

        ``mask_later=True`` does the same for a client's large ``bytes``
        payload (compressed or encoded ones included): the header with its
        masking key, then a :class:`~wsio.protocol.frames.MaskedPayload` that
        the caller masks slice by slice (``take()``) as it writes them.

        ``text`` sets the frame type instead of ``data``'s type: ``True`` sends
        bytes as text (they must be UTF-8 already; they aren't checked),
        ``False`` sends ``str`` as binary (UTF-8 encoded).
        """
        if type(data) is str or isinstance(data, str):
            return self._message(data.encode(), FIN | (OP_BINARY if text is False else OP_TEXT), compress, True, mask_later)
        return self._message(data, FIN | (OP_TEXT if text else OP_BINARY), compress, True, mask_later)

    # Typing only: parts=True returns the pieces, parts=False one bytes object.
    @overload
    def _message(
        self, payload: bytes | bytearray | memoryview, head: int, compress: bool | None, parts: Literal[False] = ...
    ) -> bytes: ...
    @overload
    def _message(
        self,
        payload: bytes | bytearray | memoryview,
        head: int,
        compress: bool | None,
        parts: Literal[True],
        mask_later: bool = ...,
    ) -> tuple[bytes | bytearray | memoryview | _frames.MaskedPayload, ...]: ...
    def _message(
        self,
        payload: bytes | bytearray | memoryview,
        head: int,
        compress: bool | None,
        parts: bool = False,
        mask_later: bool = False,
    ) -> bytes | tuple[bytes | bytearray | memoryview | _frames.MaskedPayload, ...]:
        if self.state is not _OPEN or self._fragmenting:
            self._check_open()
            raise InvalidState("a fragmented message is being sent; finish it first")
        if type(payload) is not bytes and type(payload) is not bytearray:
            # Any other bytes-like (a view, an array.array, a bytes subclass) by its bytes:
            # its len() may count items, and the frame's length must count bytes.
            payload = _frames.flat_bytes(memoryview(payload))
        deflate = self.deflate
        if deflate is not None and compress is not False:
            if compress or len(payload) >= self.compression_threshold:
                payload = deflate.compress(payload)
                head |= RSV1
        if self.debug:
            self.logger.debug("> %s", _describe(head, len(payload)))
        mask = self._mask
        if parts and len(payload) >= _frames.LARGE_PAYLOAD:
            if mask is None:
                return (_frames.frame_header(head, len(payload)), payload)
            if mask_later and type(payload) is bytes:
                key = mask()
                return (_frames.frame_header(head, len(payload), True) + key, _frames.MaskedPayload(payload, key))
        if parts:
            return (_frames.build_frame(head, payload, mask() if mask is not None else None),)
        return _frames.build_frame(head, payload, mask() if mask is not None else None)

    def send_fragment(
        self, data: str | bytes | bytearray | memoryview, *, first: bool, last: bool, text: bool | None = None
    ) -> bytes:
        """Frame one piece of a fragmented message (sent uncompressed).

        The first piece's type (``str`` or bytes) sets the message type, unless
        ``text`` says it (``True``: text, ``False``: binary; as for
        :meth:`send_message_parts`). ``str`` pieces are UTF-8 encoded either way.
        """
        self._check_open()
        if first == self._fragmenting:
            # RFC 6455 5.4: a fragmented message's frames can't interleave with another message's.
            raise InvalidState("a fragmented message is already being sent" if first else "no fragmented message was started")
        self._fragmenting = not last
        if isinstance(data, str):
            payload: bytes | bytearray | memoryview = data.encode()
            opcode = OP_TEXT
        else:
            payload = data if type(data) is bytes or type(data) is bytearray else _frames.flat_bytes(memoryview(data))
            opcode = OP_BINARY
        if text is not None:
            opcode = OP_TEXT if text else OP_BINARY
        head = (opcode if first else OP_CONT) | (FIN if last else 0)
        return self._frame(head, payload)

    # -- pings ------------------------------------------------------------

    def send_ping(self, data: bytes = b"", waiter: object = None) -> bytes:
        """Frame a ping; ``data`` is at most 125 bytes.

        With a ``waiter`` (whatever the I/O layer wakes when the pong comes: a
        future, an event, with the time it was sent), the ping waits for its
        pong, and :meth:`acknowledge` hands the waiter back. Two pings with the
        same payload can't wait at once (:class:`ConcurrencyError`: the pong
        couldn't tell them apart); :meth:`new_ping_payload` picks a free one.
        """
        self._check_open()
        if len(data) > 125:
            raise ValueError(f"ping payload of {len(data)} bytes exceeds 125 bytes")
        if waiter is not None:
            pings = self._pings
            if pings is None:
                pings = self._pings = {}  # created on the first ping: most connections have none waiting
            elif data in pings:
                raise ConcurrencyError("a ping with the same data is already waiting for its pong")
            pings[data] = waiter
        return self._frame(FIN | OP_PING, data)

    def new_ping_payload(self) -> bytes:
        """Four random bytes that no ping waiting for its pong uses."""
        data = os.urandom(4)
        while self._pings and data in self._pings:
            data = os.urandom(4)
        return data

    def ping_waiting(self, data: bytes) -> bool:
        """Whether the ping with this payload still waits for its pong."""
        return self._pings is not None and data in self._pings

    def acknowledge(self, data: bytes) -> list[object]:
        """Forget the pings a pong with ``data`` answers; return their waiters, oldest first.

        A pong answers its own ping (whose waiter comes last) and every ping
        sent before it: a peer may answer only the latest of several pings
        (RFC 6455 5.5.3). An unsolicited pong answers none.
        """
        pings = self._pings
        if not pings or data not in pings:
            return []
        answered = []
        for key in list(pings):
            answered.append(pings.pop(key))
            if key == data:
                break
        return answered

    def drop_pings(self) -> list[object]:
        """Forget every ping still waiting; return their waiters (no pong will come: the connection closed)."""
        pings = self._pings
        if not pings:
            return []
        self._pings = None
        return list(pings.values())

    def send_pong(self, data: bytes = b"") -> bytes:
        """Frame an unsolicited pong; ``data`` is at most 125 bytes."""
        self._check_open()
        if len(data) > 125:
            raise ValueError(f"pong payload of {len(data)} bytes exceeds 125 bytes")
        return self._frame(FIN | OP_PONG, data)

    def send_close(self, code: int = 1000, reason: str = "") -> bytes:
        """Start the closing handshake; return the close frame.

        ``code`` 1005 sends a close frame without a payload.
        """
        if code != 1005 and not _frames.is_valid_close_code(code):
            raise ValueError(f"close code {code} can't be sent")
        self._check_open()
        close = Close(code, "" if code == 1005 else reason)
        payload = close.serialize()
        self.close_sent = close
        self.state = State.CLOSING
        if self.debug:
            self.logger.debug("> CLOSE %s", close)
        return self._frame(FIN | OP_CLOSE, payload)

    # -- handshake (the roles override these) --------------------------------

    def _receive_handshake(self, data: bytes | bytearray | memoryview) -> list[Event]:  # pragma: no cover
        raise NotImplementedError

    def _receive_handshake_eof(self) -> list[Event]:
        self.why = "EOF during the opening handshake"
        self.handshake_exc = self.handshake_exc or InvalidHandshake(self.why)
        self.state = _CLOSED
        return []

    def _handshake_failed(self, exc: Exception) -> None:
        self.handshake_exc = exc
        self.why = f"opening handshake failed: {exc}"
        self.state = _CLOSED


class ServerProtocol(Protocol):
    """The server side: parses the request, answers it, then runs the connection.

    After ``receive_data`` returns a :class:`Request`, the I/O layer calls
    :meth:`accept` (or builds its own response, e.g. in ``process_request``)
    and then :meth:`send_response`.
    """

    __slots__ = (
        "origins", "available_extensions", "available_subprotocols", "select_subprotocol",
        "server_header", "extra_headers", "_parser", "request", "response", "_accepted",
    )  # fmt: skip

    def __init__(
        self,
        *,
        origins: Sequence[Origin] | None = None,
        extensions: Sequence[ServerExtensionFactory] | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: Callable[[list[str], list[str]], str | None] | None = None,
        server_header: str | None = None,
        extra_headers: ExtraHeaders | None = None,
        limits: HandshakeLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(Side.SERVER, state=State.CONNECTING, **kwargs)
        self.origins = origins
        # A tuple: the server gives every connection the same one, not a copy each.
        self.available_extensions = tuple(extensions) if extensions else ()
        self.available_subprotocols = subprotocols
        self.select_subprotocol = select_subprotocol
        self.server_header = server_header
        self.extra_headers = extra_headers
        # The parser is made only for a request that doesn't come whole in the first
        # read (see _receive_handshake); until then the slot holds the limits it will
        # be made with (one slot, not two: a server holds thousands of these).
        self._parser: RequestParser | HandshakeLimits | None = limits or DEFAULT_HANDSHAKE_LIMITS
        self.request: Request | None = None
        self.response: Response | None = None
        self._accepted: ServerHandshakeResult | None = None

    @classmethod
    def maker(cls, **kwargs: Any) -> Callable[[], ServerProtocol]:
        """A function that returns a new protocol built with ``kwargs``: a server's, for each connection.

        With the C accelerator, each is a copy of one prototype built once:
        the settings are the prototype's objects, the state is new. That costs
        about a tenth of what ``__init__`` does, which a server pays for every
        connection. Without the accelerator, or for a subclass with an
        ``__init__`` or a ``__dict__`` of its own, it is ``cls(**kwargs)``.
        """
        if cls.__init__ is ServerProtocol.__init__:
            prototype = cls(**kwargs)
            copy = copier(prototype)
            if copy is not None:

                def new() -> ServerProtocol:
                    protocol = copy(prototype)
                    protocol._own_state()
                    return protocol

                return new
        return functools.partial(cls, **kwargs)

    def _receive_handshake(self, data: bytes | bytearray | memoryview) -> list[Event]:
        if self.request is not None:
            # Request complete, response not sent yet: keep what follows for later.
            self._buf += data
            return []
        parser = self._parser
        if isinstance(parser, HandshakeLimits):
            data = bytes(data)
            # The usual request comes whole in the first read: split without a parser.
            found = whole_request(data, parser)
            if found is not None:
                whole, size = found
                self.request = whole
                self._parser = None
                self._buf += data[size:]
                return [whole]
            parser = self._parser = RequestParser(parser)
        assert isinstance(parser, RequestParser)  # dropped only once the request is complete
        try:
            request = parser.feed(bytes(data))
        except InvalidHandshake as exc:
            self._reject(exc)
            return []
        if request is None:
            return []
        self.request = request
        self._buf += parser.leftover
        self._parser = None  # its buffers are not needed anymore
        return [request]

    def _reject(self, exc: InvalidHandshake) -> None:
        response = handshake_error_response(exc, server_header=self.server_header)
        self.outgoing.append(response.serialize())
        self.response = response
        self._handshake_failed(exc)

    def accept(self, request: Request) -> Response:
        """Validate the request; return the 101 response, or an error response."""
        result = server_handshake(
            request,
            origins=self.origins,
            subprotocols=self.available_subprotocols,
            select_subprotocol=self.select_subprotocol,
            extensions=self.available_extensions,
            server_header=self.server_header,
            extra_headers=self.extra_headers,
        )
        if result.error is not None:
            self.handshake_exc = result.error
        self._accepted = result
        return result.response

    def send_response(self, response: Response) -> None:
        """Queue the handshake response (see :meth:`data_to_send`) and switch state.

        A 101 opens the connection; anything else closes it.
        """
        self.response = response
        self.outgoing.append(response.serialize())
        # The headers stay for the application; their lookup index needn't.
        response.headers.forget_index()
        if self.request is not None:
            self.request.headers.forget_index()
        if response.status_code == 101 and self.handshake_exc is None:
            accepted = self._accepted
            if accepted is not None:
                self._accepted = None  # kept no longer than needed: an idle connection holds it otherwise
                self.subprotocol = accepted.subprotocol
                self._set_extensions(accepted.extensions)
            self.state = State.OPEN
            if self.debug:
                self.logger.debug("= connection is OPEN")
        else:
            exc = self.handshake_exc or InvalidHandshake(f"rejected with HTTP {response.status_code}")
            self._handshake_failed(exc)


class ClientProtocol(Protocol):
    """The client side: builds the request, checks the response, then runs the connection."""

    __slots__ = (
        "wsuri", "origin", "available_extensions", "available_subprotocols", "extra_headers",
        "user_agent_header", "_parser", "key", "request", "response",
    )  # fmt: skip

    def __init__(
        self,
        wsuri: WebSocketURI,
        *,
        origin: str | None = None,
        extensions: Sequence[ClientExtensionFactory] | None = None,
        subprotocols: Sequence[str] | None = None,
        extra_headers: HeadersLike | None = None,
        user_agent_header: str | None = None,
        limits: HandshakeLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(Side.CLIENT, state=State.CONNECTING, **kwargs)
        self.wsuri = wsuri
        self.origin = origin
        self.available_extensions = list(extensions or ())
        self.available_subprotocols = subprotocols
        self.extra_headers = extra_headers
        self.user_agent_header = user_agent_header
        self._parser: ResponseParser | None = ResponseParser(limits or DEFAULT_HANDSHAKE_LIMITS)
        self.key = ""
        self.request: Request | None = None
        self.response: Response | None = None

    def connect(self) -> Request:
        """Build the handshake request."""
        self.key = generate_key()
        return client_request(
            self.wsuri,
            key=self.key,
            origin=self.origin,
            subprotocols=self.available_subprotocols,
            extensions=self.available_extensions,
            extra_headers=self.extra_headers,
            user_agent_header=self.user_agent_header,
        )

    def send_request(self, request: Request) -> None:
        """Queue the handshake request (see :meth:`data_to_send`)."""
        self.request = request
        self.outgoing.append(request.serialize())

    def _receive_handshake(self, data: bytes | bytearray | memoryview) -> list[Event]:
        assert self._parser is not None  # dropped only once the response is complete
        try:
            response = self._parser.feed(bytes(data))
        except InvalidHandshake as exc:
            self._handshake_failed(exc)
            return []
        if response is None:
            return []
        return self._handshake_response(response)

    def _receive_handshake_eof(self) -> list[Event]:
        assert self._parser is not None  # dropped only once the response is complete
        try:
            response = self._parser.feed_eof()
        except InvalidHandshake as exc:
            self._handshake_failed(exc)
            return []
        if response is None:
            return super()._receive_handshake_eof()
        events = self._handshake_response(response)
        if self.state is State.OPEN:  # a 101 and then EOF at once
            self.state = _CLOSED
            self.why = "EOF without a close frame"
        return events

    def _handshake_response(self, response: Response) -> list[Event]:
        self.response = response
        assert self._parser is not None
        leftover = self._parser.leftover
        self._parser = None
        assert self.request is not None
        try:
            self.subprotocol, extensions = client_handshake(
                self.request,
                response,
                key=self.key,
                subprotocols=self.available_subprotocols,
                extensions=self.available_extensions,
            )
        except InvalidHandshake as exc:
            if isinstance(exc, InvalidStatus) and exc.uri is None:
                # Its message asks whether this URI is a WebSocket endpoint (credentials left out).
                wsuri = self.wsuri
                exc.uri = f"{'wss' if wsuri.secure else 'ws'}://{wsuri.host_header}{wsuri.resource_name}"
            self._handshake_failed(exc)
            return [response]
        self._set_extensions(extensions)
        self.state = State.OPEN
        response.headers.forget_index()
        self.request.headers.forget_index()
        events: list[Event] = [response]
        if leftover:
            events.extend(self.receive_data(leftover))
        return events
