"""websocket-client's callback API: :class:`WebSocketApp`, on wsio.sync."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from ..asyncio.client import process_exception
from ..protocol.frames import Close
from ._abnf import ABNF
from ._core import WebSocket
from ._socket import getdefaulttimeout
from ._exceptions import (
    WebSocketConnectionClosedException,
    WebSocketException,
    convert_exception,
)

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
        sock = self.sock
        if sock is not None:
            sock.close(**kwargs)

    # -- the loop -------------------------------------------------------------------------------

    def _callback(self, callback: Callable[..., Any] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(self, *args)
        except Exception as exc:
            logger.error("error from callback %s: %s", callback, exc, exc_info=logger.isEnabledFor(logging.DEBUG))
            if self.on_error is not None:
                self.on_error(self, exc)

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
                attempt. ``on_error`` reports each loss, ``on_reconnect`` (or
                ``on_open``) each new connection. 0: don't reconnect;
                ``None``: the value of :func:`set_reconnect` (0 by default).
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
            dispatcher: custom dispatchers (``rel``) aren't supported; must be ``None``.
        """
        if ping_timeout is not None and ping_timeout <= 0:
            raise WebSocketException("Ensure ping_timeout > 0")
        if ping_interval is not None and ping_interval < 0:
            raise WebSocketException("Ensure ping_interval >= 0")
        if ping_timeout and ping_interval and ping_interval <= ping_timeout:
            raise WebSocketException("Ensure ping_interval > ping_timeout")
        if dispatcher is not None:
            raise WebSocketException("custom dispatchers aren't supported by wsio.sync; call run_forever() in a thread")
        if self.sock is not None:
            raise WebSocketException("socket is already opened")
        if reconnect is None:
            reconnect = RECONNECT
        self.keep_running = True
        self.has_errored = False
        self.has_done_teardown = False
        self._stop.clear()
        options = dict(self.options)
        options.setdefault("ping_interval", ping_interval or None)
        options.setdefault("ping_timeout", ping_timeout if ping_interval else None)
        connect_options = dict(
            header=self.header,
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
        reconnecting = False
        close_args: tuple[Any, Any] = (None, None)
        try:
            while self.keep_running:
                ws = WebSocket(
                    get_mask_key=self.get_mask_key,
                    sockopt=sockopt,
                    sslopt=sslopt,
                    fire_cont_frame=self.on_cont_message is not None,
                    skip_utf8_validation=skip_utf8_validation,
                    **options,
                )
                ws.settimeout(getdefaulttimeout())
                try:
                    ws.connect(self.url, **connect_options)
                except Exception as exc:
                    if not self._lost(exc, reconnecting, reconnect, retry_check=True):
                        break
                    reconnecting = True
                    continue
                self.sock = ws
                if reconnecting and self.on_reconnect is not None:
                    self._callback(self.on_reconnect)
                else:
                    self._callback(self.on_open)
                outcome = self._dispatch(ws)
                if isinstance(outcome, tuple):  # a close frame
                    close_args = outcome
                    code = close_args[0]
                    if not self.keep_running or not reconnect or code is None or code in _CLEAN_CODES:
                        break
                    rcvd = ws.connection.protocol.close_rcvd if ws.connection is not None else None
                    outcome = WebSocketConnectionClosedException(
                        "Connection is already closed.", rcvd, why=f"server closed the connection with {code}"
                    )
                if not self.keep_running:
                    break
                close_args = (None, None)
                self.sock = None
                if not self._lost(outcome, reconnecting, reconnect, retry_check=False):
                    break
                reconnecting = True
        except (KeyboardInterrupt, SystemExit) as exc:
            self._callback(self.on_error, exc)
            self._teardown(close_args)
            raise
        self._teardown(close_args)
        return self.has_errored

    def _lost(self, exc: BaseException, reconnecting: bool, reconnect: float | None, retry_check: bool) -> bool:
        """Report a failed attempt or a lost connection; wait and return True to reconnect."""
        self.sock = None
        self.has_errored = True
        retry = bool(reconnect) and self.keep_running
        original = exc.__cause__ if isinstance(exc, WebSocketException) and exc.__cause__ is not None else exc
        if retry and retry_check and isinstance(original, Exception) and process_exception(original) is not None:
            retry = False  # a 403, a bad URI, a failed negotiation: retrying won't help
        # websocket-client doesn't report failed reconnection attempts, only the loss.
        if not (reconnecting and retry_check and retry):
            self._callback(self.on_error, convert_exception(exc))
        if not retry:
            return False
        logger.info("%s - reconnecting in %s s", exc, reconnect)
        return not self._stop.wait(reconnect)

    def _dispatch(self, ws: WebSocket) -> tuple[Any, Any] | BaseException:
        """Deliver events until the connection ends; return the close frame's (code, reason) or the error."""
        while self.keep_running:
            try:
                opcode, frame = ws.recv_data_frame(True)
            except Exception as exc:
                connection = ws.connection
                if connection is not None:
                    rcvd = connection.protocol.close_rcvd
                    if rcvd is not None and not self.keep_running:
                        return (rcvd.code, rcvd.reason)
                return exc
            if opcode == ABNF.OPCODE_CLOSE:
                if len(frame.data) >= 2:
                    close = Close.parse(frame.data)  # type: ignore[arg-type]
                    return (close.code, close.reason)
                return (1005, None) if self.keep_running else (None, None)
            if opcode == ABNF.OPCODE_PING:
                self.last_ping_tm = time.time()
                self._callback(self.on_ping, frame.data)
            elif opcode == ABNF.OPCODE_PONG:
                self.last_pong_tm = time.time()
                self._callback(self.on_pong, frame.data)
            elif opcode == ABNF.OPCODE_CONT and self.on_cont_message is not None:
                data = frame.data.decode("utf-8") if ws._fragment_text_rcvd else frame.data
                self._callback(self.on_data, data, frame.opcode, frame.fin)
                self._callback(self.on_cont_message, data, frame.fin)
            else:
                data = frame.data
                if opcode == ABNF.OPCODE_TEXT:
                    data = data.decode("utf-8")  # type: ignore[union-attr]
                ws._fragment_text_rcvd = opcode == ABNF.OPCODE_TEXT
                self._callback(self.on_data, data, frame.opcode, True)
                self._callback(self.on_message, data)
        connection = ws.connection
        if connection is not None and connection.protocol.close_rcvd is not None:
            rcvd = connection.protocol.close_rcvd
            return (rcvd.code, rcvd.reason)
        return (None, None)

    def _teardown(self, close_args: tuple[Any, Any]) -> None:
        if self.has_done_teardown:
            return
        self.has_done_teardown = True
        self.keep_running = False
        sock = self.sock
        self.sock = None
        if sock is not None:
            try:
                sock.close()
            except Exception:  # pragma: no cover - closing is best effort here
                pass
        code, reason = close_args
        if code == 1005:
            code = reason = None
        self._callback(self.on_close, code, reason)
