"""The callback API: a :class:`Listener` is told about each message; ``send()`` never awaits.

This is the fastest way to use wsio: no coroutine resumes per message, no
future, no queue. Messages go from the parse loop straight to
:meth:`Listener.on_message`, and every ``send()`` made while handling one read
from the socket goes out in one write::

    class Echo(wsio.Listener):
        def on_message(self, connection, message):
            connection.send(message)

    async with wsio.serve_listener(Echo, "127.0.0.1", 8765) as server:
        await server.serve_forever()

It runs on the same core and the same handshake code as :func:`wsio.serve` and
:func:`wsio.connect`, and takes the same options.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from ..exceptions import ConnectionClosed, InvalidState
from ..options import ClientOptions, ServerOptions, with_options
from ..protocol.machine import ServerProtocol, State
from ..protocol.events import Event, Fragment, Ping, Pong
from ..protocol.frames import LARGE_PAYLOAD, Close
from .client import AsyncioConnectKwargs, ClientRole, connect
from .connection import C_READS, BaseConnection, Data, _cork, _read_buffer, _ReadLane
from .server import AsyncioServeKwargs, ServerRole, _copies, serve

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .server import Server

__all__ = [
    "Listener",
    "ListenerConnection",
    "ListenerServerConnection",
    "ListenerClientConnection",
    "serve_listener",
    "connect_listener",
]


class Listener:
    """Override the callbacks you need; each gets the connection first.

    Callbacks run in the event loop: they must not block. An exception raised
    by a callback fails the connection with 1011 and is logged.
    """

    def on_open(self, connection: ListenerConnection) -> None:
        """The connection is open."""

    def on_message(self, connection: ListenerConnection, message: Data) -> None:
        """A whole message arrived: ``str`` for text, ``bytes`` for binary."""

    def on_ping(self, connection: ListenerConnection, data: bytes) -> None:
        """A ping arrived (the pong is already sent)."""

    def on_pong(self, connection: ListenerConnection, data: bytes) -> None:
        """A pong arrived."""

    def on_close(self, connection: ListenerConnection, exc: ConnectionClosed) -> None:
        """The connection is closed; ``exc`` says how (``exc.code``, ``exc.reason``, ``exc.why``)."""


_OPEN = State.OPEN
_CLOSED = State.CLOSED


class ListenerConnection(_ReadLane, BaseConnection):
    """What the callbacks of a :class:`Listener` get: ``send()`` and ``close()`` return at once.

    The base of :class:`ListenerServerConnection` (the connections of
    :func:`serve_listener`) and :class:`ListenerClientConnection` (those of
    :func:`connect_listener`); ``isinstance(connection, wsio.ListenerConnection)``
    holds for both. ``listener`` is the connection's :class:`Listener`.

    The callback API on :class:`~wsio.asyncio.connection.BaseConnection`, a
    sibling of :class:`~wsio.asyncio.Connection` (the coroutine API), not a
    kind of it: its ``send()`` isn't a coroutine. What it plugs into the base:
    ``_handle_events`` calls the listener; write batching is per read rather
    than per turn of the event loop (``data_received`` corks, ``_hold``,
    ``_write`` and ``_flush_held`` hold and write); ``_connection_lost_hook``
    calls :meth:`Listener.on_close`.
    """

    # Its state lives in the slots of the two concrete classes below (only one
    # base of a class may add slots): listener, _pieces, _open_called. The
    # frames held while corked are in the base's _held (None: not corked).
    # Hidden from type checkers, which would refuse to set attributes that are
    # not in this class's (empty) slots.
    if not TYPE_CHECKING:
        __slots__ = ()
    listener: Listener
    _pieces: list[str | bytes] | None  # a fragmented message's pieces so far
    _open_called: bool

    def _init_listener(self, listener: Listener) -> None:
        self.listener = listener
        self._pieces = None
        self._open_called = False

    def _read(self, nbytes: int) -> None:
        """A read of ``nbytes`` into the read buffer: ``buffer_updated()`` in Python, and C's fallback."""
        protocol = self.protocol
        if protocol.state is not _OPEN or _cork.connections is not None or not self._inline_reads:
            self.data_received(_read_buffer.view[:nbytes])
            return
        # An open connection's read: data_received() below and the base's, inline
        # (the roles' data_received() only differ before the connection opens;
        # _inline_reads is false for a subclass that overrides data_received()).
        corked: list[ListenerConnection] = []
        _cork.connections = corked
        try:
            self._read_tail(0, nbytes)
        finally:
            _cork.connections = None
            for connection in corked:
                connection._flush_held()

    if not C_READS:
        buffer_updated = _read

    def _listener_failed(self, exc: Exception, start: int, end: int) -> None:
        """``on_message`` raised ``exc`` in the C read path: fail with 1011, as :meth:`_handle_events` does.

        The core takes the rest of the read first (it keeps its place in the
        stream, and answers what needs an answer), but nothing of it reaches
        the listener: the same as when the Python path's callback raises.
        """
        protocol = self.protocol
        protocol.receive_data(_read_buffer.view[start:end])
        if protocol.outgoing:
            self._write(protocol.data_to_send())
        self._callback_failed("callback", exc)
        if protocol.failure_pending or protocol.state is _CLOSED:
            self._after_read()

    #: Once open, data_received() below is what buffer_updated() does inline.
    _open_reads_inline = True

    def data_received(self, data: bytes | memoryview) -> None:
        corked = _cork.connections
        if corked is not None:  # pragma: no cover - reads don't nest; be safe anyway
            super().data_received(data)
            return
        _cork.connections = corked = []
        try:
            super().data_received(data)
        finally:
            _cork.connections = None
            for connection in corked:
                connection._flush_held()

    # Write batching (the base's hooks): per read, not per turn of the event
    # loop. _held is None when nothing is held, else the frames held since the
    # first one sent while corked; the base's _write_parts() and _after_closed()
    # call _flush_held() to keep the order.

    def _write(self, data: bytes) -> None:
        """Write ``data``, or hold it until the read being handled is done."""
        batch = self._held
        if batch is not None:
            if len(data) < LARGE_PAYLOAD:
                batch.append(data)
                return
            self._flush_held()  # keep the order, then write the large frame as it is
        elif len(data) < LARGE_PAYLOAD:
            corked = _cork.connections
            if corked is not None:
                self._held = [data]
                corked.append(self)
                return
        self._transport_write(data)

    # Outside a read, nothing is held: a callback API has no turn to wait for.
    _hold = _write

    def _flush_held(self) -> None:
        batch = self._held
        self._held = None
        if batch and not self.transport.is_closing():
            data = b"".join(batch) if len(batch) > 1 else batch[0]
            if self._backlog:  # _transport_write(), one call less per read
                self._backlog.append(data)
            else:
                self.transport.write(data)

    def _handle_events(self, events: list[Event]) -> None:
        listener = self.listener
        try:
            # type(event) is read once, for speed; mypy doesn't narrow `event` on
            # `kind is ...`, hence the [arg-type] and [union-attr] ignores below.
            for event in events:
                kind = type(event)
                if kind is str or kind is bytes:
                    listener.on_message(self, event)  # type: ignore[arg-type]
                elif kind is Fragment:
                    pieces = self._pieces
                    if pieces is None:
                        pieces = self._pieces = []
                    pieces.append(event.data)  # type: ignore[union-attr]
                    if event.last:  # type: ignore[union-attr]
                        self._pieces = None
                        # The pieces of one message are all str or all bytes.
                        joined = "".join(pieces) if type(pieces[0]) is str else b"".join(pieces)  # type: ignore[arg-type]
                        listener.on_message(self, joined)
                elif kind is Ping:
                    listener.on_ping(self, event.data)  # type: ignore[union-attr, arg-type]
                elif kind is Pong:
                    self._pong_received(event.data)  # type: ignore[union-attr, arg-type]
                    listener.on_pong(self, event.data)  # type: ignore[union-attr, arg-type]
                elif kind is not Close:
                    self._handshake_event(event)
        except Exception as exc:
            self._callback_failed("callback", exc)

    def _send(self, message: Data | bytearray | memoryview, compress: bool | None = None, text: bool | None = None) -> None:
        """Send a message now, without waiting (``str`` as text, bytes-like as binary).

        Raises :exc:`ConnectionClosed` once closed. Doesn't wait for the
        peer: watch :attr:`buffered_amount` to avoid buffering without bound.
        A ``bytearray`` (or a view of one) is the caller's again when
        ``send()`` returns: changing or resizing it then changes nothing sent.
        ``text=True`` sends bytes as text (unchecked), ``text=False`` sends
        ``str`` as binary, as :meth:`Connection.send` does.
        """
        # send() in Python, and the C send()'s path for all but a small str or bytes.
        try:
            if len(message) >= LARGE_PAYLOAD:
                self._send_message(message, compress, text)
                return
            data = self.protocol.send_message(message, compress, text)
        except InvalidState:
            raise self._closed_exc() from None
        # _write() for a small frame, inline: one call less per message.
        batch = self._held
        if batch is not None:
            batch.append(data)
            return
        corked = _cork.connections
        if corked is not None:
            self._held = [data]
            corked.append(self)
            return
        self._transport_write(data)

    # The docstring of send() is _send()'s (and the C send()'s, word for word).
    send = _ReadLane.send if C_READS else _send  # type: ignore[attr-defined]

    @property
    def buffered_amount(self) -> int:
        """Bytes sent and not yet written to the network.

        Reading from the peer pauses while this is above ``write_limit``, so an
        echo can't buffer without bound; a producer that sends on its own
        (a timer, a broadcast) should check it and slow down or skip.
        """
        batch, backlog = self._held, self._backlog
        return (
            self.transport.get_write_buffer_size()
            + (sum(map(len, batch)) if batch else 0)
            + (sum(map(len, backlog)) if backlog else 0)
        )

    def close(self, code: int = 1000, reason: str = "") -> asyncio.Future[None]:
        """Start the closing handshake with ``code`` and ``reason``, and return at once.

        Call it from a callback as ``connection.close()`` or
        ``connection.close(4000, "bye")``; :meth:`Listener.on_close` tells when
        the connection is closed (the peer answered, or ``close_timeout``
        passed). The same arguments as the ``close()`` of the other APIs.

        From a coroutine, ``await connection.close()`` also waits until the
        connection is closed, like :meth:`Connection.close`: the return value
        is a future that is done then (cancelling it doesn't stop the closing).
        Closing a connection that is closing or closed does nothing more.
        """
        self._start_close(code, reason)
        return asyncio.shield(self._closed_future())

    def _connection_lost_hook(self, exc: ConnectionClosed) -> None:
        super()._connection_lost_hook(exc)
        if self._open_called:
            try:
                self.listener.on_close(self, exc)
            except Exception:
                self.logger.error("%s listener on_close failed", self._peer(), exc_info=True)

    def _call_on_open(self) -> None:
        self._open_called = True
        try:
            self.listener.on_open(self)
        except Exception as exc:
            self._callback_failed("on_open", exc)

    def _callback_failed(self, which: str, exc: Exception) -> None:
        """A listener's callback raised ``exc``: log it and fail the connection with 1011."""
        self.logger.error("%s listener %s failed", self._peer(), which, exc_info=exc)
        self.fail(1011, "internal error")


