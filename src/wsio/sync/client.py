"""The threaded WebSocket client: :func:`connect` and :func:`unix_connect`."""

from __future__ import annotations

import inspect
import logging
import socket
import ssl as ssl_module
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, overload

from .._client_common import Redirects, Retries, _tls_context, backoff, process_exception
from ..exceptions import CertificateVerificationError, ConnectionClosed, InvalidMessage, InvalidStatus
from ..options import ClientOptions, ClientOptionsDict, with_options
from ..protocol.machine import ClientProtocol, State
from ..protocol.uri import Redirect, WebSocketURI
from ..protocol.proxy import ProxyURI, select_proxy
from .connection import Connection, _shutdown
from .proxy import connect_through_proxy
from .tls_in_tls import TLSInTLSSocket

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["connect", "unix_connect", "reconnect", "unix_reconnect", "ClientConnection", "process_exception", "backoff"]

logger = logging.getLogger("wsio.client")

# Where the threaded client's options say more than the options' own docs.
_SYNC_DOCS = {
    "write_limit": "accepted for parity with the asyncio API (64 KiB); sending is synchronous.",
    "proxy": ClientOptions.__dataclass_fields__["proxy"]
    .metadata["doc"]
    .replace(
        "Ignored with ``sock`` or ``unix``.",
        "Ignored with ``sock`` or ``unix``; wss:// through an https:// proxy runs TLS inside TLS.",
    ),
}


class SyncConnectKwargs(ClientOptionsDict, total=False):
    """The keyword arguments of :class:`reconnect`: the options, and older names of some."""

    ssl_context: ssl_module.SSLContext | bool | None
    extra_headers: Any
    timeout: float | None
    create_protocol: Any


class ClientConnection(Connection):
    """A connection opened by :func:`connect`; a context manager that closes it on exit."""

    logger = logger

    def __enter__(self) -> ClientConnection:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _create(self) -> ClientConnection:
        # connect() used to return the connector, and code written then calls
        # connect(...)._create(): the connection is already open; here it is.
        return self

    def _handshake(self, deadline: float | None) -> None:
        """Send the request and read the response; raise if the handshake fails."""
        protocol: ClientProtocol = self.protocol  # type: ignore[assignment]
        with self._lock:
            protocol.send_request(protocol.connect())
        self._handshake_write()
        while protocol.state is State.CONNECTING:
            try:
                self._handshake_read(deadline)
            except TimeoutError:
                raise TimeoutError("timed out during the opening handshake") from None
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        if protocol.response is None or protocol.response.status_code != 101:
            # As a closed connection before the response reads: retried when reconnecting.
            raise InvalidMessage("connection closed during the opening handshake") from EOFError("connection closed")
        with self._lock:  # replies to frames that came right behind the response
            out = protocol.data_to_send()
            if out:
                self._pending.append(out)

    def _connection_lost_hook(self, exc: ConnectionClosed) -> None:
        self.logger.info("%s connection closed: %s", self._peer(), exc)


