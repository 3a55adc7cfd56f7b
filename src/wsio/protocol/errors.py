"""The exceptions that the sans-I/O core raises: most of wsio's hierarchy.

Their public home is :mod:`wsio.exceptions` (and :mod:`wsio`), which re-exports
them, adds the connection-level ones (:class:`~wsio.exceptions.ConnectionClosed`,
:class:`~wsio.exceptions.ConcurrencyError`) and draws the whole tree.
:class:`~wsio.exceptions.InvalidStatus` carries an HTTP response, so it lives
beside the handshake, in ``wsio/protocol/handshake.py``. This module imports
nothing from wsio but the redaction of URIs, so that every module of the core
can raise these without importing the rest of the package.
"""

from __future__ import annotations

from .redact import redact_uri

__all__ = [
    "ConcurrencyError",
    "WebSocketError",
    "InvalidURI",
    "InvalidHandshake",
    "SecurityError",
    "InvalidMessage",
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
]


class WebSocketError(Exception):
    """Root of every exception that wsio raises on purpose."""


class InvalidURI(WebSocketError, ValueError):
    """A URI is not a valid ``ws://`` or ``wss://`` URI (a :class:`ValueError` too)."""

    def __init__(self, uri: str, msg: str) -> None:
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


# Documented, pickled and shown in tracebacks as wsio.exceptions.<name>, where they are imported from.
for _name in __all__:
    globals()[_name].__module__ = "wsio.exceptions"
del _name
