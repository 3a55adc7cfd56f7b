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
"""

from __future__ import annotations

import asyncio
import os
import socket
from asyncio import selector_events
from typing import Any

__all__ = ["SELECTOR_SOCKET_TRANSPORTS", "SocketTransport", "socket_transport_class"]

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


#: asyncio's transport for a plain socket on its selector loop, and this one: the
#: classes whose socket a connection may write to directly (connection.py).
SELECTOR_SOCKET_TRANSPORTS: frozenset[type] = frozenset({_AsyncioTransport, SocketTransport} if _AsyncioTransport else ())


def socket_transport_class() -> Any:
    """The transport class for an accepted socket: :class:`SocketTransport`, or asyncio's own without the accelerator.

    None if this Python's asyncio has no ``_SelectorSocketTransport``.
    """
    return SocketTransport if Pump is not None else _AsyncioTransport
