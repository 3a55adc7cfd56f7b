"""WebSocket over HTTP/2 (RFC 8441) on asyncio: one more I/O layer on the same core.

An HTTP/2 connection carries many streams; a WebSocket is one stream opened
with an extended CONNECT request (``:method CONNECT``, ``:protocol
websocket``), answered ``:status 200``, and its bytes are the stream's DATA
frames. This module gives each such stream a transport, :class:`H2Stream`,
that looks to a connection like the TCP transport it usually gets, so the
asyncio connection classes (:class:`~wsio.asyncio.server.ServerConnection`,
:class:`~wsio.asyncio.client.ClientConnection`) run on it unchanged, with
the same handler, hooks, limits, keepalive and closing:

- ``write()`` → DATA frames, as far as the stream's flow-control window
  allows; the rest waits in the stream, and the connection's
  ``pause_writing()`` is called past ``write_limit``, as a TCP transport does.
- ``pause_reading()`` → DATA received is kept and *not acknowledged*: the
  peer's window for this stream closes, the other streams go on.
- ``close()`` → END_STREAM once what is buffered is sent; ``abort()`` →
  RST_STREAM (CANCEL); a RST_STREAM from the peer → ``connection_lost()``
  with a :exc:`ConnectionResetError` that says so.

The opening handshake: the core speaks HTTP/1.1 handshakes, so the stream
translates at its edge, and the core stays as it is. A server stream turns
the request's pseudo-headers and headers into the equivalent HTTP/1.1
upgrade request (``GET``, ``Host`` from ``:authority``, ``Upgrade``,
``Connection`` and a fresh ``Sec-WebSocket-Key``) and feeds it to the core
through ``receive_data()``, where the same parser, limits and hooks
(``process_request``, subprotocols, permessage-deflate, ``process_response``)
apply; the first ``write()`` of the connection is the core's handshake
response, and the stream sends :attr:`ServerProtocol.response` as HEADERS
instead of its bytes: a 101 becomes ``:status 200``, anything else keeps its
status and body. A client stream does the reverse: it sends
:attr:`ClientProtocol.request` as an extended CONNECT, and turns a
``:status 200`` into the 101 (with the ``Sec-WebSocket-Accept`` the core
expects) that it feeds to the core.

Over TLS, ALPN picks HTTP/2; over cleartext, a server tells the HTTP/2
preface (h2c with prior knowledge, RFC 9113 3.3) from an HTTP/1.1 request by
the first bytes, and a client sends the preface to ``ws://`` URIs.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import http
import logging
import ssl as ssl_module
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable

try:
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    import h2.exceptions
    import h2.settings
except ImportError as exc:  # pragma: no cover - the http2 extra is missing
    raise ImportError("http2=True needs the h2 package: install wsio[http2]") from exc

from ..exceptions import InvalidHandshake, InvalidMessage
from .connection import BOUNDS_ITS_WRITES, TransportLost
from ..protocol.handshake import accept_key, generate_key
from ..protocol.machine import State

if TYPE_CHECKING:
    from ..protocol.datastructures import Headers
    from .client import ClientConnection
    from .server import Server, ServerConnection

__all__ = ["HTTP2Limits", "H2Stream", "ServerSession", "ClientSession", "ALPN_PROTOCOLS"]

logger = logging.getLogger("wsio.http2")

#: What a server or client offers in ALPN when HTTP/2 is on, by preference.
ALPN_PROTOCOLS = ["h2", "http/1.1"]

#: Headers that belong to one HTTP/1.1 hop and may not appear in HTTP/2 (RFC 9113 8.2.2),
#: and those the HTTP/1.1 handshake needs and RFC 8441 leaves out.
_HOP_BY_HOP = frozenset(
    {"connection", "upgrade", "keep-alive", "proxy-connection", "transfer-encoding", "te", "host", "content-length"}
)
_CLIENT_ONLY = frozenset({"sec-websocket-key"})
_SERVER_ONLY = frozenset({"sec-websocket-accept"})
#: A response body that comes with a refused client handshake is kept up to this size.
MAX_REFUSAL_BODY = 65536
_FORBIDDEN_IN_FIELDS = (b"\r", b"\n", b"\0")


@dataclasses.dataclass(frozen=True)
class HTTP2Limits:
    """The limits of one HTTP/2 connection; ``http2=True`` means the defaults.

    Each flood limit counts events from the peer over ``flood_window`` seconds;
    past it the connection ends with GOAWAY ENHANCE_YOUR_CALM.
    """

    #: Streams (WebSockets, or requests) the peer may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    max_concurrent_streams: int = 100
    #: Largest header list of a request or response, as HPACK counts it (SETTINGS_MAX_HEADER_LIST_SIZE).
    max_header_list_size: int = 16384
    #: Largest frame payload the peer may send (SETTINGS_MAX_FRAME_SIZE, 16 KiB to 16 MiB).
    max_frame_size: int = 16384
    #: The receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE), what a stream
    #: that doesn't read may hold. The connection's window is this times
    #: ``max_concurrent_streams``, so that streams that don't read never stall the others.
    initial_window_size: int = 65535
    #: Streams the peer may reset per window (rapid reset, CVE-2023-44487).
    max_resets: int = 200
    #: PING frames per window.
    max_pings: int = 100
    #: SETTINGS frames per window.
    max_settings: int = 100
    flood_window: float = 10.0
    #: Seconds a server keeps an HTTP/2 connection without streams open (before the
    #: first one too); then GOAWAY. ``None``: as long as the client wants.
    idle_timeout: float | None = 30.0


def limits_from(value: bool | HTTP2Limits | None) -> HTTP2Limits | None:
    """The ``http2`` argument of ``serve()`` or ``connect()`` as limits; ``None`` when off."""
    if value is None or value is False:
        return None
    if value is True:
        return HTTP2Limits()
    if isinstance(value, HTTP2Limits):
        return value
    raise TypeError(f"http2 must be a bool or an HTTP2Limits, not {type(value).__name__}")


def _h2_fields(headers: Headers, drop: frozenset[str]) -> list[tuple[bytes, bytes]]:
    """The HTTP/1.1 handshake's headers as HTTP/2 fields: lowercase, without ``_HOP_BY_HOP`` and ``drop``."""
    fields = []
    for name, value in headers.raw_items():
        lower = name.lower()
        if lower not in _HOP_BY_HOP and lower not in drop:
            fields.append((lower.encode("latin-1"), value.encode("latin-1")))
    return fields


