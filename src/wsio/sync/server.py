"""The threaded WebSocket server: :func:`serve`, :func:`unix_serve`, :class:`Server`.

One thread accepts connections (the one calling :meth:`Server.serve_forever`);
each connection gets a thread that runs the TLS and WebSocket handshakes and
then the handler, plus its reader thread (see :mod:`wsio.sync.connection`).
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import ssl as ssl_module
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from .._server_common import NO_HANDLER_KWARGS, DEFAULT_SERVER_HEADER, OVER_CAPACITY_LINGER, ServerBase, ServerConnectionBase
from .._server_common import basic_response, check_close_code, run_steps, shutting_down_response
from .._server_common import Responder, authenticated, check_basic_auth, credentials_checker
from ..exceptions import ConnectionClosed, InvalidHandshake
from ..options import ServerOptions, ServerOptionsDict, with_options
from ..protocol.machine import ServerProtocol, State
from ..protocol.handshake import redact_path
from ..protocol.http11 import Request, Response
from .broadcast import broadcast
from .connection import Connection, _shutdown

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["serve", "unix_serve", "Server", "ServerConnection", "basic_response", "basic_auth", "broadcast"]

logger = logging.getLogger("wsio.server")

#: Connections a threaded server holds at once unless ``max_connections`` says
#: otherwise. Each costs two threads (the handler's and its reader), so far
#: fewer than the asyncio server's 10,000.
DEFAULT_MAX_CONNECTIONS = 1_000

#: Refused connections whose request is still being read and dropped, at most;
#: beyond it a refused connection is closed at once.
MAX_LINGERING = 1_024

# Where the threaded server's options say more than the options' own docs.
_SYNC_DOCS = {
    "open_timeout": "seconds for the TLS handshake and the request together (10).",
    "write_limit": "bytes of automatic answers (pongs, close frames) queued for a peer that "
    "doesn't read, before reading from it pauses (64 KiB); ``send()`` itself is synchronous.",
}


class ServerConnection(Connection, Responder, ServerConnectionBase):
    """A connection accepted by :func:`serve`: what the handler receives.

    Subclass it and pass ``create_connection=`` to :func:`serve` to override
    :meth:`process_request` as a method, as older code does.
    """

    logger = logger
    #: Override as a method ``(path, request_headers)`` or ``(connection, request)``;
    #: the ``process_request`` argument of :func:`serve` takes precedence.
    process_request: Callable[..., Any] | None = None

    def __init__(self, socket: socket.socket, protocol: ServerProtocol, server: Server, **kwargs: Any) -> None:
        super().__init__(socket, protocol, **kwargs)
        self.server = server
        self._handler_thread: threading.Thread | None = None
        #: The user that :func:`~wsio.sync.server.basic_auth` authenticated; ``None`` without it.
        self.username: str | None = None
        #: Set by :func:`wsio.sync.router.route`: the handler of the matched URL and its arguments.
        self.handler: Callable[..., None] | None = None
        self.handler_kwargs: Mapping[str, Any] = NO_HANDLER_KWARGS

    def _run(self) -> None:
        """The connection's thread: handshakes, handler, closing."""
        server = self.server
        try:
            request = self._receive_request()
            if request is None:
                return
            if not self._answer(request):
                return
            self.logger.info("%s connection open, path %s", self._peer(), redact_path(request.path))
            self._start()
            try:
                self._call_handler()
            except ConnectionClosed:
                pass  # the peer closed; the close line says how
            except Exception:
                self.logger.error("%s connection handler failed", self._peer(), exc_info=True)
                self.close(1011, "internal error")
            else:
                self.close()
            self._closed.wait()
        finally:
            if self._reader is None:  # never opened: no reader thread to close the socket
                _shutdown(self.socket)
                self.socket.close()
                self._closed.set()
            server._connection_done(self)

    def _receive_request(self) -> Request | None:
        """TLS handshake, then read the request; all within open_timeout (slow-loris defence)."""
        server = self.server
        protocol: ServerProtocol = self.protocol  # type: ignore[assignment]
        deadline = None if server.open_timeout is None else time.monotonic() + server.open_timeout
        try:
            if server.ssl_context is not None:
                self.socket.settimeout(server.open_timeout)
                self.socket = server.ssl_context.wrap_socket(self.socket, server_side=True)
            while True:
                events = self._handshake_read(deadline)
                if protocol.state is State.CLOSED:
                    if protocol.response is not None:
                        self._handshake_write()
                        self._log_unparsed()
                    return None
                if events:
                    return events[0]  # type: ignore[no-any-return]
        except (TimeoutError, socket.timeout):
            self.logger.info("%s rejected: no complete request within open_timeout=%ss", self._peer(), server.open_timeout)
        except OSError as exc:  # ssl.SSLError included: a failed TLS handshake, a reset
            self.logger.info("%s rejected: %s", self._peer(), exc)
        return None

    def _answer(self, request: Request) -> bool:
        """Run process_request, accept, process_response; send the response. True if open."""
        protocol: ServerProtocol = self.protocol  # type: ignore[assignment]
        try:
            response = self._handshake_response(request)
        except Exception:
            response = self._failed_hook_response()
        with self._lock:
            if response.status_code == 101 and self.server._shutdown.is_set():
                # shutdown() began while process_request ran: refuse, as websockets does.
                response = shutting_down_response(self.server.server_header)
                protocol.handshake_exc = InvalidHandshake("the server is shutting down")
            protocol.send_response(response)
        try:
            self._handshake_write()
        except OSError:
            return False  # the client went away during process_request
        if protocol.state is not State.OPEN:
            self._log_not_upgraded(response)
            return False
        return True

    def _handshake_response(self, request: Request) -> Response:
        """Run the hooks and accept: the response to send."""
        return run_steps(self._handshake_steps(request))

    def _connection_lost_hook(self, exc: ConnectionClosed) -> None:
        self.logger.info("%s connection closed: %s", self._peer(), exc)


