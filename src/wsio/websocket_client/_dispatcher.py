"""websocket-client's ``_dispatcher``: the loops that wait for a socket to be readable and call back.

``WebSocketApp.create_dispatcher()`` returns one of these. :class:`Dispatcher`
and :class:`SSLDispatcher` wait with a selector in the calling thread;
:class:`WrappedDispatcher` hands the waiting to an external event loop such
as ``rel`` (anything with ``read(sock, callback)``, ``timeout(seconds,
callback, *args)``, ``signal(signum, handler)``, ``abort()`` and
``buffwrite(sock, data, send, on_disconnect)``).
"""

from __future__ import annotations

import selectors
import socket
import time
from typing import TYPE_CHECKING, Any, Callable

from ._logging import info
from ._socket import send

if TYPE_CHECKING:
    from ._app import WebSocketApp

__all__ = ["DispatcherBase", "Dispatcher", "SSLDispatcher", "WrappedDispatcher"]


class DispatcherBase:
    """What the dispatchers share: the app, the ``ping_timeout`` they wake up after, timers and sending."""

    def __init__(self, app: WebSocketApp, ping_timeout: float | None) -> None:
        self.app = app
        self.ping_timeout = ping_timeout

    def timeout(self, seconds: float | None, callback: Callable[[], Any]) -> None:
        """Call ``callback`` after ``seconds`` (at once if ``None``), blocking meanwhile."""
        if seconds is not None:
            time.sleep(seconds)
        callback()

    def reconnect(self, seconds: float, reconnector: Callable[..., Any]) -> None:
        """Wait ``seconds``, then call ``reconnector(reconnecting=True)``."""
        info(f"reconnect() - retrying in {seconds} seconds")
        time.sleep(seconds)
        reconnector(reconnecting=True)

    def send(self, sock: socket.socket, data: str | bytes) -> int:
        """Write ``data`` to ``sock`` (see :func:`wsio.websocket_client._socket.send`)."""
        return send(sock, data)


def _read_wsio(app: Any, read_callback: Callable[[], Any]) -> bool:
    """On a connection wsio opened, its reader thread reads the socket: call ``read_callback``
    (which waits for the next frame) until it says stop. False if the socket is the app's own."""
    ws = getattr(app, "sock", None)
    if ws is None or getattr(ws, "_socket_mode", True):
        return False
    while app.keep_running and read_callback():
        pass
    return True


def _app_socket(app: Any) -> Any:
    ws = getattr(app, "sock", None)
    return getattr(ws, "sock", None) if ws is not None else None


class Dispatcher(DispatcherBase):
    """Wait for the app's socket in this thread; call ``read_callback`` when readable (stop when it
    returns false) and ``check_callback`` after each wait (at least every ``ping_timeout`` seconds)."""

    def read(self, sock: socket.socket | None, read_callback: Callable[[], Any], check_callback: Callable[[], Any]) -> None:
        if _read_wsio(self.app, read_callback):
            return
        target = _app_socket(self.app)
        if target is None:
            return
        selector = selectors.DefaultSelector()
        try:
            selector.register(target, selectors.EVENT_READ)
            while self.app.keep_running:
                if selector.select(self.ping_timeout) and not read_callback():
                    break
                check_callback()
        finally:
            selector.close()


class SSLDispatcher(DispatcherBase):
    """:class:`Dispatcher` for a TLS socket: data TLS already decrypted counts as readable."""

    def read(self, sock: socket.socket | None, read_callback: Callable[[], Any], check_callback: Callable[[], Any]) -> None:
        if _read_wsio(self.app, read_callback):
            return
        target = _app_socket(self.app)
        if target is None:
            return
        selector = selectors.DefaultSelector()
        try:
            selector.register(target, selectors.EVENT_READ)
            while self.app.keep_running:
                if self.select(target, selector) and not read_callback():
                    break
                check_callback()
        finally:
            selector.close()

    def select(self, sock: Any, sel: selectors.BaseSelector) -> Any:
        """The socket if it has data (pending in TLS or on the wire within ``ping_timeout``), else ``None``."""
        current = _app_socket(self.app)
        if current is None:
            return None
        if current.pending():
            return [current]
        ready = sel.select(self.ping_timeout)
        return ready[0][0] if ready else None


class WrappedDispatcher:
    """Run an app's reads and timers on an external event loop (``rel``, or one like it).

    Ctrl-C (signal 2) aborts that loop.
    """

    def __init__(
        self,
        app: WebSocketApp,
        ping_timeout: float | None,
        dispatcher: Any,
        handleDisconnect: Callable[..., Any] | None,
    ) -> None:
        self.app = app
        self.ping_timeout = ping_timeout
        self.dispatcher = dispatcher
        self.handleDisconnect = handleDisconnect
        dispatcher.signal(2, dispatcher.abort)

    def read(self, sock: Any, read_callback: Callable[[], Any], check_callback: Callable[[], Any]) -> None:
        """Register ``read_callback`` for ``sock``, and ``check_callback`` every ``ping_timeout`` seconds."""
        self.dispatcher.read(sock, read_callback)
        if self.ping_timeout:
            self.timeout(self.ping_timeout, check_callback)

    def send(self, sock: socket.socket, data: str | bytes) -> int:
        """Queue ``data`` for writing on the loop; return its length."""
        self.dispatcher.buffwrite(sock, data, send, self.handleDisconnect)
        return len(data)

    def timeout(self, seconds: float, callback: Callable[..., Any], *args: Any) -> None:
        self.dispatcher.timeout(seconds, callback, *args)

    def reconnect(self, seconds: float, reconnector: Callable[..., Any]) -> None:
        self.timeout(seconds, reconnector, True)
