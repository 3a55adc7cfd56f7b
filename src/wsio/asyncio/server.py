"""The asyncio WebSocket server: :func:`serve`, :func:`unix_serve`, :class:`Server`."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Generator, Iterable, Mapping, Sequence, TypeVar

from .._server_common import (
    NO_HANDLER_KWARGS,
    until_awaitable,
    DEFAULT_SERVER_HEADER,
    OVER_CAPACITY_LINGER,
    HandshakeSteps,
    ServerBase,
    ServerConnectionBase,
)
from .._server_common import basic_response, check_close_code, shutting_down_response
from .._server_common import over_capacity_response as over_capacity_response  # the docs import it from here
from .._server_common import Responder, authenticated, check_basic_auth, credentials_checker
from ..exceptions import ConnectionClosed, InvalidHandshake
from ..options import DEFAULT_MAX_CONNECTIONS, ServerOptions, ServerOptionsDict, with_options
from ..protocol.machine import ServerProtocol, State, copier
from ..protocol.handshake import redact_path
from ..protocol.http11 import Request, Response
from .accept import accept_directly
from .broadcast import broadcast
from .connection import BaseConnection, Connection
from .timers import QUIET_CONTEXT, Timer, call_later

if TYPE_CHECKING:
    import socket
    import ssl as ssl_module

    from typing_extensions import Unpack

    from .http2 import HTTP2Limits

__all__ = [
    "serve",
    "unix_serve",
    "Server",
    "ServerConnection",
    "WebSocketServerProtocol",
    "basic_response",
    "basic_auth",
    "broadcast",
]

logger = logging.getLogger("wsio.server")
_module_logger = logger  # serve()/connect() take a ``logger`` argument that hides the name

#: Bytes a client may send behind its handshake request before the server answers.
HANDSHAKE_BUFFER_LIMIT = 65536


class AsyncioServeKwargs(ServerOptionsDict, total=False):
    """The keyword arguments of :func:`serve`: the options, and those of :meth:`asyncio.loop.create_server`."""

    ssl: ssl_module.SSLContext | None
    sock: socket.socket | None
    family: int
    flags: int
    backlog: int
    reuse_address: bool | None
    reuse_port: bool | None
    ssl_handshake_timeout: float | None
    ssl_shutdown_timeout: float | None
    start_serving: bool
    #: Serve WebSockets over HTTP/2 too (RFC 8441): offered in ALPN with ``ssl=``, else cleartext h2c beside HTTP/1.1; see :doc:`/topics/http2`.
    http2: bool | HTTP2Limits
    # Older names of create_connection and open_timeout.
    create_protocol: Any
    klass: Any
    handshake_timeout: float | None


class ServerRole(BaseConnection, Responder, ServerConnectionBase):
    """The server role: a connection accepted by a server, up to and through its opening handshake.

    A mixin on :class:`~wsio.asyncio.connection.BaseConnection`, combined with
    an API: :class:`ServerConnection` (coroutines; runs the handler) and
    :class:`~wsio.ListenerServerConnection` (callbacks).
    """

    __slots__ = ("server", "handler_task", "_open_handle", "username", "handler", "handler_kwargs")
    default_logger = logger
    #: Override as a method ``(path, request_headers)`` or ``(connection, request)``;
    #: the ``process_request`` argument of :func:`serve` takes precedence.
    process_request: Callable[..., Any] | None = None

    def __init__(self, server: Server, protocol: ServerProtocol, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self.server = server
        self.handler_task: asyncio.Task[None] | None = None
        self._open_handle: Timer | None = None  # shared with the other connections' (timers.py)
        #: The user that :func:`~wsio.asyncio.server.basic_auth` authenticated; ``None`` without it.
        self.username: str | None = None
        #: Set by :func:`wsio.asyncio.router.route`: the handler of the matched URL and its arguments.
        self.handler: Callable[..., Awaitable[None]] | None = None
        self.handler_kwargs: Mapping[str, Any] = NO_HANDLER_KWARGS

    @classmethod
    def maker(cls: type[_Role], server: Server, prototype: ServerProtocol, **kwargs: Any) -> Callable[[ServerProtocol], _Role]:
        """A function that returns a new connection of ``server`` over a protocol: ``cls(server, protocol, **kwargs)``.

        Call it in the event loop's thread. With the C accelerator, each
        connection is a copy of one built once over ``prototype`` (a protocol
        like the ones it will be given): a fraction of what ``__init__`` costs
        a server for every connection. Without the accelerator, or for a
        subclass with an ``__init__`` or a ``__dict__`` of its own, it is the
        constructor.
        """
        return _copies(cls, ServerRole.__init__, server, prototype, kwargs) or functools.partial(cls, server, **kwargs)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        server = self.server
        if server.closing:
            transport.abort()  # type: ignore[attr-defined]  # a TCP connection's: a Transport
            return
        server.connections.add(self)
        self._arm_open_timeout()

    def _arm_open_timeout(self) -> None:
        if self._open_handle is not None:
            self._open_handle.cancel()
            self._open_handle = None
        if self.server.open_timeout is not None:
            self._open_handle = call_later(self.loop, self.server.open_timeout, self._open_timed_out)

    def _open_timed_out(self) -> None:
        # Slow-loris defence: the whole request must arrive within open_timeout.
        # Once it has, process_request may take longer, unless the server is
        # closing: then open_timeout bounds how long closing waits for it.
        if self.protocol.state is State.CONNECTING and self.server.closing and self.handler_task is not None:
            self.logger.info(
                "%s dropped: process_request still running open_timeout=%ss after the request, and the server is closing",
                self._peer(),
                self.server.open_timeout,
            )
            self._why = "process_request didn't return within open_timeout while the server was closing"
            self.transport.abort()
            self.handler_task.cancel()  # the hook's await raises CancelledError; the server stops counting it
            return
        if self.protocol.state is State.CONNECTING and self.handler_task is None:
            self.logger.info("%s rejected: no complete request within open_timeout=%ss", self._peer(), self.server.open_timeout)
            self._why = f"no complete handshake request within open_timeout={self.server.open_timeout}s"
            self.transport.abort()

    #: Once open, data_received() below is the base's: buffer_updated() may read inline.
    _open_reads_inline = True

    def data_received(self, data: bytes | memoryview) -> None:
        if self.protocol.state is State.CONNECTING and self.handler_task is None:
            protocol = self.protocol
            events = protocol.receive_data(data)
            if protocol.state is State.CLOSED:
                self._log_unparsed()
                self._after_closed()
            elif events:
                # [arg-type]: the only event of a server's opening handshake is its Request.
                self._answer_request(events[0])  # type: ignore[arg-type]
            return
        super().data_received(data)
        if self.protocol.state is State.CONNECTING and self.protocol.buffered > HANDSHAKE_BUFFER_LIMIT:
            # Frames sent before the response wait in the core while process_request
            # runs: past the limit, stop reading rather than buffer without bound.
            self.transport.pause_reading()

    def _answer_request(self, request: Request) -> None:
        """Answer the handshake request: here and now when no hook awaits (the usual case), else in a task."""
        server = self.server
        if server.process_request is None and server.process_response is None and self.process_request is None:
            # No hook: accept() is the whole answer (it never raises), without the steps' generator.
            if self._send_response(self.protocol.accept(request)):  # type: ignore[attr-defined]
                self._after_open()
            return
        steps = self._handshake_steps(request)
        try:
            step = until_awaitable(steps, steps.send, None)
        except StopIteration as stop:
            response = stop.value
        except Exception:
            response = self._failed_hook_response()
        else:
            # A hook returned an awaitable: the rest of the handshake in a task.
            self.handler_task = self.loop.create_task(self._finish_handshake(steps, step))
            return
        if self._send_response(response):
            self._after_open()

    async def _finish_handshake(self, steps: HandshakeSteps, step: Awaitable[Any]) -> None:
        """Await the hook's awaitable, go on with the steps (awaiting any other), then answer."""
        try:
            while True:
                try:
                    value = await step
                except Exception as exc:  # e.g. AbortHandshake: into the steps, where it was awaited
                    step = until_awaitable(steps, steps.throw, exc)
                else:
                    step = until_awaitable(steps, steps.send, value)
        except StopIteration as stop:
            response = stop.value
        except Exception:
            response = self._failed_hook_response()
        if self._send_response(response):
            self._after_open()

    def _after_open(self) -> None:
        self._opened()
        if self.protocol.buffered:
            # Frames the client sent right behind its request.
            self.data_received(b"")

    def _send_response(self, response: Response) -> bool:
        """Send the handshake's response; return whether the connection is open."""
        protocol = self.protocol
        if response.status_code == 101 and self.server.closing:
            # The server began closing while process_request ran: refuse, as websockets
            # does, rather than open a connection only to close it at once.
            response = shutting_down_response(self.server.server_header)
            protocol.handshake_exc = InvalidHandshake("the server is shutting down")
        protocol.send_response(response)  # type: ignore[attr-defined]
        if self._open_handle is not None:
            self._open_handle.cancel()
            self._open_handle = None
        if self.transport.is_closing():
            return False  # the client went away during process_request
        self.transport.write(protocol.data_to_send())
        if protocol.state is not State.OPEN:
            self._log_not_upgraded(response)
            self._after_closed()
            return False
        logger = self.logger
        if logger.isEnabledFor(logging.INFO):  # its arguments cost more than the check: one per connection
            logger.info("%s connection open, path %s", self._peer(), redact_path(protocol.request.path))  # type: ignore[attr-defined]
        if not self._reading_paused_for_writes:
            self.transport.resume_reading()  # in case the client sent too much too early
        self.start_keepalive()
        return True

    def _opened(self) -> None:
        """Hook: the connection is open, no message handled yet (the handler's task or ``on_open`` starts)."""

    def _connection_lost_hook(self, exc: ConnectionClosed) -> None:
        if self._open_handle is not None:
            self._open_handle.cancel()
            self._open_handle = None
        response = self.protocol.response  # type: ignore[attr-defined]
        if response is not None and response.status_code == 101 and self.logger.isEnabledFor(logging.INFO):
            self.logger.info("%s connection closed: %s", self._peer(), exc)
        # The server counts a connection until its handler has returned too.
        if self.handler_task is None or self.handler_task.done():
            self.server._connection_done(self)
        else:
            self.handler_task.add_done_callback(lambda _: self.server._connection_done(self))