def basic_auth(
    realm: str = "",
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None = None,
    check_credentials: Callable[[str, str], bool] | None = None,
) -> Callable[[ServerConnection, Request], Response | None]:
    """Build a ``process_request`` that requires HTTP Basic authentication, for the threaded server.

    ::

        with serve(handler, host, port, process_request=basic_auth(
            realm="chat", credentials=("alice", "s3cret"),
        )) as server:
            server.serve_forever()

    The same as :func:`wsio.asyncio.server.basic_auth` (which documents the
    arguments), but ``check_credentials`` is a plain function.
    """
    check = credentials_checker(credentials, check_credentials)

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        found = check_basic_auth(request, realm)
        if isinstance(found, Response):
            return found
        return authenticated(connection, found[0], check(*found), realm)

    return process_request


class Server(ServerBase):
    """A running threaded WebSocket server: what :func:`serve` returns.

    Call :meth:`serve_forever` to accept connections, and :meth:`shutdown`
    (from another thread, a handler or a signal handler) to stop. Use it as a
    context manager to shut down on exit.

    Attributes:
        socket: the listening socket.
        connections: the connections currently open or opening.
    """

    # Here, where "socket" is the module: in __init__ it is the listening socket.
    _lingering: dict[socket.socket, float]
    connections: set[ServerConnection]

    def __init__(
        self,
        socket: socket.socket,
        handler: Callable[..., Any],
        *,
        process_request: Callable[..., Any] | None,
        process_response: Callable[..., Any] | None,
        open_timeout: float | None,
        ssl_context: ssl_module.SSLContext | None,
        make_connection: Callable[[socket.socket, Server], ServerConnection],
        logger: logging.Logger,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        server_header: str | None = DEFAULT_SERVER_HEADER,
    ) -> None:
        self.socket = socket
        self._keep(handler, process_request, process_response, open_timeout, logger, max_connections, server_header)
        self.ssl_context = ssl_context
        # Refused sockets whose request is read and dropped by the accept loop: deadline by socket.
        self._lingering = {}
        self._make_connection = make_connection
        self._lock = threading.Lock()
        self._all_done = threading.Condition(self._lock)
        self._shutdown = threading.Event()
        self._stopped = threading.Event()
        self._serving = False
        self._serving_thread: threading.Thread | None = None
        # A pipe that wakes serve_forever() out of poll(): closing a descriptor
        # another thread polls doesn't wake it.
        self._wake_r, self._wake_w = os.pipe()
        self.socket.setblocking(False)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (one), as on the asyncio server."""
        return (self.socket,)

    def fileno(self) -> int:
        return self.socket.fileno()

    def is_serving(self) -> bool:
        return self._serving and not self._shutdown.is_set()

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown` is called; a thread per connection."""
        if self._shutdown.is_set():
            return
        self._serving = True
        self._serving_thread = threading.current_thread()
        selector = selectors.DefaultSelector()
        selector.register(self.socket, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._shutdown.is_set():
                timeout = None
                if self._lingering:
                    timeout = max(min(self._lingering.values()) - time.monotonic(), 0)
                events = selector.select(timeout)
                ready = {key.fd for key, _ in events}
                if self._wake_r in ready or self._shutdown.is_set():
                    break
                if self._lingering:
                    self._drain_lingering(selector, {key.fileobj for key, _ in events})
                if self.socket.fileno() not in ready:
                    continue
                try:
                    sock, address = self.socket.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                except OSError as exc:  # EMFILE and the like: don't spin
                    self.logger.error("accept() failed: %s", exc)
                    time.sleep(0.1)
                    continue
                if self.max_connections is not None and len(self.connections) >= self.max_connections:
                    self._refuse(sock, address, selector)
                    continue
                self._start_connection(sock)
        finally:
            for sock in self._lingering:
                sock.close()
            self._lingering.clear()
            selector.close()
            self._serving = False
            self._stopped.set()

    def _refuse(self, sock: socket.socket, address: Any, selector: selectors.BaseSelector) -> None:
        """Answer 503 without starting a thread; read and drop the request for a moment, then close.

        Closing a socket with unread data sends a reset, and the client could
        lose the 503; so the accept loop reads what comes until the client
        closes, at most OVER_CAPACITY_LINGER seconds.
        """
        self._log_over_capacity(address)
        sock.setblocking(False)
        try:
            sock.send(self.over_capacity_answer)  # a few hundred bytes: the socket buffer takes them
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        if len(self._lingering) >= MAX_LINGERING:
            sock.close()
            return
        self._lingering[sock] = time.monotonic() + OVER_CAPACITY_LINGER
        selector.register(sock, selectors.EVENT_READ)

    def _drain_lingering(self, selector: selectors.BaseSelector, readable: set[Any]) -> None:
        """Read and drop what refused clients send; close those that closed or whose time is up."""
        now = time.monotonic()
        for sock, deadline in list(self._lingering.items()):
            done = now >= deadline
            if not done and sock in readable:
                try:
                    done = not sock.recv(65536)
                except BlockingIOError:
                    pass
                except OSError:
                    done = True
            if done:
                selector.unregister(sock)
                del self._lingering[sock]
                sock.close()

    def _start_connection(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # Small frames out at once, as asyncio does (Nagle + delayed ACK costs 40 ms per round trip).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            connection = self._make_connection(sock, self)
        except OSError:  # the client is already gone (getpeername fails)
            sock.close()
            return
        with self._lock:
            if self._shutdown.is_set():
                sock.close()
                return
            self.connections.add(connection)
        thread = threading.Thread(target=connection._run, name=f"wsio-conn-{connection._peer()}", daemon=True)
        connection._handler_thread = thread
        thread.start()

    def _connection_done(self, connection: ServerConnection) -> None:
        with self._lock:
            self.connections.discard(connection)
            if not self.connections:
                self._all_done.notify_all()

    def shutdown(
        self,
        close_connections: bool = True,
        code: int = 1001,
        reason: str = "",
        *,
        timeout: float | None = None,
    ) -> None:
        """Stop accepting connections; close open ones with ``code`` and ``reason`` unless ``close_connections=False``.

        The default code is 1001 (going away); 1012 (service restart) tells
        clients to come back, for example. A connection whose request is in
        ``process_request`` (or ``process_response``) gets an HTTP 503 "Server is
        shutting down." once the hook returns, as websockets answers it; one
        whose request hasn't arrived yet is dropped; one answered a moment ago
        gets its close frame like the others.

        Waits until every handler has returned (at most ``timeout`` seconds, if
        given), with ``close_connections=False`` too: the kept connections end by
        themselves, and a program that exits after ``shutdown()`` doesn't cut them.
        Safe to call from any thread, a handler included, and more than once.
        Raises :exc:`ValueError` for a code that can't be sent in a close frame.

        ``timeout`` is keyword-only: ``code`` comes second, as in websockets.
        The old positional form, ``shutdown(True, 5.0)``, still works with a
        :exc:`DeprecationWarning`: a float, ``None`` or an int below 1000 (no
        close code is) in the place of ``code`` is taken as the timeout.
        """
        if code is None or isinstance(code, float) or (type(code) is int and code < 1000):
            warnings.warn(
                "shutdown(close_connections, timeout) is deprecated: the second argument of"
                " shutdown() is the close code, as in websockets; pass shutdown(timeout=...)",
                DeprecationWarning,
                stacklevel=2,
            )
            if timeout is not None:
                raise TypeError("shutdown() got a timeout both as second argument and as timeout=")
            code, timeout = 1001, code
        if close_connections:
            check_close_code(code, reason)
        first = not self._shutdown.is_set()
        self._shutdown.set()
        if first:
            try:
                os.write(self._wake_w, b"x")
            except OSError:  # pragma: no cover
                pass
            # serve_forever() stops at once; unless it's this thread's (a signal handler).
            if self._serving and self._serving_thread is not threading.current_thread():
                self._stopped.wait(5)
            self.socket.close()
        with self._lock:
            connections = list(self.connections) if close_connections else []
        closers = []
        me = threading.current_thread()
        for connection in connections:
            if connection.protocol.state is State.CONNECTING:
                if connection.protocol.request is None:  # type: ignore[attr-defined]  # a ServerProtocol
                    connection._start_close(code, reason)  # no request yet: nothing to answer
                # else its thread answers 503 once process_request returns (see _answer())
                continue
            thread = threading.Thread(target=connection.close, args=(code, reason), daemon=True)
            thread.start()
            closers.append(thread)
        for thread in closers:
            thread.join()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            # A handler that calls shutdown() can't wait for itself.
            while self.connections and me not in {c._handler_thread for c in self.connections}:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._all_done.wait(remaining)

    def close(self, close_connections: bool = True, code: int = 1001, reason: str = "") -> None:
        """Alias of :meth:`shutdown`, as on the asyncio server (which returns a task)."""
        self.shutdown(close_connections, code, reason)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:  # pragma: no cover
                pass


def _listening_socket(host: Any, port: int | None, family: int, backlog: int, reuse_port: bool) -> socket.socket:
    if host is None or host == "":
        # All interfaces, IPv4 and IPv6, as asyncio's create_server(host=None) does.
        if family == socket.AF_UNSPEC and socket.has_dualstack_ipv6():
            return socket.create_server(
                ("", port or 0), family=socket.AF_INET6, dualstack_ipv6=True, backlog=backlog, reuse_port=reuse_port
            )
        return socket.create_server(
            ("", port or 0),
            family=family if family != socket.AF_UNSPEC else socket.AF_INET,
            backlog=backlog,
            reuse_port=reuse_port,
        )
    if family == socket.AF_UNSPEC:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port or 0), family=family, backlog=backlog, reuse_port=reuse_port)


