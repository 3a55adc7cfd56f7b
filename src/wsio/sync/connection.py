"""One WebSocket connection on threads: a socket, a reader thread and the sans-I/O core.

Threads, and who does what:

- **Reading is a token**, held under ``_lock`` by whichever thread reads the
  socket. A thread in :meth:`Connection.recv` that finds no message queued
  and nobody reading takes it and reads the socket itself: it feeds the core,
  queues what came, writes the replies the core made (pongs) and returns the
  message, so a round trip costs one wake-up (the kernel's), not two. It reads
  only while the connection is open and nothing else is due; closing, a
  deferred failure and replies that couldn't be written go to the reader.
- The **reader thread** (one per connection) runs this connection's timers
  (keepalive pings, ``ping_timeout``, the deferred failure, the closing
  timeout) and reads when no ``recv()`` does: while the application isn't
  receiving (so that pings are answered and a close frame is noticed), while
  the connection closes, and for a ``recv()`` that found it reading already.
  Once ``recv()`` has been waiting for messages it leaves reading to it, and
  takes the token back after ``_IDLE`` seconds without one (or at once for a
  ping in flight, a close, a failure). It waits in ``poll()`` or on a
  condition with the next deadline as its timeout, so timers cost no thread.
- **Any thread may send.** A frame is built and written under one write lock,
  so frames never interleave and go out in the order the core built them
  (which permessage-deflate requires). Replies queued by a reader go out
  with the next write, or from the reader when the socket is writable and no
  other thread is writing: neither reader blocks on a write.

Backpressure: when ``max_queue`` messages wait to be read, the reader stops
reading until the application has taken all but a quarter of them; the peer's
TCP window then fills up, as with the asyncio API. ``recv()`` reads only when
the queue holds no message.

Known limit: over TLS, once ``poll()`` says readable the reader reads a whole
TLS record, so a peer that stops in the middle of a record holds the reader
(and its keepalive) until more bytes come or the connection is closed;
``close()``, ``recv(timeout=...)`` and server shutdown still work.
"""

from __future__ import annotations

import collections
import logging
import select
import socket
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Mapping, cast

from ..exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidState,
)
from ..connection_api import ConnectionAPI, piece_converter
from ..protocol.machine import Protocol
from ..protocol.machine import State
from ..protocol.events import Event, Fragment, Ping, Pong
from ..protocol.frames import Close

__all__ = ["Connection", "Data", "State"]

Data = str | bytes

#: Bytes asked of the kernel per read, unless a subclass sets ``recv_bufsize``:
#: large enough that big messages take few reads.
_READ_SIZE = 65536
# Plain TCP sockets try a non-blocking read before poll(): under load data is
# usually there, which saves a system call per read. TLS sockets can't take flags.
_MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_HAS_POLL = hasattr(select, "poll")
#: Seconds the reader thread leaves reading to recv() after recv() last waited
#: for a message: when the application stops receiving, the reader reads again
#: (pings answered, a close frame noticed) within twice that.
_IDLE = 0.5
# Who holds the reading token (Connection._reading).
_READER = 1
_RECV = 2


def _at_most_idle(timeout: float | None) -> float:
    """The reader's wait: until the next timer (``timeout``), at most ``_IDLE``, when it looks again."""
    return _IDLE if timeout is None else min(timeout, _IDLE)


def _wait_socket(sock: socket.socket, read: bool, write: bool, timeout: float | None) -> tuple[bool, bool]:
    """Wait until ``sock`` is readable or writable, or ``timeout`` passes; return (readable, writable).

    poll() rather than select(): select() can't watch descriptors above 1023,
    which a server with many connections has.
    """
    if timeout is not None and timeout < 0:
        timeout = 0
    if _HAS_POLL:
        poller = select.poll()
        mask = (select.POLLIN if read else 0) | (select.POLLOUT if write else 0)
        poller.register(sock, mask)
        events = poller.poll(None if timeout is None else timeout * 1000)
        if not events:
            return False, False
        flags = events[0][1]
        # Errors and hang-ups count as readable: the read that follows reports them.
        return bool(flags & (select.POLLIN | select.POLLERR | select.POLLHUP | select.POLLNVAL)), bool(flags & select.POLLOUT)
    r, w, _ = select.select([sock] if read else [], [sock] if write else [], [], timeout)  # pragma: no cover
    return bool(r), bool(w)  # pragma: no cover


def _shutdown(sock: socket.socket) -> None:
    """Shut a socket down both ways, which wakes threads blocked reading or writing it.

    ``socket.socket.shutdown`` on purpose: ``SSLSocket.shutdown`` first drops
    its TLS object, and a write racing with that would go out in clear text.
    TLS inside TLS (``wsio.sync.tls_in_tls``) is no socket: the socket
    carrying it is shut down, the same way.
    """
    sock = getattr(sock, "outer_socket", sock)
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


#: What the core keeps for a ping that waits for its pong: the event to set, when it was sent, ack_on_close.
_PingWaiter = tuple[threading.Event, float, bool]


