"""The one exception hierarchy of wsio, rooted at :class:`WebSocketError`.

::

    WebSocketError
    ├── ConnectionClosed                 the connection is closed; code, reason, why
    │   ├── ConnectionClosedOK           1000 or 1001 both ways
    │   └── ConnectionClosedError        anything else, 1006 included
    ├── InvalidURI                       not a ws:// or wss:// URI
    ├── InvalidHandshake                 the opening handshake failed
    │   ├── SecurityError                a handshake limit was exceeded
    │   ├── InvalidMessage               malformed HTTP
    │   ├── InvalidStatus                the server answered something else than 101
    │   ├── InvalidHeader                a header is missing, repeated or wrong
    │   │   ├── InvalidHeaderFormat
    │   │   ├── InvalidHeaderValue
    │   │   ├── InvalidOrigin
    │   │   └── InvalidUpgrade
    │   ├── NegotiationError             an extension or subprotocol can't be agreed
    │   │   ├── DuplicateParameter
    │   │   ├── InvalidParameterName
    │   │   └── InvalidParameterValue
    │   ├── InvalidProxy                 the proxy refused or failed
    │   └── RedirectError                too many redirects, or a bad Location
    ├── ProtocolError                    the peer broke RFC 6455; carries the close code
    │   └── PayloadTooBig                a message exceeds max_size (1009)
    ├── InvalidState                     the call makes no sense in this state
    └── ConcurrencyError                 two coroutines or threads read at once

    ssl.SSLCertVerificationError
    └── CertificateVerificationError     a client couldn't verify the server's certificate

Every message names the value and the limit, so that a log line is enough to
understand what happened.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .protocol.frames import Close
    from .protocol.http11 import Headers, Response

__all__ = [
    "WebSocketError",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidURI",
    "InvalidHandshake",
    "SecurityError",
    "InvalidMessage",
    "InvalidStatus",
    "InvalidStatusCode",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidOrigin",
    "InvalidUpgrade",
    "NegotiationError",
    "DuplicateParameter",
    "InvalidParameterName",
    "InvalidParameterValue",
    "InvalidProxy",
    "RedirectError",
    "ProtocolError",
    "PayloadTooBig",
    "InvalidState",
    "ConcurrencyError",
    "CertificateVerificationError",
    "WebSocketException",
    # websockets' finer-grained names, as aliases (see the end of this module).
    "RequestLineTooLong",
    "StatusLineTooLong",
    "HeaderLineTooLong",
    "TooManyHeaders",
    "TooManyFragments",
    "ProxyError",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidMethod",
    "InvalidProtocol",
]


class WebSocketError(Exception):
    """Root of every exception that wsio raises on purpose."""


# Kept as an alias: code written for other libraries often catches this name.
WebSocketException = WebSocketError


class ConnectionClosed(WebSocketError):
    """Raised when using a connection that is closed, or when it closes.

    Attributes:
        rcvd: the close frame received from the peer, or ``None`` if none was.
        sent: the close frame sent to the peer, or ``None`` if none was.
        rcvd_then_sent: ``True`` if the peer started the closing handshake,
            ``False`` if we did, ``None`` if only one side (or no side) sent one.
        why: what happened, in words ("TCP connection reset by peer",
            "no pong within ping_timeout=20s", "EOF without a close frame", ...).
    """

    def __init__(
        self,
        rcvd: Close | None,
        sent: Close | None,
        rcvd_then_sent: bool | None = None,
        why: str = "",
    ) -> None:
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent
        self.why = why
        super().__init__(rcvd, sent, rcvd_then_sent, why)

    @property
    def code(self) -> int:
        """The close code the connection ended with; 1006 if no close frame was received."""
        if self.rcvd is not None:
            return self.rcvd.code
        return 1006

    @property
    def reason(self) -> str:
        """The close reason received from the peer, or ``""``."""
        if self.rcvd is not None:
            return self.rcvd.reason
        return ""

    def __str__(self) -> str:
        from .protocol.frames import close_code_explanation

        if self.rcvd is None:
            text = f"code = 1006 ({close_code_explanation(1006)}), no close frame received"
            if self.sent is not None:
                text += f"; sent {self.sent}"
        elif self.sent is None:
            text = f"received {self.rcvd}; no close frame sent"
        elif self.rcvd_then_sent:
            text = f"received {self.rcvd}; then sent {self.sent}"
        else:
            text = f"sent {self.sent}; then received {self.rcvd}"
        reasons = {close.reason for close in (self.rcvd, self.sent) if close is not None}
        if self.why and self.why not in reasons:
            text += f" ({self.why})"
        return text


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally: 1000 or 1001 was sent and received."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed abnormally: a protocol error, a lost TCP connection, ..."""


