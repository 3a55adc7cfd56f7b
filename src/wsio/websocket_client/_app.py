"""websocket-client's callback API: :class:`WebSocketApp`, on wsio.sync."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from ..asyncio.client import process_exception
from ..exceptions import InvalidMessage
from ..protocol.frames import Close
from ._abnf import ABNF
from ._core import WebSocket
from ._dispatcher import Dispatcher, DispatcherBase, SSLDispatcher, WrappedDispatcher  # noqa: F401 - websocket._app has DispatcherBase too
from ._exceptions import (
    WebSocketConnectionClosedException,
    WebSocketException,
    WebSocketTimeoutException,
    convert_exception,
)
from ._socket import getdefaulttimeout
from ._url import parse_url

__all__ = ["WebSocketApp"]

#: Seconds ``run_forever()`` waits before reconnecting when its ``reconnect`` is left at ``None``
#: (0: don't reconnect). Set it with :func:`set_reconnect`.
RECONNECT: float = 0


def set_reconnect(reconnectInterval: float) -> None:
    """Set the default of ``run_forever(reconnect=...)``: seconds before reconnecting (0: never)."""
    global RECONNECT
    RECONNECT = reconnectInterval


logger = logging.getLogger("wsio.client")

#: Close codes after which ``run_forever(reconnect=...)`` returns rather than reconnects.
_CLEAN_CODES = (1000, 1005)


class WebSocketApp:
    """websocket-client's event-driven client: callbacks, ``run_forever()``, reconnection.

    ::

        def on_message(ws, message):
            print(message)

        app = WebSocketApp("wss://example.com/", on_message=on_message)
        app.run_forever(reconnect=5)

    Callbacks get the app first, like websocket-client's: ``on_open(ws)``,
    ``on_reconnect(ws)``, ``on_message(ws, message)`` (``str`` or ``bytes``),
    ``on_data(ws, data, opcode, fin)``, ``on_cont_message(ws, data, fin)``,
    ``on_ping(ws, data)``, ``on_pong(ws, data)``, ``on_error(ws, exception)``,
    ``on_close(ws, close_status_code, close_msg)`` (``None, None`` without a
    close frame). They run in the thread that called :meth:`run_forever`; an
    exception in one goes to ``on_error``.

    Other keyword arguments are wsio options for each connection
    (``compression``, ``max_size``, ...), as for :func:`wsio.sync.connect`.
    """

    def __init__(
        self,
        url: str,
        header: Any = None,
        on_open: Callable[..., Any] | None = None,
        on_reconnect: Callable[..., Any] | None = None,
        on_message: Callable[..., Any] | None = None,
        on_error: Callable[..., Any] | None = None,
        on_close: Callable[..., Any] | None = None,
        on_ping: Callable[..., Any] | None = None,
        on_pong: Callable[..., Any] | None = None,
        on_cont_message: Callable[..., Any] | None = None,
        keep_running: bool = True,
        get_mask_key: Any = None,
        cookie: str | None = None,
        subprotocols: Any = None,
        on_data: Callable[..., Any] | None = None,
        socket: Any = None,
        **options: Any,
    ) -> None:
        self.url = url
        self.header = header if header is not None else []
        self.cookie = cookie
        self.on_open = on_open
        self.on_reconnect = on_reconnect
        self.on_message = on_message
        self.on_data = on_data
        self.on_error = on_error
        self.on_close = on_close
        self.on_ping = on_ping
        self.on_pong = on_pong
        self.on_cont_message = on_cont_message
        self.keep_running = False  # websocket-client ignores the argument too
        self.get_mask_key = get_mask_key
        self.sock: WebSocket | None = None
        self.last_ping_tm = 0.0
        self.last_pong_tm = 0.0
        self.subprotocols = subprotocols
        self.prepared_socket = socket
        self.has_errored = False
        self.has_done_teardown = False
        self.has_done_teardown_lock = threading.Lock()
        #: The close frame the server answered :meth:`close` with (``None`` until then).
        self.last_close_frame: ABNF | None = None
        self.ping_interval: float = 0
        self.ping_timeout: float | None = None
        self.ping_payload = ""
        self.options = options
        self._stop = threading.Event()

    # -- sending and closing, from any thread --------------------------------------------

    def send(self, data: str | bytes, opcode: int = ABNF.OPCODE_TEXT) -> None:
        """Send a message; raise :class:`WebSocketConnectionClosedException` if not connected."""
        sock = self.sock
        if sock is None or sock.send(data, opcode) == 0:
            raise WebSocketConnectionClosedException("Connection is already closed.")

    def send_text(self, text_data: str) -> None:
        self.send(text_data, ABNF.OPCODE_TEXT)

    def send_bytes(self, data: bytes) -> None:
        self.send(data, ABNF.OPCODE_BINARY)

    def close(self, **kwargs: Any) -> None:
        """Close the connection and make :meth:`run_forever` return (``status``, ``reason``, ``timeout`` as in ``WebSocket.close``)."""
        self.keep_running = False
        self._stop.set()
        sock = self.sock  # run_forever() may clear self.sock meanwhile: keep this one
        if sock is not None:
            sock.close(**kwargs)
            self.last_close_frame = getattr(sock, "close_frame", None)

    def ready(self) -> bool:
        """True while connected."""
        return bool(self.sock is not None and self.sock.connected)

    # -- callbacks and close frames ------------------------------------------------------------

    def _callback(self, callback: Callable[..., Any] | None, *args: Any) -> None:
        """Call ``callback(self, *args)``; an exception goes to ``on_error`` (unless it came from there)."""
        if callback is None:
            return
        try:
            callback(self, *args)
        except Exception as exc:
            logger.error("error from callback %s: %s", callback, exc, exc_info=logger.isEnabledFor(logging.DEBUG))
            if self.on_error is not None and callback is not self.on_error:
                self.on_error(self, exc)

    def _parse_close_frame(self, close_frame: ABNF | None) -> tuple[int | None, str | None]:
        """``(code, reason)`` of a close frame; ``(None, None)`` without a code.

        A reason that isn't valid UTF-8 is decoded with replacement characters.
        """
        if close_frame is None or not getattr(close_frame, "data", None):
            return None, None
        data = close_frame.data
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        if len(payload) < 2:
            return None, None
        code = int.from_bytes(payload[:2], "big")
        reason = payload[2:].decode("utf-8", errors="replace") if len(payload) > 2 else None
        return code, reason

    def _get_close_args(self, close_frame: ABNF | None) -> list[Any]:
        """The arguments ``on_close`` gets after ``ws``: ``[code, reason]``, or ``[None, None]``."""
        if not close_frame or self.on_close is None:
            return [None, None]
        code, reason = self._parse_close_frame(close_frame)
        if code == 1005:
            return [None, None]
        return [code, reason]

    def create_dispatcher(
        self,
        ping_timeout: float | None,
        dispatcher: Any = None,
        is_ssl: bool = False,
        handleDisconnect: Callable[..., Any] | None = None,
    ) -> Dispatcher | SSLDispatcher | WrappedDispatcher:
        """The loop :meth:`run_forever` reads with: ``dispatcher`` (``rel`` or alike) wrapped in a
        :class:`WrappedDispatcher`, else a :class:`SSLDispatcher` or :class:`Dispatcher` waking up
        every ``ping_timeout`` seconds (10 by default)."""
        if dispatcher:
            return WrappedDispatcher(self, ping_timeout, dispatcher, handleDisconnect)
        timeout = ping_timeout or 10
        if is_ssl:
            return SSLDispatcher(self, timeout)
        return Dispatcher(self, timeout)

    # -- the loop -------------------------------------------------------------------------------

    def run_forever(
        self,
        sockopt: Any = None,
        sslopt: dict[str, Any] | None = None,
        ping_interval: float = 0,
        ping_timeout: float | None = None,
        ping_payload: str = "",
        http_proxy_host: str | None = None,
        http_proxy_port: int | None = None,
        http_no_proxy: Any = None,
        http_proxy_auth: Any = None,
        http_proxy_timeout: float | None = None,
        skip_utf8_validation: bool = False,
        host: str | None = None,
        origin: str | None = None,
        dispatcher: Any = None,
        suppress_origin: bool = False,
        suppress_host: bool = False,
        proxy_type: str | None = None,
        reconnect: float | None = None,
    ) -> bool:
        """Connect and dispatch events to the callbacks until closed; return True if an error occurred.

        Args:
            sslopt: TLS options (``{"cert_reqs": ssl.CERT_NONE}`` disables verification).
            ping_interval: seconds between keepalive pings (0: none).
            ping_timeout: seconds to wait for each pong before the connection
                counts as lost (``None``: no limit); less than ``ping_interval``.
            reconnect: seconds to wait before reconnecting after the
                connection is lost *in any way other than a clean close*
                (a close frame with 1000 or no code, or :meth:`close`): a
                reset, EOF, a keepalive timeout, a protocol error, a close
                frame with 1001 or an error code, a failed reconnection
                attempt (a refused connection, a server that closes during
                the handshake, a 500/502/503/504 answer; not a 403 or a bad
                URI, which retrying won't fix). ``on_error`` reports each
                loss, ``on_reconnect`` (or ``on_open``) each new connection.
                0: don't reconnect; ``None``: the value of
                :func:`set_reconnect` (0 by default).
            dispatcher: an external event loop to run on instead of this
                thread, such as ``rel`` (``rel.safe_read()``, then
                ``run_forever(dispatcher=rel)`` returns at once and
                ``rel.dispatch()`` runs the callbacks).
            ping_payload: accepted; keepalive pings carry random data so
                that pongs can be matched.
            http_proxy_host, http_proxy_port: the proxy (both needed; without
                them ``https_proxy`` / ``http_proxy`` / ``all_proxy`` from the
                environment apply).
            http_proxy_auth: ``(user, password)`` for the proxy.
            proxy_type: ``"http"`` (default), ``"socks4"``, ``"socks4a"``,
                ``"socks5"`` or ``"socks5h"`` (SOCKS: ``pip install wsio[socks]``).
            http_no_proxy: hosts reached directly (default: ``NO_PROXY``).
            http_proxy_timeout: seconds for connecting through the proxy.
                A failing proxy reports a :class:`WebSocketProxyException`
                (with ``proxy_status``) through ``on_error``; see :doc:`/topics/proxies`.
            suppress_host: accepted; wsio always sends ``Host`` (HTTP/1.1 requires it),
                ``host=`` overrides its value.
        """
        if reconnect is None:
            reconnect = RECONNECT
        if ping_timeout is not None and ping_timeout <= 0:
            raise WebSocketException("Ensure ping_timeout > 0")
        if ping_interval is not None and ping_interval < 0:
            raise WebSocketException("Ensure ping_interval >= 0")
        if ping_timeout and ping_interval and ping_interval <= ping_timeout:
            raise WebSocketException("Ensure ping_interval > ping_timeout")
        if self.sock is not None:
            raise WebSocketException("socket is already opened")
        self.ping_interval = ping_interval or 0
        self.ping_timeout = ping_timeout
        self.ping_payload = ping_payload
        self.keep_running = True
        self.has_errored = False
        self.has_done_teardown = False
        self._stop.clear()
        options = dict(self.options)
        options.setdefault("ping_interval", ping_interval or None)
        options.setdefault("ping_timeout", ping_timeout if ping_interval else None)
        connect_options = dict(
            cookie=self.cookie,
            http_proxy_host=http_proxy_host,
            http_proxy_port=http_proxy_port,
            http_proxy_auth=http_proxy_auth,
            http_no_proxy=http_no_proxy,
            http_proxy_timeout=http_proxy_timeout,
            proxy_type=proxy_type,
            host=host,
            origin=origin,
            suppress_origin=suppress_origin,
            subprotocols=self.subprotocols,
            socket=self.prepared_socket,
        )
        run = _Run(self, reconnect or 0, dispatcher, sockopt, sslopt, skip_utf8_validation, options, connect_options)
        return run.start()

    # The rest of run_forever() lives in _Run below: one per call.


def _retryable(exc: BaseException) -> bool:
    """Whether a failed connection attempt may succeed later (what ``reconnect`` retries).

    As :func:`wsio.asyncio.client.process_exception` decides, and also a
    handshake cut short or garbled: a server closing connections while it
    restarts, or a load balancer with no backend yet.
    """
    original = exc.__cause__ if isinstance(exc, WebSocketException) and exc.__cause__ is not None else exc
    if isinstance(original, InvalidMessage):
        return True
    return isinstance(original, Exception) and process_exception(original) is None


class _Run:
    """The state of one :meth:`WebSocketApp.run_forever` call: connect, read, reconnect, tear down.

    The structure is websocket-client's (a dispatcher calls :meth:`read`
    while the socket has data, :meth:`closed` and :meth:`disconnected`
    decide between reconnecting and :meth:`teardown`), so the same custom
    dispatchers work. On a connection wsio opened, the reading happens in
    wsio's reader thread and the dispatcher waits on an event socket that
    signals queued frames; keepalive pings are wsio's.
    """

    def __init__(
        self,
        app: WebSocketApp,
        reconnect: float,
        dispatcher: Any,
        sockopt: Any,
        sslopt: dict[str, Any] | None,
        skip_utf8_validation: bool,
        options: dict[str, Any],
        connect_options: dict[str, Any],
    ) -> None:
        self.app = app
        self.reconnect = reconnect
        self.custom = bool(dispatcher)
        self.external = dispatcher
        self.sockopt = sockopt
        self.sslopt = sslopt
        self.skip_utf8_validation = skip_utf8_validation
        self.options = options
        self.connect_options = connect_options
        self.reconnecting = False
        self.dispatcher = app.create_dispatcher(app.ping_timeout, dispatcher, parse_url(app.url)[3], self.closed)

    def start(self) -> bool:
        app = self.app
        try:
            self.connect_and_read()
            if not self.custom:
                while app.keep_running and self.reconnect:
                    if app._stop.wait(self.reconnect):
                        break
                    self.connect_and_read(reconnecting=True)
        except (KeyboardInterrupt, SystemExit):
            self.teardown()
            raise
        except Exception as exc:  # pragma: no cover - a bug in a dispatcher; report it
            logger.info("tearing down on exception %s", exc)
            self.teardown()
        finally:
            if not self.custom:
                self.teardown()
        return app.has_errored

    # -- one connection ------------------------------------------------------------------------

    def connect_and_read(self, reconnecting: bool = False) -> None:
        """Open a connection and read it until it ends (or, with a custom dispatcher, register it)."""
        app = self.app
        if not app.keep_running:
            return
        self.reconnecting = self.reconnecting or reconnecting
        if reconnecting and app.sock is not None:
            app.sock.shutdown()
        app.last_close_frame = None
        ws = WebSocket(
            get_mask_key=app.get_mask_key,
            sockopt=self.sockopt,
            sslopt=self.sslopt,
            fire_cont_frame=app.on_cont_message is not None,
            skip_utf8_validation=self.skip_utf8_validation,
            enable_multithread=True,
            dispatcher=self.external,
            **self.options,
        )
        app.sock = ws
        ws.settimeout(getdefaulttimeout())
        try:
            header = app.header() if callable(app.header) else app.header
            ws.connect(app.url, header=header, **self.connect_options)
        except Exception as exc:
            app.sock = None
            self.connect_failed(exc)
            return
        if self.reconnecting and app.on_reconnect is not None:
            app._callback(app.on_reconnect)
        else:
            app._callback(app.on_open)
        wakeup = getattr(ws, "_event_socket", None)
        try:
            if self.custom and wakeup is not None and not ws._socket_mode:
                self.dispatcher.read(wakeup(), self.read_queued, self.check)
            else:
                self.dispatcher.read(ws.sock, self.read, self.check)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            self.disconnected(exc)

    def connect_failed(self, exc: BaseException) -> None:
        """A connection attempt failed: report it (once per outage) and retry if it may work later."""
        app = self.app
        app.has_errored = True
        retry = bool(self.reconnect) and app.keep_running and _retryable(exc)
        if not (self.reconnecting and retry):  # websocket-client reports the loss, not each failed retry
            app._callback(app.on_error, convert_exception(exc))
        if retry:
            self.reconnecting = True
            if self.custom:
                self.dispatcher.reconnect(self.reconnect, self.connect_and_read)
            return
        app.keep_running = False
        self.teardown()

    def read(self) -> bool:
        """Read one frame and call its callback; False when the connection is over."""
        app = self.app
        if not app.keep_running:
            self.teardown()
            return False
        ws = app.sock
        if ws is None:
            return False
        try:
            opcode, frame = ws.recv_data_frame(True)
        except (WebSocketConnectionClosedException, WebSocketTimeoutException, ConnectionResetError, OSError) as exc:
            if not app.keep_running:  # our own close(): its answer is in last_close_frame
                self.teardown()
                return False
            if self.custom:
                return self.closed(exc)
            raise
        if opcode == ABNF.OPCODE_CLOSE:
            return self.closed(frame)
        if opcode == ABNF.OPCODE_PING:
            app.last_ping_tm = time.time()
            app._callback(app.on_ping, frame.data)
        elif opcode == ABNF.OPCODE_PONG:
            app.last_pong_tm = time.time()
            app._callback(app.on_pong, frame.data)
        elif opcode == ABNF.OPCODE_CONT and app.on_cont_message is not None:
            data = frame.data
            if getattr(ws, "_fragment_text_rcvd", False) and isinstance(data, bytes):
                data = data.decode("utf-8")
            app._callback(app.on_data, data, frame.opcode, frame.fin)
            app._callback(app.on_cont_message, data, frame.fin)
        else:
            data = frame.data
            if opcode == ABNF.OPCODE_TEXT and isinstance(data, bytes):
                data = data.decode("utf-8")
            if hasattr(ws, "_fragment_text_rcvd"):
                ws._fragment_text_rcvd = opcode == ABNF.OPCODE_TEXT
            app._callback(app.on_data, data, frame.opcode, True)
            app._callback(app.on_message, data)
        return True

    def read_queued(self) -> bool:
        """For an external dispatcher: handle every frame wsio's reader has queued."""
        ws = self.app.sock
        if ws is None:
            return False
        ws._event_socket_drain()
        while ws._event_ready():
            more = self.read()
            if not more or self.app.sock is not ws:  # over (reconnecting registers a new socket)
                return False
        return True

    def check(self) -> bool:
        """Called by the dispatcher between reads; keepalive timeouts are detected by wsio's reader."""
        return True

    def closed(self, reason: Any = "closed unexpectedly") -> bool:
        """The connection ended: a close frame, an exception, or a message."""
        app = self.app
        close_frame = None
        if isinstance(reason, str):
            reason = WebSocketConnectionClosedException(reason)
        elif isinstance(reason, ABNF) and reason.opcode == ABNF.OPCODE_CLOSE:
            close_frame = reason
            code, text = app._parse_close_frame(reason)
            if code is None or code == 1005:
                message = "Connection closed"
            elif code == 1000:
                message = "Connection closed normally (code 1000)"
            else:
                message = f"Connection closed (code {code})"
            if text:
                message = f"{message}: {text}"
            rcvd = Close(code, text or "") if code is not None else None
            reason = WebSocketConnectionClosedException(message, rcvd=rcvd, why="the server closed the connection")
            reason.status_code = code
        return self.disconnected(reason, close_frame)

    def disconnected(self, exc: BaseException, close_frame: ABNF | None = None) -> bool:
        """Report a lost connection to ``on_error``, then reconnect or tear down.

        As in websocket-client, ``on_error`` hears of every end but the
        app's own :meth:`~WebSocketApp.close` (a server's close frame too,
        as a :class:`WebSocketConnectionClosedException` with ``status_code``
        and ``reason``), except a clean close while ``reconnect`` is set,
        which ends the run quietly.
        """
        app = self.app
        if not app.keep_running:  # the app closed it
            self.teardown(close_frame)
            return app.has_errored
        clean = False
        if close_frame is not None:
            code = app._parse_close_frame(close_frame)[0]
            clean = code is None or code in _CLEAN_CODES
        if not clean:
            app.has_errored = True
        if not (self.reconnect and clean):
            app._callback(app.on_error, convert_exception(exc))
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            self.teardown(close_frame)
            raise exc
        if clean or not self.reconnect:
            app.keep_running = False
            self.teardown(close_frame)
            return app.has_errored
        logger.info("%s - reconnecting in %s s", exc, self.reconnect)
        self.reconnecting = True
        ws = app.sock
        app.sock = None
        if ws is not None:
            try:
                ws.shutdown()
            except Exception:  # pragma: no cover - best effort
                pass
        if self.custom:
            self.dispatcher.reconnect(self.reconnect, self.connect_and_read)
        return app.has_errored

    def teardown(self, close_frame: ABNF | None = None) -> None:
        """Close the connection (if still open) and call ``on_close``, once."""
        app = self.app
        with app.has_done_teardown_lock:
            if app.has_done_teardown:
                return
            app.has_done_teardown = True
        app.keep_running = False
        ws = app.sock
        app.sock = None
        if ws is not None:
            try:
                ws.close()
            except Exception:  # pragma: no cover - closing is best effort here
                pass
            if close_frame is None and app.last_close_frame is None:
                app.last_close_frame = getattr(ws, "close_frame", None)
        code, reason = app._get_close_args(close_frame or app.last_close_frame)
        app._callback(app.on_close, code, reason)