def _has_bad_bytes(value: bytes) -> bool:
    return any(c in value for c in _FORBIDDEN_IN_FIELDS)


class _H2Connection(h2.connection.H2Connection):
    """h2's connection, except that a stream past the concurrent-stream limit is refused alone.

    h2 answers a HEADERS frame that opens one stream more than
    SETTINGS_MAX_CONCURRENT_STREAMS allows with a GOAWAY, which ends every
    WebSocket on the connection. RFC 9113 5.1.2 has the stream refused by
    itself: its header block is still decoded (the HPACK state is the
    connection's), then it gets RST_STREAM REFUSED_STREAM, which tells the
    client that nothing was processed and that it may try again (8.7), and
    its events are dropped. The other streams go on.
    """

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config)
        #: Streams refused since the session last looked (it counts them as a flood).
        self.refused = 0
        self._admitting = False

    @property
    def open_inbound_streams(self) -> int:
        return 0 if self._admitting else super().open_inbound_streams

    def _receive_headers_frame(self, frame: Any) -> Any:
        stream_id = frame.stream_id
        if (
            self.config.client_side
            or stream_id in self.streams
            or self.open_inbound_streams < self.local_settings.max_concurrent_streams
        ):
            return super()._receive_headers_frame(frame)
        self._admitting = True
        try:
            frames, events = super()._receive_headers_frame(frame)
        finally:
            self._admitting = False
        self.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        self.refused += 1
        return frames, [event for event in events if getattr(event, "stream_id", None) != stream_id]