_Role = TypeVar("_Role", bound=ServerRole)


def _copies(
    cls: type[_Role], init: Callable[..., None], server: Server, prototype: ServerProtocol, kwargs: dict[str, Any]
) -> Callable[[ServerProtocol], _Role] | None:
    """Copies of one ``cls(server, prototype, **kwargs)``, each over the protocol it is given (see ServerRole.maker()).

    None when they can't be: when ``cls`` has an ``__init__`` other than
    ``init`` (the one whose work the copies stand for), or :func:`copier`
    can't copy it.
    """
    if cls.__init__ is not init:
        return None
    first = cls(server, prototype, **kwargs)
    copy = copier(first)
    if copy is None:
        return None

    def new(protocol: ServerProtocol) -> _Role:
        # Every slot __init__ sets but the protocol holds a setting, or None, False or 0
        # (tests/asyncio/test_makers.py holds copies to what the constructor makes).
        connection = copy(first)
        connection._take_protocol(protocol)
        return connection

    return new


class ServerConnection(ServerRole, Connection):
    """A connection accepted by :func:`serve`.

    Subclass it and pass ``create_connection=`` to :func:`serve` to override
    ``process_request`` as a method, as older code does.
    """

    __slots__ = ()

    def _opened(self) -> None:
        """Start the handler as the connection's task; when it ends, close with 1000 (returned) or 1011 (raised).

        The handler's coroutine is the task itself, not awaited by a wrapper:
        one coroutine frame less per connection, while it lives.
        """
        try:
            handler = self._call_handler()
            task = self.loop.create_task(handler if asyncio.iscoroutine(handler) else _awaited(handler))
        except Exception:  # a plain function as handler, which raised
            self._handler_failed(None)
            return
        self.handler_task = task
        task.add_done_callback(self._handler_done, context=QUIET_CONTEXT)

    def _handler_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self.transport.abort()
            return
        exc = task.exception()
        if exc is None:
            self._start_close(1000, "")
        elif not isinstance(exc, ConnectionClosed):  # that one: the peer closed; the close line in the log says how
            self._handler_failed(exc)

    def _handler_failed(self, exc: BaseException | None) -> None:
        self.logger.error("%s connection handler failed", self._peer(), exc_info=exc or True)
        self._start_close(1011, "internal error")


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    """What a handler that isn't a coroutine function returned, awaited in its task (None raises TypeError there)."""
    return await awaitable