class Connection(ConnectionAPI):
    """A WebSocket connection over a blocking socket, for any number of threads.

    Receive with :meth:`recv`, ``for message in connection`` or
    :meth:`recv_streaming` (one thread at a time); send with :meth:`send` from
    any thread; close with :meth:`close`.

    Args:
        socket: the connected socket (``ssl.SSLSocket`` for TLS).
        protocol: the sans-I/O core (:class:`~wsio.protocol.ServerProtocol` or
            :class:`~wsio.protocol.ClientProtocol`).
        ping_interval: seconds between keepalive pings (20); ``None`` disables keepalive.
        ping_timeout: seconds to wait for a keepalive pong before closing with 1011 (20);
            ``None``: wait forever.
        close_timeout: seconds to wait for the closing handshake and for the TCP
            connection to close (10); ``None``: no limit.
        max_queue: messages received and not read yet before reading pauses (16);
            ``None``: no limit.
        write_limit: bytes of automatic answers (pongs, close frames) queued for
            a peer that doesn't read, before reading from it pauses (64 KiB).
            Sending is synchronous here: :meth:`send` returns once the kernel
            has the frame.
        logger: defaults to ``wsio.server`` or ``wsio.client``.
    """

    logger: logging.Logger = logging.getLogger("wsio")
    #: How many bytes each read of the socket asks for, as in websockets. A
    #: subclass, passed as ``create_connection``, may set another size.
    recv_bufsize: int = _READ_SIZE
    #: Set by the websocket-client layer's subclass: queue pings, pongs and close frames as events too.
    _control_events = False

    def __init__(
        self,
        socket: socket.socket,
        protocol: Protocol,
        *,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        max_queue: int | None = 16,
        write_limit: int = 65536,
        logger: logging.Logger | None = None,
    ) -> None:
        self.socket = socket
        self._init_settings(protocol, ping_interval, ping_timeout, close_timeout, max_queue, write_limit)
        if logger is not None:
            self.logger = logger
        try:
            self.remote_address: Any = socket.getpeername()
        except OSError:
            self.remote_address = None
        try:
            self.local_address: Any = socket.getsockname()
        except OSError:  # pragma: no cover
            self.local_address = None

        # Everything below is guarded by _lock, except what is written under _write_lock.
        self._lock = threading.Lock()
        self._recv_cond = threading.Condition(self._lock)
        self._reader_cond = threading.Condition(self._lock)
        self._fragment_cond = threading.Condition(self._lock)
        self._write_lock = threading.Lock()
        self._queue: collections.deque[Any] = collections.deque()
        self._messages = 0  # complete messages (and, for the compat layer, control events) in _queue
        self._recv_waiting = False  # a thread is in _wait_for_message()
        self._recv_sleeping = False  # ... and waits on _recv_cond for another thread's read
        self._recv_calls = 0  # how many times recv() & co. had to wait: tells the reader recv() is active
        self._reading: int | None = None  # the reading token: None, _READER or _RECV
        self._reader_parked = False  # the closing reader waits for a recv() thread to give the token back
        self._reader_wanted = False  # read from the reader thread now (a ping waits for its pong)
        self._close_handoff = False  # recv()'s read closed the connection: the reader takes it from there
        self._tls = False
        self._reader_waiting = False
        self._reading_paused = False
        self._pending: list[bytes] = []  # frames queued by the reader, written with the next write
        self._fragment_owner: int | None = None  # thread sending a fragmented message
        self._ping_due: float | None = None
        self._ping_checks: list[tuple[float, bytes]] = []
        self._failure_deadline: float | None = None
        self._close_deadline: float | None = None
        self._closing_local = False  # close() was called: read on even when the queue is full
        self._close_on_start: tuple[int, str] | None = None  # asked for between the response and _start()
        self._tcp_done = False  # the reader has shut the socket down
        self._closed = threading.Event()  # the reader has finished and the socket is closed
        self._reader: threading.Thread | None = None
        self._lost_exc: BaseException | None = None
        self._why = ""

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # -- starting -----------------------------------------------------------------

    def _start(self) -> None:
        """The handshake succeeded: start keepalive and the reader thread."""
        self.socket.settimeout(None)
        self._tls = hasattr(self.socket, "pending")  # ssl.SSLSocket, or TLS inside TLS
        if self.ping_interval is not None:
            self._ping_due = time.monotonic() + self.ping_interval
        reader = threading.Thread(target=self._read_main, name=f"wsio-reader-{self._peer()}", daemon=True)
        with self._lock:
            self._reader = reader
            close = self._close_on_start
        reader.start()
        if close is not None:
            self._start_close(*close)

    def _handshake_read(self, deadline: float | None) -> list[Any]:
        """Read once during the opening handshake and feed the core; return its events.

        Raise :exc:`TimeoutError` once ``deadline`` has passed.
        """
        timeout = None
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise TimeoutError
        self.socket.settimeout(timeout)
        try:
            data = self.socket.recv(self.recv_bufsize)
        except socket.timeout:
            raise TimeoutError from None
        with self._lock:
            if data:
                events = self.protocol.receive_data(data)
            else:
                events = self.protocol.receive_eof()
            if events:
                self._handle_events(events)
            if self.protocol.failure_pending:
                self._schedule_failure()
        return events

    def _handshake_write(self) -> None:
        data = self.protocol.data_to_send()
        if data:
            self.socket.sendall(data)

    def _connection_lost_hook(self, exc: ConnectionClosed) -> None:
        """Called once, from the reader thread, when the connection has closed."""

    # -- receiving ------------------------------------------------------------------

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> Data:
        """Receive the next message: ``str`` for text, ``bytes`` for binary.

        Blocks until a message arrives. Raises :exc:`ConnectionClosed` when the
        connection is closed and no message is left, :exc:`TimeoutError` if
        ``timeout`` seconds pass first (no message is lost then), and
        :exc:`ConcurrencyError` if another thread is already receiving.

        ``decode=True`` returns ``str`` for binary messages too (decoded as
        UTF-8; invalid UTF-8 fails the connection with 1007 and raises
        :exc:`ConnectionClosedError`, as in websockets), ``decode=False``
        returns ``bytes`` for text messages too (UTF-8 encoded).
        """
        with self._lock:
            if not self._messages:
                self._wait_for_message(timeout, whole=True)
            if decode is None:
                return self._pop_message()  # type: ignore[no-any-return]
            message = self._pop_message()
        return self._convert(message, decode)

    def _convert(self, message: Data, decode: bool) -> Data:
        """A whole message as ``decode`` asks (not None)."""
        if decode:
            if type(message) is not str:
                try:
                    return message.decode()  # type: ignore[union-attr]
                except UnicodeDecodeError as exc:
                    raise self._invalid_utf8(exc)  # its __cause__ says why
            return message
        return message.encode() if type(message) is str else message

    def _invalid_utf8(self, exc: UnicodeDecodeError) -> ConnectionClosed:
        """``decode=True`` met a binary message that isn't UTF-8: fail the connection with 1007, as websockets does."""
        if self.protocol.state is State.OPEN:
            self._fail_from_sender(1007, f"{exc.reason} at position {exc.start}")
            failure = self.protocol.failure
            if failure is not None and failure.__cause__ is None:
                failure.__cause__ = exc
        if self._reader is not None and threading.current_thread() is not self._reader:
            self._closed.wait(self.close_timeout)
        return self._closed_exc()

    def _pop_message(self) -> Any:
        """Take the first complete item off the queue (under _lock)."""
        queue = self._queue
        item = queue.popleft()
        if type(item) is Fragment:
            pieces = [item.data]
            while not item.last:
                item = queue.popleft()
                pieces.append(item.data)
            item = "".join(pieces) if type(pieces[0]) is str else b"".join(pieces)  # type: ignore[arg-type]
        self._messages -= 1
        if self._reader_waiting:
            self._message_taken()
        return item

    def _wait_for_message(self, timeout: float | None, whole: bool) -> None:
        """Wait until a message (or, if not ``whole``, a piece) is queued, or raise (under _lock).

        Reads the socket in this thread when nobody else does (see the module's docstring).
        """
        if self._recv_waiting:
            raise ConcurrencyError("another thread is already waiting for a message")
        deadline = None if timeout is None else time.monotonic() + timeout
        self._recv_waiting = True
        self._recv_calls += 1
        try:
            if self._failure_deadline is not None and not self._messages:
                # The application answered the messages that came before a protocol
                # error and asks for more: the error is due now.
                self._failure_deadline = 0.0
                self._reader_cond.notify()
            tried = False
            while not (self._messages or (not whole and self._queue)):
                if self._closed.is_set() or self.protocol.state is State.CLOSED:
                    raise self._closed_exc()
                remaining = None
                if deadline is not None:
                    remaining = max(deadline - time.monotonic(), 0)
                    if remaining == 0 and tried:
                        raise TimeoutError(f"no message within timeout={timeout}s")
                    # Once at least, even with timeout=0: the reader leaves the socket to
                    # a recv() that is called again and again, so each call must read.
                    tried = True
                if self._reading is None:
                    # Over TLS, a read that poll() allowed may wait for the rest of a record:
                    # recv(timeout=...) leaves that to the reader, and keeps its timeout.
                    if self._can_read_here() and (remaining is None or not self._tls):
                        self._read_here(remaining)
                        continue
                    self._reader_wanted = True  # it reads for us
                    self._reader_cond.notify()
                self._recv_sleeping = True
                try:
                    self._recv_cond.wait(remaining)
                finally:
                    self._recv_sleeping = False
        finally:
            self._recv_waiting = False

    def _can_read_here(self) -> bool:
        """Whether recv()'s thread may read the socket itself (under _lock, the token free).

        Only an open connection with nothing for the reader thread to do: the
        closing handshake, a deferred failure and replies that wait for the
        socket to be writable are the reader's.
        """
        return (
            self.protocol.state is State.OPEN
            and not self._closing_local
            and not self._pending
            and self._failure_deadline is None
            and not self._close_handoff
            and not self._tcp_done
            and self._reader is not None
            and not self.protocol.failure_pending
        )

    def _read_here(self, timeout: float | None) -> None:
        """Take the reading token, read the socket once in this thread and feed the core (under _lock).

        The lock is released while reading. Returns after one read, or when
        ``timeout`` passes (never given over TLS); the caller looks at the queue.
        """
        self._reading = _RECV
        self._recv_calls += 1
        closed = False
        data: bytes | None = None
        try:
            self._lock.release()
            try:
                sock = self.socket
                # Blocking: bytes TLS has decrypted already come first (poll() doesn't see them).
                if timeout is None or _wait_socket(sock, True, False, timeout)[0]:
                    data = sock.recv(self.recv_bufsize)
            except socket.timeout:  # a timeout set on the socket by its owner: nothing read
                pass
            except OSError as exc:  # ssl.SSLError included
                self._connection_failed(exc)
            finally:
                self._lock.acquire()
            if data:
                closed = self._feed_locked(data)
                if self._pending:  # pongs
                    self._lock.release()
                    try:
                        self._flush_pending(nowait=True)
                    finally:
                        self._lock.acquire()
            elif data is not None:
                self.protocol.receive_eof()
                closed = True
        finally:
            self._reading = None
            if closed:
                self._close_handoff = True
            if (
                self._reader_parked
                or closed
                or self._pending
                or self._failure_deadline is not None
                or self._tcp_done
                or self._closing_local
                or self.protocol.state is not State.OPEN
            ):
                self._reader_cond.notify()  # the reader waits for the token, or has work: see _can_read_here()

    def _message_taken(self) -> None:
        """The application took a message while the reader waits for that (under _lock)."""
        if self._reading_paused and self._messages <= (self.max_queue or 0) // 4:
            # Low-water mark at a quarter of max_queue, so reading doesn't flap.
            self._reading_paused = False
            self._reader_cond.notify()

    def recv_streaming(self, decode: bool | None = None) -> Iterator[Data]:
        """Receive the next message piece by piece, as its frames arrive.

        Yields ``str`` pieces for a text message, ``bytes`` for a binary one;
        ``decode`` as for :meth:`recv` (``True``: ``str`` pieces for binary
        too, decoded incrementally; ``False``: ``bytes`` pieces for text too).
        A binary message in a single uncompressed frame of up to 16 MiB
        (``ASSEMBLE_LIMIT``) comes as one piece: it is put together in place.
        """
        with self._lock:
            if not self._queue:
                self._wait_for_message(None, whole=False)
            item = self._queue[0]
            if type(item) is not Fragment:
                self._pop_message()
        if type(item) is not Fragment:
            yield item if decode is None else self._convert(item, decode)
            return
        # None: the pieces as they are; else a function converting each (decode given, other type).
        convert = None if decode is None else piece_converter(type(item.data) is str, decode)
        while True:
            with self._lock:
                if not self._queue:
                    self._wait_for_message(None, whole=False)
                fragment = self._queue.popleft()
                data = fragment.data
                error = None
                if convert is not None:
                    try:
                        data = convert(data, fragment.last)
                    except UnicodeDecodeError as exc:
                        error = exc
                        if not fragment.last:
                            self._drop_rest_of_message()
                if fragment.last:
                    self._messages -= 1
                    if self._reader_waiting:
                        self._message_taken()
            if error is not None:
                raise self._invalid_utf8(error)
            yield data
            if fragment.last:
                return

    def __iter__(self) -> Iterator[Data]:
        """Yield messages until the connection closes; a normal closure ends the loop."""
        try:
            while True:
                yield self.recv()
        except ConnectionClosedOK:
            return

    def _next_event(self, timeout: float | None, pieces: bool = False) -> Any:
        """The next queued item for the websocket-client layer: a message, a
        :class:`Fragment` if ``pieces``, or a :class:`Ping`, :class:`Pong` or :class:`Close`."""
        with self._lock:
            if not self._messages and not (pieces and self._queue):
                self._wait_for_message(timeout, whole=not pieces)
            if pieces and type(self._queue[0]) is Fragment:
                fragment = self._queue.popleft()
                if fragment.last:
                    self._messages -= 1
                    if self._reader_waiting:
                        self._message_taken()
                return fragment
            return self._pop_message()

    # -- the reader thread ------------------------------------------------------------

    def _read_main(self) -> None:
        try:
            if self.protocol.state is State.CLOSED:  # closed right behind the handshake
                self._after_closed()
            self._read_loop()
        except Exception as exc:  # pragma: no cover - a bug; don't leave waiters hanging
            self.logger.error("%s reader thread failed", self._peer(), exc_info=True)
            self._lost_exc = self._lost_exc or exc
        finally:
            self._finish()

    def _read_loop(self) -> None:
        sock = self.socket
        bufsize = self.recv_bufsize
        nonblocking_read = _MSG_DONTWAIT and not hasattr(sock, "pending")
        tls_pending = getattr(sock, "pending", None)
        seen = self._recv_calls  # recv()'s waits and reads the reader knows of
        handed = False  # the reader just left the socket to a recv() that waited for it
        while not self._tcp_done:
            timeout = self._run_timers()
            if self._tcp_done:
                return
            with self._lock:
                if self._close_handoff:
                    self._close_handoff = False
                    handoff = True
                else:
                    handoff = False
                    if self._reading is not None:
                        # recv()'s thread reads, pongs included: run the timers. It wakes this
                        # thread for work (a close, replies to write, a failure), not after each
                        # read: with many connections the reader would come back to find the
                        # next read under way, once per message. So look again after _IDLE.
                        if not self._pending:
                            self._reader_cond.wait(_at_most_idle(timeout))
                            continue
                        waiting_write = True  # a keepalive ping the socket didn't take
                    else:
                        waiting_write = False
                        calls = self._recv_calls
                        if (
                            (handed or (calls != seen and not (self._recv_sleeping and not self._messages)))
                            and not self._reader_wanted
                            and self._can_read_here()
                        ):
                            # recv() reads for itself: leave it the socket, unless it stops.
                            seen = calls
                            handed = False
                            self._reader_cond.wait(_at_most_idle(timeout))
                            continue
                        seen = calls
                        handed = False
                        self._reader_wanted = False
                    if self._reading_paused and self._messages <= (self.max_queue or 0) // 4:
                        self._reading_paused = False  # taken meanwhile
                    paused = (
                        waiting_write
                        or (self._reading_paused and not (self._closing_local or self.protocol.discarding))
                        or self.protocol.failure_pending
                    )
                    want_write = bool(self._pending)
                    if want_write and sum(map(len, self._pending)) > self.write_limit:
                        # A peer that sends pings but never reads: its pongs would pile up
                        # here. Stop reading it until it reads; its TCP window fills instead.
                        paused = True
                    if paused and not want_write:
                        failure = self._failure_deadline
                        if failure is not None and failure <= time.monotonic():
                            # recv() made the failure due after _run_timers() looked, and
                            # its notify() found nobody waiting: waiting now would sleep
                            # out the old deadline (close_timeout) instead.
                            continue
                        self._reader_waiting = True
                        try:
                            self._reader_cond.wait(timeout)
                        finally:
                            self._reader_waiting = False
                        continue
                    if waiting_write:
                        timeout = _at_most_idle(timeout)
                    elif not paused:
                        self._reading = _READER
                        # A recv() that comes while this thread waits in poll() waits for
                        # its read: if nothing comes soon, it gets the socket (below).
                        timeout = _at_most_idle(timeout)
            if handoff:
                self._after_closed()
                continue
            data: bytes | None = None
            closed = eof = False
            try:  # the token is held until what was read is fed: the core gets the bytes in order
                try:
                    if not paused:
                        if nonblocking_read:
                            try:
                                data = sock.recv(bufsize, _MSG_DONTWAIT)
                            except BlockingIOError:
                                pass
                        elif tls_pending is not None and tls_pending():
                            data = sock.recv(bufsize)
                    if data is None:
                        readable, writable = _wait_socket(sock, not paused, want_write, timeout)
                        if writable:
                            self._flush_pending(nowait=True)
                        if readable:
                            data = sock.recv(bufsize)
                except OSError as exc:  # ssl.SSLError included
                    self._connection_failed(exc)
                    return
                if data:
                    closed = self._feed(data)
                elif data is not None:
                    eof = True
                    with self._lock:
                        self.protocol.receive_eof()
            finally:
                if not paused:
                    with self._lock:
                        self._reading = None
            if eof:
                self._after_closed()
                return
            if closed:
                self._after_closed()
            elif data is None and not paused:
                with self._lock:
                    if self._recv_sleeping and not self._messages and self._reading is None and self._can_read_here():
                        # A recv() waits for this thread's read and nothing came: it reads
                        # for itself from now on (the reader then only runs the timers).
                        handed = True
                        self._recv_cond.notify()

    def _feed(self, data: bytes) -> bool:
        """Feed the core what was read, queue its events, write its replies; True if that closed the connection."""
        with self._lock:
            closed = self._feed_locked(data)
        if self._pending:
            self._flush_pending(nowait=True)
        return closed

    def _feed_locked(self, data: bytes) -> bool:
        """:meth:`_feed` under _lock, but for writing the replies (the caller writes ``_pending``)."""
        protocol = self.protocol
        events = protocol.receive_data(data)
        out = protocol.data_to_send()
        if out:
            self._pending.append(out)
        if events:
            self._handle_events(events)
        if protocol.failure_pending and self._failure_deadline is None:
            self._schedule_failure()
        closed = protocol.state is State.CLOSED
        if closed and protocol.failure is not None:
            # Its traceback holds the frames of this thread's read (and the bytes
            # they read) in a cycle with the protocol: don't keep them until a GC.
            protocol.failure.__traceback__ = None
        return closed

    def _schedule_failure(self) -> None:
        """Decide when a protocol error the core holds back fails the connection (under _lock).

        When the application asks for the next message: an echo server has
        answered the earlier ones by then, as Autobahn 3.x, 4.x and 5.15 expect,
        even one it took just before the error arrived. At once if it is waiting
        for one already; after close_timeout if it doesn't read.
        """
        if self._recv_waiting and not self._messages:
            self._failure_deadline = 0.0
        else:
            self._failure_deadline = time.monotonic() + (self.close_timeout or 0)

    def _handle_events(self, events: list[Event]) -> None:
        """Queue what the core returned (under _lock)."""
        queue = self._queue
        added = 0
        piece = False
        control = self._control_events
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
                else:
                    piece = True
            elif kind is Pong:
                self._pong_received(event.data)  # type: ignore[union-attr, arg-type]
                if control:
                    queue.append(event)
                    added += 1
            elif kind is Ping or kind is Close:
                if control:  # the core has answered it already
                    queue.append(event)
                    added += 1
            # Request and Response events belong to the handshake code.
        if added:
            self._messages += added
            if self.max_queue is not None and self._messages >= self.max_queue:
                # Backpressure instead of buffering: the peer's TCP window fills up.
                self._reading_paused = True
        if (added or piece) and self._recv_sleeping:
            self._recv_cond.notify()

    def _run_timers(self) -> float | None:
        """Do what is due; return the seconds until the next deadline (reader thread)."""
        now = time.monotonic()
        deadlines: list[float] = []
        protocol = self.protocol
        fail: str | None = None
        apply_failure = False
        with self._lock:
            if self._ping_due is not None and protocol.state is State.OPEN:
                if now >= self._ping_due:
                    data = protocol.new_ping_payload()
                    self._pending.append(protocol.send_ping(data, (threading.Event(), now, False)))
                    if self.ping_timeout is not None:
                        self._ping_checks.append((now + self.ping_timeout, data))
                    self._reader_wanted = True  # read the pong now, if recv() isn't reading
                    self._ping_due = now + self.ping_interval  # type: ignore[operator]
                deadlines.append(self._ping_due)
            if self._ping_checks:
                checks = []
                for deadline, data in self._ping_checks:
                    if not protocol.ping_waiting(data):
                        continue  # answered
                    if now >= deadline and protocol.state is State.OPEN:
                        fail = f"no pong within ping_timeout={self.ping_timeout}s"
                        break
                    checks.append((deadline, data))
                    deadlines.append(deadline)
                self._ping_checks = checks
            if self._failure_deadline is not None:
                if now >= self._failure_deadline:
                    self._failure_deadline = None
                    apply_failure = True
                else:
                    deadlines.append(self._failure_deadline)
            if self._close_deadline is not None:
                deadlines.append(self._close_deadline)
        if fail is not None:
            self.logger.info("%s no pong within ping_timeout=%ss; closing", self._peer(), self.ping_timeout)
            self._fail(1011, fail)
            return 0
        if apply_failure:
            with self._lock:
                protocol.apply_deferred_failure()
            if self._feed(b""):  # write the close frame; end TCP when the core says
                self._after_closed()
            return 0
        if self._close_deadline is not None and now >= self._close_deadline:
            self._close_timed_out()
            return 0
        if self._pending:
            self._flush_pending(nowait=True)
        return max(min(deadlines) - now, 0) if deadlines else None

    def _pong_received(self, data: bytes) -> None:
        """Acknowledge the ping with this payload and every ping sent before it (under _lock).

        As in the asyncio connection, with events instead of futures.
        """
        answered = self.protocol.acknowledge(data)
        if not answered:
            return  # unsolicited pong
        for waiter in answered:
            event, sent, _ = cast("_PingWaiter", waiter)
            event.set()
        self.latency = time.monotonic() - sent  # its own ping is the last one answered

    # -- closing -------------------------------------------------------------------------

    def _after_closed(self) -> None:
        """The core says the WebSocket connection is closed: end the TCP connection (reader thread).

        RFC 6455 7.1.1: the server closes TCP first; a client waits for it,
        unless the connection failed. Either way, not longer than close_timeout.
        """
        with self._lock:
            self._recv_cond.notify_all()
            if self._close_deadline is None and self.close_timeout is not None:
                self._close_deadline = time.monotonic() + self.close_timeout
        # The core says when: a failed connection reads on (and discards) until
        # the peer's close frame or EOF, or the peer would get a reset.
        if self.protocol.should_close_transport():
            self._close_tcp()
        elif self.protocol.should_send_eof() and not self._write_shut:
            self._write_shut = True
            self._close_tcp(half=True)

    _write_shut = False  # our side of TCP ended (half-closed) after a failure

    def _close_tcp(self, half: bool = False) -> None:
        """Write what is pending (the close frame), then shut the socket down (reader thread).

        The write lock is taken first, so that a frame another thread is
        writing isn't cut; not longer than the closing deadline.
        """
        deadline = self._close_deadline
        timeout = -1.0 if deadline is None else max(deadline - time.monotonic(), 0)
        if self._write_lock.acquire(timeout=timeout):
            try:
                with self._lock:
                    data = b"".join(self._pending)
                    self._pending.clear()
                wait = None if deadline is None else max(deadline - time.monotonic(), 0)
                if data and _wait_socket(self.socket, False, True, wait)[1]:
                    self.socket.sendall(data)  # a few bytes: won't block a writable socket
            except OSError:
                pass
            finally:
                self._write_lock.release()
        if half:
            # Stop writing and read on (the core's should_send_eof()). TLS can't
            # half-close: it reads on until the peer closes or close_timeout.
            if not hasattr(self.socket, "pending"):
                try:
                    self.socket.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            return
        _shutdown(self.socket)
        self._tcp_done = True

    def _close_timed_out(self) -> None:
        if not self._why and self.protocol.close_rcvd is None:
            self._why = f"no close frame within close_timeout={self.close_timeout}s"
        self._abort()

    def _abort(self) -> None:
        """Drop the TCP connection now; the reader then finishes."""
        _shutdown(self.socket)
        if self._reader is None or threading.current_thread() is self._reader:
            self._tcp_done = True
        else:
            self._wake_reader()  # it may be leaving the socket to recv(): it reads the end now

    def _wake_reader(self) -> None:
        with self._lock:
            self._reader_cond.notify()

    def _connection_failed(self, exc: BaseException) -> None:
        """Reading failed: the TCP connection is gone (either reader)."""
        self._lost_exc = self._lost_exc or exc
        if not self._why:
            if isinstance(exc, ConnectionResetError):
                self._why = "TCP connection reset by peer"
            else:
                self._why = f"TCP connection lost: {exc}"
        with self._lock:
            self.protocol.receive_eof()
        _shutdown(self.socket)
        self._tcp_done = True
        self._wake_reader()  # if this was recv()'s thread

    def _finish(self) -> None:
        """The reader is done: close the socket, wake every waiter, say how it ended."""
        _shutdown(self.socket)
        with self._lock:
            self._tcp_done = True  # recv() no longer reads
            while self._reading == _RECV:  # its read returns: the socket is shut down
                self._reader_parked = True
                try:
                    self._reader_cond.wait(1)
                finally:
                    self._reader_parked = False
        with self._write_lock:  # nobody is in sendall() while the descriptor closes
            try:
                self.socket.close()
            except OSError:  # pragma: no cover
                pass
        with self._lock:
            self.protocol.receive_eof()
            exc = self._closed_exc()
        try:
            self._connection_lost_hook(exc)  # before waking anyone: the close line is logged first
        finally:
            with self._lock:
                self._closed.set()
                self._recv_cond.notify_all()
                self._fragment_cond.notify_all()
                for waiter in self.protocol.drop_pings():
                    event, _, ack_on_close = cast("_PingWaiter", waiter)
                    if ack_on_close:
                        event.set()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection: send a close frame, wait for the peer's, then for TCP to close.

        Waits at most ``close_timeout`` for the peer, then drops the TCP
        connection. Closing a closed connection does nothing. Safe to call
        from any thread, several times.
        """
        self._start_close(code, reason)
        self._wait_closed_or_abort()

    def _start_close(self, code: int, reason: str) -> None:
        """Send the close frame, without waiting for the answer."""
        with self._lock:
            opening = self._reader is None
            if opening and self.protocol.state is State.OPEN:
                # The response is sent (the peer may be reading it) and the reader
                # isn't running yet: _start() sends the close frame after it.
                self._close_on_start = (code, reason)
                return
            if not opening:
                self._closing_local = True
                self._reader_cond.notify()  # read on even if the queue is full: the answer comes that way
        if opening:  # still in the opening handshake: its thread cleans up
            _shutdown(self.socket)
            return
        try:
            self._send_frame(lambda: self._build_close(code, reason), data=False)
        except ConnectionClosed:
            pass

    def _build_close(self, code: int, reason: str) -> bytes:
        if self.protocol.state is not State.OPEN:
            return b""
        return self.protocol.send_close(code, reason)

    def _wait_closed_or_abort(self) -> None:
        if self._reader is None or threading.current_thread() is self._reader:
            return
        if not self._closed.wait(self.close_timeout):
            with self._lock:
                if not self._why and self.protocol.close_rcvd is None:
                    self._why = f"no close frame within close_timeout={self.close_timeout}s"
            self._abort()
            self._closed.wait(self.close_timeout)

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the connection is closed, the TCP connection included; False on timeout."""
        return self._closed.wait(timeout)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection: send a close frame with ``code`` and drop TCP (reader thread)."""
        if not self._why:
            self._why = reason
        with self._lock:
            self.protocol.fail(code, reason)
            out = self.protocol.data_to_send()
            if out:
                self._pending.append(out)
        self._after_closed()

    # -- sending ----------------------------------------------------------------------------

    def send(
        self,
        message: Data | bytearray | memoryview | Iterable[Data],
        compress: bool | None = None,
        text: bool | None = None,
    ) -> None:
        """Send a message: ``str`` as text, bytes-like as binary.

        An iterable of ``str`` or of bytes is sent as one fragmented message;
        other threads' messages wait until it is complete. ``compress=False``
        sends this message uncompressed even when compression is on. Any
        number of threads may send at once: messages never interleave. Returns
        when the kernel has the frame. Raises :exc:`ConnectionClosed` once closed.

        ``text=True`` sends bytes (or an iterable of bytes) as a text message:
        they must be UTF-8 already, and aren't checked (as in websockets: the
        peer fails the connection with 1007 if they aren't). ``text=False``
        sends ``str`` as a binary message, UTF-8 encoded. Pass it by name,
        as websockets' keyword-only ``text`` (it isn't keyword-only here only
        because CPython calls such functions more slowly).
        """
        kind = type(message)
        if kind is str or kind is bytes or kind is bytearray or kind is memoryview:
            protocol = self.protocol
            self._send_frame(lambda: protocol.send_message(message, compress, text))  # type: ignore[arg-type]
            return
        if isinstance(message, Mapping):
            raise TypeError("send() takes str, bytes or an iterable of them, not a mapping")
        if not isinstance(message, Iterable):
            raise TypeError(f"send() takes str, bytes or an iterable of them, not {kind.__name__}")
        self._send_fragments(iter(message), text)

    def _send_fragments(self, chunks: Iterator[Any], text: bool | None = None) -> None:
        me = threading.get_ident()
        with self._lock:
            while self._fragment_owner is not None and self._fragment_owner != me:
                if self._closed.is_set():
                    raise self._closed_exc()
                self._fragment_cond.wait()
            if self._fragment_owner == me:
                raise ConcurrencyError("this thread is already sending a fragmented message")
            self._fragment_owner = me
        try:
            first = True
            kind: type | None = None
            previous: Any = None
            for chunk in chunks:
                if kind is None:
                    if not isinstance(chunk, (str, bytes, bytearray, memoryview)):
                        raise TypeError(f"send() takes an iterable of str or bytes, not of {type(chunk).__name__}")
                    kind = str if isinstance(chunk, str) else bytes
                elif (kind is str) != isinstance(chunk, str):
                    raise TypeError("all fragments of a message must be of the same type")
                if previous is not None:
                    self._send_piece(previous, first, False, text)
                    first = False
                previous = chunk
            if previous is not None:  # an empty iterable sends nothing
                self._send_piece(previous, first, True, text)
        except Exception:
            if not first:
                # A message can't be taken back once begun: end the connection (RFC 6455 7.1.7).
                self._fail_from_sender(1011, "error while sending a fragmented message")
            raise
        finally:
            with self._lock:
                self._fragment_owner = None
                self._fragment_cond.notify_all()

    def _send_piece(self, data: Any, first: bool, last: bool, text: bool | None = None) -> None:
        protocol = self.protocol
        self._send_frame(lambda: protocol.send_fragment(data, first=first, last=last, text=text), data=False)

    def _fail_from_sender(self, code: int, reason: str) -> None:
        if not self._why:
            self._why = reason
        try:
            self._send_frame(lambda: self._build_failure(code, reason), data=False)
        except ConnectionClosed:
            pass
        self._abort()

    def _build_failure(self, code: int, reason: str) -> bytes:
        self.protocol.fail(code, reason)
        return self.protocol.data_to_send()

    def _send_frame(self, build: Callable[[], bytes], data: bool = True) -> None:
        """Build a frame with the core and write it, with whatever the reader queued before it.

        ``data`` frames wait while another thread sends a fragmented message;
        control frames and the pieces of that message don't.
        """
        me = threading.get_ident()
        error: OSError | None = None
        while True:
            self._write_lock.acquire()
            owner = self._fragment_owner
            if not data or owner is None:
                break
            self._write_lock.release()
            if owner == me:
                raise ConcurrencyError("can't send a message in the middle of this thread's fragmented message")
            if self._closed.is_set():
                raise self._closed_exc()
            with self._lock:
                while self._fragment_owner is not None and not self._closed.is_set():
                    self._fragment_cond.wait()
        try:
            with self._lock:
                try:
                    frame = build()
                except InvalidState:
                    raise self._closed_exc() from None
                before = b""
                if self._pending:
                    before = b"".join(self._pending)
                    self._pending.clear()
                    if len(frame) < 4096:  # one system call for small frames
                        before, frame = b"", before + frame
            if before:
                self.socket.sendall(before)
            if frame:
                self.socket.sendall(frame)
        except OSError as exc:
            error = exc
        finally:
            self._write_lock.release()
        if error is None and self._pending:  # queued by the reader while we held the lock
            error = self._flush_pending(nowait=False)
        if error is not None:
            self._write_failed(error)

    def _write_failed(self, exc: OSError) -> None:
        with self._lock:
            if self._lost_exc is None:
                self._lost_exc = exc
            if not self._why:
                self._why = f"TCP connection lost: {exc}"
        self._abort()
        self._closed.wait(self.close_timeout)
        raise self._closed_exc() from exc

    def _flush_pending(self, nowait: bool) -> OSError | None:
        """Write the frames the reader queued, unless another thread is writing (it writes them then).

        With ``nowait`` (the reader), only when the socket is writable, so the
        reader never blocks on a peer that doesn't read. Return the write error, if any.
        """
        while self._pending:
            if not self._write_lock.acquire(blocking=False):
                return None  # the holder writes them, or finds them when it re-checks after releasing
            try:
                if nowait and not _wait_socket(self.socket, False, True, 0)[1]:
                    return None  # the reader polls for writability next time round
                with self._lock:
                    data = b"".join(self._pending)
                    self._pending.clear()
                if data:
                    self.socket.sendall(data)
            except OSError as exc:
                if nowait:
                    self._connection_failed(exc)
                return exc
            finally:
                self._write_lock.release()
        return None

    def ping(self, data: str | bytes | None = None, ack_on_close: bool = False) -> threading.Event:
        """Send a ping; return a :class:`threading.Event` set when the pong arrives.

        ``connection.ping().wait(5)`` waits 5 s at most for the pong. ``data``
        defaults to 4 random bytes. With ``ack_on_close``, the event is also
        set when the connection closes, so that ``wait()`` can't hang.
        """
        if data is None:
            payload = self.protocol.new_ping_payload()
        elif isinstance(data, str):
            payload = data.encode()
        else:
            payload = bytes(data)
        event = threading.Event()

        def build() -> bytes:
            return self.protocol.send_ping(payload, (event, time.monotonic(), ack_on_close))

        self._send_frame(build, data=False)
        with self._lock:  # the pong is read at once, by recv() or else by the reader
            self._reader_wanted = True
            self._reader_cond.notify()
        return event

    def pong(self, data: str | bytes = b"") -> None:
        """Send an unsolicited pong (pongs to pings are automatic)."""
        payload = data.encode() if isinstance(data, str) else bytes(data)
        self._send_frame(lambda: self.protocol.send_pong(payload), data=False)