class InvalidURI(WebSocketError, ValueError):
    """A URI is not a valid ``ws://`` or ``wss://`` URI (a :class:`ValueError` too)."""

    def __init__(self, uri: str, msg: str) -> None:
        from .protocol.handshake import redact_uri

        self.uri = uri
        self.msg = msg
        # The text and args show the URI with its password as ***: error
        # messages end up in logs. ``uri`` keeps what was passed.
        super().__init__(redact_uri(uri), msg)

    def __str__(self) -> str:
        return f"{self.args[0]} isn't a valid WebSocket URI: {self.msg}"


class InvalidHandshake(WebSocketError):
    """The opening handshake failed.

    On the server side, ``status`` is the HTTP status wsio answers with.
    """

    status: int = 400


class SecurityError(InvalidHandshake):
    """A handshake limit was exceeded (line length, header count, size, time)."""

    def __init__(self, msg: str, status: int = 400) -> None:
        self.status = status
        super().__init__(msg)


class InvalidMessage(InvalidHandshake):
    """The HTTP request or response is malformed."""

    def __init__(self, msg: str, status: int = 400) -> None:
        self.status = status
        super().__init__(msg)


class InvalidStatus(InvalidHandshake):
    """The server answered the opening handshake with a status other than 101.

    ``response`` holds the whole answer: status, headers and body; ``uri``
    the URI the client asked for, when known.
    """

    uri: str | None = None

    def __init__(self, response: Response) -> None:
        self.response = response
        super().__init__(response)

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> Headers:
        return self.response.headers

    @property
    def body(self) -> bytes:
        return self.response.body

    def __str__(self) -> str:
        status = self.response.status_code
        if 200 <= status < 300:
            # Not a refusal: an HTTP server that doesn't speak WebSocket there.
            page = " with a page" if self.response.body else ""
            where = self.uri or "this URI"
            return f"the server answered HTTP {status}{page}, not a WebSocket handshake: is {where} a WebSocket endpoint?"
        return f"server rejected WebSocket connection: HTTP {status}"


# The name older code catches.
InvalidStatusCode = InvalidStatus


#: Headers whose values are credentials: errors name them but never show
#: their values, which would otherwise reach logs and 400 bodies.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


class InvalidHeader(InvalidHandshake):
    """A header is missing, repeated, or has a wrong value.

    The text shows the value, except for credentials (``Authorization``,
    ``Proxy-Authorization``, ``Cookie``, ``Set-Cookie``): then it only names
    the header. ``value`` holds the value in every case.
    """

    # True when ``value`` describes the error rather than quoting the header.
    _value_is_description = False

    def __init__(self, name: str, value: str | None = None, status: int = 400) -> None:
        self.name = name
        self.value = value
        self.status = status
        super().__init__(name, None if self._hides_value() else value)

    def _hides_value(self) -> bool:
        return bool(self.value) and not self._value_is_description and self.name.lower() in _CREDENTIAL_HEADERS

    def __str__(self) -> str:
        if self.value is None:
            return f"missing {self.name} header"
        if self.value == "":
            return f"empty {self.name} header"
        if self._hides_value():
            return f"invalid {self.name} header (value not shown)"
        return f"invalid {self.name} header: {self.value}"


class InvalidHeaderFormat(InvalidHeader):
    """A header can't be parsed: the text says what was expected and where.

    The text quotes the header, except for credentials (see :class:`InvalidHeader`).
    """

    _value_is_description = True

    def __init__(self, name: str, error: str, header: str, pos: int) -> None:
        if name.lower() in _CREDENTIAL_HEADERS:
            super().__init__(name, f"{error} at {pos}")
        else:
            super().__init__(name, f"{error} at {pos} in {header}")


class InvalidHeaderValue(InvalidHeader):
    """A header has a value wsio does not accept."""


class InvalidOrigin(InvalidHeader):
    """The Origin header is not one of the allowed ``origins``."""

    def __init__(self, origin: str | None) -> None:
        super().__init__("Origin", origin, status=403)


class InvalidUpgrade(InvalidHeader):
    """The Upgrade or Connection header does not ask for a WebSocket upgrade."""


class NegotiationError(InvalidHandshake):
    """An extension or a subprotocol could not be agreed on."""


class DuplicateParameter(NegotiationError):
    """An extension parameter appears twice."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return f"duplicate parameter: {self.name}"


class InvalidParameterName(NegotiationError):
    """An extension parameter is unknown."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return f"invalid parameter name: {self.name}"


