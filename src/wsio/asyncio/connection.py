"""One WebSocket connection on asyncio: an :class:`asyncio.Protocol` over the sans-I/O core.

The object the handler receives *is* the asyncio protocol: bytes from the
transport go straight into :meth:`BaseConnection.data_received`, which feeds
the core and hands the events it returns to the API on top
(:meth:`Connection._handle_events` queues the messages). ``recv()`` takes an already queued
message without creating a future; ``send()`` writes to the transport and only
suspends when the transport's buffer is above ``write_limit``. Timers are
``loop.call_later`` handles, not tasks, so an idle connection costs little.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import sys
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, AsyncIterable, AsyncIterator, Awaitable, Iterable, Mapping, cast

from ..exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidState,
)
from ..connection_api import ConnectionAPI, piece_converter
from ..protocol.machine import Protocol
from ..protocol.machine import Side, State
from ..protocol.events import Event, Fragment, Ping, Pong
from ..protocol.frames import LARGE_PAYLOAD, SPEEDUPS, Close, MaskedPayload
from .timers import Timer, call_later
from .transport import SELECTOR_SOCKET_TRANSPORTS

__all__ = ["BaseConnection", "Connection", "Data", "State"]

# A large payload goes to the transport this many bytes at a time: see _write_large().
_WRITE_SLICE = 262144

# asyncio's transports for a plain TCP socket on its selector loops (transport.py; none if a
# Python renames asyncio's, and large frames then go through the transport in slices).
_PLAIN_SOCKET_TRANSPORTS = SELECTOR_SOCKET_TRANSPORTS if hasattr(os, "writev") else frozenset()
# uvloop's transports for plain TCP and Unix sockets: their writelines() is one writev() and keeps
# the buffers it is given instead of copying them. (Its TLS transport encrypts what it is given at once.)
_UVLOOP_PLAIN_TRANSPORTS = frozenset({("uvloop.loop", "TCPTransport"), ("uvloop.loop", "UnixTransport")})

# How a connection writes a large frame (BaseConnection._large_writes): in slices, the rest as the transport
# drains (_write_large()); header and payload in one writelines() call; or, any other value,
# with writev() on that file descriptor, the socket of asyncio's transport.
_SLICES = -1
_WRITELINES = -2


# BaseConnection._rcvlowat: SO_RCVLOWAT not looked at yet on this connection's socket, or not used there
# (a client, not plain TCP on Linux, or the kernel refused it). Any other value is what it is set to (1: the default).
_LOWAT_UNKNOWN = -1
_LOWAT_NONE = 0
#: A data frame with at least this many bytes still to arrive asks the kernel not to wake the
#: connection before they have (up to READ_SIZE): a 1 MiB frame then costs two reads, not four,
#: and the event loop turns, epoll calls and core steps between them. Below it a frame comes in
#: a read or two anyway, which two setsockopt() calls wouldn't save (a choice, not a measurement).
RCVLOWAT_FROM = 65536
_LOWAT_PLATFORM = sys.platform == "linux" and hasattr(socket, "SO_RCVLOWAT")


def _large_frame_writes(transport: asyncio.BaseTransport) -> int:
    """How large frames go out on ``transport``: ``_SLICES``, ``_WRITELINES`` or the socket's descriptor (see ``_write_whole()``).

    By the transport's exact class: TLS, HTTP/2 streams, subclasses and
    transports wsio doesn't know take slices.
    """
    cls = type(transport)
    if cls in _PLAIN_SOCKET_TRANSPORTS:
        sock = transport.get_extra_info("socket")
        return _SLICES if sock is None else int(sock.fileno())
    if (cls.__module__, cls.__name__) in _UVLOOP_PLAIN_TRANSPORTS:
        return _WRITELINES
    return _SLICES


#: A transport's extra info: true when the transport itself stops reading a peer
#: that doesn't read what it is sent (an HTTP/2 stream: its flow-control window
#: fills up long before a socket's buffer would, and two ends sending to each
#: other would both stop reading). The connection then doesn't pause reading
#: while its writes are paused.
BOUNDS_ITS_WRITES = "wsio_bounds_its_writes"


class TransportLost(ConnectionResetError):
    """What a transport that isn't a TCP socket (an HTTP/2 stream) passes to
    ``connection_lost()``: its message says why the connection ended, and is the
    reason the connection gives (instead of "TCP connection lost: ...")."""


#: What the core keeps for a ping that waits for its pong: the future to resolve, and when it was sent.
_PingWaiter = tuple["asyncio.Future[float]", float]


class _TurnEnds(threading.local):
    """The connections that held frames in this turn of the event loop (one loop per thread).

    One callback at the end of the turn flushes them all: with many connections
    active in one turn, that is one call_soon() per turn, not one per connection.
    """

    connections: list[BaseConnection] | None = None
    loop: asyncio.AbstractEventLoop | None = None  # a loop closed with the callback pending leaves a stale list


_turn_ends = _TurnEnds()


def _end_turns(connections: list[BaseConnection]) -> None:
    if _turn_ends.connections is connections:
        _turn_ends.connections = None
    for connection in connections:
        connection._end_turn()


Data = str | bytes


def _frozen(data: bytes | bytearray | memoryview) -> bytes | memoryview:
    """``data`` in a form nobody can change or resize while a transport holds it.

    A transport may keep what ``write()`` gives it instead of copying it:
    asyncio's socket transport keeps a view of the part the socket didn't take,
    from Python 3.12 on (3.11 copied it). A slice of the caller's bytearray
    handed over as it is would then stay exported (the caller can't resize it:
    BufferError) and a change the caller makes after ``send()`` would reach
    the peer. So what is mutable is copied once, here; ``bytes``, and a plain
    view of ``bytes``, are not.
    """
    if type(data) is memoryview and type(data.obj) is bytes and data.c_contiguous:
        return data.cast("B") if data.format != "B" or data.ndim != 1 else data
    return bytes(data)


def _time_out(waiter: asyncio.Future[None], timeout: float | None) -> None:
    """``recv(timeout=...)``: no message came in time."""
    if not waiter.done():
        waiter.set_exception(TimeoutError(f"no message within timeout={timeout}s"))


async def _anext_via_recv(self: Connection) -> Data:
    """``async for``'s next message for a subclass that overrides ``recv()``."""
    try:
        return await self.recv()
    except ConnectionClosedOK:
        raise StopAsyncIteration from None


class _ReadBuffer(threading.local):
    """The buffer every connection of this thread's event loop reads into.

    A read is handled (fed to the core, which copies what it keeps) before the
    loop reads again, so one buffer serves all connections. Without it, asyncio
    allocates a 256 KiB bytes object per read and shrinks it to the bytes read:
    glibc serves that with mmap(), mremap() and munmap(), three system calls
    and fresh pages for every read, even of 64 bytes.
    """

    def __init__(self) -> None:
        self.view = memoryview(bytearray(READ_SIZE))