@with_options(ClientOptions, docs=_SYNC_DOCS)
class reconnect:
    """Open WebSocket connections to ``uri``, reconnecting with ``for websocket in reconnect(uri)``.

    ::

        for websocket in reconnect(uri):
            try:
                for message in websocket:
                    ...
            except ConnectionClosed:
                continue  # the next iteration connects again

    Each iteration opens a connection and closes it when the body moves on;
    a failed attempt is retried after a jittered exponential backoff when
    ``process_exception`` says it is transient (network errors, a connection
    closed during the handshake, 500/502/503/504), and raised otherwise.
    ``with reconnect(uri) as websocket`` opens one connection, as
    :func:`connect` does. ``connect(uri, legacy=False)`` returns this object.

    The options (``additional_headers``, ``compression``, ``open_timeout``,
    ``proxy``, ...) are those of :class:`~wsio.options.ClientOptions`, listed
    below.

    Args:
        uri: ``ws://`` or ``wss://`` URI.
        ssl: an :class:`ssl.SSLContext`, or ``True`` for the default one
            (implied by ``wss://``; ``ssl_context`` is an alias). ``False``
            goes with ws:// only: with wss:// it raises :class:`ValueError`.
        server_hostname: the name checked in the certificate and sent in SNI
            (default: the URI's host).
        sock: an already connected socket, instead of connecting to the URI's host
            (no proxy is used then). It serves the first request only: a
            redirect on the same origin connects to the URI's host and port.
        host, port: where to connect instead of the URI's host and port.
        source_address: ``(host, port)`` to connect from.
        unix, path: connect to the Unix socket at ``path`` (see :func:`unix_reconnect`).
    """

    def __init__(
        self,
        uri: str,
        *,
        ssl: ssl_module.SSLContext | bool | None = None,
        server_hostname: str | None = None,
        sock: socket.socket | None = None,
        host: str | None = None,
        port: int | None = None,
        source_address: tuple[str, int] | None = None,
        unix: bool = False,
        path: str | None = None,
        **kwargs: Unpack[SyncConnectKwargs],
    ) -> None:
        passed: dict[str, Any] = dict(kwargs)
        ssl = passed.pop("ssl_context", ssl)
        options = ClientOptions.from_kwargs(passed)
        if passed:
            raise TypeError(f"connect() got unexpected keyword arguments: {', '.join(sorted(passed))}")
        if unix and path is None and sock is None:
            raise ValueError("unix_connect() needs a path or a sock")
        self.uri = uri
        self.options = options
        self.open_timeout = options.open_timeout
        self.process_exception = options.process_exception
        self.reconnect_delays = options.reconnect_delays
        self.max_redirects: int = options.max_redirects  # type: ignore[assignment]  # set by ClientOptions
        self._connection_class = options.create_connection or ClientConnection
        self._protocol_options = options.protocol_kwargs(options.logger)
        self._connection_options = options.connection_kwargs(options.logger)
        self._ssl = ssl
        self._server_hostname = server_hostname
        self._sock = sock
        self._host = host
        self._port = port
        self._source_address = source_address
        self._unix = unix
        self._path = path
        self.connection: ClientConnection | None = None

    # -- opening -------------------------------------------------------------------

    def connect(self) -> ClientConnection:
        """Open one connection, following redirects, within ``open_timeout``; return it."""
        return self._create()

    def _create(self) -> ClientConnection:
        """Connect, following redirects, within open_timeout."""
        deadline = None if self.open_timeout is None else time.monotonic() + self.open_timeout
        redirects = Redirects(self.uri, self.max_redirects, self.options.additional_headers, self._pinned())
        for wsuri, redirect in redirects:
            try:
                self.connection = self._open(wsuri, deadline, redirect)
            except InvalidStatus as exc:
                redirects.follow(exc)
                continue
            return self.connection
        raise AssertionError("unreachable: Redirects raises when they run out")  # pragma: no cover

    def _pinned(self) -> str | None:
        """What the caller fixed about where to connect: redirects to another origin are refused then."""
        if self._unix:
            return "a Unix socket"
        for name, value in (("sock", self._sock), ("host", self._host), ("port", self._port)):
            if value is not None:
                return f"{name}="
        if self._server_hostname is not None:
            return "server_hostname="
        return None

    def _open(self, wsuri: WebSocketURI, deadline: float | None, redirect: Redirect | None = None) -> ClientConnection:
        ssl = _tls_context(self._ssl, wsuri)
        options = self._protocol_options
        if redirect is not None and not redirect.same_origin:
            options = {**options, "extra_headers": None}

        def remaining() -> float | None:
            if deadline is None:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out during the opening handshake")
            return left

        sock = self._sock if redirect is None else None  # a supplied socket serves the first request only
        if sock is None:
            if self._unix:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(remaining())
                try:
                    sock.connect(self._path)  # type: ignore[arg-type]  # unix without sock has a path (__init__ checks)
                except BaseException:
                    sock.close()
                    raise
            else:
                host = self._host or wsuri.host
                port = self._port or wsuri.port
                proxy = select_proxy(self.options.proxy, wsuri.secure, host, port)
                if proxy is not None:
                    sock = self._connect_through(proxy, host, port, remaining)
                else:
                    try:
                        sock = socket.create_connection((host, port), remaining(), self._source_address)
                    except socket.timeout:
                        raise TimeoutError("timed out during the opening handshake") from None
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ssl is not None:
                server_hostname = self._server_hostname or wsuri.host
                try:
                    if isinstance(sock, ssl_module.SSLSocket):
                        # TLS to an https:// proxy already: an SSLSocket can't carry a second
                        # TLS session, so this one runs in memory over it (TLS inside TLS).
                        tls = TLSInTLSSocket(sock, ssl, server_hostname)
                        tls.do_handshake(remaining)
                        sock = tls  # type: ignore[assignment]  # has what the connection uses of a socket
                    else:
                        sock.settimeout(remaining())
                        sock = ssl.wrap_socket(sock, server_hostname=server_hostname)
                except socket.timeout:
                    raise TimeoutError("timed out during the TLS handshake") from None
                except ssl_module.SSLCertVerificationError as exc:
                    # Still an SSLCertVerificationError, with a message that says what to do.
                    raise CertificateVerificationError.from_error(exc, self.uri) from exc
            protocol = ClientProtocol(wsuri, **options)
            connection: ClientConnection = self._connection_class(sock, protocol, **self._connection_options)
            connection._handshake(deadline)
        except BaseException:
            _shutdown(sock)
            sock.close()
            raise
        connection.logger.info("%s connection open", connection._peer())
        connection._start()
        return connection

    def _connect_through(self, proxy: ProxyURI, host: str, port: int, remaining: Callable[[], float | None]) -> socket.socket:
        logger.info("connecting to %s:%s through proxy %s", host, port, proxy.redacted)
        return connect_through_proxy(
            proxy,
            host,
            port,
            remaining,
            source_address=self._source_address,
            proxy_ssl=self.options.proxy_ssl,
            proxy_server_hostname=self.options.proxy_server_hostname,
            user_agent=self.options.user_agent_header,
        )

    def __enter__(self) -> ClientConnection:
        return self._create()

    def __exit__(self, *exc_info: Any) -> None:
        if self.connection is not None:
            self.connection.close()

    def __iter__(self) -> Iterator[ClientConnection]:
        """Connect, yield the connection, and connect again when the body moves on."""
        retries = Retries(self.uri, self.process_exception, self.reconnect_delays or backoff)
        while True:
            try:
                connection = self._create()
            except Exception as exc:
                time.sleep(retries.delay_after(exc))
                continue
            retries.succeeded()
            try:
                yield connection
            finally:
                connection.close()


