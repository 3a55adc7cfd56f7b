"""asyncio's socket transport with its per-read and per-write steps in C.

On asyncio's selector loop each read of a socket costs two Python frames
(``_read_ready()`` and ``_read_ready__get_buffer()``) and each write one
(``write()``): a good part of what a small message costs the server beside
the system calls. :class:`SocketTransport` is asyncio's own transport with a
:class:`~wsio.asyncio._transport.Pump` put in those two places: it does the
common case in C (a read into a BufferedProtocol's buffer; a write with
nothing queued that goes whole) and hands anything else (a plain Protocol,
end of file, an error, a write that must wait) to asyncio's own methods. Every
rule of the transport (flow control, pausing, closing, the error messages)
stays asyncio's.

Used where wsio makes the transport itself: servers accepting on asyncio's
own selector loop (:mod:`wsio.asyncio.accept`). Without the C accelerator, or
with ``WSIO_NO_SPEEDUPS=1``, :func:`socket_transport_class` is asyncio's own
class.

:func:`accepted_transport` makes one for a socket just accepted, for less
than asyncio's constructor costs (a good part of what a short connection
costs the server): it fills in the attributes that constructor would, from a
template taken once from a transport the constructor built, and calls
``connection_made()`` and starts reading at once rather than in two
callbacks of the loop's next iteration. If the template holds anything it
can't recreate (another Python's asyncio), the constructor builds them all.
Its ``close()`` skips asyncio's look-up for a writer to remove when nothing
waits to be written, when the transport watches for writing only if
something does; and when the protocol closes it while handling a read (a
WebSocket server's usual end: it answers the client's close frame and closes
TCP), the pump calls ``connection_lost()`` as soon as ``buffer_updated()``
returns, rather than a callback in the loop's next turn.
"""

from __future__ import annotations

import asyncio
import collections
import os
import selectors
import socket
from asyncio import selector_events, trsock
from collections.abc import Callable
from typing import Any

__all__ = ["SELECTOR_SOCKET_TRANSPORTS", "SocketTransport", "accepted_transport", "socket_transport_class"]

# Private in asyncio (3.10-3.13 alike): what the selector loop's
# _make_socket_transport() makes.
_AsyncioTransport: Any = getattr(selector_events, "_SelectorSocketTransport", None)
_STEPS = ("_read_ready", "_read_ready__data_received", "_read_ready__on_eof", "_fatal_error", "write")

Pump: Any = None
if (
    not os.environ.get("WSIO_NO_SPEEDUPS")
    and _AsyncioTransport is not None
    and all(hasattr(_AsyncioTransport, name) for name in _STEPS)
):
    try:
        from ._transport import Pump
    except ImportError:  # the accelerator wasn't built: asyncio's transport as it is
        pass


class SocketTransport(_AsyncioTransport or object):  # type: ignore[misc]
    """asyncio's selector socket transport, reading and writing through a :class:`Pump`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
        server: asyncio.AbstractServer | None = None,
    ) -> None:
        # Instance attributes shadow asyncio's methods: the loop's reader (armed
        # by asyncio's __init__, again by resume_reading()) and the protocol's
        # writes. Both are the pump itself (pump() reads, pump(data) writes): no
        # bound method objects kept per connection.
        self._read_ready = self.write = Pump(self, sock.fileno(), _AsyncioTransport.write)
        # A cycle (transport, pump), as asyncio's own transport already is one
        # (its _read_ready_cb): the garbage collector frees both together.
        super().__init__(loop, sock, protocol, waiter, extra, server)

    def close(self) -> None:
        """asyncio's ``close()``, without its look-up for a writer when there can't be one."""
        if self._closing or self._buffer or self._empty_waiter is not None:  # type: ignore[has-type]
            # Data waits to be written (the transport watches for writing), or a
            # sendfile() may: asyncio's own close(), which also stops watching.
            super().close()
            return
        self._closing = True
        self._loop._remove_reader(self._sock_fd)
        self._conn_lost += 1
        pump = self._read_ready
        if pump.reading:
            # Closed by the protocol while it handles a read (the usual end: its answer
            # to the peer's close frame): the pump calls connection_lost() once
            # buffer_updated() returns, rather than a callback in the loop's next turn.
            pump.lose_after_read = True
        else:
            self._loop.call_soon(self._call_connection_lost, None)

    def _lost_after_read(self) -> None:
        """``connection_lost()`` for a ``close()`` made while the pump's read was handled, which is now done."""
        # _call_connection_lost() drops the loop and the protocol: taken first.
        _reporting(self._loop, self, self._protocol, "connection_lost", self._call_connection_lost, None)