#: Bytes read from the socket at once, at most. asyncio's own default is 256 KiB:
#: with large messages in flight, four times that took a third less system time
#: per message (fewer reads and wake-ups; the peer's window opens sooner), and
#: made the server's 64 KiB pipelined echo 1.35-1.55x faster and its 1 MiB echo
#: 1.17-1.22x (an A/B of this constant alone, bench's load generator). It is also the most one read adds to
#: what a connection holds before reading pauses (docs/topics/security.md).
READ_SIZE = 1 << 20
_read_buffer = _ReadBuffer()
_OPEN = State.OPEN
_CLOSED = State.CLOSED
_current_task = asyncio.current_task
_Task = asyncio.Task


def _resume_now(waiter: asyncio.Future[None], loop: asyncio.AbstractEventLoop) -> None:
    """Set ``waiter``'s result and resume the task awaiting it now, in this callback.

    ``set_result()`` alone schedules the task's wake-up for the next turn of
    the event loop: one more poll of the selector, a handle and the loop's
    bookkeeping per message, about a fifth of what a ping-pong message cost
    the coroutine API. Called from a read (no task running), with the core
    done with the whole read: the task sees the connection as it would a
    turn later, and its reply goes out before the read returns. Anything
    other than one task waiting (a callback of ``wait_for()``, a task running
    already, a future that isn't asyncio's) gets the usual ``set_result()``.
    (ReadLane's resume_now() in C is the same, for the C read path.)
    """
    callbacks = getattr(waiter, "_callbacks", None)  # asyncio's futures, C or Python; another loop's may differ
    if callbacks is not None and len(callbacks) == 1 and _current_task(loop) is None:
        resume, context = callbacks[0]
        if isinstance(getattr(resume, "__self__", None), _Task):
            waiter.remove_done_callback(resume)
            waiter.set_result(None)
            context.run(resume, waiter)
            return
    waiter.set_result(None)


# Corking (the callback API's write batching): while a listener connection handles
# a read, what the callbacks send to ANY listener connection (itself, or others
# through send() or broadcast()) is held and written once per connection when the
# read is handled. A burst of messages broadcast to many connections costs one
# system call per connection, not one per message and connection. One event loop
# per thread, so per thread. Here, beside the read buffer, for the C read path.
class _Cork(threading.local):
    connections: list[Any] | None = None  # ListenerConnections; None: no read being handled


_cork = _Cork()

# The read path in C when the accelerator is built (and WSIO_NO_SPEEDUPS isn't
# set): ReadLane's get_buffer() and buffer_updated() do what _read() does for both
# APIs (and its send() what ListenerConnection._send() does for a small str or
# bytes), calling back into these Python methods (_read(), _read_tail(),
# _handle_events(), _hold(), ...) for everything else. Otherwise buffer_updated()
# is _read().
if TYPE_CHECKING or not SPEEDUPS:

    class _ReadLane:
        __slots__ = ()

else:
    from ..protocol._speedups import ReadLane as _ReadLane, configure_lane

    configure_lane(_read_buffer, _cork, _OPEN, _CLOSED, LARGE_PAYLOAD)

#: Whether reads go through the C read path (see ReadLane in ``wsio/protocol/_speedups.c``).
C_READS = _ReadLane.__module__ != __name__


def _reads_inline(cls: type) -> bool:
    """Whether ``cls``'s data_received() does, once the connection is open, what buffer_updated() does inline.

    The class that defines the data_received() found says so with
    ``_open_reads_inline = True``; a subclass that overrides it doesn't, and
    gets every read through it. Asked once per connection, answered once per class.
    """
    inline = _inline_by_class.get(cls)
    if inline is None:
        inline = False
        for klass in cls.__mro__:
            if "data_received" in vars(klass):
                inline = bool(vars(klass).get("_open_reads_inline", False))
                break
        _inline_by_class[cls] = inline
    return inline


_inline_by_class: dict[type, bool] = {}