@overload
def connect(uri: str, *, legacy: Literal[True] | None = None, **kwargs: Any) -> ClientConnection: ...


@overload
def connect(uri: str, *, legacy: Literal[False], **kwargs: Any) -> reconnect: ...


def connect(uri: str, *, legacy: bool | None = None, **kwargs: Any) -> ClientConnection | reconnect:
    """Open a WebSocket connection to ``uri`` and return it; with ``legacy=False``, return a :class:`~wsio.sync.client.reconnect`.

    ::

        with connect("ws://localhost:8765") as websocket:  # closed on exit
            websocket.send("hello")

        websocket = connect("ws://localhost:8765")  # close() it yourself
        for message in websocket:  # messages, until the connection closes
            ...

        for websocket in connect("ws://localhost:8765", legacy=False):
            ...  # reconnects: the same as reconnect(...)

    The connection is open when :func:`connect` returns, or it raises (as
    websockets' ``connect()`` does): :exc:`~wsio.InvalidURI`,
    :exc:`OSError`, :exc:`TimeoutError`, :exc:`~wsio.InvalidHandshake`.

    Args:
        uri: ``ws://`` or ``wss://`` URI.
        legacy: ``None`` (default) or ``True``: connect and return the
            :class:`ClientConnection` (websockets 17 warns about the default;
            wsio doesn't); ``False``: return the :class:`~wsio.sync.client.reconnect` object,
            whose iteration reconnects.
        kwargs: the options of :class:`~wsio.sync.client.reconnect` (``open_timeout``,
            ``additional_headers``, ``ssl``, ``proxy``, ...).
    """
    connecter = reconnect(uri, **kwargs)
    if legacy is False:
        return connecter
    return connecter.connect()


def _with_legacy(signature: inspect.Signature) -> inspect.Signature:
    """``reconnect``'s options plus ``legacy``: the signature that ``connect()`` passes them on with."""
    params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    legacy = inspect.Parameter("legacy", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="bool | None")
    kwargs = [p for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD]
    return signature.replace(parameters=[*params, legacy, *kwargs], return_annotation="ClientConnection | reconnect")


# help(), IDEs and inspect.signature() show the options connect() takes (and passes on).
connect.__signature__ = _with_legacy(inspect.signature(reconnect))  # type: ignore[attr-defined]


def unix_reconnect(path: str | None = None, uri: str | None = None, **kwargs: Any) -> reconnect:
    """Like :class:`~wsio.sync.client.reconnect`, over the Unix socket at ``path``; ``uri`` defaults to ``ws://localhost/``."""
    if uri is None:
        ssl = kwargs.get("ssl", kwargs.get("ssl_context"))
        uri = "wss://localhost/" if ssl not in (None, False) else "ws://localhost/"
    return reconnect(uri, unix=True, path=path, **kwargs)


@overload
def unix_connect(
    path: str | None = None, uri: str | None = None, *, legacy: Literal[True] | None = None, **kwargs: Any
) -> ClientConnection: ...


@overload
def unix_connect(path: str | None = None, uri: str | None = None, *, legacy: Literal[False], **kwargs: Any) -> reconnect: ...


def unix_connect(
    path: str | None = None, uri: str | None = None, *, legacy: bool | None = None, **kwargs: Any
) -> ClientConnection | reconnect:
    """Like :func:`connect`, over the Unix socket at ``path``; ``uri`` defaults to ``ws://localhost/``."""
    connecter = unix_reconnect(path, uri, **kwargs)
    if legacy is False:
        return connecter
    return connecter.connect()