class H2Stream(asyncio.Transport):
    """One HTTP/2 stream as an asyncio transport for one WebSocket connection (or one plain request)."""

    def __init__(self, session: _Session, stream_id: int, *, websocket: bool = True) -> None:
        super().__init__()
        self._session = session
        self.stream_id = stream_id
        #: False for a plain request on a server (not an extended CONNECT): answered, never upgraded.
        self.websocket = websocket
        self._protocol: Any = None
        self._head_sent = False
        self._out = bytearray()
        self._high = 65536
        self._low = 16384
        self._write_paused = False
        self._closing = False  # close() called: END_STREAM once drained, then connection_lost()
        self._end_when_drained = False  # write_eof() or close()
        self._ended = False  # END_STREAM or RST_STREAM sent
        self._peer_ended = False
        self._lost = False
        self._reading_paused = False
        self._in: collections.deque[tuple[bytes, int]] = collections.deque()
        self._eof_pending = False
        # A client's refused handshake: the response head, its body arrives in DATA frames.
        self._refusal_head: bytes | None = None
        self._refusal_body = bytearray()
        self._delivering = False  # in the protocol's data_received(): never re-entered
        #: How the peer refused this stream without processing it (RFC 9113 8.7), or None:
        #: "REFUSED_STREAM", "GOAWAY" (above its last stream id), "not sent" (over the
        #: limit). A client may open its WebSocket again elsewhere.
        self.refused: str | None = None

    # -- asyncio.Transport --------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "http2_stream_id":
            return self.stream_id
        if name == BOUNDS_ITS_WRITES:
            # The connection needn't stop reading while its writes are paused, so
            # that replies (pongs) can't pile up: a stream stops reading for its
            # writes itself, past _backlogged() (see _data()).
            return True
        transport = self._session.transport
        return transport.get_extra_info(name, default) if transport is not None else default

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 65536 if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def get_write_buffer_size(self) -> int:
        return len(self._out)

    def is_reading(self) -> bool:
        return not self._reading_paused

    def can_write_eof(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._lost or self._end_when_drained:
            return
        if not self._head_sent:
            # The first write of a connection is its opening handshake: the core's
            # request or response goes as HEADERS, not as these HTTP/1.1 bytes.
            self._head_sent = True
            self._session._send_head(self)
            return
        self._out += data
        self._pump()

    def write_eof(self) -> None:
        if not self._lost and not self._end_when_drained:
            self._end_when_drained = True
            self._pump()

    def close(self) -> None:
        if self._closing or self._lost:
            return
        self._closing = True
        if not self._head_sent:
            self.abort()
            return
        self._end_when_drained = True
        self._pump()

    def abort(self) -> None:
        if self._lost:
            return
        self._closing = True
        self._out.clear()
        if not self._ended:
            self._ended = True
            self._session._reset(self.stream_id, h2.errors.ErrorCodes.CANCEL)
        self._finish(None)

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if not self._reading_paused:
            return
        self._reading_paused = False
        self._read_queued()

    def _read_queued(self) -> None:
        if self._delivering:
            return  # the delivery under way goes on with the queue when it returns
        while self._in and not self._reading_paused and not self._lost and not self._backlogged():
            data, length = self._in.popleft()
            self._deliver(data, length)
        if self._eof_pending and not self._in and not self._reading_paused:
            self._eof_pending = False
            self._eof()

    def _end_closed(self) -> None:
        """A client's WebSocket is closed: end the stream.

        END_STREAM if the server ended its side, as a TCP close after the server's
        FIN; else RST_STREAM NO_ERROR: the server may have forgotten the stream
        once it sent its close frame, and a frame on a forgotten stream can end a
        lenient server's whole connection (hypercorn 0.18).
        """
        if self._lost:
            return
        if self._peer_ended:
            self._end_when_drained = True
            self._pump()
            return
        self._flush_out()
        self._ended = True
        self._session._reset(self.stream_id, h2.errors.ErrorCodes.NO_ERROR)
        self._finish(None)

    def _flush_out(self) -> None:
        """Send what is buffered, as far as flow control allows (the rest is dropped)."""
        self._pump()
        self._out.clear()

    # -- writing ------------------------------------------------------------------

    def _pump(self) -> None:
        """Send what the stream's and the connection's windows allow; END_STREAM once drained."""
        session = self._session
        conn = session.h2
        out = self._out
        stream_id = self.stream_id
        if out and not session.write_paused and not self._ended:
            try:
                while out:
                    window = conn.local_flow_control_window(stream_id)
                    if window <= 0:
                        break
                    size = min(window, conn.max_outbound_frame_size, len(out))
                    if size == len(out):  # the usual case: one copy, no shift
                        chunk = bytes(out)
                        out.clear()
                    else:
                        chunk = bytes(out[:size])
                        del out[:size]
                    conn.send_data(stream_id, chunk)
            except h2.exceptions.H2Error:
                # The stream is gone (reset, or the connection ended): nothing more goes out.
                out.clear()
                self._ended = True
        if self._end_when_drained and not out and not self._ended:
            self._ended = True
            try:
                conn.end_stream(stream_id)
            except h2.exceptions.H2Error:
                pass
        if self._closing and self._ended and not out and not self._lost:
            self._finish(None)
        session.schedule_flush()
        protocol = self._protocol
        if not self._write_paused:
            if len(out) > self._high and protocol is not None and not self._lost:
                self._write_paused = True
                protocol.pause_writing()
        elif len(out) <= self._low:
            self._write_paused = False
            if protocol is not None and not self._lost:
                protocol.resume_writing()
        if self._in and not self._reading_paused and not self._backlogged():
            self._read_queued()

    # -- reading, called by the session -------------------------------------------

    def _data(self, data: bytes, length: int) -> None:
        if not data and not length:
            # An empty DATA frame (no padding): nothing to deliver or acknowledge, and
            # queued while reading is paused, it would take memory that no window bounds.
            return
        if self._lost:
            self._session._ack(self.stream_id, length)
            return
        if self._refusal_head is not None:
            self._session._ack(self.stream_id, length)
            room = MAX_REFUSAL_BODY - len(self._refusal_body)
            self._refusal_body += data[: max(room, 0)]
            return
        if self._reading_paused or self._in or self._delivering or self._backlogged():
            self._in.append((data, length))  # unacknowledged: the peer's window for this stream closes
            return
        if self._deliver(data, length) and self._in and not self._reading_paused:
            self._read_queued()  # what arrived during the delivery

    def _backlogged(self) -> bool:
        """Whether so much waits to be sent that reading (which may add replies) waits too."""
        return len(self._out) > max(4 * self._high, 1 << 20)

    def _deliver(self, data: bytes, length: int) -> bool:
        """Hand ``data`` to the connection; False once a client's WebSocket is closed (reading stops).

        It doesn't read the queue itself: ``_read_queued()`` loops over it, and
        a delivery from there that did would nest one call per queued frame.
        """
        if data:
            self._delivering = True
            try:
                self._protocol.data_received(data)
            finally:
                self._delivering = False
        self._session._ack(self.stream_id, length)
        if self._session.client_side and not self._closing and self._protocol.protocol.state is State.CLOSED:
            # Over TCP a client waits for the server to close first (RFC 6455 7.1.1, so
            # that TIME_WAIT is the server's); a stream has no TIME_WAIT, and some servers
            # (hypercorn) never end theirs: the client ends it once the WebSocket is closed,
            # after the rest of this read (the server's END_STREAM may be in it).
            self._closing = True
            self._session.loop.call_soon(self._end_closed)
            return False
        return True

    def _eof(self) -> None:
        self._peer_ended = True
        if self._lost or not self.websocket:
            return  # a plain request's END_STREAM ends its body, not the connection
        if self._refusal_head is not None:
            head, body = self._refusal_head, bytes(self._refusal_body)
            self._refusal_head = None
            self._protocol.data_received(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        if self._in or self._reading_paused:
            self._eof_pending = True
            return
        if not self._protocol.eof_received():
            self.close()

    def _reset(self, error_code: Any) -> None:
        """The peer reset the stream, or the HTTP/2 connection ended under it."""
        self._ended = self._peer_ended = True
        if self._lost:
            return
        if error_code == h2.errors.ErrorCodes.REFUSED_STREAM:
            self.refused = "REFUSED_STREAM"
            self._session._refused(self)
        try:
            name = h2.errors.ErrorCodes(error_code).name
        except ValueError:
            name = str(error_code)
        self._out.clear()
        self._finish(TransportLost(f"HTTP/2 stream {self.stream_id} reset by peer ({name})"))

    def _lost_with(self, exc: Exception | None) -> None:
        """The HTTP/2 connection under the stream ended (``None``: closed cleanly, as a TCP EOF)."""
        self._ended = self._peer_ended = True
        if self._lost:
            return
        if exc is not None and not isinstance(exc, TransportLost):
            lost = TransportLost(f"HTTP/2 connection lost: {exc}")
            lost.__cause__ = exc
            exc = lost
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._in.clear()
        self._session._stream_done(self)
        if self._protocol is not None:
            self._session.loop.call_soon(self._protocol.connection_lost, exc)


class _Session(asyncio.Protocol):
    """One HTTP/2 connection: its h2 state machine, its streams, flood counters."""

    client_side = False

    def __init__(self, limits: HTTP2Limits) -> None:
        self.limits = limits
        self.loop = asyncio.get_running_loop()
        self.h2 = _H2Connection(h2.config.H2Configuration(client_side=self.client_side, header_encoding=None))
        self.h2.local_settings = h2.settings.Settings(
            client=self.client_side,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_list_size,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: limits.max_frame_size,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: limits.initial_window_size,
                **({} if self.client_side else {h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1}),
            },
        )
        # Values given to Settings() apply at once (no ACK changes them), so h2 doesn't
        # copy them to its decoder and frame reader: do it here.
        self.h2.max_inbound_frame_size = limits.max_frame_size
        self.h2.decoder.max_header_list_size = limits.max_header_list_size
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, H2Stream] = {}
        self.write_paused = False
        self.closed = False
        self._flush_scheduled = False
        self._floods: dict[str, collections.deque[float]] = {}

    # -- asyncio.Protocol -------------------------------------------------------

    def start(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.h2.initiate_connection()
        # The connection window: room for every stream's window, so that streams
        # whose application doesn't read (and whose data stays unacknowledged) never
        # stall the others.
        extra = self.limits.initial_window_size * self.limits.max_concurrent_streams - 65535
        if extra > 0:
            self.h2.increment_flow_control_window(min(extra, 2**31 - 1 - 65535))
        self.flush()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._end(exc.error_code, f"HTTP/2 protocol error: {exc}")
            return
        refused, self.h2.refused = self.h2.refused, 0
        for _ in range(refused):  # streams over the limit, refused alone: as costly as resets
            if self._flood("refused streams", self.limits.max_resets):
                return
        for event in events:
            self._event(event)
            if self.closed:
                return
        self.flush()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._pump_all()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for stream in list(self.streams.values()):
            stream._lost_with(exc)
        self.streams.clear()

    # -- writing ----------------------------------------------------------------

    def _pump_all(self) -> None:
        """Let every stream send what its window now allows."""
        for stream in list(self.streams.values()):
            stream._pump()

    def flush(self) -> None:
        self._flush_scheduled = False
        data = self.h2.data_to_send()
        transport = self.transport
        if data and transport is not None and not transport.is_closing():
            transport.write(data)

    def schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def _ack(self, stream_id: int, length: int) -> None:
        if length and not self.closed:
            try:
                self.h2.acknowledge_received_data(length, stream_id)
            except h2.exceptions.H2Error:
                pass
            self.schedule_flush()

    def _reset(self, stream_id: int, code: int) -> None:
        if self.closed:
            return
        try:
            self.h2.reset_stream(stream_id, code)
        except h2.exceptions.H2Error:
            pass
        self.schedule_flush()

    def _end(self, code: int | None, why: str) -> None:
        """End the HTTP/2 connection with GOAWAY ``code``, then TCP."""
        if self.closed:
            return
        if code is not None and code != h2.errors.ErrorCodes.NO_ERROR:
            logger.warning("%s closing the HTTP/2 connection: %s", self._peer(), why)
        try:
            self.h2.close_connection(error_code=code or 0, additional_data=why.encode()[:256])
        except h2.exceptions.H2Error:
            pass
        self.flush()
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        lost = ConnectionError(why)
        for stream in list(self.streams.values()):
            stream._lost_with(lost)
        self.streams.clear()

    def _peer(self) -> str:
        transport = self.transport
        address = transport.get_extra_info("peername") if transport is not None else None
        return f"{address[0]}:{address[1]}" if address else "-"

    # -- events -----------------------------------------------------------------

    def _flood(self, kind: str, limit: int) -> bool:
        """Count one ``kind`` event; True (and the connection ends) past ``limit`` per window."""
        now = time.monotonic()
        times = self._floods.get(kind)
        if times is None:
            times = self._floods[kind] = collections.deque()
        times.append(now)
        horizon = now - self.limits.flood_window
        while times and times[0] < horizon:
            times.popleft()
        if len(times) > limit:
            self._end(
                h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                f"more than {limit} {kind} within {self.limits.flood_window}s",
            )
            return True
        return False

    def _event(self, event: h2.events.Event) -> None:
        kind = type(event)
        if kind is h2.events.DataReceived:
            stream = self.streams.get(event.stream_id)  # type: ignore[attr-defined]
            length = event.flow_controlled_length  # type: ignore[attr-defined]
            if stream is None:
                self._ack(event.stream_id, length)  # type: ignore[attr-defined]
            else:
                stream._data(event.data, length)  # type: ignore[attr-defined]
        elif kind is h2.events.StreamEnded:
            stream = self.streams.get(event.stream_id)  # type: ignore[attr-defined]
            if stream is not None:
                stream._eof()
        elif kind is h2.events.WindowUpdated:
            if event.stream_id == 0:  # type: ignore[attr-defined]
                self._pump_all()
            else:
                stream = self.streams.get(event.stream_id)  # type: ignore[attr-defined]
                if stream is not None:
                    stream._pump()
        elif kind is h2.events.StreamReset:
            stream = self.streams.get(event.stream_id)  # type: ignore[attr-defined]
            if stream is not None:
                stream._reset(event.error_code)  # type: ignore[attr-defined]
            if event.remote_reset:  # type: ignore[attr-defined]
                self._flood("stream resets", self.limits.max_resets)
        elif kind is h2.events.PingReceived:
            self._flood("PING frames", self.limits.max_pings)
        elif kind is h2.events.RemoteSettingsChanged:
            if not self._flood("SETTINGS frames", self.limits.max_settings):
                self._settings_changed()
                self._pump_all()  # INITIAL_WINDOW_SIZE may have grown
        elif kind is h2.events.ConnectionTerminated:
            self._terminated(event)  # type: ignore[arg-type]
        else:
            self._other_event(event)

    def _settings_changed(self) -> None:
        """Hook: the peer's SETTINGS arrived."""

    def _refused(self, stream: H2Stream) -> None:
        """Hook: the peer refused a stream (REFUSED_STREAM)."""

    def _terminated(self, event: h2.events.ConnectionTerminated) -> None:
        """GOAWAY: streams above its last stream id were not processed; the others may finish."""
        last = event.last_stream_id if event.last_stream_id is not None else 0
        lost = ConnectionError(f"HTTP/2 GOAWAY from peer ({event.error_code!s})")
        for stream_id, stream in list(self.streams.items()):
            if stream_id > last:
                stream.refused = "GOAWAY"  # not processed: safe to open again elsewhere
            if stream_id > last or event.error_code:
                stream._lost_with(lost)
        if not self.streams:
            self._end(None, "GOAWAY")

    def _other_event(self, event: h2.events.Event) -> None:
        """Hook: request or response headers, and the events nobody else handles."""

    def _send_head(self, stream: H2Stream) -> None:  # pragma: no cover - each role defines it
        raise NotImplementedError

    def _stream_done(self, stream: H2Stream) -> None:
        self.streams.pop(stream.stream_id, None)


# -- server -----------------------------------------------------------------------------


def _request_bytes(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bool] | None:
    """The HTTP/1.1 request equivalent to an HTTP/2 request, and whether it is a WebSocket; None if malformed."""
    pseudo: dict[bytes, bytes] = {}
    regular: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if _has_bad_bytes(name) or _has_bad_bytes(value):
            return None  # RFC 9113 8.2.1: malformed
        if name.startswith(b":"):
            pseudo[name] = value
        else:
            regular.append((name, value))
    method = pseudo.get(b":method", b"")
    websocket = method == b"CONNECT" and pseudo.get(b":protocol") == b"websocket"
    path = pseudo.get(b":path") or b"/"
    authority = pseudo.get(b":authority")
    lines = [b"GET" if websocket else method, b" ", path, b" HTTP/1.1\r\n"]
    if authority is not None:
        lines += [b"Host: ", authority, b"\r\n"]
    for name, value in regular:
        if name == b"sec-websocket-key" or (name == b"host" and authority is not None):
            continue
        lines += [name, b": ", value, b"\r\n"]
    if websocket:
        lines += [b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ", generate_key().encode(), b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines), websocket


class ServerSession(_Session):
    """The server end of an HTTP/2 connection: each extended CONNECT stream becomes a connection."""

    def __init__(self, server: Server, make_connection: Callable[[], ServerConnection | None], limits: HTTP2Limits) -> None:
        super().__init__(limits)
        self.server = server
        self.make_connection = make_connection
        self._watch: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None

    def start(self, transport: asyncio.Transport) -> None:
        super().start(transport)
        self._watch = self.loop.create_task(self._close_with_server())
        self._arm_idle()

    def _arm_idle(self) -> None:
        timeout = self.limits.idle_timeout
        if timeout is not None and self._idle is None and not self.closed:
            self._idle = self.loop.call_later(timeout, self._idle_out)

    def _idle_out(self) -> None:
        self._idle = None
        if not self.streams:
            self._end(h2.errors.ErrorCodes.NO_ERROR, f"no stream open for idle_timeout={self.limits.idle_timeout}s")

    async def _close_with_server(self) -> None:
        await self.server._close_started.wait()
        if not self.streams:
            self._end(h2.errors.ErrorCodes.NO_ERROR, "server closing")

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._watch is not None:
            self._watch.cancel()
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _other_event(self, event: h2.events.Event) -> None:
        if type(event) is h2.events.RequestReceived:
            self._request(event)

    def _request(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        assert stream_id is not None
        translated = _request_bytes(list(event.headers or ()))
        if translated is None:
            self._reset(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        if self.server.closing:
            self._reset(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        data, websocket = translated
        connection = self.make_connection()
        if connection is None:  # over max_connections
            self.h2.send_headers(stream_id, [(b":status", b"503"), (b"retry-after", b"5")], end_stream=True)
            return
        stream = H2Stream(self, stream_id, websocket=websocket)
        self.streams[stream_id] = stream
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        stream.set_protocol(connection)
        connection.connection_made(stream)
        if not stream.is_closing():
            connection.data_received(data)

    def _send_head(self, stream: H2Stream) -> None:
        response = stream._protocol.protocol.response
        if response is None:  # pragma: no cover - the core queues its response before the first write
            stream.abort()
            return
        status = response.status_code
        body = response.body
        accepted = status == 101 and stream.websocket
        if accepted:
            status, body = 200, b""
        elif not stream.websocket and status == 426:
            # A plain HTTP/2 request that process_request didn't answer: there is nothing here.
            status, body = 404, b"Not Found: a WebSocket over HTTP/2 is opened with an extended CONNECT.\n"
        headers = [(b":status", str(status).encode()), *_h2_fields(response.headers, _SERVER_ONLY)]
        if not accepted:
            headers.append((b"content-length", str(len(body)).encode()))
        try:
            self.h2.send_headers(stream.stream_id, headers, end_stream=not body and not accepted)
        except h2.exceptions.H2Error:
            stream._reset(h2.errors.ErrorCodes.STREAM_CLOSED)
            return
        if body:
            stream._out += body
            stream._end_when_drained = True
            stream._pump()
        elif not accepted:
            stream._ended = True
        self.schedule_flush()

    def _stream_done(self, stream: H2Stream) -> None:
        super()._stream_done(stream)
        if not self.streams:
            if self.server.closing:
                self._end(h2.errors.ErrorCodes.NO_ERROR, "server closing")
            else:
                self._arm_idle()


class _ALPNSwitch(asyncio.Protocol):
    """A TLS connection accepted by a server with HTTP/2 on: ALPN decides who serves it."""

    def __init__(self, http1: Callable[[], asyncio.BaseProtocol], http2: Callable[[], ServerSession]) -> None:
        self.http1 = http1
        self.http2 = http2

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        selected = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        protocol: asyncio.BaseProtocol
        if selected == "h2":
            protocol = session = self.http2()
            transport.set_protocol(session)
            session.start(transport)  # type: ignore[arg-type]
        else:
            protocol = self.http1()
            transport.set_protocol(protocol)
            protocol.connection_made(transport)

    def data_received(self, data: bytes) -> None:  # pragma: no cover - the switch happens before any read
        pass


#: What an HTTP/2 client sends first (RFC 9113 3.4); over cleartext, with prior knowledge, it tells h2c from HTTP/1.1.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class _PrefaceSwitch(asyncio.Protocol):
    """A cleartext connection accepted by a server with HTTP/2 on: its first bytes decide who serves it.

    The HTTP/2 connection preface means h2c with prior knowledge (RFC 9113 3.3);
    anything else is HTTP/1.1, which gets the bytes read so far. A client that
    sends nothing is dropped after the server's ``open_timeout`` (or the HTTP/2
    ``idle_timeout`` without one), as the connection it would have become would be.
    """

    def __init__(self, http1: Callable[[], Any], http2: Callable[[], ServerSession], timeout: float | None) -> None:
        self.http1 = http1
        self.http2 = http2
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(self.timeout, transport.abort)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        head = self.head = self.head + data
        if len(head) < len(PREFACE) and PREFACE.startswith(head):
            return  # a prefix of the preface: wait for the rest
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self.transport
        assert transport is not None
        protocol: Any
        if head.startswith(PREFACE):
            protocol = session = self.http2()
            transport.set_protocol(session)
            session.start(transport)
        else:
            protocol = self.http1()
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
            if transport.is_closing():
                return  # e.g. over max_connections: answered already
        protocol.data_received(head)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def server_factory(
    server: Server,
    http1: Callable[[], Any],
    make_connection: Callable[[], ServerConnection | None],
    limits: HTTP2Limits,
    ssl: ssl_module.SSLContext | None,
) -> Callable[[], asyncio.BaseProtocol]:
    """The protocol factory of a server with HTTP/2 on.

    With TLS, ALPN decides (this sets the context's ALPN protocols); without,
    the first bytes do: h2c with prior knowledge, or HTTP/1.1.
    """
    if ssl is None:
        timeout = server.open_timeout if server.open_timeout is not None else limits.idle_timeout

        def cleartext() -> asyncio.BaseProtocol:
            return _PrefaceSwitch(http1, lambda: ServerSession(server, make_connection, limits), timeout)

        return cleartext
    if not isinstance(ssl, ssl_module.SSLContext):
        raise ValueError("http2=True needs an ssl.SSLContext, or no ssl= at all for cleartext HTTP/2 (h2c)")
    ssl.set_alpn_protocols(ALPN_PROTOCOLS)

    def factory() -> asyncio.BaseProtocol:
        return _ALPNSwitch(http1, lambda: ServerSession(server, make_connection, limits))

    return factory


# -- client -----------------------------------------------------------------------------


class ClientSession(_Session):
    """The client end of an HTTP/2 connection, shared by the WebSockets to one origin."""

    client_side = True

    def __init__(self, limits: HTTP2Limits, key: Any) -> None:
        super().__init__(limits)
        self.key = key
        #: True: HTTP/2 with extended CONNECT; False: not usable for WebSockets.
        self.ready: asyncio.Future[bool] = self.loop.create_future()
        #: The TLS connection when ALPN didn't pick h2: the first WebSocket takes it for HTTP/1.1.
        self.http1_transport: asyncio.Transport | None = None
        #: ALPN chose h2.
        self.h2_selected = False
        self.goaway = False
        #: The server refused a stream: it has no room for another, whatever its SETTINGS say.
        self.refusing = False
        #: Cleartext HTTP/2 with prior knowledge (h2c, RFC 9113 3.3): no TLS, no ALPN.
        self.prior_knowledge = False
        #: h2c: the server answered the preface in HTTP/1.x (it doesn't speak h2c).
        self.http1_answer = False
        self._first: bytes | None = b""  # h2c: the server's first bytes, until they tell HTTP/2 from HTTP/1.x
        self.opening: asyncio.Task[None] | None = None

    async def open(self, host: str, port: int, context: ssl_module.SSLContext | None, kwargs: dict[str, Any]) -> None:
        """Connect (``context`` None: h2c); ``ready`` says how it went, to every caller waiting for it."""
        self.prior_knowledge = context is None
        try:
            await self.loop.create_connection(lambda: self, host, port, ssl=context, **kwargs)
        except Exception as exc:
            self._forget()
            if not self.ready.done():
                self.ready.set_exception(exc)
                self.ready.exception()  # each waiter raises it; none may be left
            return
        except BaseException:
            self._forget()
            self.ready.cancel()
            raise
        # Every caller may have given up meanwhile: don't keep a connection nobody uses.
        self.loop.call_later(UNUSED_TIMEOUT, self._close_if_unused)

    def _close_if_unused(self) -> None:
        if not self.streams and not self.closed and self.http1_transport is None:
            self._forget()
            self._end(h2.errors.ErrorCodes.NO_ERROR, "no WebSocket opened")
        elif self.http1_transport is not None:
            transport, self.http1_transport = self.http1_transport, None
            transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        selected = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if self.prior_knowledge:
            selected = "h2"
        if selected != "h2":
            self.http1_transport = transport  # type: ignore[assignment]
            self.closed = True
            if not self.ready.done():
                self.ready.set_result(False)
            return
        self.h2_selected = True
        self.start(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self._first is not None and self.prior_knowledge:
            # h2c: a server that doesn't speak it answers the preface in HTTP/1.x; a
            # SETTINGS frame starts with a zero byte (its length is under 16 MiB).
            head = self._first + data
            if b"HTTP/".startswith(head[:5]):
                if len(head) < 5:
                    self._first = head
                    return
                self._first = None
                self.http1_answer = True
                self.closed = True
                self._forget()
                if not self.ready.done():
                    self.ready.set_result(False)
                if self.transport is not None:
                    self.transport.abort()
                return
            self._first = None
            data = head
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._forget()
        if not self.ready.done():
            if exc is None and self.prior_knowledge:
                exc = ConnectionError(
                    "the server closed the connection after the HTTP/2 preface: it doesn't speak "
                    "cleartext HTTP/2 (h2c) with prior knowledge; http2=False uses HTTP/1.1"
                )
            self.ready.set_exception(exc or ConnectionError("connection closed before HTTP/2 SETTINGS"))
            self.ready.exception()

    def _settings_changed(self) -> None:
        if not self.ready.done():
            self.ready.set_result(bool(self.h2.remote_settings.enable_connect_protocol))

    def usable(self) -> bool:
        """Whether a new WebSocket may open a stream here (or wait for ``ready`` to say)."""
        ready = self.ready
        if self.closed or self.goaway or self.refusing or ready.cancelled():
            return False
        if not ready.done():
            return True
        if ready.exception() is not None or not ready.result():
            return False
        limit = self.h2.remote_settings.max_concurrent_streams
        return limit is None or self.h2.open_outbound_streams < limit

    def _refused(self, stream: H2Stream) -> None:
        # The next WebSocket to this origin opens another connection; those open here go on.
        self.refusing = True
        self._forget()

    def _terminated(self, event: h2.events.ConnectionTerminated) -> None:
        self.goaway = True
        self._forget()
        super()._terminated(event)

    def _forget(self) -> None:
        pool = _pools.get(self.loop)
        if pool is not None and pool.get(self.key) is self:
            del pool[self.key]

    def open_stream(self, factory: Callable[[], ClientConnection]) -> ClientConnection:
        stream_id = self.h2.get_next_available_stream_id()
        stream = H2Stream(self, stream_id)
        self.streams[stream_id] = stream
        connection = factory()
        stream.set_protocol(connection)
        connection.connection_made(stream)  # writes the request: _send_head()
        self.flush()
        return connection

    def _send_head(self, stream: H2Stream) -> None:
        request = stream._protocol.protocol.request
        headers = [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"http" if self.prior_knowledge else b"https"),
            (b":path", request.path.encode()),
            (b":authority", request.headers["Host"].encode("latin-1")),
            *_h2_fields(request.headers, _CLIENT_ONLY),
        ]
        try:
            self.h2.send_headers(stream.stream_id, headers)
        except h2.exceptions.H2Error as exc:
            # Not sent (e.g. the server's stream limit was reached meanwhile): safe to open elsewhere.
            stream.refused = "not sent"
            self.refusing = True
            self._forget()
            stream._lost_with(ConnectionError(f"HTTP/2 stream refused: {exc}"))
            return
        self.schedule_flush()

    def _other_event(self, event: h2.events.Event) -> None:
        if type(event) is h2.events.ResponseReceived:
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                self._response(stream, list(event.headers or ()))

    def _response(self, stream: H2Stream, headers: list[tuple[bytes, bytes]]) -> None:
        status = 0
        lines = []
        for name, value in headers:
            if _has_bad_bytes(name) or _has_bad_bytes(value):
                stream.abort()
                return
            if name == b":status":
                status = int(value) if value.isdigit() else 0
            elif not name.startswith(b":") and name not in (b"content-length", b"transfer-encoding", b"connection"):
                lines += [name, b": ", value, b"\r\n"]
        try:
            reason = http.HTTPStatus(status).phrase.encode()
        except ValueError:
            reason = b"Unknown"
        if 200 <= status < 300:
            key = stream._protocol.protocol.key
            head = (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n" + b"".join(lines) + b"\r\n"
            )
            stream._data(head, 0)
        else:
            # A refusal: its body comes in DATA frames; the core gets it all at END_STREAM.
            stream._refusal_head = b"HTTP/1.1 " + str(status).encode() + b" " + reason + b"\r\n" + b"".join(lines)

    def _stream_done(self, stream: H2Stream) -> None:
        super()._stream_done(stream)
        if not self.streams and self.ready.done():
            # The last WebSocket on this connection is done: don't hold the TCP connection idle.
            self._forget()
            self._end(h2.errors.ErrorCodes.NO_ERROR, "no WebSocket left")


#: Seconds a client's new HTTP/2 connection waits for its first WebSocket (its callers may have given up).
UNUSED_TIMEOUT = 5.0

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, ClientSession]] = weakref.WeakKeyDictionary()
_default_context: ssl_module.SSLContext | None = None
#: Seconds a client remembers that an origin answered the h2c preface in HTTP/1.1 (and uses HTTP/1.1 for it).
H2C_RETRY_AFTER = 300.0
_http1_only: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, float]] = weakref.WeakKeyDictionary()


def _h2_default_context() -> ssl_module.SSLContext:
    global _default_context
    if _default_context is None:
        _default_context = ssl_module.create_default_context()
        _default_context.set_alpn_protocols(ALPN_PROTOCOLS)
    return _default_context


async def open_connection(
    factory: Callable[[], ClientConnection],
    host: str,
    port: int,
    ssl: ssl_module.SSLContext | None,
    own_context: bool,
    kwargs: dict[str, Any],
    limits: HTTP2Limits,
) -> ClientConnection:
    """A connection over an HTTP/2 connection to ``host:port``, shared if one is open; else over HTTP/1.1.

    ``own_context``: ``ssl`` was made by wsio (``wss://`` without ``ssl=``), so
    a context with ALPN ``h2`` is wsio's too, and falling back to HTTP/1.1 when
    the server speaks HTTP/2 without extended CONNECT uses ``ssl``. A context
    the caller passed is used as it is: its ALPN protocols decide.

    ``ssl`` None (``ws://``): cleartext HTTP/2 with prior knowledge (h2c). A
    server that answers its preface in HTTP/1.x gets the WebSocket over
    HTTP/1.1 on a new connection, and so do the next ones to it for
    :data:`H2C_RETRY_AFTER` seconds.
    """
    loop = asyncio.get_running_loop()
    pool = _pools.setdefault(loop, {})
    context = None if ssl is None else _h2_default_context() if own_context else ssl
    key = (host, port, kwargs.get("server_hostname"), id(context))
    http1_only = _http1_only.setdefault(loop, {})
    if context is None and http1_only.get(key, 0.0) > loop.time():
        _, connection = await loop.create_connection(factory, host, port, **kwargs)
        return connection
    session = pool.get(key)
    if session is None or not session.usable():
        session = ClientSession(limits, key)
        pool[key] = session
        # Its own task: a caller that gives up (open_timeout) doesn't cancel it for the others.
        session.opening = loop.create_task(session.open(host, port, context, kwargs))
    usable = await asyncio.shield(session.ready)
    if usable:
        if session.h2_selected and session.h2.remote_settings.max_concurrent_streams == 0:
            session._forget()
            session._end(h2.errors.ErrorCodes.NO_ERROR, "no stream allowed")
            raise InvalidHandshake(f"{host}:{port} allows no HTTP/2 stream now (SETTINGS_MAX_CONCURRENT_STREAMS is 0)")
        if not session.usable():  # closed meanwhile, or concurrent callers filled it: another one
            return await open_connection(factory, host, port, ssl, own_context, kwargs, limits)
        return session.open_stream(factory)
    session._forget()
    if session.http1_answer:
        if http1_only.get(key, 0.0) <= loop.time():
            logger.info(
                "%s:%s answered the HTTP/2 preface in HTTP/1.1 (no h2c): WebSockets to it use HTTP/1.1 for %ds",
                host,
                port,
                H2C_RETRY_AFTER,
            )
        http1_only[key] = loop.time() + H2C_RETRY_AFTER
    elif session.h2_selected:
        # HTTP/2 without extended CONNECT: HTTP/1.1 needs a context that doesn't offer h2.
        session._end(h2.errors.ErrorCodes.NO_ERROR, "no extended CONNECT")
        if not own_context and ssl is not None:
            raise InvalidHandshake(
                f"{host}:{port} negotiated HTTP/2 but doesn't support WebSocket over HTTP/2 (RFC 8441): "
                "pass an ssl context without h2 in its ALPN protocols, or http2=False"
            )
        context = ssl
    transport = session.http1_transport
    if transport is not None:
        # ALPN chose HTTP/1.1: the first caller takes this TLS connection.
        session.http1_transport = None
        connection = factory()
        transport.set_protocol(connection)
        connection.connection_made(transport)
        return connection
    _, connection = await loop.create_connection(factory, host, port, ssl=context, **kwargs)
    return connection


async def open_websocket(
    factory: Callable[[], ClientConnection],
    host: str,
    port: int,
    ssl: ssl_module.SSLContext | None,
    own_context: bool,
    kwargs: dict[str, Any],
    limits: HTTP2Limits,
) -> ClientConnection:
    """:func:`open_connection`, up to its opening handshake; once more if the server refused the stream.

    A stream the server refused (REFUSED_STREAM, or above the last stream id of
    its GOAWAY) wasn't processed (RFC 9113 8.7): the WebSocket opens again, on
    another HTTP/2 connection, since the refusing one is no longer offered.
    ``factory`` makes a fresh connection (and handshake) each time. The
    connection returned has its handshake done, or failed: ``handshake_done``
    says which.
    """
    for attempt in (1, 2):
        connection = await open_connection(factory, host, port, ssl, own_context, kwargs, limits)
        try:
            await connection.handshake_done
        except Exception as exc:
            transport = connection.transport
            if not (isinstance(transport, H2Stream) and transport.refused):
                break
            if attempt == 2:
                raise InvalidMessage(
                    f"{host}:{port} refused the WebSocket's HTTP/2 stream on two connections ({transport.refused})"
                ) from exc
            logger.debug(
                "%s:%s refused HTTP/2 stream %d (%s): opening the WebSocket again",
                host,
                port,
                transport.stream_id,
                transport.refused,
            )
        except BaseException:
            connection.transport.abort()
            raise
        else:
            break
    return connection