class BaseConnection(ConnectionAPI, asyncio.BufferedProtocol):
    """What every asyncio connection is built on: the core, the read path, write batching, closing.

    It is the :class:`asyncio.Protocol` of the connection and owns the sans-I/O
    core (:attr:`protocol`); it has no API for sending or receiving messages.
    Two APIs sit on it, siblings that don't override each other:
    :class:`Connection` (``await recv()``, ``await send()``) and
    :class:`~wsio.ListenerConnection` (callbacks; ``send()`` returns at once).
    The roles (:class:`~wsio.asyncio.server.ServerRole`,
    :class:`~wsio.asyncio.client.ClientRole`: the opening
    handshake) are mixins on it, combined with either API.

    What an API or a role plugs in, the protected hooks (each called where the
    work is, so that no read and no message costs a call more than it needs):

    - ``_handle_events(events)``: the core returned events for a read (messages,
      fragments, pings, pongs, handshake events). Each API defines it: queue
      them for ``recv()``, call the listener, or hand them to ASGI. Pass a
      ``Pong`` to ``_pong_received()`` and a handshake event to
      ``_handshake_event()``; the core answers pings and close frames.
    - ``_handshake_event(event)``: the role's opening handshake event.
    - ``_connection_lost_hook(exc)``: the TCP connection is gone; ``exc`` is
      the :exc:`ConnectionClosed` that says how.
    - ``_keepalive_ping_sent()``: a keepalive ping went out.
    - ``_no_pong()``: no pong within ``ping_timeout`` (fails with 1011).
    - Write batching: ``_hold()`` (a small frame is ready: write it now or
      with the others of this batch), ``_write()`` (write now, after the
      held frames) and ``_flush_held()`` (the batch ends: write what is
      held). By default a batch is a turn of the event loop; an API that
      batches otherwise (the callback API: per read) overrides these three.
      Whatever writes frames to many connections at once (``broadcast()``,
      the pub/sub hub) goes through ``_hold()`` and ``_flush_held()``,
      so it batches as each connection's API does.
    - :meth:`close`: each API's closing, returning something to await until
      the connection is closed.
    """

    # Slots: a server holds thousands of these idle; a dict each would cost ~1.5 KiB.
    __slots__ = (
        "protocol", "ping_interval", "ping_timeout", "close_timeout", "max_queue", "write_limit",
        "logger", "loop", "transport", "remote_address", "local_address", "latency", "_id",
        "_queue", "_messages", "_recv_waiter", "_reading_paused", "_watch_queue", "_failure_handle",
        "_write_paused", "_drain_waiter", "_fragment_lock", "_keepalive_handle",
        "_close_handle", "_closed_waiter", "_finished", "_lost_exc", "_why", "_reading_paused_for_writes",
        "_held", "_held_size", "_backlog", "_inline_reads", "_large_writes", "_rcvlowat",
    )  # fmt: skip

    #: Where log lines go unless ``logger=`` says otherwise; each role sets its own.
    default_logger = logging.getLogger("wsio")

    def __init__(
        self,
        protocol: Protocol,
        *,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        max_queue: int | None = 16,
        write_limit: int = 65536,
        logger: logging.Logger | None = None,
    ) -> None:
        self._init_settings(protocol, ping_interval, ping_timeout, close_timeout, max_queue, write_limit)
        self.logger = logger if logger is not None else self.default_logger
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        #: The peer's address as the socket gives it, ``(host, port)`` for IPv4
        #: and ``(host, port, flowinfo, scope_id)`` for IPv6.
        self.remote_address: Any = None
        #: This end's address, in the same form.
        self.local_address: Any = None

        # Created on the first message: an empty deque holds a 64-slot block.
        # [assignment]: None until then, but taken from only once _messages (or, for
        # recv_streaming(), its truth) says something is queued.
        self._queue: collections.deque[Any] = None  # type: ignore[assignment]
        self._messages = 0  # complete messages in _queue
        self._recv_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._watch_queue = False  # reading paused or a failure pending: look after each take
        self._failure_handle: asyncio.TimerHandle | None = None
        self._write_paused = False
        # Frames sent in this turn of the event loop, written together at its end.
        self._held: list[bytes] | None = None  # see _hold()
        self._held_size = 0
        # Large payloads waiting for the transport to drain; see _write_large().
        self._backlog: collections.deque[bytes | memoryview | MaskedPayload] | None = None
        # Reading stops while the write buffer is over write_limit: what we read may
        # need an answer (pongs, a close frame) that would only grow that buffer.
        self._reading_paused_for_writes = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._fragment_lock: asyncio.Lock | None = None
        # Shared timers (see timers.py): every connection arms them with the same delays.
        self._keepalive_handle: Timer | None = None
        self._close_handle: Timer | None = None
        self._finished = False  # connection_lost() has run
        self._closed_waiter: asyncio.Future[None] | None = None  # made on first use: see _closed_future()
        self._lost_exc: BaseException | None = None
        self._why = ""
        self._inline_reads = _reads_inline(type(self))  # see buffer_updated()
        self._large_writes = _SLICES  # set by connection_made()
        # See _wake_for(): servers' connections only, decided here so that the others' reads never look.
        self._rcvlowat = _LOWAT_UNKNOWN if _LOWAT_PLATFORM and protocol.side is Side.SERVER else _LOWAT_NONE

    @property
    def closed(self) -> bool:
        return self._finished

    def _closed_future(self) -> asyncio.Future[None]:
        """A future done once the connection is closed: made on first use, most idle connections never need one."""
        waiter = self._closed_waiter
        if waiter is None:
            waiter = self._closed_waiter = self.loop.create_future()
            if self._finished:
                waiter.set_result(None)
        return waiter

    @property
    def buffered_amount(self) -> int:
        """How many bytes were sent and not yet written to the network.

        That is the transport's buffer, plus frames held until the end of this
        turn of the event loop, plus large payloads waiting for the transport
        to drain."""
        backlog = self._backlog
        return self.transport.get_write_buffer_size() + self._held_size + (sum(map(len, backlog)) if backlog else 0)

    # -- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # A transport without the method (uvicorn's test double, under the ASGI engine) keeps its own limits.
        set_limits = getattr(transport, "set_write_buffer_limits", None)
        if set_limits is not None:
            set_limits(self.write_limit)
        self._large_writes = _large_frame_writes(transport)
        self.remote_address = transport.get_extra_info("peername")
        self.local_address = transport.get_extra_info("sockname")

    def get_buffer(self, sizehint: int) -> memoryview:
        return _read_buffer.view

    def _read(self, nbytes: int) -> None:
        """A read of ``nbytes`` into the read buffer: ``buffer_updated()`` in Python, and C's fallback."""
        # Called right after get_buffer(), in the same thread: the same buffer.
        # data_received() and everything under it copy what they keep: the
        # buffer is read into again for the next connection.
        protocol = self.protocol
        if protocol.state is not _OPEN or not self._inline_reads:
            self.data_received(_read_buffer.view[:nbytes])
            return
        # An open connection's read: what data_received() does, one call less (and
        # one more for a role's data_received(), which only differs before opening).
        self._read_tail(0, nbytes)

    buffer_updated = _read

    def _read_tail(self, start: int, end: int, messages: list[Data] | None = None) -> None:
        """The core takes the read buffer's bytes from ``start`` to ``end``; their events go to the API.

        An open connection's whole read on the Python path; on the C path,
        the rest of a read from the first frame C doesn't take (a control
        frame, a fragment, a compressed or incomplete frame). For the
        callback API, while corked. For the coroutine API, ``messages`` are
        the ones C took before ``start``: they go to ``_handle_events()``
        with the rest, once the core has read the whole read, as on the
        Python path.
        """
        protocol = self.protocol
        events = protocol.receive_data(_read_buffer.view[start:end])
        if self._rcvlowat and (self._rcvlowat > 1 or protocol.frame_remaining >= RCVLOWAT_FROM):
            self._wake_for(protocol.frame_remaining)
        if protocol.outgoing:
            self._write(protocol.data_to_send())
        if messages:
            events = messages + events
        if events:
            self._handle_events(events)
        if protocol.failure_pending or protocol.state is _CLOSED:
            self._after_read()

    #: This class's data_received() is what buffer_updated() does inline once open.
    _open_reads_inline = True

    def data_received(self, data: bytes | memoryview) -> None:
        protocol = self.protocol
        events = protocol.receive_data(data)
        if self._rcvlowat and (self._rcvlowat > 1 or protocol.frame_remaining >= RCVLOWAT_FROM):
            self._wake_for(protocol.frame_remaining)
        if protocol.outgoing:
            self._write(protocol.data_to_send())
        if events:
            self._handle_events(events)
        if protocol.failure_pending or protocol.state is State.CLOSED:
            self._after_read()

    def _wake_for(self, remaining: int) -> None:
        """Have the socket wake this connection once ``remaining`` bytes (at most READ_SIZE) have arrived, or at once.

        ``remaining`` is what the data frame being received still lacks (the
        core's ``frame_remaining``): the peer owes that much, so waiting for
        it never waits for bytes that won't come, and EOF or an error wakes
        the connection anyway. Below RCVLOWAT_FROM (a frame done, a small
        one) the kernel's default comes back: wake for any byte. Only on a
        plain TCP socket on Linux: through TLS, bytes on the wire aren't
        the frame's (and some may wait undecrypted in the TLS layer). Only
        for a server's connections: a server's core is shared by all of
        them, and fewer wake-ups served more (1 MiB ping-pong +10-12 %, a
        quarter less CPU); a client, usually one connection with a core to
        itself, lost on the same echo (14-18 % for the callback client, up to
        24 % for the coroutine one: copying the frame as it arrives overlaps
        the peer's sending; waiting for all of it doesn't).
        """
        lowat = self._rcvlowat
        want = min(remaining, READ_SIZE) if remaining >= RCVLOWAT_FROM else 1
        if want == lowat:
            return
        sock = self.transport.get_extra_info("socket")
        if lowat == _LOWAT_UNKNOWN and (
            self._large_writes == _SLICES or sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6)
        ):
            # _large_writes tells asyncio's and uvloop's plain socket transports from the rest (TLS, HTTP/2).
            self._rcvlowat = _LOWAT_NONE
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, want)
        except OSError:
            self._rcvlowat = _LOWAT_NONE
            return
        self._rcvlowat = want

    def _after_read(self) -> None:
        """A read left a protocol error pending or closed the connection: act on it."""
        protocol = self.protocol
        if protocol.failure_pending and self._failure_handle is None:
            # A protocol error follows the messages received so far, in this read or
            # an earlier one: fail once the application has taken them (an echo
            # answers them first, as Autobahn 3.x, 4.x and 5.15 expect), or after
            # close_timeout if it doesn't read. With none queued, fail on the next
            # turn of the event loop, after the tasks already woken (one may be
            # about to answer the message it just took).
            delay = (self.close_timeout or 0) if self._messages else 0
            self._failure_handle = self.loop.call_later(delay, self._apply_failure)
            self._watch_queue = True
        if protocol.state is State.CLOSED:
            self._after_closed(in_read=True)

    def _handle_events(self, events: list[Event]) -> None:  # pragma: no cover - each API defines it
        """Hook: the core returned ``events`` for one read (see the class docstring)."""
        raise NotImplementedError

    def _handshake_event(self, event: Event) -> None:  # pragma: no cover - roles override
        """Hook: an event of the opening handshake (the role's request or response)."""

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._after_closed(in_read=True)
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        protocol = self.protocol
        protocol.receive_eof()
        if exc is not None:
            self._lost_exc = exc
            if not self._why:
                if isinstance(exc, TransportLost):
                    self._why = str(exc)
                elif isinstance(exc, ConnectionResetError):
                    self._why = "TCP connection reset by peer"
                else:
                    self._why = f"TCP connection lost: {exc}"
        for handle in (self._keepalive_handle, self._close_handle, self._failure_handle):
            if handle is not None:
                handle.cancel()
        self._keepalive_handle = self._close_handle = None
        self._backlog = None
        self._finished = True
        waiter = self._closed_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        closed = self._closed_exc()
        for waiter in (self._recv_waiter, self._drain_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)  # the waiting coroutine raises what it finds
        for pending in protocol.drop_pings():
            future = cast("_PingWaiter", pending)[0]
            if not future.done():
                future.set_exception(closed)
                future.exception()  # nobody may be waiting for it: don't log it
        self._connection_lost_hook(closed)

    def _connection_lost_hook(self, exc: ConnectionClosed) -> None:
        """Hook: the TCP connection is gone; ``exc`` says how the WebSocket connection ended.

        Called once, after the waiters are woken; roles and APIs extend it with ``super()``.
        """

    # -- writing ------------------------------------------------------------------
    # The first message sent in a turn of the event loop is written at once; the
    # ones after it in the same turn are held and written together when the turn
    # ends: a handler answering a burst of messages makes two system calls, not
    # one per message. Every other write flushes them first, so frames go out in
    # the order they were made. (_held: None outside a burst, else the held frames.)
    # A burst ends with the turn in which a frame was held, or when the API hands
    # the application a message (Connection._handle_events): a message answered
    # per turn is then written at once, with no end-of-turn callback.

    def _hold(self, data: bytes) -> None:
        """Write ``data`` now, or with the others sent in this turn of the event loop."""
        # Its first two cases are also ReadLane's hold() in C (wsio/protocol/_speedups.c).
        held = self._held
        if held is None:
            # The first of a burst: written at once, and no callback yet. One
            # message per turn (a ping-pong) then costs no end-of-turn callback.
            if self._backlog:  # _transport_write(), one call less per message
                self._backlog.append(data)
            else:
                self.transport.write(data)
            self._held = []
            self._held_size = 0
            return
        if not held:
            # A frame held: write it (and any that follow) when this turn ends.
            ending = _turn_ends.connections
            if ending is None or _turn_ends.loop is not self.loop:
                ending = _turn_ends.connections = []
                _turn_ends.loop = self.loop
                self.loop.call_soon(_end_turns, ending)
            ending.append(self)
        held.append(data)
        self._held_size += len(data)
        if self._held_size >= self.write_limit:
            self._flush_held()  # the transport takes it now, and says when to wait

    def _flush_held(self) -> None:
        """Write the held frames now."""
        held = self._held
        if held:
            self._held = []
            self._held_size = 0
            if not self.transport.is_closing():
                self._transport_write(b"".join(held) if len(held) > 1 else held[0])

    def _end_turn(self) -> None:
        self._flush_held()
        self._held = None

    def _write(self, data: bytes) -> None:
        """Write ``data`` now, after the held frames."""
        if self._held:
            self._flush_held()
        self._transport_write(data)

    def _transport_write(self, data: bytes) -> None:
        """Hand ``data`` to the transport, or queue it behind a large payload still waiting."""
        if self._backlog:
            self._backlog.append(data)
        else:
            self.transport.write(data)

    def _send_message(self, message: Data | bytearray | memoryview, compress: bool | None, text: bool | None = None) -> None:
        """Frame a whole message and write it: held if small, header and payload apart if large.

        ``text`` sets the frame type instead of the message's type (see :meth:`send`).
        Raises :exc:`InvalidState` when the connection isn't open.
        """
        if len(message) < LARGE_PAYLOAD:
            self._hold(self.protocol.send_message(message, compress, text))
        else:
            # A client's payload up to one write slice is masked into its frame: one write,
            # and a copy no bigger than a slice either way (see MaskedPayload).
            mask_later = len(message) > _WRITE_SLICE
            self._write_parts(self.protocol.send_message_parts(message, compress, text=text, mask_later=mask_later))

    def _write_parts(self, parts: tuple[bytes | bytearray | memoryview | MaskedPayload, ...]) -> None:
        """Write a frame given in pieces: small ones as they are, a large payload
        in slices as the transport drains (see :meth:`_write_large`), a client's
        masked as they go."""
        if self._held:
            self._flush_held()
        if self._large_writes != _SLICES and len(parts) == 2 and not self._backlog:
            parts = self._write_whole(parts)
        for part in parts:
            if isinstance(part, MaskedPayload):
                self._write_large(part)
                continue
            if type(part) is not bytes:
                part = _frozen(part)
            if len(part) >= LARGE_PAYLOAD:
                self._write_large(part)
            else:
                self._transport_write(part)  # type: ignore[arg-type]

    def _write_whole(
        self, parts: tuple[bytes | bytearray | memoryview | MaskedPayload, ...]
    ) -> tuple[bytes | bytearray | memoryview | MaskedPayload, ...]:
        """Write a header and its payload in one system call; return what is left to write in slices.

        Slices cost a send per 256 KiB, and the peer woke up for each: five
        per megabyte. uvloop's writelines() is one writev() and keeps the
        rest without copying it. asyncio's transport has no such call before
        Python 3.12 (and in 3.12 and 3.13.0 it never pauses the protocol):
        with nothing in its buffer, bytes written to its socket go out in
        order, and what the socket doesn't take goes through the transport in
        slices. A mutable payload is copied only then (see :func:`_frozen`):
        the kernel copied what it took. A client's payload goes out masked a
        slice at a time, the first one here: masking a whole megabyte made
        the allocator give the heap back and take it again on every message
        (three brk() calls per message, half the callback client's 1 MiB echo).
        """
        header, payload = parts
        rest: tuple[MaskedPayload, ...] = ()
        if isinstance(payload, MaskedPayload):
            rest = (payload,)
            payload = payload.take(_WRITE_SLICE)
            if not len(rest[0]):
                rest = ()
        # The core's header is bytes, and its payload bytes, a bytearray or a view of single bytes.
        if self._large_writes == _WRITELINES:
            self.transport.writelines((header, _frozen(payload)))  # type: ignore[arg-type]
            return rest
        transport = self.transport
        if transport.get_write_buffer_size() or transport.is_closing():
            return (header, payload, *rest)
        try:
            sent = os.writev(self._large_writes, (header, payload))  # type: ignore[arg-type]
        except OSError:
            # Full (the transport waits for room), or broken: the transport's
            # write() meets the same error and reports it as it always does.
            return (header, payload, *rest)
        if sent < len(header):
            return (header[sent:], payload, *rest)  # type: ignore[index]
        sent -= len(header)
        if sent == len(payload):
            return rest
        return (memoryview(payload)[sent:], *rest)

    def _write_large(self, payload: bytes | memoryview | MaskedPayload) -> None:
        """Write a large payload a slice at a time, the rest when the transport asks for more.

        Handing the transport a whole megabyte when the socket takes only part
        of it makes the transport copy the rest into its buffer, which then
        grows and shrinks by megabytes on every message: the copy, and the
        allocator giving memory back to the system and taking it again, cost
        more than the send itself. Slices keep that buffer near ``write_limit``
        and a ``bytes`` payload is copied only by the kernel. ``payload`` must
        be immutable (see :func:`_frozen`): the transport may keep the slices.
        """
        backlog = self._backlog
        if backlog is None:
            backlog = self._backlog = collections.deque()
        backlog.append(payload)
        self._drain_backlog()

    def _drain_backlog(self) -> None:
        """Write queued payload slices until the transport is full (pause_writing()) or the queue empty."""
        backlog = self._backlog
        write = self.transport.write
        while backlog and not self._write_paused:
            item = backlog[0]
            if isinstance(item, MaskedPayload):
                piece = item.take(_WRITE_SLICE)
                if not item:
                    backlog.popleft()
                write(piece)
            elif len(item) > _WRITE_SLICE:
                view = item if type(item) is memoryview else memoryview(item)
                backlog[0] = view[_WRITE_SLICE:]
                write(view[:_WRITE_SLICE])
            else:
                backlog.popleft()
                write(item)

    def _flush_backlog(self) -> None:
        """Closing: give the transport everything queued, in order (it flushes before it closes)."""
        backlog = self._backlog
        if backlog:
            self._backlog = None
            for item in backlog:
                self.transport.write(item.take(len(item)) if isinstance(item, MaskedPayload) else item)

    def pause_writing(self) -> None:
        self._write_paused = True
        transport = self.transport
        if (
            not self._reading_paused_for_writes
            and not transport.is_closing()
            and not transport.get_extra_info(BOUNDS_ITS_WRITES, False)
        ):
            # A peer that sends pings (or anything the core answers) but never reads
            # would otherwise grow the write buffer without bound: stop reading it
            # until it reads. Its TCP window then fills up instead of our memory.
            self._reading_paused_for_writes = True
            transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._backlog:
            self._drain_backlog()
            if self._write_paused:  # the transport filled up again: stay paused
                return
        if self._reading_paused_for_writes:
            self._reading_paused_for_writes = False
            if not self._reading_paused and not self.transport.is_closing():
                self.transport.resume_reading()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- closing ------------------------------------------------------------------

    def _after_closed(self, in_read: bool = False) -> None:
        """The core says the WebSocket connection is closed: end the TCP connection.

        ``in_read``: called as the last step of handling a read (or EOF), with
        no task running: a task waiting in recv() is resumed here, once the
        rest is done, rather than in the loop's next turn (see _resume_now()).
        """
        transport = self.transport
        if transport.is_closing():
            return
        self._flush_backlog()
        self._flush_held()
        protocol = self.protocol
        if protocol.outgoing:
            transport.write(protocol.data_to_send())
        waiter = self._recv_waiter  # recv() raises ConnectionClosed now, not when TCP ends
        if waiter is not None and waiter.done():
            waiter = None
        if waiter is not None and not in_read:
            waiter.set_result(None)  # its task resumes in the loop's next turn
            waiter = None
        # The core says when (RFC 6455 7.1.1: the server closes TCP first, a client
        # waits for it; a failed connection reads on until the peer's close frame
        # or EOF, so that closing with unread data doesn't reset the connection
        # before the peer reads our close frame). Either way, not longer than
        # close_timeout: a peer that doesn't read could hold a closing transport forever.
        if protocol.should_close_transport():
            transport.close()
            # Nothing left to write (the backlog went to the transport above): the socket
            # transport calls connection_lost() by itself, no deadline needed (the usual
            # close): asyncio's in the loop's next iteration, wsio's pump as soon as the
            # read that closed returns (transport.py).
            lingers = type(transport) not in SELECTOR_SOCKET_TRANSPORTS or transport.get_write_buffer_size()
        else:
            if protocol.should_send_eof() and transport.can_write_eof():
                transport.write_eof()  # after what it holds: the close frame
            if protocol.discarding and self._reading_paused:
                self._reading_paused = False  # what arrives is thrown away: read on
                if not self._reading_paused_for_writes:
                    transport.resume_reading()
            lingers = True
        if lingers and self._close_handle is None and self.close_timeout is not None:
            self._close_handle = call_later(self.loop, self.close_timeout, self._close_timed_out)
        if waiter is not None and not waiter.done():
            # The task sees what it would a turn later: the transport closing, connection_lost() not yet run.
            _resume_now(waiter, self.loop)

    async def _closed_exc_once_closed(self) -> ConnectionClosed:
        """Sending failed: the connection is closing or closed. Say how it ended.

        While the closing handshake is in progress the peer's close frame isn't
        known yet: wait for it (close_timeout at most), or a normal closure
        started by another task would look like a 1006.
        """
        if not self._finished and self.protocol.state is not State.CLOSED:
            await asyncio.shield(self._closed_future())
        return self._closed_exc()

    def close(self, code: int = 1000, reason: str = "") -> Awaitable[None]:  # pragma: no cover - each API defines it
        """Start the closing handshake with ``code`` and ``reason``; await the result until the connection is closed."""
        raise NotImplementedError

    def _close_timed_out(self) -> None:
        if not self._why and self.protocol.close_rcvd is None:
            self._why = f"no close frame within close_timeout={self.close_timeout}s"
        self.transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (the TCP connection included)."""
        await asyncio.shield(self._closed_future())

    def fail(self, code: int, reason: str) -> None:
        """Fail the connection: send a close frame with ``code`` and drop TCP at once."""
        if not self._why:
            self._why = reason
        self.protocol.fail(code, reason)
        self._after_closed()

    def _apply_failure(self) -> None:
        if self._failure_handle is not None:
            self._failure_handle.cancel()
            self._failure_handle = None
        if self.protocol.failure_pending:
            self.protocol.apply_deferred_failure()
            self.data_received(b"")  # write the close frame; end TCP when the core says

    # -- pings ------------------------------------------------------------------------

    async def ping(self, data: str | bytes | None = None) -> asyncio.Future[float]:
        """Send a ping; return a future that resolves to the round-trip time when the pong arrives.

        ``await (await websocket.ping())`` waits for the pong.
        """
        protocol = self.protocol
        if data is None:
            data = protocol.new_ping_payload()
        elif isinstance(data, str):
            data = data.encode()
        future: asyncio.Future[float] = self.loop.create_future()
        try:
            frame = protocol.send_ping(data, (future, time.monotonic()))
        except InvalidState:
            raise await self._closed_exc_once_closed() from None
        self._write(frame)
        return future

    async def pong(self, data: str | bytes = b"") -> None:
        """Send an unsolicited pong (pongs to pings are automatic)."""
        if isinstance(data, str):
            data = data.encode()
        try:
            self._write(self.protocol.send_pong(data))
        except InvalidState:
            raise await self._closed_exc_once_closed() from None

    def _pong_received(self, data: bytes) -> None:
        answered = self.protocol.acknowledge(data)
        if not answered:
            return  # unsolicited pong
        now = time.monotonic()
        for waiter in answered:
            future, sent = cast("_PingWaiter", waiter)
            if not future.done():
                future.set_result(now - sent)
        self.latency = now - sent  # its own ping is the last one answered

    # -- keepalive ------------------------------------------------------------------

    def start_keepalive(self) -> None:
        if self.ping_interval is not None:
            self._keepalive_handle = call_later(self.loop, self.ping_interval, self._keepalive)

    def _keepalive(self) -> None:
        protocol = self.protocol
        if protocol.state is not State.OPEN:
            return
        if self._reading_paused:  # no pong could be read: don't pile up pings
            self._keepalive_handle = call_later(self.loop, self.ping_interval, self._keepalive)  # type: ignore[arg-type]
            return
        future: asyncio.Future[float] = self.loop.create_future()
        self._write(protocol.send_ping(protocol.new_ping_payload(), (future, time.monotonic())))
        self._keepalive_ping_sent()
        if self.ping_timeout is not None:
            call_later(self.loop, self.ping_timeout, self._keepalive_timeout, future)
        self._keepalive_handle = call_later(self.loop, self.ping_interval, self._keepalive)  # type: ignore[arg-type]

    def _keepalive_timeout(self, future: asyncio.Future[float]) -> None:
        if future.done() or self._finished:
            return
        if self._reading_paused:
            # max_queue paused reading: the pong may be waiting unread in the
            # socket. A slow application says nothing about the peer; look again later.
            call_later(self.loop, self.ping_timeout, self._keepalive_timeout, future)  # type: ignore[arg-type]
            return
        self._no_pong()

    def _keepalive_ping_sent(self) -> None:
        """Hook: a keepalive ping just went out."""

    def _no_pong(self) -> None:
        """No pong came within ``ping_timeout``: fail the connection with 1011."""
        self.logger.info("%s no pong within ping_timeout=%ss; closing", self._peer(), self.ping_timeout)
        self.fail(1011, f"no pong within ping_timeout={self.ping_timeout}s")

    def _start_close(self, code: int, reason: str) -> None:
        """Send the close frame if the connection is open, and time the closing handshake; don't wait."""
        protocol = self.protocol
        if protocol.state is State.OPEN:
            self._write(protocol.send_close(code, reason))
            if self.close_timeout is not None and self._close_handle is None:
                self._close_handle = call_later(self.loop, self.close_timeout, self._close_timed_out)
            if self._reading_paused:
                # max_queue paused reading: resume, or the peer's close frame is
                # never read and closing always ends in close_timeout and 1006.
                # (Not while the peer doesn't read what we write: close_timeout then.)
                self._reading_paused = False
                if not self._reading_paused_for_writes:
                    self.transport.resume_reading()