# The name older code subclasses.
WebSocketServerProtocol = ServerConnection


def basic_auth(
    realm: str = "",
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None = None,
    check_credentials: Callable[[str, str], Awaitable[bool] | bool] | None = None,
) -> Callable[[ServerConnection, Request], Awaitable[Response | None]]:
    """Build a ``process_request`` that requires HTTP Basic authentication.

    ::

        async with serve(handler, host, port, process_request=basic_auth(
            realm="chat", credentials=("alice", "s3cret"),
        )):
            ...

    A request with valid credentials goes on with the handshake and the
    connection's ``username`` is set; any other is answered ``401
    Unauthorized`` with a ``WWW-Authenticate`` header for ``realm``.

    Args:
        realm: the protection space named in ``WWW-Authenticate`` (ASCII; ``""``).
        credentials: a ``(username, password)`` pair or an iterable of pairs;
            passwords are compared in constant time.
        check_credentials: instead of ``credentials``, a function or coroutine
            function ``(username, password)`` returning whether they are valid.

    Raises:
        ValueError: if both or neither of ``credentials`` and ``check_credentials`` are given.
        TypeError: if ``credentials`` isn't a pair or an iterable of pairs.
    """
    check = credentials_checker(credentials, check_credentials)

    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        found = check_basic_auth(request, realm)
        if isinstance(found, Response):
            return found
        valid = check(*found)
        if inspect.isawaitable(valid):
            valid = await valid
        return authenticated(connection, found[0], valid, realm)

    return process_request


