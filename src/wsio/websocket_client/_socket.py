"""websocket-client's ``_socket``: default timeout and socket options, and blocking ``send``/``recv`` helpers.

The helpers work on a plain or TLS socket and turn timeouts and EOF into
websocket-client's exceptions; a non-blocking socket (or a TLS one that
wants to read or write) is waited on with a selector for the socket's timeout.
"""

from __future__ import annotations

import errno
import selectors
import socket
from typing import Any

from ._exceptions import WebSocketConnectionClosedException, WebSocketTimeoutException
from ._ssl_compat import SSLEOFError, SSLError, SSLWantReadError, SSLWantWriteError
from ._utils import extract_err_message, extract_error_code

__all__ = [
    "DEFAULT_SOCKET_OPTION",
    "sock_opt",
    "setdefaulttimeout",
    "getdefaulttimeout",
    "recv",
    "recv_line",
    "send",
]

#: Options set on every TCP socket. Small frames leave at once, and a dead
#: peer is noticed by TCP keepalive (after about a minute) where supported.
DEFAULT_SOCKET_OPTION: list[tuple[int, int, int]] = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
if hasattr(socket, "SO_KEEPALIVE"):
    DEFAULT_SOCKET_OPTION.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
for _name, _value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
    if hasattr(socket, _name):
        DEFAULT_SOCKET_OPTION.append((socket.IPPROTO_TCP, getattr(socket, _name), _value))

_default_timeout: float | None = None
_RETRY_ERRNOS = (errno.EAGAIN, errno.EWOULDBLOCK)


class sock_opt:
    """The socket options (``setsockopt()`` tuples) and TLS options of a connection, and its timeout."""

    def __init__(self, sockopt: list[tuple[Any, ...]] | None, sslopt: dict[str, Any] | None) -> None:
        self.sockopt = sockopt if sockopt is not None else []
        self.sslopt = sslopt if sslopt is not None else {}
        self.timeout: float | None = None


def setdefaulttimeout(timeout: float | None) -> None:
    """Set the default timeout, in seconds, of connecting and receiving (``None``, the default: none)."""
    global _default_timeout
    _default_timeout = timeout


def getdefaulttimeout() -> float | None:
    """The default timeout set by :func:`setdefaulttimeout`."""
    return _default_timeout


def _wait(sock: socket.socket, event: int) -> bool:
    selector = selectors.DefaultSelector()
    try:
        selector.register(sock, event)
        return bool(selector.select(sock.gettimeout()))
    finally:
        selector.close()


def _timeout_from(exc: BaseException) -> WebSocketTimeoutException | None:
    if isinstance(exc, TimeoutError):  # socket.timeout too
        return WebSocketTimeoutException("Connection timed out")
    message = extract_err_message(exc)
    if isinstance(exc, (SSLError, OSError)) and isinstance(message, str) and "timed out" in message:
        return WebSocketTimeoutException(message)
    return None


def recv(sock: socket.socket, bufsize: int) -> bytes:
    """Read up to ``bufsize`` bytes; raise :class:`~wsio.sync.WebSocketConnectionClosedException` at EOF
    and :class:`~wsio.sync.WebSocketTimeoutException` after the socket's timeout."""
    if not sock:
        raise WebSocketConnectionClosedException("socket is already closed.")
    try:
        if sock.gettimeout() == 0:
            data = sock.recv(bufsize)
        else:
            retry = False
            try:
                data = sock.recv(bufsize)
            except SSLWantReadError:
                retry = True
            except OSError as exc:
                if isinstance(exc, TimeoutError) or extract_error_code(exc) not in _RETRY_ERRNOS:
                    raise
                retry = True
            if retry:
                if not _wait(sock, selectors.EVENT_READ):
                    raise WebSocketTimeoutException("Connection timed out waiting for data")
                data = sock.recv(bufsize)
    except WebSocketTimeoutException:
        raise
    except (OSError, SSLError) as exc:
        timeout = _timeout_from(exc)
        if timeout is None:
            raise
        raise timeout from exc
    if not data:
        raise WebSocketConnectionClosedException("Connection to remote host was lost.")
    return data


def recv_line(sock: socket.socket) -> bytes:
    """Read up to and including the next ``\\n`` (one byte at a time, as in an HTTP header)."""
    line = bytearray()
    while not line.endswith(b"\n"):
        line += recv(sock, 1)
    return bytes(line)


def send(sock: socket.socket, data: bytes | str) -> int:
    """Write ``data`` (``str`` as UTF-8) once; return how many bytes were written (0 if the socket
    never became writable within its timeout)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not sock:
        raise WebSocketConnectionClosedException("socket is already closed.")
    try:
        if sock.gettimeout() == 0:
            return sock.send(data)
        try:
            return sock.send(data)
        except SSLEOFError:
            raise WebSocketConnectionClosedException("socket is already closed.") from None
        except SSLWantWriteError:
            pass
        except OSError as exc:
            if isinstance(exc, TimeoutError) or extract_error_code(exc) not in _RETRY_ERRNOS:
                raise
        if _wait(sock, selectors.EVENT_WRITE):
            return sock.send(data)
        return 0
    except (WebSocketConnectionClosedException, WebSocketTimeoutException):
        raise
    except (OSError, SSLError) as exc:
        timeout = _timeout_from(exc)
        if timeout is None:
            raise
        raise timeout from exc