class Connection(_ReadLane, BaseConnection):
    """A WebSocket connection, as a handler or ``connect()`` sees it: the coroutine API.

    Receive with ``await recv()``, ``async for message in connection`` or
    ``recv_streaming()``; send with ``await send()``; close with
    ``await close()`` (the server closes by itself when the handler returns).

    Options (documented on :func:`wsio.serve` and :func:`wsio.connect`):
    ``ping_interval`` and ``ping_timeout`` (20 s each; ``None`` disables
    keepalive), ``close_timeout`` (10 s), ``max_queue`` (16 messages
    received and not read yet; reading pauses beyond it), ``write_limit``
    (64 KiB buffered for sending; ``send()`` waits beyond it).

    The coroutine API on :class:`BaseConnection`: messages are queued as
    they arrive and taken by ``recv()``.
    """

    __slots__ = ()  # its state is in BaseConnection's slots

    # -- receiving ------------------------------------------------------------------

    def _handle_events(self, events: list[Event]) -> None:
        # ReadLane's hand_off() (wsio/protocol/_speedups.c) does the same for a read of
        # whole messages under max_queue, for classes that don't override this method:
        # change both (tests/asyncio/test_reads.py runs them alike).
        queue = self._queue
        if queue is None:
            queue = self._queue = collections.deque()
        added = 0
        # type(event) is read once, for speed; mypy doesn't narrow on `kind is ...`.
        for event in events:
            kind = type(event)
            if kind is str or kind is bytes:
                queue.append(event)
                added += 1
            elif kind is Fragment:
                queue.append(event)
                if event.last:  # type: ignore[union-attr]
                    added += 1
            elif kind is Pong:
                self._pong_received(event.data)  # type: ignore[union-attr, arg-type]
            elif kind is Ping or kind is Close:
                pass  # answered by the core
            else:
                self._handshake_event(event)
        if added:
            self._messages += added
            if self._held is not None and not self._held:
                self._held = None  # nothing held: what answers these messages starts a burst
            if (
                self.max_queue is not None
                and self._messages >= self.max_queue
                and not self._reading_paused
                and self.protocol.state is State.OPEN  # closing: the close frame must get through
            ):
                # Backpressure instead of buffering: the peer's TCP window fills up.
                self._reading_paused = self._watch_queue = True
                self.transport.pause_reading()
            waiter = self._recv_waiter
            if waiter is not None and not waiter.done():
                protocol = self.protocol
                if protocol.state is _OPEN and not protocol.failure_pending:
                    _resume_now(waiter, self.loop)
                else:
                    waiter.set_result(None)
        elif queue and type(queue[-1]) is Fragment:
            waiter = self._recv_waiter  # recv_streaming() waits for pieces
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection: send a close frame, wait for the peer's, then for TCP to close.

        Waits at most ``close_timeout`` for the peer, then drops the TCP connection.
        Closing a closed connection does nothing.
        """
        if self.protocol.state is State.CONNECTING:
            self.transport.close()
        else:
            self._start_close(code, reason)
        await asyncio.shield(self._closed_future())

    async def recv(self, decode: bool | None = None, timeout: float | None = None) -> Data:
        """Receive the next message: ``str`` for text, ``bytes`` for binary.

        ``decode=True`` returns ``str`` for binary messages too (decoded as
        UTF-8; invalid UTF-8 fails the connection with 1007 and raises
        :exc:`ConnectionClosedError`, as in websockets), ``decode=False``
        returns ``bytes`` for text messages too (UTF-8 encoded).

        Raises :exc:`ConnectionClosed` when the connection is closed and no
        message is left, :exc:`TimeoutError` if ``timeout`` seconds pass first.
        Cancelling ``recv()`` loses no message.

        ``decode`` comes first, as in websockets: pass the timeout by name,
        ``recv(timeout=5)``. A number as first argument (``recv(5)``, the
        form of earlier wsio versions) is taken as the timeout, with a
        :exc:`DeprecationWarning`; ``True`` and ``False`` are ``decode``.
        (``timeout`` isn't keyword-only on purpose: CPython doesn't specialize
        calls to functions with keyword-only parameters, which would make
        every ``recv()`` slower.)
        """
        if decode is not None:
            return await self._recv_decoded(decode, timeout)
        while not self._messages:
            if timeout is None and self._recv_waiter is None and not self._finished and self.protocol.state is not State.CLOSED:
                # The usual wait, inline: the reader's one future, and no coroutine
                # between it and the task (_wait_for_message() does the rest).
                waiter = self._recv_waiter = self.loop.create_future()
                try:
                    await waiter
                finally:
                    self._recv_waiter = None
            else:
                await self._wait_for_message(timeout, whole=True)
        return self._take_message()

    def _take_message(self) -> Data:
        """Take the first whole message off the queue (there is one)."""
        queue = self._queue
        item = queue.popleft()
        if type(item) is not Fragment:
            self._messages -= 1
            if self._watch_queue:
                self._message_taken()
            return item  # type: ignore[no-any-return]
        queue.appendleft(item)
        return self._pop_fragmented()

    async def _recv_decoded(self, decode: Any, timeout: float | None) -> Data:
        """``recv(decode)`` with ``decode`` given: convert the message, or take a number as the old timeout."""
        if type(decode) is not bool and isinstance(decode, (int, float)):
            warnings.warn(
                "recv(timeout) is deprecated: the first argument of recv() is decode, as in"
                " websockets; pass the timeout as recv(timeout=...)",
                DeprecationWarning,
                stacklevel=3,
            )
            if timeout is not None:
                raise TypeError("recv() got a timeout both as first argument and as timeout=")
            return await self.recv(timeout=decode)
        return await self._convert(await self.recv(timeout=timeout), decode)

    async def _invalid_utf8(self, exc: UnicodeDecodeError) -> ConnectionClosed:
        """``decode=True`` met a binary message that isn't UTF-8: fail the connection with 1007, as websockets does."""
        if self.protocol.state is State.OPEN:
            self.fail(1007, f"{exc.reason} at position {exc.start}")
            failure = self.protocol.failure
            if failure is not None and failure.__cause__ is None:
                failure.__cause__ = exc
        return await self._closed_exc_once_closed()

    def recv_nowait(self) -> Data:
        """Return a message already received, or raise :exc:`asyncio.QueueEmpty`.

        Raises :exc:`ConnectionClosed` if none is left and the connection is closed.
        """
        if self._messages:
            item = self._queue[0]
            if type(item) is not Fragment:
                self._queue.popleft()
                self._messages -= 1
                if self._watch_queue:
                    self._message_taken()
                return item  # type: ignore[no-any-return]
            return self._pop_fragmented()
        if self._finished or self.protocol.state is State.CLOSED:
            raise self._closed_exc()
        raise asyncio.QueueEmpty

    def _pop_fragmented(self) -> Data:
        queue = self._queue
        pieces = []
        while True:
            fragment = queue.popleft()
            pieces.append(fragment.data)
            if fragment.last:
                break
        self._messages -= 1
        if self._watch_queue:
            self._message_taken()
        if type(pieces[0]) is str:
            return "".join(pieces)
        return b"".join(pieces)

    async def _wait_for_message(self, timeout: float | None, whole: bool) -> None:
        """Wait until a message (or, if not ``whole``, a piece) is queued, or raise."""
        if self._recv_waiter is not None and not self._recv_waiter.done():
            raise ConcurrencyError("another coroutine is already waiting for a message")
        loop = self.loop
        deadline = None if timeout is None else loop.time() + timeout
        while not (self._messages or (not whole and self._queue)):
            if self._finished or self.protocol.state is State.CLOSED:
                raise self._closed_exc()
            if deadline is None:
                waiter = self._recv_waiter = loop.create_future()
                try:
                    await waiter
                finally:
                    self._recv_waiter = None
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no message within timeout={timeout}s")
            # Not asyncio.wait_for(): before Python 3.11 it raises asyncio.TimeoutError,
            # which isn't the built-in TimeoutError that recv() documents.
            waiter = self._recv_waiter = loop.create_future()
            handle = loop.call_later(remaining, _time_out, waiter, timeout)
            try:
                await waiter
            finally:
                handle.cancel()
                self._recv_waiter = None

    def _message_taken(self) -> None:
        """The application took a message while reading was paused or a failure waits."""
        if self._reading_paused:
            # Low-water mark at a quarter of max_queue, so reading doesn't flap.
            if self._messages <= (self.max_queue or 0) // 4 and not self.transport.is_closing():
                self._reading_paused = False
                if not self._reading_paused_for_writes:
                    self.transport.resume_reading()
        if self._failure_handle is not None and self._messages == 0:
            self.loop.call_soon(self._apply_failure)
        self._watch_queue = self._reading_paused or self._failure_handle is not None

    async def recv_streaming(self, decode: bool | None = None) -> AsyncIterator[Data]:
        """Receive the next message piece by piece, as its frames arrive.

        Yields ``str`` pieces for a text message, ``bytes`` for a binary one;
        ``decode`` as for :meth:`recv` (``True``: ``str`` pieces for binary
        too, decoded incrementally; ``False``: ``bytes`` pieces for text too).
        A binary message in a single uncompressed frame of up to 16 MiB
        (``ASSEMBLE_LIMIT``) comes as one piece: it is put together in place.
        """
        while not self._queue:
            await self._wait_for_message(None, whole=False)
        queue = self._queue
        assert queue is not None
        item = queue[0]
        if type(item) is not Fragment:
            queue.popleft()
            self._messages -= 1
            if self._watch_queue:
                self._message_taken()
            if decode is not None:
                item = await self._convert(item, decode)
            yield item
            return
        # None: the pieces as they are; else a function converting each (decode given, other type).
        convert = None if decode is None else piece_converter(type(item.data) is str, decode)
        while True:
            while not queue:
                await self._wait_for_message(None, whole=False)
            fragment = queue.popleft()
            data = fragment.data
            if convert is not None:
                try:
                    data = convert(data, fragment.last)
                except UnicodeDecodeError as exc:
                    if not fragment.last:
                        self._drop_rest_of_message()
                    else:
                        self._messages -= 1
                    raise await self._invalid_utf8(exc)  # its __cause__ says why
            if fragment.last:
                self._messages -= 1
                if self._watch_queue:
                    self._message_taken()
                yield data
                return
            yield data

    async def _convert(self, message: Data, decode: bool) -> Data:
        """A whole message as ``decode`` asks (not None)."""
        if decode:
            if type(message) is not str:
                try:
                    return message.decode()  # type: ignore[union-attr]
                except UnicodeDecodeError as exc:
                    raise await self._invalid_utf8(exc)  # its __cause__ says why
            return message
        return message.encode() if type(message) is str else message

    def __aiter__(self) -> AsyncIterator[Data]:
        return self

    async def __anext__(self) -> Data:
        """The next message for ``async for``: :meth:`recv`; a normal closure (1000, 1001) ends the loop.

        :meth:`recv`'s usual wait is inlined rather than awaited: one coroutine
        between the handler's task and the reader's future, and no async
        generator kept per connection. (Awaiting ``self.recv()`` here instead
        costs 3-6 % per message in ``bench/hotpath.py``'s asyncio cases.)
        """
        try:
            while not self._messages:
                if self._recv_waiter is None and not self._finished and self.protocol.state is not State.CLOSED:
                    waiter = self._recv_waiter = self.loop.create_future()
                    try:
                        await waiter
                    finally:
                        self._recv_waiter = None
                elif self._recv_waiter is None and (self._finished or self.protocol.state is State.CLOSED) and self._closed_ok():
                    # The usual end: what the ConnectionClosedOK below would become, without making one.
                    raise StopAsyncIteration
                else:
                    await self._wait_for_message(None, whole=True)
        except ConnectionClosedOK:
            raise StopAsyncIteration from None
        return self._take_message()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "recv" in cls.__dict__ and "__anext__" not in cls.__dict__:
            # A subclass that changes recv() changes what ``async for`` yields too, as in websockets.
            cls.__anext__ = _anext_via_recv  # type: ignore[method-assign]

    # -- sending -------------------------------------------------------------------

    async def send(
        self,
        message: Data | bytearray | memoryview | Iterable[Data] | AsyncIterable[Data],
        compress: bool | None = None,
        text: bool | None = None,
    ) -> None:
        """Send a message: ``str`` as text, bytes-like as binary.

        An iterable or async iterable of ``str`` or of bytes is sent as one
        fragmented message. ``compress=False`` sends this message uncompressed
        even when compression is on. Waits only when more than ``write_limit``
        bytes are buffered. Raises :exc:`ConnectionClosed` once closed.
        A ``bytearray`` (or a view of one) is the caller's again when
        ``send()`` returns: changing or resizing it then changes nothing sent.

        ``text=True`` sends bytes (or an iterable of bytes) as a text message:
        they must be UTF-8 already, and aren't checked (as in websockets: the
        peer fails the connection with 1007 if they aren't). ``text=False``
        sends ``str`` as a binary message, UTF-8 encoded. Pass it by name, as
        websockets' keyword-only ``text`` (it isn't keyword-only here only
        because CPython calls such functions more slowly).
        """
        kind = type(message)
        if kind is str or kind is bytes or kind is bytearray or kind is memoryview:
            if self._fragment_lock is not None and self._fragment_lock.locked():
                async with self._fragment_lock:
                    pass
            try:
                if C_READS and compress is None and text is None and self._send_small(message):  # type: ignore[attr-defined]
                    pass  # framed in C (ReadLane) and given to _hold(), as the next line does
                elif len(message) < LARGE_PAYLOAD:  # type: ignore[arg-type]  # _send_message(), one call less
                    self._hold(self.protocol.send_message(message, compress, text))  # type: ignore[arg-type]
                else:
                    self._send_message(message, compress, text)  # type: ignore[arg-type]
            except InvalidState:
                raise await self._closed_exc_once_closed() from None
            if self._write_paused:
                await self._drain()
            return
        if isinstance(message, Mapping):
            raise TypeError("send() takes str, bytes or an iterable of them, not a mapping")
        if isinstance(message, Iterable):
            await self._send_fragments(iter(message), None, text)
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(None, message.__aiter__(), text)
        else:
            raise TypeError(f"send() takes str, bytes or an iterable of them, not {kind.__name__}")

    async def _send_fragments(self, chunks: Any, achunks: AsyncIterator[Data] | None, text: bool | None = None) -> None:
        if self._fragment_lock is None:
            self._fragment_lock = asyncio.Lock()
        async with self._fragment_lock:
            first = True
            kind: type | None = None
            previous: Any = None
            partial = False  # frames of this message are on the wire, not the last one
            try:
                while True:
                    try:
                        chunk = next(chunks) if achunks is None else await achunks.__anext__()
                    except (StopIteration, StopAsyncIteration):
                        break
                    if isinstance(chunk, str):
                        chunk_kind: type = str
                    elif isinstance(chunk, (bytes, bytearray, memoryview)):
                        chunk_kind = bytes
                    else:
                        raise TypeError(f"fragments must be str or bytes-like, not {type(chunk).__name__}")
                    if kind is None:
                        kind = chunk_kind
                    elif chunk_kind is not kind:
                        raise TypeError("all fragments of a message must be of the same type")
                    if previous is not None:
                        partial = True
                        await self._send_frame(previous, first, False, text)
                        first = False
                    previous = chunk
                if previous is None:
                    return  # an empty iterable sends nothing
                partial = False  # the last frame is written before any await
                await self._send_frame(previous, first, True, text)
            except BaseException:
                if partial and self.protocol.state is State.OPEN:
                    # Half a message is on the wire and can't be finished: any later
                    # message would be a protocol error for the peer. Fail as websockets does.
                    self.fail(1011, "error in fragmented message")
                raise

    async def _send_frame(self, chunk: Data, first: bool, last: bool, text: bool | None = None) -> None:
        try:
            data = self.protocol.send_fragment(chunk, first=first, last=last, text=text)
        except InvalidState:
            raise await self._closed_exc_once_closed() from None
        self._write(data)
        if self._write_paused:
            await self._drain()

    async def _drain(self) -> None:
        while self._write_paused:
            if self._finished:
                raise self._closed_exc()
            waiter = self._drain_waiter
            if waiter is None or waiter.done():
                waiter = self._drain_waiter = self.loop.create_future()
            await asyncio.shield(waiter)
        if self._finished:
            raise self._closed_exc()

    # -- thread-safety ------------------------------------------------------------------

    def send_threadsafe(self, message: Data) -> Any:
        """Send from a thread outside the event loop; return a :class:`concurrent.futures.Future`."""
        return asyncio.run_coroutine_threadsafe(self.send(message), self.loop)


if C_READS and not TYPE_CHECKING:
    from ..protocol._speedups import configure_handoff

    # A read's messages reach the queue, and a small frame the transport, without
    # these Python frames: the lane does what they do for classes that keep them.
    configure_handoff(Connection._handle_events, BaseConnection._hold, _current_task, _Task, collections.deque)