class OverCapacity(asyncio.Protocol):
    """A connection accepted while ``max_connections`` are open: answered 503 at once.

    It costs no WebSocket state: the 503 is written, the write side is shut,
    the request is read and dropped until the client closes, and the
    connection is dropped after :data:`OVER_CAPACITY_LINGER` seconds at most.
    """

    __slots__ = ("server", "transport", "_linger")

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set first by connection_made()
        self._linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        server = self.server
        server._log_over_capacity(transport.get_extra_info("peername"))
        self.transport.write(server.over_capacity_answer)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger = asyncio.get_running_loop().call_later(OVER_CAPACITY_LINGER, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        pass  # the request of a client we can't serve: read so that closing doesn't reset the 503

    def eof_received(self) -> bool | None:
        return None  # the client read the 503 and closed: close too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None


class Server(ServerBase):
    """A running WebSocket server: what ``serve()`` returns.

    Attributes:
        connections: the connections currently open or opening.
        sockets: the listening sockets.
    """

    connections: set[ServerRole]

    def __init__(
        self,
        handler: Callable[..., Awaitable[Any]],
        *,
        process_request: Callable[..., Any] | None,
        process_response: Callable[..., Any] | None,
        open_timeout: float | None,
        logger: logging.Logger,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        server_header: str | None = DEFAULT_SERVER_HEADER,
    ) -> None:
        self._keep(handler, process_request, process_response, open_timeout, logger, max_connections, server_header)
        self.server: asyncio.base_events.Server | None = None
        self.closing = False
        self._close_task: asyncio.Task[None] | None = None
        self._close_started = asyncio.Event()
        self._all_done: asyncio.Future[None] | None = None

    @property
    def sockets(self) -> tuple[Any, ...]:
        return tuple(self.server.sockets) if self.server is not None else ()

    def is_serving(self) -> bool:
        return self.server is not None and self.server.is_serving() and not self.closing

    def close(self, close_connections: bool = True, code: int = 1001, reason: str = "") -> asyncio.Task[None]:
        """Stop accepting connections; close open ones with ``code`` and ``reason`` unless ``close_connections=False``.

        The default code is 1001 (going away); 1012 (service restart) tells
        clients to come back, for example. A connection whose request is in
        ``process_request`` (or ``process_response``) gets an HTTP 503 "Server is
        shutting down." once the hook returns, as websockets answers it, or is
        dropped if it hasn't returned ``open_timeout`` later; one whose request
        hasn't arrived yet is dropped at once.

        Returns a task: ``await server.close()`` waits until the connections
        have closed and their handlers returned (websockets returns
        ``None``; :meth:`wait_closed` waits in both). With ``close_connections=False``
        existing connections keep working, and ``await server.close(close_connections=False)``
        returns once they have ended by themselves: a program that exits after
        it doesn't cut them. Only the first call does something; later ones
        return the same task. Raises :exc:`ValueError` for a code that can't
        be sent in a close frame.
        """
        if self._close_task is None:
            if close_connections:
                check_close_code(code, reason)
            self.closing = True
            # The server's loop, not the running one: close() is a plain method,
            # called from signal handlers and from code that drives the loop itself.
            self._close_task = self.get_loop().create_task(self._close(close_connections, code, reason))
            self._close_started.set()
        return self._close_task

    async def _close(self, close_connections: bool, code: int = 1001, reason: str = "") -> None:
        assert self.server is not None
        self.server.close()
        if close_connections:
            closing = []
            for connection in list(self.connections):
                if connection.protocol.state is State.OPEN:
                    # A coroutine, or a future from a listener connection (its close() returns at once).
                    closing.append(connection.close(code, reason))
                elif connection.protocol.state is State.CONNECTING:
                    if connection.handler_task is None:
                        connection.transport.abort()  # no request yet: nothing to answer
                    else:
                        # process_request is running: a 503 when it returns (see
                        # _send_response()); open_timeout from now bounds the wait.
                        connection._arm_open_timeout()
            if closing:
                await asyncio.gather(*closing, return_exceptions=True)
        await self._wait_connections()

    def _connection_done(self, connection: ServerRole) -> None:
        self.connections.discard(connection)
        if not self.connections and self._all_done is not None and not self._all_done.done():
            self._all_done.set_result(None)

    async def _wait_connections(self) -> None:
        while self.connections:
            self._all_done = asyncio.get_running_loop().create_future()
            await self._all_done

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection with it."""
        await self._close_started.wait()
        assert self._close_task is not None
        await asyncio.shield(self._close_task)
        await self._wait_connections()

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called (e.g. from a signal handler)."""
        await self.start_serving()
        await self.wait_closed()

    async def start_serving(self) -> None:
        assert self.server is not None
        await self.server.start_serving()
        accept_directly(self.server)  # without asyncio's task per connection, where it can (accept.py)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        if self.server is not None:
            return self.server.get_loop()
        return asyncio.get_running_loop()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()
        await self.wait_closed()


@with_options(ServerOptions)
class serve:
    """Start a WebSocket server; use as ``async with serve(...) as server`` or ``await serve(...)``.

    The options (``process_request``, ``compression``, ``max_size``, ...) are
    those of :class:`~wsio.options.ServerOptions`, listed below.

    Args:
        handler: a coroutine function ``handler(websocket)`` (or the older
            ``handler(websocket, path)``) run for each connection; the
            connection closes with 1000 when it returns, with 1011 if it raises.
        host, port: where to listen; every other keyword argument of
            :meth:`asyncio.loop.create_server` (``ssl``, ``sock``, ``family``,
            ``reuse_port``, ``backlog``, ...) is passed through. With ``ssl``,
            ``open_timeout`` is also the default ``ssl_handshake_timeout`` of
            the TLS handshake that comes before the opening handshake.
            ``backlog`` (asyncio's default is 100) is how many connections the
            kernel queues before they are accepted; Linux caps it at
            ``net.core.somaxconn``.
        unix, path: listen on the Unix socket at ``path`` (see :func:`unix_serve`).
    """

    def __init__(
        self,
        handler: Callable[..., Awaitable[Any]],
        host: str | Sequence[str] | None = None,
        port: int | None = None,
        *,
        unix: bool = False,
        path: str | None = None,
        **kwargs: Unpack[AsyncioServeKwargs],
    ) -> None:
        passed: dict[str, Any] = dict(kwargs)
        http2 = passed.pop("http2", None)
        options = ServerOptions.from_kwargs(passed)
        open_timeout = options.open_timeout
        if passed.get("ssl") is not None and open_timeout is not None:
            # open_timeout starts in connection_made(), after the TLS handshake: without
            # this, a client that never finishes that handshake holds a connection for
            # asyncio's default of 60 s (a TLS slow-loris).
            passed.setdefault("ssl_handshake_timeout", open_timeout)
        connection_logger = options.logger or _module_logger
        self._server = Server(
            handler,
            process_request=options.process_request,
            process_response=options.process_response,
            open_timeout=open_timeout,
            logger=connection_logger,
            max_connections=options.max_connections,
            server_header=options.server_header,
        )
        connection_class = options.create_connection or ServerConnection
        server = self._server
        max_connections = options.max_connections
        connection_kwargs = options.connection_kwargs(connection_logger)
        selector = options.subprotocol_selector()
        new_protocol = ServerProtocol.maker(**options.protocol_kwargs(connection_logger))
        new_connection: Callable[[ServerProtocol], ServerConnection] | None = None

        def make_connection() -> ServerConnection | None:
            nonlocal new_connection
            # Counted when connection_made() runs (after TLS, if any): one batch of
            # accepts may pass the limit by a few, which costs nothing that matters.
            if max_connections is not None and len(server.connections) >= max_connections:
                return None
            if new_connection is None:  # in the loop's thread, which a connection's __init__ wants
                new_connection = _connection_maker(connection_class, server, connection_kwargs, new_protocol())
            protocol = new_protocol()
            connection = new_connection(protocol)
            if selector is not None:
                protocol.select_subprotocol = selector(connection)
            return connection

        def factory() -> asyncio.BaseProtocol:
            connection = make_connection()
            return OverCapacity(server) if connection is None else connection

        self._factory = factory
        if http2:
            from .http2 import limits_from, server_factory

            self._factory = server_factory(server, factory, make_connection, limits_from(http2), passed.get("ssl"))  # type: ignore[arg-type]
        self._host = host
        self._port = port
        self._unix = unix
        self._path = path
        self._kwargs = passed

    async def _create(self) -> Server:
        loop = asyncio.get_running_loop()
        if self._unix:
            server = await loop.create_unix_server(self._factory, self._path, **self._kwargs)
        else:
            server = await loop.create_server(self._factory, self._host, self._port, **self._kwargs)
        self._server.server = server
        accept_directly(server)  # once serving (start_serving=False: in start_serving())
        return self._server

    def __await__(self) -> Generator[Any, None, Server]:
        return self._create().__await__()

    async def __aenter__(self) -> Server:
        return await self._create()

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._server.__aexit__(*exc_info)


def _connection_maker(
    create: Callable[..., Any], server: Server, kwargs: dict[str, Any], prototype: ServerProtocol
) -> Callable[[ServerProtocol], Any]:
    """``create_connection``'s ``maker()`` over ``prototype`` (see :meth:`ServerRole.maker`), or ``create`` itself.

    ``create`` is a connection class, a :func:`functools.partial` of one with
    keyword arguments (as :func:`~wsio.serve_listener` passes), or any other
    callable, which is called for each connection as it is.
    """
    cls, extra = create, {}
    if isinstance(create, functools.partial) and not create.args:
        cls, extra = create.func, create.keywords
    if isinstance(cls, type) and issubclass(cls, ServerRole):
        return cls.maker(server, prototype, **extra, **kwargs)
    return functools.partial(create, server, **kwargs)


def unix_serve(handler: Callable[..., Awaitable[Any]], path: str | None = None, **kwargs: Any) -> serve:
    """Like :func:`serve`, on a Unix socket at ``path``."""
    return serve(handler, unix=True, path=path, **kwargs)