if C_READS and not TYPE_CHECKING:
    from ..protocol._speedups import configure_flush
    from .transport import _AsyncioTransport

    # Once a read is handled, what its callbacks sent goes out without the Python
    # frames of _flush_held() and asyncio's is_closing(): the lane does what they do.
    configure_flush(ListenerConnection._flush_held, getattr(_AsyncioTransport, "is_closing", None))


class ListenerServerConnection(ListenerConnection, ServerRole):
    """A connection of :func:`serve_listener`: a server connection driven by a
    :class:`Listener` instead of a handler coroutine.

    ``listener_factory`` is called once, when the connection is made, for its
    :class:`Listener`. Subclass it and pass ``create_connection=`` to
    :func:`serve_listener` to add to it.
    """

    __slots__ = ("listener", "_pieces", "_open_called")

    def __init__(self, *args: Any, listener_factory: Callable[[], Listener], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_listener(listener_factory())

    @classmethod
    def maker(  # type: ignore[override]  # listener_factory: a keyword argument the base's doesn't have
        cls: type[_Server],
        server: Server,
        prototype: ServerProtocol,
        *,
        listener_factory: Callable[[], Listener],
        **kwargs: Any,
    ) -> Callable[[ServerProtocol], _Server]:
        """As :meth:`ServerRole.maker <wsio.asyncio.server.ServerRole.maker>`; each copy gets a listener of its own."""
        # The one built to copy gets no listener: the application's factory is called for connections only.
        copies = _copies(cls, ListenerServerConnection.__init__, server, prototype, {**kwargs, "listener_factory": _no_listener})
        if copies is None:
            return functools.partial(cls, server, listener_factory=listener_factory, **kwargs)

        def new(protocol: ServerProtocol) -> _Server:
            connection = copies(protocol)
            connection._init_listener(listener_factory())
            return connection

        return new

    def _opened(self) -> None:
        self._call_on_open()


_Server = TypeVar("_Server", bound=ListenerServerConnection)


def _no_listener() -> Any:
    return None


class ListenerClientConnection(ListenerConnection, ClientRole):
    """A connection of :func:`connect_listener`: a client connection driven by a :class:`Listener`.

    ``listener_factory`` is called once, when the connection is made, for its
    :class:`Listener`. Subclass it and pass ``create_connection=`` to
    :func:`connect_listener` to add to it.
    """

    __slots__ = ("listener", "_pieces", "_open_called")

    def __init__(self, *args: Any, listener_factory: Callable[[], Listener], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_listener(listener_factory())

    def _handshake_event(self, event: Event) -> None:
        super()._handshake_event(event)
        if self.protocol.state is State.OPEN and not self._open_called:
            self._call_on_open()


_Concrete = TypeVar("_Concrete", ListenerServerConnection, ListenerClientConnection)


class ListenerServeKwargs(AsyncioServeKwargs, total=False):
    """The keyword arguments of :func:`serve_listener`: those of :func:`wsio.serve`."""

    unix: bool
    path: str | None


class ListenerConnectKwargs(AsyncioConnectKwargs, total=False):
    """The keyword arguments of :func:`connect_listener`: those of :func:`wsio.connect`."""

    unix: bool
    path: str | None


def _connection_class(options: dict[str, Any], default: type[_Concrete]) -> type[_Concrete]:
    cls = options.pop("create_connection", None) or default
    if not (isinstance(cls, type) and issubclass(cls, default)):
        raise TypeError(f"create_connection must be a subclass of {default.__name__}, not {cls!r}")
    return cls


@with_options(ServerOptions)
def serve_listener(
    factory: Callable[[], Listener],
    host: str | None = None,
    port: int | None = None,
    **options: Unpack[ListenerServeKwargs],
) -> serve:
    """Start a server whose connections are each driven by ``factory()``, a :class:`Listener`.

    Use it like ``serve()`` (``async with serve_listener(...) as server``, or
    ``await``), with the same options, listed below.

    Args:
        factory: called once per connection for its :class:`Listener` (a
            :class:`Listener` subclass itself will do). The callbacks get a
            :class:`ListenerServerConnection`.
        host, port: where to listen; ``unix``, ``path`` and the keyword
            arguments of :meth:`asyncio.loop.create_server` go to :func:`wsio.serve`.
    """
    passed: dict[str, Any] = dict(options)
    cls = _connection_class(passed, ListenerServerConnection)
    create = functools.partial(cls, listener_factory=factory)
    # serve() takes a class; a partial that makes instances of one works the same.
    return serve(_no_handler, host, port, create_connection=create, **passed)


async def _no_handler(connection: Any) -> None:  # pragma: no cover - never called
    raise AssertionError("a listener connection runs no handler")


@with_options(ClientOptions)
def connect_listener(factory: Callable[[], Listener], uri: str, **options: Unpack[ListenerConnectKwargs]) -> connect:
    """Open a client connection driven by ``factory()``, a :class:`Listener`.

    ``await`` it for the :class:`ListenerClientConnection`, which the
    callbacks get too. It takes the options of :func:`wsio.connect`, listed below.

    Args:
        factory: called once per connection for its :class:`Listener` (a
            :class:`Listener` subclass itself will do, or ``lambda: listener``
            for one made beforehand).
        uri: ``ws://`` or ``wss://`` URI; ``unix``, ``path`` and the keyword
            arguments of :meth:`asyncio.loop.create_connection` go to :func:`wsio.connect`.
    """
    passed: dict[str, Any] = dict(options)
    cls = _connection_class(passed, ListenerClientConnection)
    create = functools.partial(cls, listener_factory=factory)
    # connect() takes a class; a partial that makes instances of one works the same.
    return connect(uri, create_connection=create, **passed)
