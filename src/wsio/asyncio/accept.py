"""Accepting connections on asyncio's own selector loop without a task each.

asyncio's selector loop accepts each connection in a task of its own
(``_accept_connection2``): a coroutine, a task, a future to await and three
loop iterations before the protocol's ``connection_made()``, about 7 µs of a
handshake's 70 (``bench/``, connrate). The task only waits for the transport
to call ``connection_made()``, which it does anyway; so on that loop, for
plain TCP and Unix sockets, :func:`accept_directly` makes the transport at
once, as uvloop does. Anything else (TLS, uvloop, another loop, debug mode)
keeps asyncio's own path, and so does any Python whose asyncio lacks the
parts used here. The transport is :mod:`wsio.asyncio.transport`'s, which
reads and writes in C when the accelerator is built, made by
:func:`~wsio.asyncio.transport.accepted_transport` (connected and reading at
once). ``TCP_NODELAY``, which asyncio sets on each accepted TCP socket, is set
once on the listening socket, which Linux's accepted sockets inherit; where
the first accepted socket shows it didn't, on each socket as asyncio does.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

from .transport import accepted_transport, socket_transport_class

__all__ = ["accept_directly"]

#: Errors that mean "out of descriptors or memory": stop accepting for a while
#: (asyncio's ACCEPT_RETRY_DELAY) rather than spin on a socket that stays readable.
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_RETRY_DELAY = 1.0


def accept_directly(server: asyncio.AbstractServer) -> bool:
    """Make ``server``'s listening sockets accept without a task per connection.

    Call it once the server is serving (again is harmless). Return whether it
    did: only for an asyncio selector loop (exactly, not a subclass), not in
    debug mode (whose accept logging this would bypass) and without TLS. The
    protocol factory and backlog are the server's own.
    """
    loop = server.get_loop()
    if type(loop) is not asyncio.SelectorEventLoop or loop.get_debug():
        return False
    sockets = getattr(server, "_sockets", None)
    if (
        getattr(server, "_ssl_context", True) is not None
        or not sockets
        or not server.is_serving()
        or socket_transport_class() is None
    ):
        return False
    for sock in sockets:
        # Replaces asyncio's reader for this descriptor; Server.close() removes it the same way.
        _Acceptor(loop, server, sock).watch()
    return True


class _Acceptor:
    """One listening socket's reader: accepts what is queued and makes each transport at once."""

    __slots__ = ("loop", "server", "sock", "protocol_factory", "backlog", "family", "type", "proto", "tcp", "nodelay")

    def __init__(self, loop: Any, server: Any, sock: socket.socket) -> None:
        self.loop = loop
        self.server = server
        self.sock = sock
        self.protocol_factory = server._protocol_factory
        self.backlog = server._backlog
        # What socket.accept() gives each socket it makes, looked up once.
        self.family, self.type, self.proto = sock.family, sock.type, sock.proto
        # asyncio's test (base_events._set_nodelay), for the sockets this one accepts.
        self.tcp = (
            self.family in (socket.AF_INET, socket.AF_INET6)
            and self.type == socket.SOCK_STREAM
            and self.proto == socket.IPPROTO_TCP
        )
        # TCP_NODELAY, which asyncio sets on every socket it accepts: Linux copies
        # it from the listening socket; whether this system does is seen on the
        # first accepted one (None until then).
        self.nodelay: bool | None = None
        if self.tcp:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                self.nodelay = False

    def watch(self) -> None:
        self.loop.add_reader(self.sock.fileno(), self)

    def __call__(self) -> None:
        loop, sock = self.loop, self.sock
        # As many as are queued, up to backlog per wake-up, as asyncio does.
        for _ in range(self.backlog):
            try:
                fd, addr = sock._accept()  # type: ignore[attr-defined]
                conn = socket.socket(self.family, self.type, self.proto, fd)
                conn.setblocking(False)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise  # the loop logs it, as it would asyncio's
                loop.call_exception_handler(
                    {"message": "socket.accept() out of system resource", "exception": exc, "socket": sock}
                )
                loop.remove_reader(sock.fileno())
                loop.call_later(_RETRY_DELAY, self._resume)
                return
            try:
                if self.tcp and not self.nodelay:
                    self._set_nodelay(conn)
                # What loop._make_socket_transport() does, connection_made() included.
                accepted_transport(loop, conn, self.protocol_factory(), addr, self.server)
            except Exception as exc:
                conn.close()
                loop.call_exception_handler({"message": "Error on transport creation for incoming connection", "exception": exc})

    def _set_nodelay(self, conn: socket.socket) -> None:
        if self.nodelay is None:
            self.nodelay = bool(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            if self.nodelay:
                return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _resume(self) -> None:
        if self.server.is_serving() and self.sock.fileno() != -1:
            self.watch()