class InvalidParameterValue(NegotiationError):
    """An extension parameter has a wrong value."""

    def __init__(self, name: str, value: str | None) -> None:
        self.name = name
        self.value = value
        super().__init__(name, value)

    def __str__(self) -> str:
        if self.value is None:
            return f"missing value for parameter {self.name}"
        return f"invalid value for parameter {self.name}: {self.value}"


class InvalidProxy(InvalidHandshake):
    """The proxy refused the connection or failed; ``status`` is its HTTP status if any."""

    def __init__(self, proxy: str, msg: str, status: int | None = None) -> None:
        self.proxy = proxy
        self.msg = msg
        self.proxy_status = status
        super().__init__(proxy, msg)

    def __str__(self) -> str:
        return f"proxy {self.proxy} failed: {self.msg}"


class RedirectError(InvalidHandshake):
    """A redirect could not be followed (too many, or a bad ``Location``)."""


class ProtocolError(WebSocketError):
    """The peer broke the protocol; ``code`` is the close code wsio fails the connection with."""

    def __init__(self, msg: str, code: int = 1002) -> None:
        self.code = code
        super().__init__(msg)


class PayloadTooBig(ProtocolError):
    """A message exceeds ``max_size`` (close code 1009)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg, 1009)


class InvalidState(WebSocketError):
    """The operation is not allowed in the connection's current state."""


class ConcurrencyError(WebSocketError, RuntimeError):
    """Two coroutines or threads called ``recv()`` at once, or a similar misuse."""



# websockets raises finer-grained exceptions where wsio raises one with a
# precise message. Under websockets' names, as aliases, so that an ``except``
# clause written for websockets catches what wsio raises in that case.
RequestLineTooLong = SecurityError
StatusLineTooLong = SecurityError
HeaderLineTooLong = SecurityError
TooManyHeaders = SecurityError
TooManyFragments = PayloadTooBig
ProxyError = InvalidProxy
InvalidProxyMessage = InvalidProxy
InvalidProxyStatus = InvalidProxy
InvalidMethod = InvalidMessage
InvalidProtocol = InvalidMessage


class AbortHandshake(InvalidHandshake):
    """Raise it in ``process_request`` to answer with this HTTP response instead of upgrading.

    The legacy websockets way; returning a response from ``process_request``
    is the current one. ``status`` is an :class:`http.HTTPStatus` (an ``int``
    is converted), ``headers`` anything :class:`~wsio.Headers` takes.
    """

    def __init__(self, status: int, headers: object, body: bytes = b"") -> None:
        import http

        from .protocol.http11 import Headers

        self.status = http.HTTPStatus(status)
        self.headers = Headers(headers)  # type: ignore[arg-type]
        self.body = body
        super().__init__(f"HTTP {int(self.status)}, {len(self.headers)} headers, {len(body)} bytes")


class RedirectHandshake(InvalidHandshake):
    """A legacy websockets name: the handshake was redirected to ``uri`` (wsio's clients follow redirects themselves)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        super().__init__(uri)

    def __str__(self) -> str:
        return f"redirect to {self.uri}"


# The legacy name of ProtocolError.
WebSocketProtocolError = ProtocolError


class CertificateVerificationError(ssl.SSLCertVerificationError):
    """A client couldn't verify the server's TLS certificate.

    An :exc:`ssl.SSLCertVerificationError` (``except`` clauses for it, or for
    :exc:`ssl.SSLError` and :exc:`OSError`, still catch it), whose message
    says how to connect anyway: trust the certificate with ``ssl=``, or skip
    the check on the command line with ``-k``.
    """

    uri: str | None = None

    @classmethod
    def from_error(cls, exc: ssl.SSLCertVerificationError, uri: str | None = None) -> CertificateVerificationError:
        if isinstance(exc, cls):
            return exc
        new = cls(*exc.args)
        for name in ("library", "reason", "verify_code", "verify_message"):
            setattr(new, name, getattr(exc, name, None))
        if uri is not None:
            from .protocol.handshake import redact_uri  # here: the core imports this module

            uri = redact_uri(uri)  # no credentials in a message
        new.uri = uri
        return new

    def __str__(self) -> str:
        where = f" of {self.uri}" if self.uri else ""
        target = self.uri or "wss://..."
        return (
            f"{super().__str__()}: can't verify the server's certificate{where}. If the server uses "
            "a self-signed certificate or a private CA, trust it with "
            'ssl=ssl.create_default_context(cafile="its-cert.pem"), or pass ssl= an SSLContext of your own '
            f"(proxy_ssl= for an https:// proxy). From the command line, wsio -k (--insecure) {target} "
            "connects without verifying, for testing only."
        )