class SyncServeKwargs(ServerOptionsDict, total=False):
    """The keyword arguments of :func:`serve`: the options, and older names of some."""

    ssl_context: ssl_module.SSLContext | None
    create_protocol: Any
    klass: Any
    handshake_timeout: float | None


@with_options(ServerOptions, defaults={"max_connections": DEFAULT_MAX_CONNECTIONS}, docs=_SYNC_DOCS)
def serve(
    handler: Callable[..., Any],
    host: str | None = None,
    port: int | None = None,
    *,
    sock: socket.socket | None = None,
    ssl: ssl_module.SSLContext | None = None,
    family: int = socket.AF_UNSPEC,
    backlog: int = 100,
    reuse_port: bool = False,
    unix: bool = False,
    path: str | None = None,
    **kwargs: Unpack[SyncServeKwargs],
) -> Server:
    """Start a threaded WebSocket server; return it listening, ready for :meth:`Server.serve_forever`.

    ::

        def echo(websocket):
            for message in websocket:
                websocket.send(message)

        with serve(echo, "localhost", 8765) as server:
            server.serve_forever()

    The options (``process_request``, ``compression``, ``max_size``, ...) are
    those of :class:`~wsio.options.ServerOptions`, listed below.

    Args:
        handler: ``handler(websocket)`` (or the older ``handler(websocket, path)``),
            run in a thread for each connection; the connection closes with
            1000 when it returns, with 1011 if it raises.
        host, port: where to listen; ``host=None`` listens on all interfaces.
        sock: an already bound socket, instead of ``host`` and ``port``.
        ssl: an :class:`ssl.SSLContext` for TLS (``ssl_context`` is an alias).
        family, backlog, reuse_port: for the listening socket (``AF_UNSPEC``, 100, False);
            ``backlog`` is how many connections the kernel queues before they
            are accepted (Linux caps it at ``net.core.somaxconn``).
        unix, path: listen on the Unix socket at ``path`` (see :func:`unix_serve`).
    """
    passed: dict[str, Any] = dict(kwargs)
    ssl = passed.pop("ssl_context", ssl)
    passed.setdefault("max_connections", DEFAULT_MAX_CONNECTIONS)
    options = ServerOptions.from_kwargs(passed)
    if passed:
        raise TypeError(f"serve() got unexpected keyword arguments: {', '.join(sorted(passed))}")
    if sock is None:
        if unix:
            if path is None:
                raise TypeError("unix_serve() needs a path")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
            sock.listen(backlog)
        else:
            sock = _listening_socket(host, port, family, backlog, reuse_port)
    connection_class = options.create_connection or ServerConnection
    protocol_kwargs = options.protocol_kwargs(options.logger)
    connection_kwargs = options.connection_kwargs(options.logger)
    selector = options.subprotocol_selector()
    new_protocol = ServerProtocol.maker(**protocol_kwargs)

    def make_connection(client_socket: socket.socket, server: Server) -> ServerConnection:
        protocol = new_protocol()
        connection: ServerConnection = connection_class(client_socket, protocol, server, **connection_kwargs)
        if selector is not None:
            protocol.select_subprotocol = selector(connection)
        return connection

    return Server(
        sock,
        handler,
        process_request=options.process_request,
        process_response=options.process_response,
        open_timeout=options.open_timeout,
        ssl_context=ssl,
        make_connection=make_connection,
        logger=options.logger or globals()["logger"],
        max_connections=options.max_connections,
        server_header=options.server_header,
    )


def unix_serve(handler: Callable[..., Any], path: str | None = None, **kwargs: Any) -> Server:
    """Like :func:`serve`, on a Unix socket at ``path``."""
    return serve(handler, unix=True, path=path, **kwargs)
