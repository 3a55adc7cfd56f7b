"""The asyncio WebSocket client: :func:`connect` and :func:`unix_connect`."""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Generator

from .._client_common import Redirects, Retries, _tls_context, backoff, process_exception
from ..exceptions import CertificateVerificationError, InvalidHandshake, InvalidMessage, InvalidStatus
from ..options import ClientOptions, ClientOptionsDict, with_options
from ..protocol.machine import ClientProtocol, State
from ..protocol.events import Event
from ..protocol.uri import Redirect, WebSocketURI
from ..protocol.http11 import Response
from ..protocol.proxy import ProxyURI, select_proxy
from .connection import BaseConnection, Connection
from .proxy import open_http_tunnel, open_socks_socket

if TYPE_CHECKING:
    import socket

    from typing_extensions import Unpack

    from .http2 import HTTP2Limits

__all__ = ["connect", "unix_connect", "ClientConnection", "WebSocketClientProtocol", "process_exception", "backoff"]

logger = logging.getLogger("wsio.client")
_module_logger = logger  # serve()/connect() take a ``logger`` argument that hides the name


class AsyncioConnectKwargs(ClientOptionsDict, total=False):
    """The keyword arguments of :func:`connect`: the options, and those of :meth:`asyncio.loop.create_connection`."""

    ssl: ssl_module.SSLContext | bool | None
    server_hostname: str | None
    host: str | None
    port: int | None
    sock: socket.socket | None
    family: int
    proto: int
    flags: int
    local_addr: tuple[str, int] | None
    ssl_handshake_timeout: float | None
    ssl_shutdown_timeout: float | None
    happy_eyeballs_delay: float | None
    interleave: int | None
    #: Open WebSockets over one shared HTTP/2 connection per origin (RFC 8441; ``ws://``: h2c with prior knowledge): see :doc:`/topics/http2`.
    http2: bool | HTTP2Limits
    # Older names of additional_headers, open_timeout and create_connection.
    extra_headers: Any
    timeout: float | None
    create_protocol: Any


