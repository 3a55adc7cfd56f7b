"""websocket-client's exceptions, each also the matching wsio exception.

So both styles of ``except`` work: ``except websocket.WebSocketTimeoutException``
and ``except TimeoutError``; ``except websocket.WebSocketBadStatusException``
and ``except wsio.InvalidStatus``; and ``except wsio.WebSocketError`` catches
them all.
"""

from __future__ import annotations

import socket
from typing import Any, Mapping

from ..exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidProxy,
    InvalidStatus,
    PayloadTooBig,
    ProtocolError,
    WebSocketError,
)
from ..protocol.http11 import Response
from ..protocol.datastructures import Headers

__all__ = [
    "WebSocketException",
    "WebSocketProtocolException",
    "WebSocketPayloadException",
    "WebSocketConnectionClosedException",
    "WebSocketTimeoutException",
    "WebSocketProxyException",
    "WebSocketBadStatusException",
    "WebSocketAddressException",
    "WebSocketHandshakeException",
    "convert_exception",
]


class WebSocketException(WebSocketError):
    """Root of the websocket-client exceptions (a :class:`wsio.WebSocketError` too)."""


class WebSocketProtocolException(WebSocketException, ProtocolError):
    """The peer broke the protocol; ``code`` is the close code the connection failed with."""

    def __init__(self, message: str = "", code: int = 1002) -> None:
        ProtocolError.__init__(self, message, code)


class WebSocketPayloadException(WebSocketException, PayloadTooBig):
    """A message exceeded ``max_size`` (close code 1009)."""

    def __init__(self, message: str = "") -> None:
        PayloadTooBig.__init__(self, message)


class WebSocketConnectionClosedException(WebSocketException, ConnectionClosed):
    """The connection is closed: "Connection is already closed."

    Also a :class:`wsio.ConnectionClosed`, with its ``code``, ``reason``,
    ``rcvd``, ``sent`` and ``why`` saying how the connection ended.
    """

    def __init__(
        self,
        message: str = "Connection is already closed.",
        rcvd: Any = None,
        sent: Any = None,
        rcvd_then_sent: bool | None = None,
        why: str = "",
    ) -> None:
        ConnectionClosed.__init__(self, rcvd, sent, rcvd_then_sent, why)
        self.message = message
        self.args = (message,)

    def __str__(self) -> str:
        return self.message


class WebSocketTimeoutException(WebSocketException, TimeoutError):
    """A read, the opening handshake or a keepalive pong timed out."""


class WebSocketProxyException(WebSocketException, InvalidProxy):
    """The proxy refused or failed (``proxy_status``: its HTTP status, if it answered one)."""

    def __init__(self, message: str = "", proxy: str = "", status: int | None = None) -> None:
        InvalidProxy.__init__(self, proxy, message, status)
        self.args = (message,)

    def __str__(self) -> str:
        return f"proxy {self.proxy} failed: {self.msg}" if self.proxy else self.msg


class WebSocketBadStatusException(WebSocketException, InvalidStatus):
    """The server answered the handshake with a status other than 101.

    ``status_code``, ``resp_headers`` (a dict with lowercase names) and
    ``resp_body`` as in websocket-client; ``response`` as in wsio.
    """

    def __init__(
        self,
        message: str,
        status_code: int,
        status_message: str | None = None,
        resp_headers: Mapping[str, str] | None = None,
        resp_body: bytes | None = None,
        response: Response | None = None,
    ) -> None:
        if response is None:
            response = Response(status_code, status_message or "", Headers(resp_headers or {}), resp_body or b"")
        InvalidStatus.__init__(self, response)
        self.message = message
        self.status_message = status_message
        self.resp_headers = dict(resp_headers) if resp_headers is not None else None
        self.resp_body = resp_body
        self.args = (message,)

    def __str__(self) -> str:
        return self.message


class WebSocketAddressException(WebSocketException, socket.gaierror):
    """The host name can't be resolved (a :class:`socket.gaierror` too)."""


class WebSocketHandshakeException(WebSocketException, InvalidHandshake):
    """The opening handshake failed for a reason other than the status code."""


def _lower_headers(headers: Headers) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in headers.raw_items():
        key = name.lower()
        result[key] = f"{result[key]}, {value}" if key in result else value
    return result


def convert_exception(exc: BaseException) -> BaseException:
    """The websocket-client exception for a wsio or socket exception (``exc`` itself if none fits)."""
    if isinstance(exc, WebSocketException):
        return exc
    converted: BaseException
    if isinstance(exc, ConnectionClosed):
        cause = exc.__cause__
        if "ping_timeout" in exc.why:  # wsio fails the connection (1011) when a keepalive pong is late
            converted = WebSocketTimeoutException("ping/pong timed out")
        elif isinstance(cause, PayloadTooBig):
            converted = WebSocketPayloadException(str(cause))
        elif isinstance(cause, ProtocolError):
            converted = WebSocketProtocolException(str(cause), cause.code)
        else:
            converted = WebSocketConnectionClosedException(
                "Connection is already closed.", exc.rcvd, exc.sent, exc.rcvd_then_sent, exc.why
            )
    elif isinstance(exc, InvalidStatus):
        response = exc.response
        headers = _lower_headers(response.headers)
        message = f"Handshake status {response.status_code} {response.reason_phrase} -+-+- {headers} -+-+- {response.body!r}"
        converted = WebSocketBadStatusException(
            message, response.status_code, response.reason_phrase, headers, response.body, response
        )
    elif isinstance(exc, InvalidProxy):
        converted = WebSocketProxyException(exc.msg, exc.proxy, exc.proxy_status)
    elif isinstance(exc, InvalidHandshake):
        converted = WebSocketHandshakeException(str(exc))
    elif isinstance(exc, socket.gaierror):
        converted = WebSocketAddressException(*exc.args)
    elif isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        converted = WebSocketTimeoutException(str(exc) or "timed out")
    else:
        return exc
    converted.__cause__ = exc
    return converted
