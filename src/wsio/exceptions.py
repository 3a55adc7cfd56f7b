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

The exceptions that the sans-I/O core raises are defined in the core
(``wsio/protocol/errors.py``, and :class:`InvalidStatus` in
``wsio/protocol/handshake.py``), which imports nothing from here; this module
re-exports them and defines the connection-level ones.
"""

from __future__ import annotations

import http
import ssl

from .protocol.errors import (
    ConcurrencyError,
    DuplicateParameter,
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderFormat,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidOrigin,
    InvalidParameterName,
    InvalidParameterValue,
    InvalidProxy,
    InvalidState,
    InvalidURI,
    InvalidUpgrade,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    RedirectError,
    SecurityError,
    WebSocketError,
)
from .protocol.frames import Close, close_code_explanation
from .protocol.handshake import InvalidStatus
from .protocol.datastructures import Headers, HeadersLike
from .protocol.redact import redact_uri

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


# The name older code catches.
InvalidStatusCode = InvalidStatus


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

    def __init__(self, status: int, headers: HeadersLike, body: bytes = b"") -> None:
        self.status = http.HTTPStatus(status)
        self.headers = Headers(headers)
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