def _reporting(loop: Any, transport: Any, protocol: Any, name: str, call: Callable[..., object], *args: Any) -> None:
    """``call(*args)``, for the protocol's ``name`` step; an exception is reported as the loop reports a callback's.

    SystemExit and KeyboardInterrupt propagate, as from a callback of the loop.
    """
    try:
        call(*args)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        loop.call_exception_handler({"message": f"Exception in {protocol!r}.{name}()", "exception": exc, "transport": transport})


#: asyncio's default write buffer limits (high, low), which its constructor sets.
_WRITE_LIMITS = (64 * 1024, 16 * 1024)

#: The attributes accepted_transport() sets to what each connection brings, and from what (the filler's arguments).
_PER_CONNECTION = {
    "_read_ready": "pump", "write": "pump", "_sock": "sock", "_sock_fd": "fd",
    "_protocol": "protocol", "_server": "server", "_buffer": "new_buffer()",
}  # fmt: skip
#: (fill(transport, sock, fd, protocol, server, pump), whether Server._attach() takes the transport).
_Lean = tuple[Callable[..., None], bool]
_lean: _Lean | None | bool = False  # False: not taken yet


def accepted_transport(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: asyncio.BaseProtocol, peername: Any, server: Any
) -> Any:
    """A transport of :func:`socket_transport_class` for ``sock``, just accepted by ``server`` from ``peername``.

    What ``cls(loop, sock, protocol, None, {"peername": peername}, server)``
    makes, except that ``connection_made()`` has been called and the socket
    is watched for reading when it returns, rather than in two callbacks of
    the loop's next iteration; and ``TCP_NODELAY`` is the caller's to set.
    For a plain ``Protocol``, or on a Python whose transport
    :func:`_lean_construction` can't copy, it is that constructor's.
    """
    cls = socket_transport_class()
    lean = _lean_construction()
    if lean is None or not isinstance(protocol, asyncio.BufferedProtocol):
        return cls(loop, sock, protocol, None, {"peername": peername}, server)
    fill, attach_takes_transport = lean
    transport = cls.__new__(cls)
    fd = sock.fileno()
    pump = Pump(transport, fd, _AsyncioTransport.write) if Pump is not None else None
    fill(transport, sock, fd, protocol, server, pump)
    try:
        sockname = _shared(sock.getsockname())
    except OSError:
        sockname = None
    if type(peername) is tuple and peername and type(peername[0]) is str:
        host = _shared(peername[0])
        if host is not peername[0]:
            peername = (host, *peername[1:])
    transport._extra = {"peername": peername, "socket": trsock.TransportSocket(sock), "sockname": sockname}
    transport._loop = loop
    transport._protocol_paused = False
    transport._high_water, transport._low_water = _WRITE_LIMITS
    if server is not None:
        if attach_takes_transport:
            server._attach(transport)
        else:
            server._attach()
    loop._transports[fd] = transport  # type: ignore[attr-defined]
    _reporting(loop, transport, protocol, "connection_made", protocol.connection_made, transport)
    # Reading starts unless connection_made() paused reading or closed: asyncio's
    # rule since 3.11 (3.10's transport ignored a pause there).
    if transport.is_reading():
        try:
            # A descriptor just accepted isn't watched: registered at once, without
            # the look-up (and its KeyError) that loop._add_reader() begins with.
            key_data = (asyncio.Handle(transport._read_ready, (), loop, None), None)
            loop._selector.register(fd, selectors.EVENT_READ, key_data)  # type: ignore[attr-defined]
        except KeyError:  # still watched under that number: asyncio's way, which replaces the old reader
            loop._add_reader(fd, transport._read_ready)  # type: ignore[attr-defined]
    return transport


#: Addresses seen on accepted sockets, each kept once (see _shared()).
_ADDRESSES: dict[Any, Any] = {}
#: At most this many; then it starts again (a server with more addresses than this only shares less).
_ADDRESSES_MAX = 256


def _shared(address: Any) -> Any:
    """An object equal to ``address`` (hashable), the same one for every equal address: memory per idle connection.

    A server's connections to one of its addresses all have the same local
    address, and peers often share a host (a proxy's, a NAT's): each kept
    once rather than once per connection (about 220 bytes of the 5 KiB an
    idle connection costs).
    """
    shared = _ADDRESSES.get(address)
    if shared is None:
        if len(_ADDRESSES) >= _ADDRESSES_MAX:
            _ADDRESSES.clear()
        shared = _ADDRESSES[address] = address
    return shared


