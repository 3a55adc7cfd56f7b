"""websocket-client's blocking API: :class:`WebSocket` and :func:`create_connection`, on wsio.sync.

Differences worth knowing, all in the direction of doing more:
permessage-deflate is offered by default (``compression=None`` turns it off);
pings are answered and keepalive pings sent by a background reader thread,
so a connection stays alive while the application doesn't read; ``send()``
is always thread-safe; UTF-8 is always validated (fast, so
``skip_utf8_validation`` is accepted and changes nothing); messages up to
:data:`~wsio.websocket_client._core.DEFAULT_MAX_SIZE` (64 MiB) by default.

A socket connected and upgraded by other means and assigned to
``WebSocket.sock`` is read and written frame by frame in the calling
thread, as websocket-client does.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from ..exceptions import ConnectionClosed, InvalidProxy, InvalidState
from ..protocol.machine import State
from ..protocol.events import Event, Fragment, Ping, Pong
from ..protocol.frames import Close
from ..protocol.uri import WebSocketURI, parse_uri
from ..protocol.proxy import proxy_bypassed, proxy_from_environment
from ..sync.client import ClientConnection, connect
from ..sync.tls_in_tls import TLSInTLSSocket
from ._abnf import ABNF, STATUS_NORMAL, continuous_frame, frame_buffer
from ._exceptions import (
    WebSocketConnectionClosedException,
    WebSocketProtocolException,
    WebSocketProxyException,
    WebSocketTimeoutException,
    convert_exception,
)
from ._logging import debug, isEnabledForTrace, trace
from ._socket import DEFAULT_SOCKET_OPTION, getdefaulttimeout, sock_opt
from ._socket import recv, send
from ._utils import NoLock
from ._ssl_compat import ssl_context_from_sslopt

if TYPE_CHECKING:  # pragma: no cover
    from ._handshake import handshake_response

__all__ = ["WebSocket", "create_connection"]

#: The largest message this API accepts by default, 64 MiB. websocket-client
#: has no limit and its programs often receive feeds of several MiB, so wsio's
#: general 1 MiB default would break them; a bound still keeps a hostile or
#: broken server from exhausting memory. ``max_size=None`` removes it,
#: ``max_size=<bytes>`` sets another (per connection, or on WebSocketApp).
DEFAULT_MAX_SIZE = 64 * 2**20


#: websocket-client's proxy types; each is also the scheme of the proxy URI wsio uses.
PROXY_TYPES = ("http", "socks4", "socks4a", "socks5", "socks5h")


def _compat_proxy(
    wsuri: WebSocketURI,
    http_proxy_host: str | None,
    http_proxy_port: int | str | None,
    http_proxy_auth: Sequence[str] | None,
    http_no_proxy: Sequence[str] | str | None,
    proxy_type: str | None,
) -> str | None:
    """The proxy URI websocket-client's options choose for ``wsuri``, or ``None`` for a direct connection.

    Its rules: hosts in ``http_no_proxy`` (or, without it, ``NO_PROXY``) are
    reached directly, even with ``http_proxy_host``; ``http_proxy_host``
    needs ``http_proxy_port``; without ``http_proxy_host`` the proxy comes
    from the environment (``https_proxy`` for wss://, ``http_proxy`` for ws://).
    """
    proxy_type = (proxy_type or "http").lower()
    if proxy_type not in PROXY_TYPES:
        raise WebSocketProxyException(f"Only {', '.join(PROXY_TYPES)} proxy types are supported, not {proxy_type!r}")
    environ: Mapping[str, str] = os.environ
    if http_no_proxy is not None:
        # The list replaces NO_PROXY, as in websocket-client.
        entries = [http_no_proxy] if isinstance(http_no_proxy, str) else list(http_no_proxy)
        environ = {name: value for name, value in os.environ.items() if name.lower() != "no_proxy"}
        environ["no_proxy"] = ",".join(entries)
    if not http_proxy_host:
        return proxy_from_environment(wsuri.secure, wsuri.host, wsuri.port, environ)
    if proxy_bypassed(wsuri.host, wsuri.port, environ.get("no_proxy") or environ.get("NO_PROXY")):
        return None
    if not http_proxy_port:
        raise WebSocketProxyException("Cannot use port 0 when proxy_host specified")
    userinfo = ""
    if http_proxy_auth:
        user, password = (list(http_proxy_auth) + [""])[:2]
        userinfo = f"{urllib.parse.quote(str(user), safe='')}:{urllib.parse.quote(str(password or ''), safe='')}@"
    host = f"[{http_proxy_host}]" if ":" in http_proxy_host else http_proxy_host
    return f"{proxy_type}://{userinfo}{host}:{int(http_proxy_port)}"


def _header_items(header: Any) -> list[tuple[str, str]]:
    """``header`` as websocket-client takes it (a dict, or a list of ``"Name: value"``) as pairs."""
    if header is None:
        return []
    if hasattr(header, "items"):
        return [(str(name), str(value)) for name, value in header.items() if value is not None]
    items = []
    for line in header:
        if isinstance(line, tuple):
            items.append((str(line[0]), str(line[1])))
            continue
        name, _, value = str(line).partition(":")
        items.append((name.strip(), value.strip()))
    return items


class _EventConnection(ClientConnection):
    """A connection that also queues pings, pongs and close frames, in order with messages,
    for ``recv_data(control_frame=True)`` and ``WebSocketApp``'s callbacks.

    With an event socket (for an external dispatcher such as ``rel``), each
    batch of queued events, and the end of the connection, writes a byte to
    it, so that the dispatcher can wait on it as on a socket with data.
    """

    _control_events = True
    _event_writer: socket.socket | None = None

    def _signal_event(self) -> None:
        writer = self._event_writer
        if writer is not None:
            try:
                writer.send(b"\0")
            except OSError:  # full (the reader is behind: it will find the events) or closed
                pass

    def _handle_events(self, events: list[Event]) -> None:
        super()._handle_events(events)
        if events:
            self._signal_event()

    def _finish(self) -> None:
        # After the connection is marked closed, not before: a dispatcher woken
        # earlier could find it still open and then wait for a signal that never comes.
        try:
            super()._finish()
        finally:
            self._signal_event()


def _open(
    url: str,
    *,
    timeout: float | None,
    sslopt: dict[str, Any] | None,
    sockopt: Sequence[tuple[Any, ...]] | None,
    header: Any = None,
    cookie: str | None = None,
    origin: str | None = None,
    suppress_origin: bool = False,
    host: str | None = None,
    subprotocols: Sequence[str] | None = None,
    redirect_limit: int | None = None,
    socket: socket.socket | None = None,
    http_proxy_host: str | None = None,
    http_proxy_port: int | str | None = None,
    http_proxy_auth: Sequence[str] | None = None,
    http_no_proxy: Sequence[str] | str | None = None,
    http_proxy_timeout: float | None = None,
    proxy_type: str | None = None,
    suppress_host: bool = False,
    **options: Any,
) -> ClientConnection:
    """Connect as websocket-client does: same headers, same socket, TLS and proxy options.

    ``suppress_host`` is accepted and ignored: HTTP/1.1 requires ``Host``
    (``host=`` sets its value).
    """
    wsuri = parse_uri(url)
    if "proxy" in options:  # wsio's own option wins
        proxy = options.pop("proxy")
    elif socket is not None:
        proxy = None
    else:
        try:
            proxy = _compat_proxy(wsuri, http_proxy_host, http_proxy_port, http_proxy_auth, http_no_proxy, proxy_type)
        except InvalidProxy as exc:
            raise convert_exception(exc) from exc
    headers = _header_items(header)
    names = {name.lower() for name, _ in headers}
    if cookie and "cookie" not in names:
        headers.append(("Cookie", cookie))
    if host and "host" not in names:
        headers.append(("Host", host))
    # websocket-client sends an Origin unless told not to; servers written
    # for it may expect one.
    if suppress_origin or "origin" in names:
        origin = None
    elif origin is None:
        hostport = f"[{wsuri.host}]" if ":" in wsuri.host else wsuri.host
        if wsuri.port not in (80, 443):
            hostport += f":{wsuri.port}"
        origin = f"{'https' if wsuri.secure else 'http'}://{hostport}"
    context = server_hostname = None
    if wsuri.secure:
        context, server_hostname = ssl_context_from_sslopt(sslopt)
    options.setdefault("max_size", DEFAULT_MAX_SIZE)
    open_timeout = options.pop("open_timeout", timeout if timeout is not None else 10)
    if proxy is not None and http_proxy_timeout is not None:
        # No separate proxy timeout here: it bounds the whole opening, proxy included.
        open_timeout = min(open_timeout, http_proxy_timeout) if open_timeout is not None else http_proxy_timeout
    # wsio's client opens the socket itself unless the caller gave one: a
    # socket opened here would pin the connection to the first host, and
    # redirects to another origin would then be refused.
    sock = socket
    try:
        connection: ClientConnection = connect(
            url,
            sock=sock,
            proxy=proxy,
            ssl=context,
            server_hostname=server_hostname,
            open_timeout=open_timeout,
            origin=origin,
            subprotocols=subprotocols,
            additional_headers=headers or None,
            max_redirects=redirect_limit,
            create_connection=_EventConnection,
            **options,
        )._create()
        if sock is None:  # socket options apply once connected
            for option in [*DEFAULT_SOCKET_OPTION, *(sockopt or ())]:
                try:
                    connection.socket.setsockopt(*option)
                except OSError:
                    if connection.socket.fileno() != -1:
                        raise  # a bad option
                    break  # the peer hung up already and the reader closed the socket
        return connection
    except Exception as exc:
        if sock is not None and socket is None:
            sock.close()
        converted = convert_exception(exc)
        if converted is exc:
            raise
        raise converted from exc


class WebSocket:
    """websocket-client's low-level connection: ``connect()``, ``send()``, ``recv()``, ``close()``.

    ::

        ws = WebSocket(sslopt={"cert_reqs": ssl.CERT_NONE})
        ws.connect("wss://localhost:8765")
        ws.send("hello")
        print(ws.recv())
        ws.close()

    Args:
        sslopt: TLS options (see :func:`~wsio.websocket_client._ssl_compat.ssl_context_from_sslopt`).
        sockopt: ``setsockopt()`` argument tuples for the TCP socket.
        fire_cont_frame: deliver the pieces of fragmented messages one by one
            from ``recv_data()`` (``OPCODE_CONT`` after the first).
        enable_multithread, skip_utf8_validation, get_mask_key: on a
            connection wsio opened, accepted and without effect (wsio is
            always thread-safe, validates UTF-8 quickly and picks random
            masks); on a socket assigned to :attr:`sock`, used as in
            websocket-client.
        dispatcher: writes on an assigned socket go through its ``send()``
            (as ``WebSocketApp`` does with an external dispatcher).
        options: wsio connection options (``compression``, ``max_size``
            (default :data:`~wsio.websocket_client._core.DEFAULT_MAX_SIZE`, 64 MiB; ``None``: no limit),
            ``ping_interval``, ...), as for :func:`wsio.sync.connect`.
    """

    def __init__(
        self,
        get_mask_key: Any = None,
        sockopt: Sequence[tuple[Any, ...]] | None = None,
        sslopt: dict[str, Any] | None = None,
        fire_cont_frame: bool = False,
        enable_multithread: bool = True,
        skip_utf8_validation: bool = False,
        **options: Any,
    ) -> None:
        self.sockopt = sockopt
        self.sslopt = sslopt or {}
        self.sock_opt = sock_opt(list(sockopt or []), self.sslopt)
        self.sock_opt.timeout = getdefaulttimeout()
        self.fire_cont_frame = fire_cont_frame
        self.skip_utf8_validation = skip_utf8_validation
        self.get_mask_key = get_mask_key
        self.options = options
        self.dispatcher = options.pop("dispatcher", None)
        self.connection: ClientConnection | None = None
        self.handshake_response: handshake_response | None = None
        self.close_frame: ABNF | None = None
        # A socket assigned to ``sock`` (rather than opened by connect()) is
        # driven frame by frame in the calling thread, as websocket-client does.
        self._raw_sock: socket.socket | None = None
        self._raw = False
        self._connected: bool | None = None
        self._closed_by_user = False
        self.frame_buffer = frame_buffer(self._recv, skip_utf8_validation)
        self.cont_frame = continuous_frame(fire_cont_frame, skip_utf8_validation)
        self._in_fragment = False
        self._fragment_owner = False
        if enable_multithread:
            self.readlock: Any = threading.Lock()
            self.lock: Any = threading.Lock()
        else:
            self.readlock = NoLock()
            self.lock = NoLock()

    def __iter__(self) -> Iterator[str | bytes]:
        while True:
            yield self.recv()

    def __next__(self) -> str | bytes:
        return self.recv()

    def next(self) -> str | bytes:
        return self.__next__()

    def fileno(self) -> int:
        """The socket's file descriptor; :class:`WebSocketException` if not connected."""
        sock = self.sock
        if sock is None:
            raise WebSocketConnectionClosedException("Connection not established")
        return sock.fileno()

    def set_mask_key(self, func: Any) -> None:
        """Accepted for compatibility; wsio picks its own masks."""
        self.get_mask_key = func

    # -- settings and state ----------------------------------------------------------

    def gettimeout(self) -> float | None:
        """The timeout of ``connect()`` and ``recv()``, in seconds (``None``: none)."""
        return self.sock_opt.timeout

    def settimeout(self, timeout: float | None) -> None:
        """Set the timeout of ``connect()`` and ``recv()``: they raise :class:`WebSocketTimeoutException` after it."""
        self.sock_opt.timeout = timeout
        if self._raw and self._raw_sock is not None:
            self._raw_sock.settimeout(timeout)

    timeout = property(gettimeout, settimeout)

    def getsubprotocol(self) -> str | None:
        """The subprotocol the server chose, or ``None``."""
        if self.handshake_response is not None:
            return self.handshake_response.subprotocol
        return self.connection.subprotocol if self.connection is not None else None

    subprotocol = property(getsubprotocol)

    def getstatus(self) -> int | None:
        """The status of the handshake response (101 once connected)."""
        if self.handshake_response is not None:
            return self.handshake_response.status
        if self.connection is None or self.connection.response is None:
            return None
        return self.connection.response.status_code

    status = property(getstatus)

    def getheaders(self) -> dict[str, str] | None:
        """The handshake response headers, as a dict with lowercase names."""
        if self.handshake_response is not None:
            return self.handshake_response.headers
        if self.connection is None or self.connection.response is None:
            return None
        from ._exceptions import _lower_headers

        return _lower_headers(self.connection.response.headers)

    headers = property(getheaders)

    def is_ssl(self) -> bool:
        """Whether the connection runs over TLS."""
        return isinstance(self.sock, (ssl.SSLSocket, TLSInTLSSocket))

    @property
    def connected(self) -> bool:
        """True while the connection is open (assignable, as in websocket-client)."""
        if self._connected is not None:
            return self._connected
        return self.connection is not None and self.connection.protocol.state is State.OPEN

    @connected.setter
    def connected(self, value: bool) -> None:
        self._connected = bool(value)

    @property
    def sock(self) -> socket.socket | None:
        """The socket while connected, else ``None``.

        Assigning a connected socket (after doing the handshake yourself)
        makes this object read and write frames on it directly, in the
        calling thread, as websocket-client does: no background reader,
        pings answered when ``recv()`` meets them.
        """
        if self._raw:
            return self._raw_sock
        if self.connection is None or self.connection.closed:
            return None
        return self.connection.socket

    @sock.setter
    def sock(self, value: socket.socket | None) -> None:
        self._raw = True
        self._raw_sock = value

    # -- connecting ---------------------------------------------------------------------

    def connect(self, url: str, **options: Any) -> None:
        """Connect to ``url`` (``ws://`` or ``wss://``).

        Options as in websocket-client: ``header`` (a dict or a list of
        ``"Name: value"``), ``cookie``, ``origin``, ``suppress_origin``,
        ``host``, ``timeout``, ``subprotocols``, ``redirect_limit``,
        ``socket`` (an already connected one: no proxy then), and the proxy
        options ``http_proxy_host``, ``http_proxy_port``, ``http_proxy_auth``
        (``(user, password)``, sent with Basic auth), ``proxy_type``
        (``"http"`` (default), ``"socks4"``, ``"socks4a"``, ``"socks5"``,
        ``"socks5h"``; SOCKS needs ``pip install wsio[socks]``),
        ``http_no_proxy`` (hosts reached directly; default: ``NO_PROXY``) and
        ``http_proxy_timeout``. Without ``http_proxy_host`` the proxy comes
        from ``https_proxy`` / ``http_proxy`` (and ``all_proxy``) as in
        websocket-client; a refusing or unreachable proxy raises
        :class:`WebSocketProxyException` with ``proxy_status``.
        Other keyword arguments are wsio options (see :func:`wsio.sync.connect`).
        """
        if "timeout" in options:
            self.sock_opt.timeout = options.pop("timeout")
        connection = _open(
            url,
            timeout=self.sock_opt.timeout,
            sslopt=self.sslopt,
            sockopt=self.sockopt,
            **{**self.options, **options},
        )
        self.connection = connection
        from ._exceptions import _lower_headers
        from ._handshake import handshake_response

        assert connection.response is not None
        self.handshake_response = handshake_response(
            connection.response.status_code, _lower_headers(connection.response.headers), connection.subprotocol
        )
        self._raw = False
        self._raw_sock = None
        self._connected = None
        self._closed_by_user = False
        self._in_fragment = False

    # -- sending ------------------------------------------------------------------------------

    def _conn(self) -> ClientConnection:
        if self.connection is None or self._closed_by_user:
            raise WebSocketConnectionClosedException()
        return self.connection

    @property
    def _socket_mode(self) -> bool:
        """Frames go straight to and from ``sock`` (an assigned socket, or no wsio connection)."""
        return self._raw or self.connection is None

    # -- an event socket, for external dispatchers ----------------------------------------

    def _event_socket(self) -> socket.socket:
        """A socket that is readable while frames are queued (or the connection has ended)."""
        connection = self._conn()
        if self._event_pair is None:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self._event_pair = (reader, writer)
            connection._event_writer = writer  # type: ignore[attr-defined]
            writer.send(b"\0")  # frames may be queued already
        return self._event_pair[0]

    def _event_socket_drain(self) -> None:
        if self._event_pair is not None:
            try:
                while self._event_pair[0].recv(4096):
                    pass
            except OSError:
                pass

    def _event_ready(self) -> bool:
        """Whether ``recv_data_frame()`` would return (or raise) without waiting."""
        connection = self.connection
        if connection is None or self._closed_by_user or connection.closed:
            return True
        with connection._lock:
            return connection._messages > 0 or (self.fire_cont_frame and bool(connection._queue))

    def _close_event_socket(self) -> None:
        pair, self._event_pair = self._event_pair, None
        if pair is not None:
            if self.connection is not None:
                self.connection._event_writer = None  # type: ignore[attr-defined]
            for end in pair:
                end.close()

    _event_pair: tuple[socket.socket, socket.socket] | None = None

    # -- the socket transport: frames on an assigned socket, in the calling thread --------

    def _send(self, data: bytes) -> int:
        if self._raw_sock is None:
            raise WebSocketConnectionClosedException("socket is already closed.")
        if self.dispatcher:
            return self.dispatcher.send(self._raw_sock, data)  # type: ignore[no-any-return]
        return send(self._raw_sock, data)

    def _recv(self, bufsize: int) -> bytes:
        if self._raw_sock is None:
            raise WebSocketConnectionClosedException("Connection is closed")
        try:
            return recv(self._raw_sock, bufsize)
        except WebSocketConnectionClosedException:
            if self._raw_sock is not None:
                self._raw_sock.close()
            self._raw_sock = None
            self._connected = False
            raise

    def _socket_send_frame(self, frame: ABNF) -> int:
        if self.get_mask_key:
            frame.get_mask_key = self.get_mask_key
        data = frame.format()
        length = len(data)
        if isEnabledForTrace():
            trace(f"++Sent raw: {data!r}")
            trace(f"++Sent decoded: {frame}")
        with self.lock:
            while data:
                data = data[self._send(data) :]
        return length

    def _socket_recv_data_frame(self, control_frame: bool) -> tuple[int, ABNF]:
        while True:
            frame = self.frame_buffer.recv_frame()
            if isEnabledForTrace():
                trace(f"++Rcv decoded: {frame}")
            if frame.opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT):
                self.cont_frame.validate(frame)
                self.cont_frame.add(frame)
                if self.cont_frame.is_fire(frame):
                    return self.cont_frame.extract(frame)
            elif frame.opcode == ABNF.OPCODE_CLOSE:
                self.send_close()
                return frame.opcode, frame
            elif frame.opcode == ABNF.OPCODE_PING:
                if len(frame.data) >= 126:
                    raise WebSocketProtocolException("Ping message is too long")
                self.pong(frame.data)
                if control_frame:
                    return frame.opcode, frame
            elif frame.opcode == ABNF.OPCODE_PONG and control_frame:
                return frame.opcode, frame

    def _socket_close(self, status: int, reason: bytes | str, timeout: float | None) -> None:
        if not self.connected:
            return
        self.close_frame = None
        try:
            self.connected = False
            self.send(struct.pack("!H", status) + _close_reason_bytes(reason), ABNF.OPCODE_CLOSE)
            sock = self._raw_sock
            if sock is None:
                return
            previous_timeout = sock.gettimeout()
            sock.settimeout(timeout)
            start = time.monotonic()
            while timeout is None or time.monotonic() - start < timeout:
                try:
                    frame = self.frame_buffer.recv_frame()
                except (WebSocketConnectionClosedException, WebSocketTimeoutException, struct.error):
                    break
                if frame.opcode == ABNF.OPCODE_CLOSE:
                    self.close_frame = frame
                    break
            if self._raw_sock is not None:
                self._raw_sock.settimeout(previous_timeout)
                self._raw_sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # closing is best effort: the socket is closed below anyway
            pass
        self.shutdown()

    def _raise(self, exc: BaseException) -> None:
        converted = convert_exception(exc)
        if converted is exc:
            raise exc
        raise converted from exc

    def send(self, payload: str | bytes, opcode: int = ABNF.OPCODE_TEXT) -> int:
        """Send ``payload`` in a frame of type ``opcode`` (text by default); return the frame's length."""
        return self.send_frame(ABNF.create_frame(payload, opcode))

    def send_text(self, text_data: str) -> int:
        return self.send(text_data, ABNF.OPCODE_TEXT)

    def send_bytes(self, data: bytes) -> int:
        return self.send(data, ABNF.OPCODE_BINARY)

    def send_binary(self, payload: bytes) -> int:
        return self.send(payload, ABNF.OPCODE_BINARY)

    def send_frame(self, frame: ABNF) -> int:
        """Send one frame; ``fin=0`` text or binary frames followed by ``OPCODE_CONT`` ones make a fragmented message."""
        if self._socket_mode:
            return self._socket_send_frame(frame)
        connection = self._conn()
        protocol = connection.protocol
        data = frame.data
        opcode = frame.opcode
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        try:
            if opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY) and frame.fin and not self._in_fragment:
                if opcode == ABNF.OPCODE_TEXT:
                    connection._send_frame(lambda: protocol.send_text(payload))
                else:
                    connection._send_frame(lambda: protocol.send_binary(payload))
            elif opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT):
                self._send_fragment(connection, opcode, payload, bool(frame.fin))
            elif opcode == ABNF.OPCODE_PING:
                connection._send_frame(lambda: protocol.send_ping(payload), data=False)
            elif opcode == ABNF.OPCODE_PONG:
                connection._send_frame(lambda: protocol.send_pong(payload), data=False)
            elif opcode == ABNF.OPCODE_CLOSE:
                close = Close.parse(payload)
                connection._start_close(close.code, close.reason)
            else:
                raise WebSocketProtocolException(f"Invalid opcode {opcode!r}")
        except (ConnectionClosed, InvalidState) as exc:
            self._raise(exc if isinstance(exc, ConnectionClosed) else connection._closed_exc())
        return _frame_length(len(payload))

    def _send_fragment(self, connection: ClientConnection, opcode: int, payload: bytes, fin: bool) -> None:
        if opcode == ABNF.OPCODE_CONT:
            if not self._in_fragment:
                raise WebSocketProtocolException("continuation frame outside a fragmented message")
            piece: str | bytes = payload.decode("utf-8") if self._fragment_text else payload
            first = False
        else:
            if self._in_fragment:
                raise WebSocketProtocolException("new message before the fragmented one ended")
            me = threading.get_ident()
            with connection._lock:
                while connection._fragment_owner is not None and not connection._closed.is_set():
                    connection._fragment_cond.wait()
                connection._fragment_owner = me
            self._in_fragment = True
            self._fragment_text = opcode == ABNF.OPCODE_TEXT
            piece = payload.decode("utf-8") if self._fragment_text else payload
            first = True
        try:
            connection._send_piece(piece, first, fin)
        finally:
            if fin or connection.closed:
                self._in_fragment = False
                with connection._lock:
                    connection._fragment_owner = None
                    connection._fragment_cond.notify_all()

    def ping(self, payload: str | bytes = "") -> None:
        """Send a ping (the pong comes back through ``recv_data(control_frame=True)``)."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        self.send(payload, ABNF.OPCODE_PING)

    def pong(self, payload: str | bytes = "") -> None:
        """Send a pong (pings are answered automatically)."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        self.send(payload, ABNF.OPCODE_PONG)

    # -- receiving ---------------------------------------------------------------------------

    def recv(self) -> str | bytes:
        """Receive a message: ``str`` for text, ``bytes`` for binary, ``""`` for the server's close frame.

        Raises :class:`WebSocketConnectionClosedException` once closed and
        :class:`WebSocketTimeoutException` after the timeout set with :meth:`settimeout`.
        """
        data: str | bytes | Fragment
        with self.readlock:
            if self._socket_mode:
                opcode, data = self.recv_data()
            else:
                opcode, data = self._recv_event(False)
        if isinstance(data, Fragment):
            # fire_cont_frame=True: the first piece of a message comes back as a
            # message of its type (websocket-client returns the piece's data);
            # the pieces after it are continuation frames, "" as in websocket-client.
            data = data.data
        if opcode == ABNF.OPCODE_TEXT:
            return data.decode("utf-8") if isinstance(data, bytes) else data
        if opcode == ABNF.OPCODE_BINARY:
            return data
        return ""

    def recv_data(self, control_frame: bool = False) -> tuple[int, bytes]:
        """Receive ``(opcode, data)``; with ``control_frame``, pings and pongs too."""
        opcode, frame = self.recv_data_frame(control_frame)
        return opcode, frame.data  # type: ignore[return-value]  # str only for a frame built from str: never received

    def recv_data_frame(self, control_frame: bool = False) -> tuple[int, ABNF]:
        """Receive ``(opcode, frame)``; with ``control_frame``, pings and pongs too."""
        if self._socket_mode:
            return self._socket_recv_data_frame(control_frame)
        opcode, data = self._recv_event(control_frame)
        fin = 1
        if isinstance(data, Fragment):
            fin = int(data.last)
            data = data.data
        payload = data.encode("utf-8") if isinstance(data, str) else data
        return opcode, ABNF(fin, 0, 0, 0, opcode, 0, payload)

    def recv_frame(self) -> ABNF:
        """Receive the next frame (control frames included)."""
        if self._socket_mode:
            return self.frame_buffer.recv_frame()
        return self.recv_data_frame(True)[1]

    def _recv_event(self, control_frame: bool) -> tuple[int, str | bytes | Fragment]:
        connection = self._conn()
        while True:
            try:
                item = connection._next_event(self.sock_opt.timeout, pieces=self.fire_cont_frame)
            except TimeoutError as exc:
                raise WebSocketTimeoutException("Connection timed out") from exc
            except ConnectionClosed as exc:
                self._raise(exc)
            kind = type(item)
            if kind is str:
                return ABNF.OPCODE_TEXT, item
            if kind is bytes:
                return ABNF.OPCODE_BINARY, item
            if kind is Fragment:
                opcode = (
                    ABNF.OPCODE_CONT
                    if self._in_recv_fragment
                    else (ABNF.OPCODE_TEXT if isinstance(item.data, str) else ABNF.OPCODE_BINARY)
                )
                self._in_recv_fragment = not item.last
                return opcode, item
            if kind is Close:
                return ABNF.OPCODE_CLOSE, b"" if item.code == 1005 else item.serialize()
            if kind is Ping:
                if control_frame:
                    return ABNF.OPCODE_PING, item.data
            elif kind is Pong:
                if control_frame:
                    return ABNF.OPCODE_PONG, item.data

    _in_recv_fragment = False
    _fragment_text = False
    _fragment_text_rcvd = False

    # -- closing ---------------------------------------------------------------------------------

    def send_close(self, status: int = STATUS_NORMAL, reason: bytes | str = b"") -> None:
        """Send a close frame without waiting for the answer (``reason``: ``str`` or UTF-8 ``bytes``)."""
        if not 0 <= status < ABNF.LENGTH_16:
            raise ValueError("code is invalid range")
        if self._socket_mode:
            self.connected = False
            self.send(struct.pack("!H", status) + _close_reason_bytes(reason), ABNF.OPCODE_CLOSE)
            return
        assert self.connection is not None
        self.connection._start_close(status, _close_reason_bytes(reason).decode("utf-8"))

    def close(self, status: int = STATUS_NORMAL, reason: bytes | str = b"", timeout: float | None = 3) -> None:
        """Close: send a close frame, wait ``timeout`` seconds at most for the server's, then close TCP.

        Afterwards ``recv()`` and ``send()`` raise :class:`WebSocketConnectionClosedException`.
        """
        if not 0 <= status < ABNF.LENGTH_16:
            raise ValueError("code is invalid range")
        if self._socket_mode:
            self._socket_close(status, reason, timeout)
            return
        connection = self.connection
        assert connection is not None
        self._closed_by_user = True
        self._close_event_socket()
        connection.close_timeout = timeout
        connection.close(status, _close_reason_bytes(reason).decode("utf-8"))
        rcvd = connection.protocol.close_rcvd
        if rcvd is not None:
            self.close_frame = ABNF(1, 0, 0, 0, ABNF.OPCODE_CLOSE, 0, rcvd.serialize())

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake, waking threads in ``recv()``."""
        if self._socket_mode:
            if self.connected and self._raw_sock is not None:
                try:
                    self._raw_sock.shutdown(socket.SHUT_RDWR)
                except (OSError, AttributeError):
                    debug("Socket already closed during abort")
            return
        assert self.connection is not None
        self.connection._abort()

    def shutdown(self) -> None:
        """Close the TCP connection at once, without a closing handshake."""
        if self._socket_mode:
            sock = self._raw_sock
            if sock:
                try:
                    if not getattr(sock, "_closed", False):
                        sock.close()
                except (OSError, AttributeError):
                    debug("Socket already closed during shutdown")
                finally:
                    self._raw_sock = None
                    self._connected = False
            return
        connection = self.connection
        assert connection is not None
        self._closed_by_user = True
        self._close_event_socket()
        connection._abort()
        connection.wait_closed(3)


def _close_reason_bytes(reason: bytes | str | None) -> bytes:
    """A close reason as UTF-8 bytes."""
    if reason is None:
        return b""
    if isinstance(reason, str):
        return reason.encode("utf-8")
    return bytes(reason)


def _frame_length(size: int) -> int:
    """The length of a masked frame carrying ``size`` bytes (what websocket-client's send() returns)."""
    header = 2 if size < 126 else 4 if size < 1 << 16 else 10
    return header + 4 + size


def create_connection(
    url: str,
    timeout: float | None = None,
    sslopt: dict[str, Any] | None = None,
    subprotocols: Sequence[str] | None = None,
    header: Any = None,
    cookie: str | None = None,
    origin: str | None = None,
    http_proxy_host: str | None = None,
    http_proxy_port: int | None = None,
    http_proxy_auth: tuple[str, str] | None = None,
    proxy_type: str | None = None,
    skip_utf8_validation: bool = False,
    enable_multithread: bool = True,
    class_: type[WebSocket] = WebSocket,
    **options: Any,
) -> WebSocket:
    """Connect to ``url`` and return a connected :class:`WebSocket`, as websocket-client does.

    ``timeout`` (default: :func:`getdefaulttimeout`) bounds connecting (10 s
    when ``None``) and each ``recv()``. ``sslopt`` holds TLS options
    (``{"cert_reqs": ssl.CERT_NONE}`` disables verification).

    Proxies, as in websocket-client: ``http_proxy_host`` and
    ``http_proxy_port`` (both needed), ``http_proxy_auth=(user, password)``,
    ``proxy_type`` (``"http"`` by default; ``"socks4"``, ``"socks4a"``,
    ``"socks5"``, ``"socks5h"`` need ``pip install wsio[socks]``), and the
    keyword options ``http_no_proxy`` (a list of hosts reached directly,
    replacing ``NO_PROXY``) and ``http_proxy_timeout``. Without
    ``http_proxy_host``, ``https_proxy`` / ``http_proxy`` / ``all_proxy``
    from the environment apply. Failures raise
    :class:`WebSocketProxyException` (``proxy_status`` holds the proxy's
    HTTP status, e.g. 407). See :doc:`/topics/proxies`.

    Other keyword arguments: websocket-client's ``connect()`` options
    (``suppress_origin``, ``host``, ``sockopt``, ``redirect_limit``,
    ``socket``, ``fire_cont_frame``) and wsio options (``compression``,
    ``max_size``, ``ping_interval``, ``proxy``, ...).
    """
    sockopt = options.pop("sockopt", None)
    fire_cont_frame = options.pop("fire_cont_frame", False)
    get_mask_key = options.pop("get_mask_key", None)
    websock = class_(
        get_mask_key=get_mask_key,
        sockopt=sockopt,
        sslopt=sslopt,
        fire_cont_frame=fire_cont_frame,
        enable_multithread=enable_multithread,
        skip_utf8_validation=skip_utf8_validation,
    )
    websock.settimeout(timeout if timeout is not None else getdefaulttimeout())
    websock.connect(
        url,
        subprotocols=subprotocols,
        header=header,
        cookie=cookie,
        origin=origin,
        http_proxy_host=http_proxy_host,
        http_proxy_port=http_proxy_port,
        http_proxy_auth=http_proxy_auth,
        proxy_type=proxy_type,
        **options,
    )
    return websock