class ClientRole(BaseConnection):
    """The client role: a connection opened by a client, up to and through its opening handshake.

    A mixin on :class:`~wsio.asyncio.connection.BaseConnection`, combined with
    an API: :class:`ClientConnection` (coroutines) and
    :class:`~wsio.ListenerClientConnection` (callbacks).
    """

    __slots__ = ("handshake_done",)
    default_logger = logger

    def __init__(self, protocol: ClientProtocol, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self.handshake_done: asyncio.Future[None] = self.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        protocol: ClientProtocol = self.protocol  # type: ignore[assignment]
        try:
            ssl_object = transport.get_extra_info("ssl_object")
            if (
                ssl_object is not None
                and ssl_object.selected_alpn_protocol() == "h2"
                and transport.get_extra_info("http2_stream_id") is None
            ):
                # An HTTP/1.1 handshake on a connection where TLS agreed on HTTP/2: the
                # server would answer with an HTTP/2 error nobody could read.
                raise InvalidHandshake(
                    "the server chose HTTP/2 in TLS ALPN (the ssl context offers h2): "
                    "pass http2=True, or a context without h2 in its ALPN protocols"
                )
            request = protocol.connect()
        except Exception as exc:
            # E.g. an invalid header: connect() raises it, rather than the
            # event loop logging it while connect() waits for open_timeout.
            self.handshake_done.set_exception(exc)
            self.transport.abort()
            return
        protocol.send_request(request)
        self.transport.write(protocol.data_to_send())

    def _handshake_event(self, event: Event) -> None:
        # Not "state is OPEN": a close frame right behind the 101, in the same
        # read, has already moved the state on, and the handshake still succeeded.
        if isinstance(event, Response) and self.protocol.handshake_exc is None:
            if not self.handshake_done.done():
                self.handshake_done.set_result(None)

    def _after_closed(self, in_read: bool = False) -> None:
        self._fail_handshake()
        super()._after_closed(in_read)

    def _fail_handshake(self, exc: BaseException | None = None) -> None:
        waiter = self.handshake_done
        if waiter.done():
            return
        error = self.protocol.handshake_exc
        if error is None:
            # As a closed connection before the response reads: retried when reconnecting.
            error = InvalidMessage("connection closed during the opening handshake")
            error.__cause__ = exc if exc is not None else EOFError("connection closed")
        waiter.set_exception(error)
        waiter.exception()  # retrieved by connect(); don't log it if connect() was cancelled

    def _connection_lost_hook(self, exc: Any) -> None:
        self._fail_handshake(self._lost_exc)
        if self.protocol.state is not State.CONNECTING and self.protocol.handshake_exc is None:
            self.logger.info("%s connection closed: %s", self._peer(), exc)


class ClientConnection(ClientRole, Connection):
    """A connection opened by :func:`connect`."""

    __slots__ = ()


# The name older code subclasses.
WebSocketClientProtocol = ClientConnection


@with_options(ClientOptions)
class connect:
    """Open a WebSocket connection.

    Use ``async with connect(uri) as websocket``, ``websocket = await connect(uri)``,
    or ``async for websocket in connect(uri)`` to reconnect automatically
    with jittered exponential backoff after a connection fails or drops.

    The options (``additional_headers``, ``compression``, ``open_timeout``,
    ``proxy``, ...) are those of :class:`~wsio.options.ClientOptions`, listed
    below; every other keyword argument goes to
    :meth:`asyncio.loop.create_connection`.

    Args:
        uri: ``ws://`` or ``wss://`` URI.
        ssl: an :class:`ssl.SSLContext`, or ``True`` for the default one
            (implied by ``wss://``). ``server_hostname`` overrides the name checked.
        host, port, sock, family, local_addr, ...: passed to
            :meth:`asyncio.loop.create_connection`.
        unix, path: connect to the Unix socket at ``path`` (see :func:`unix_connect`).
    """

    def __init__(
        self,
        uri: str,
        *,
        unix: bool = False,
        path: str | None = None,
        **kwargs: Unpack[AsyncioConnectKwargs],
    ) -> None:
        passed: dict[str, Any] = dict(kwargs)
        self._http2 = passed.pop("http2", None)
        options = ClientOptions.from_kwargs(passed)
        self.uri = uri
        self.options = options
        self.process_exception = options.process_exception
        self.reconnect_delays = options.reconnect_delays
        self.max_redirects: int = options.max_redirects  # type: ignore[assignment]  # set by ClientOptions
        self.open_timeout = options.open_timeout
        self._connection_class = options.create_connection or ClientConnection
        self._protocol_options = options.protocol_kwargs(options.logger or _module_logger)
        self._connection_options = options.connection_kwargs(options.logger or _module_logger)
        self._unix = unix
        self._path = path
        self._kwargs = passed
        self.connection: ClientConnection | None = None

    # -- opening -------------------------------------------------------------------

    async def _create(self) -> ClientConnection:
        try:
            if self.open_timeout is None:
                return await self._open_following_redirects()
            try:
                return await asyncio.wait_for(self._open_following_redirects(), self.open_timeout)
            except asyncio.TimeoutError as exc:
                # Before Python 3.11, wait_for() raises asyncio.TimeoutError, which
                # isn't the built-in TimeoutError that connect() documents.
                if isinstance(exc, TimeoutError) and exc.args:
                    raise  # raised inside, with its own words
                raise TimeoutError("timed out during the opening handshake") from None
        except ssl_module.SSLCertVerificationError as exc:
            # Still an SSLCertVerificationError, with a message that says what to do.
            raise CertificateVerificationError.from_error(exc, self.uri) from exc

    def _pinned(self) -> str | None:
        """What the caller fixed about where to connect: redirects to another origin are refused then."""
        if self._unix:
            return "a Unix socket"
        for name in ("sock", "host", "port", "server_hostname"):
            if self._kwargs.get(name) is not None:
                return f"{name}="
        return None

    async def _open_following_redirects(self) -> ClientConnection:
        redirects = Redirects(self.uri, self.max_redirects, self.options.additional_headers, self._pinned())
        for wsuri, redirect in redirects:
            try:
                self.connection = await self._open(wsuri, redirect)
            except InvalidStatus as exc:
                redirects.follow(exc)
                continue
            return self.connection
        raise AssertionError("unreachable: Redirects raises when they run out")  # pragma: no cover

    async def _open(self, wsuri: WebSocketURI, redirect: Redirect | None = None) -> ClientConnection:
        loop = asyncio.get_running_loop()
        kwargs = dict(self._kwargs)
        ssl = _tls_context(kwargs.pop("ssl", None), wsuri)
        if ssl is not None:
            kwargs.setdefault("server_hostname", wsuri.host)
        options = self._protocol_options
        if redirect is not None:
            kwargs.pop("sock", None)  # it served the first request; same origin: connect to the URI
            if not redirect.same_origin:
                options = {**options, "extra_headers": None}

        def factory() -> ClientConnection:
            # A fresh handshake each time: over HTTP/2, a refused stream opens it again.
            return self._connection_class(ClientProtocol(wsuri, **options), **self._connection_options)

        if self._unix:
            _, connection = await loop.create_unix_connection(factory, self._path, ssl=ssl, **kwargs)
        else:
            if kwargs.get("sock") is None:
                host = kwargs.pop("host", wsuri.host)
                port = kwargs.pop("port", wsuri.port)
                proxy = select_proxy(self.options.proxy, wsuri.secure, host, port)
            else:
                host = port = proxy = None
            if proxy is None and self._http2 and kwargs.get("sock") is None:
                from .http2 import limits_from, open_websocket

                own_context = self._kwargs.get("ssl") in (None, True)
                limits = limits_from(self._http2)
                assert limits is not None
                connection = await open_websocket(factory, host, port, ssl, own_context, kwargs, limits)
            elif proxy is None:
                _, connection = await loop.create_connection(factory, host, port, ssl=ssl, **kwargs)
            else:
                connection = await self._open_through(proxy, host, port, factory, ssl, kwargs)
        try:
            await connection.handshake_done
        except BaseException:
            connection.transport.abort()
            raise
        connection.logger.info("%s connection open", connection._peer())
        connection.start_keepalive()
        return connection

    async def _open_through(
        self,
        proxy: ProxyURI,
        host: str,
        port: int,
        factory: Callable[[], ClientConnection],
        ssl: ssl_module.SSLContext | None,
        kwargs: dict[str, Any],
    ) -> ClientConnection:
        """Reach ``host:port`` through ``proxy``, then run TLS (if any) and the handshake over it."""
        loop = asyncio.get_running_loop()
        logger.info("connecting to %s:%s through proxy %s", host, port, proxy.redacted)
        local_addr = kwargs.get("local_addr")
        if proxy.is_socks:
            sock = await open_socks_socket(proxy, host, port, local_addr=local_addr)
            options = {k: v for k, v in kwargs.items() if k in ("server_hostname", "ssl_handshake_timeout")}
            _, connection = await loop.create_connection(factory, sock=sock, ssl=ssl, **options)
            return connection
        transport = await open_http_tunnel(
            proxy,
            host,
            port,
            proxy_ssl=self.options.proxy_ssl,
            proxy_server_hostname=self.options.proxy_server_hostname,
            user_agent=self.options.user_agent_header,
            local_addr=local_addr,
        )
        try:
            if ssl is not None:
                # Over an https:// proxy this is TLS inside TLS, which start_tls supports.
                new_transport = await loop.start_tls(
                    transport, transport.get_protocol(), ssl, server_hostname=kwargs.get("server_hostname")
                )
                assert new_transport is not None
                transport = new_transport
            connection = factory()
            transport.set_protocol(connection)
            connection.connection_made(transport)
        except BaseException:
            transport.abort()
            raise
        return connection

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._create().__await__()

    async def __aenter__(self) -> ClientConnection:
        return await self._create()

    async def __aexit__(self, *exc_info: Any) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        """Connect, yield the connection, and connect again when the body moves on."""
        retries = Retries(self.uri, self.process_exception, self.reconnect_delays or backoff)
        while True:
            try:
                connection = await self._create()
            except Exception as exc:
                await asyncio.sleep(retries.delay_after(exc))
                continue
            retries.succeeded()
            try:
                yield connection
            finally:
                await connection.close()


def unix_connect(path: str | None = None, uri: str | None = None, **kwargs: Any) -> connect:
    """Like :func:`connect`, over the Unix socket at ``path``; ``uri`` defaults to ``ws://localhost/``."""
    if uri is None:
        uri = "wss://localhost/" if kwargs.get("ssl") not in (None, False) else "ws://localhost/"
    return connect(uri, unix=True, path=path, **kwargs)