def _lean_construction() -> _Lean | None:
    """The template :func:`accepted_transport` fills a transport from, taken once; None if it can't.

    Builds one transport with asyncio's constructor over a socket pair, with
    a stand-in loop and server that only record, and sorts each attribute it
    set: the ones ``accepted_transport()`` sets itself, plain values (flags
    and counts, copied), and methods bound to the transport (bound again to
    each new one). Anything else, a slot or write limit it doesn't know, or
    other calls than asyncio 3.10-3.13 make, means this Python's asyncio
    builds its transport some other way: None, and the constructor it is.
    """
    global _lean
    if _lean is not False:
        return _lean  # type: ignore[return-value]
    _lean = None
    cls = socket_transport_class()
    if cls is None:
        return None

    class StandIn:
        def __init__(self) -> None:
            self._transports: dict[int, Any] = {}
            self.attached: tuple[Any, ...] | None = None
            self.scheduled = 0

        def call_soon(self, callback: Any, *args: Any, context: Any = None) -> None:
            self.scheduled += 1

        def _attach(self, *args: Any) -> None:
            self.attached = args

    one, other = socket.socketpair()
    try:
        stand_in = StandIn()
        fd = one.fileno()
        transport = cls(stand_in, one, asyncio.BufferedProtocol(), None, {"peername": None}, stand_in)
        transport._sock = None  # nothing for its __del__ to close: the pair is closed here
        values = dict(vars(transport))
        slots = {name for klass in cls.__mro__ for name in getattr(klass, "__slots__", ())}
    except Exception:  # a constructor that wants more of the loop than the stand-in has
        return None
    finally:
        one.close()
        other.close()
    if slots - {"_extra", "_loop", "_protocol_paused", "_high_water", "_low_water"}:
        return None
    if (transport._high_water, transport._low_water) != _WRITE_LIMITS or transport._protocol_paused is not False:
        return None
    if stand_in.attached not in ((), (transport,)) or stand_in.scheduled != 2 or stand_in._transports != {fd: transport}:
        return None
    buffer = values.get("_buffer")
    if type(buffer) not in (bytearray, collections.deque) or buffer:
        return None
    own = set(_PER_CONNECTION) - (set() if Pump is not None else {"_read_ready", "write"})
    if not own <= values.keys():
        return None
    # The filler's body: one plain attribute store per attribute, in the constructor's
    # order (as dataclasses writes __init__): about a tenth of the time of a loop of
    # setattr() calls (0.1 against 1 µs for 14 attributes). In that order, the instances
    # share their attribute names' table as the constructor's do (a dict update would
    # give each a dict of its own, about 180 bytes more per connection).
    stores = []
    for name, value in values.items():
        if not name.isidentifier():
            return None
        if name in own:
            source = _PER_CONNECTION[name]  # what each connection brings
        elif getattr(value, "__self__", None) is transport and hasattr(cls, value.__name__) and value.__name__.isidentifier():
            source = f"transport.{value.__name__}"  # a method, bound again to each transport
        elif value is None or type(value) in (bool, int):
            source = repr(value)  # a flag or a count: its repr is its literal
        else:
            return None
        stores.append(f"    transport.{name} = {source}\n")
    namespace: dict[str, Any] = {"new_buffer": type(buffer)}
    try:
        exec(
            compile("def fill(transport, sock, fd, protocol, server, pump):\n" + "".join(stores), "<wsio fill>", "exec"),
            namespace,
        )
    except SyntaxError:  # a name no attribute store can write
        return None
    _lean = (namespace["fill"], len(stand_in.attached) == 1)
    return _lean


#: asyncio's transport for a plain socket on its selector loop, and this one: the
#: classes whose socket a connection may write to directly (connection.py).
SELECTOR_SOCKET_TRANSPORTS: frozenset[type] = frozenset({_AsyncioTransport, SocketTransport} if _AsyncioTransport else ())


def socket_transport_class() -> Any:
    """The transport class for an accepted socket: :class:`SocketTransport`, or asyncio's own without the accelerator.

    None if this Python's asyncio has no ``_SelectorSocketTransport``.
    """
    return SocketTransport if Pump is not None else _AsyncioTransport
