"""The opening handshake (RFC 6455 section 4), for both roles, as pure functions.

Client side::

    wsuri = parse_uri("wss://example.com/chat")
    key = generate_key()
    request = client_request(wsuri, key=key, subprotocols=["chat"])
    ...  # write request.serialize(), feed the answer to a ResponseParser
    subprotocol, extensions = client_handshake(request, response, key=key,
                                               subprotocols=["chat"])

Server side::

    request = RequestParser().feed(data)       # may raise: answer with
    ...                                        # handshake_error_response(exc)
    result = server_handshake(request, subprotocols=["chat"])
    ...  # write result.response.serialize(); if result.error, close

Extensions are negotiated through the :class:`ClientExtensionFactory` and
:class:`ServerExtensionFactory` interfaces defined here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Optional, Protocol, Union, runtime_checkable

from .errors import (
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidOrigin,
    InvalidUpgrade,
    NegotiationError,
)
from ..version import version as wsio_version
from .headers import (
    build_basic_auth,
    build_extension_header,
    build_subprotocol_list,
    parse_connection,
    parse_extension_header,
    parse_subprotocol_list,
    parse_upgrade,
)
from .frames import SPEEDUPS
from .http11 import Request, Response
from .datastructures import Headers, HeadersLike
from .redact import redact_path, redact_uri

# URIs and redirects live in uri.py; they are also importable from here, where they were first.
from .uri import REDIRECT_STATUSES, Redirect, WebSocketURI, follow_redirect, parse_uri

__all__ = [
    "GUID",
    "USER_AGENT",
    "SERVER",
    "ExtensionParameter",
    "Extension",
    "ClientExtensionFactory",
    "ServerExtensionFactory",
    "ExtensionBase",
    "Origin",
    "SelectSubprotocol",
    "ExtraHeaders",
    "accept_key",
    "generate_key",
    "validate_request",
    "ServerHandshakeResult",
    "server_handshake",
    "handshake_error_response",
    "client_request",
    "client_handshake",
    "InvalidStatus",
    "WebSocketURI",
    "parse_uri",
    "redact_uri",
    "redact_path",
    "REDIRECT_STATUSES",
    "Redirect",
    "follow_redirect",
]

#: RFC 6455 1.3: the GUID appended to Sec-WebSocket-Key.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


#: Default ``User-Agent`` sent by clients.
USER_AGENT = f"Python/{sys.version_info.major}.{sys.version_info.minor} wsio/{wsio_version}"
#: Default ``Server`` header sent by servers (no Python version: less to fingerprint).
SERVER = f"wsio/{wsio_version}"


# -- extension negotiation interfaces ---------------------------------------

#: One extension parameter: a name and a value, or None for a bare name.
ExtensionParameter = tuple[str, Optional[str]]


@runtime_checkable
class Extension(Protocol):
    """An extension agreed on in the handshake, used by the connection."""

    name: str


@runtime_checkable
class ClientExtensionFactory(Protocol):
    """Client-side negotiation of one extension (RFC 6455 9.1)."""

    name: str

    def get_request_params(self) -> list[ExtensionParameter]:
        """Return the parameters to offer in ``Sec-WebSocket-Extensions``."""
        ...

    def process_response_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> Extension:
        """Build the extension from the server's answer.

        ``accepted_extensions`` are the extensions accepted before this one,
        in order.  Raise :class:`~wsio.exceptions.NegotiationError` to refuse.
        """
        ...


@runtime_checkable
class ServerExtensionFactory(Protocol):
    """Server-side negotiation of one extension (RFC 6455 9.1)."""

    name: str

    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Accept one offer: return the response parameters and the extension.

        Raise :class:`~wsio.exceptions.NegotiationError` to decline this
        offer; the next offer with the same name is then tried.
        """
        ...


class ExtensionBase:
    """A tiny base for extensions and factories: a class-level ``name``.

    Optional: anything with a ``name`` attribute satisfies the protocols.
    Subclasses set ``name`` as a class attribute or in ``__init__``; there is
    no default here, so that a dataclass subclass keeps ``name`` required.
    """

    name: str

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'name', '?')}>"


# -- keys ---------------------------------------------------------------------


def accept_key(key: str) -> str:
    """Compute ``Sec-WebSocket-Accept`` for ``key`` (RFC 6455 4.2.2 step 5.4)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return binascii.b2a_base64(digest, newline=False).decode("ascii")  # base64.b64encode() without its wrapper


def generate_key() -> str:
    """Return a fresh ``Sec-WebSocket-Key``: 16 random bytes, base64 (RFC 6455 4.1)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


# -- server side --------------------------------------------------------------

#: An allowed ``Origin``: an exact value, a pattern (fullmatch), or None for
#: "no Origin header" (non-browser clients).
Origin = Union[str, re.Pattern[str], None]
#: ``select_subprotocol(client_subprotocols, server_subprotocols)``.
SelectSubprotocol = Callable[[list[str], list[str]], Optional[str]]
#: Extra response headers, or ``(path, request_headers) -> extra headers``.
ExtraHeaders = Union[HeadersLike, Callable[[str, Headers], Optional[HeadersLike]]]


def _single(headers: Headers, name: str, status: int = 400) -> str:
    """Return the only value of ``name``; a missing or repeated header is an error."""
    values = headers._dict.get(name.lower(), ())  # the index, read only: no copy as get_all() makes
    if not values:
        raise InvalidHeader(name, None, status)
    if len(values) > 1:
        # A repeated security header may be an attempt to slip one value past
        # a proxy that reads the other.
        raise InvalidHeader(name, f"more than one value: {', '.join(values)}", status)
    return values[0]


def _combined(headers: Headers, name: str) -> str | None:
    """Join repeated header lines (RFC 7230 3.2.2); None if absent."""
    values = headers._dict.get(name.lower())  # the index, read only: no copy as get_all() makes
    if not values:
        return None
    return values[0] if len(values) == 1 else ", ".join(values)


# A base64-encoded 16-byte nonce: 22 characters and two of padding, what
# base64.b64decode(key, validate=True) accepts and decodes to 16 bytes.
_KEY_RE = re.compile(r"[A-Za-z0-9+/]{22}==")


# The C accelerator, when built and allowed, checks the usual request and computes its
# accept key in one call (None for anything else: validate_request() and accept_key()).
usual_accept: Callable[[dict[str, list[str]]], str | None] | None = None
if SPEEDUPS:
    from ._speedups import usual_accept


def validate_request(request: Request) -> str:
    """Check the client's handshake request (RFC 6455 4.2.1); return its key.

    Raise an :class:`~wsio.exceptions.InvalidHandshake` subclass whose
    ``status`` is the HTTP status to answer with.
    """
    if request.method != "GET":
        raise InvalidMessage(f"unsupported HTTP method {request.method}; only GET is allowed", 405)
    if request.version != "HTTP/1.1":
        raise InvalidMessage(f"unsupported HTTP version {request.version}; only HTTP/1.1 is supported")
    headers = request.headers
    _single(headers, "Host")

    # A plain HTTP request (a browser visiting the URL) fails here: 426 tells
    # it which protocol to use (RFC 7231 6.5.15).
    upgrade = _combined(headers, "Upgrade")
    if upgrade is None:
        raise InvalidUpgrade("Upgrade", None, 426)
    # The usual values first: one token, which the list parsers would return as is.
    if upgrade.lower() != "websocket" and not any(protocol.lower() == "websocket" for protocol in parse_upgrade(upgrade)):
        raise InvalidUpgrade("Upgrade", upgrade, 426)
    connection = _combined(headers, "Connection")
    if connection is None:
        raise InvalidUpgrade("Connection", None, 426)
    if connection.lower() != "upgrade" and not any(option.lower() == "upgrade" for option in parse_connection(connection)):
        raise InvalidUpgrade("Connection", connection, 426)

    key = _single(headers, "Sec-WebSocket-Key")
    if _KEY_RE.fullmatch(key) is None:
        # RFC 6455 4.1: a base64-encoded 16-byte nonce, nothing else.
        raise InvalidHeaderValue("Sec-WebSocket-Key", key)

    versions = headers._dict.get("sec-websocket-version", [])
    if versions != ["13"]:
        # RFC 6455 4.2.2: answer 426 with the versions we support.
        raise InvalidHeaderValue("Sec-WebSocket-Version", ", ".join(versions) if versions else None, status=426)
    return key


def _check_origin(headers: Headers, origins: Sequence[Origin] | None) -> None:
    """RFC 6455 4.2.2 / 10.2: refuse browsers from origins we don't trust (403)."""
    if origins is None:
        return
    values = headers.get_all("Origin")
    if len(values) > 1:
        raise InvalidHeader("Origin", f"more than one value: {', '.join(values)}", 403)
    origin = values[0] if values else None
    for allowed in origins:
        if allowed is None:
            if origin is None:
                return
        elif isinstance(allowed, re.Pattern):
            if origin is not None and allowed.fullmatch(origin) is not None:
                return
        elif origin == allowed:
            return
    raise InvalidOrigin(origin)


def _server_extensions(headers: Headers, factories: Sequence[ServerExtensionFactory]) -> tuple[str | None, list[Extension]]:
    """Accept the client's offers in its order, one extension per factory."""
    accepted: list[Extension] = []
    # Without factories the header is ignored, even if malformed: nothing to agree on.
    if not factories:
        return None, accepted
    header = _combined(headers, "Sec-WebSocket-Extensions")
    if header is None:
        return None, accepted
    response_items: list[tuple[str, list[ExtensionParameter]]] = []
    used: set[int] = set()
    for name, params in parse_extension_header(header):
        for index, factory in enumerate(factories):
            if index in used or factory.name != name:
                continue
            try:
                response_params, extension = factory.process_request_params(params, accepted)
            except NegotiationError:
                continue  # decline this offer; the client may offer it again
            used.add(index)
            accepted.append(extension)
            response_items.append((name, response_params))
            break
    if not response_items:
        return None, accepted
    return build_extension_header(response_items), accepted


def _server_subprotocol(
    headers: Headers,
    subprotocols: Sequence[str] | None,
    select_subprotocol: SelectSubprotocol | None,
) -> str | None:
    if subprotocols is None and select_subprotocol is None:
        return None
    header = _combined(headers, "Sec-WebSocket-Protocol")
    client = parse_subprotocol_list(header) if header is not None else []
    server = list(subprotocols or ())
    if select_subprotocol is not None:
        chosen = select_subprotocol(client, server)
        if chosen is not None and chosen not in client:
            # RFC 6455 4.2.2: the server may only pick an offered value.
            # That is our bug, not the client's: 500.
            error = NegotiationError(f"select_subprotocol returned {chosen!r}, which the client didn't offer")
            error.status = 500
            raise error
        return chosen
    # Server preference order; no match still succeeds, without a subprotocol.
    for subprotocol in server:
        if subprotocol in client:
            return subprotocol
    return None


@dataclass
class ServerHandshakeResult:
    """What :func:`server_handshake` decided.

    Attributes:
        response: the response to send: a 101, or an error page.
        subprotocol: the agreed subprotocol, if any.
        extensions: the agreed extensions, in order.
        error: why the handshake failed, or None on success.  Close the
            connection after sending ``response`` if it is set.
    """

    response: Response
    subprotocol: str | None = None
    extensions: list[Extension] = field(default_factory=list)
    error: Exception | None = None


def handshake_error_response(exc: BaseException, *, server_header: str | None = SERVER) -> Response:
    """Build the HTTP response for a failed handshake.

    The status comes from ``exc.status`` for :class:`InvalidHandshake` (500
    for anything else, which is a server bug).  Adds ``Allow: GET`` to a 405
    (RFC 7231 6.5.5), and ``Upgrade: websocket`` plus ``Sec-WebSocket-Version:
    13`` to a 426 (RFC 7231 6.5.15, RFC 6455 4.2.2).  Use it also for errors
    raised by :class:`~wsio.protocol.http11.RequestParser`.
    """
    if isinstance(exc, InvalidHandshake):
        status = exc.status
    else:
        status = 500
    if status >= 500:
        # Don't leak server internals to the peer.
        body = "Failed to open a WebSocket connection.\nSee server log for more information.\n"
    else:
        body = f"Failed to open a WebSocket connection: {exc}.\n"
    headers = Headers()
    if status == 405:
        headers["Allow"] = "GET"
    if status == 426:
        headers["Upgrade"] = "websocket"
        headers["Connection"] = "Upgrade, close"
        headers["Sec-WebSocket-Version"] = "13"
    if server_header is not None:
        headers["Server"] = server_header
    return Response.from_status(status, body, headers)


# The last Server header found valid: a server sends the same one on every
# connection, checked once rather than per handshake. Identity, not equality:
# str is immutable, so the very object that was checked is still valid.
_valid_server_header: str | None = None


def _add_server_header(headers: Headers, value: str) -> None:
    global _valid_server_header
    if value is _valid_server_header:
        headers._append("Server", value)
    else:
        headers["Server"] = value  # checked: ValueError for CR, LF or other control characters
        _valid_server_header = value


def server_handshake(
    request: Request,
    *,
    origins: Sequence[Origin] | None = None,
    subprotocols: Sequence[str] | None = None,
    select_subprotocol: SelectSubprotocol | None = None,
    extensions: Sequence[ServerExtensionFactory] = (),
    server_header: str | None = SERVER,
    extra_headers: ExtraHeaders | None = None,
) -> ServerHandshakeResult:
    """Answer the client's handshake request (RFC 6455 4.2.2).

    Never raises: a bad request (or a failing callback) yields an error
    response with ``error`` set; success yields a 101 with the agreed
    subprotocol and extensions.

    Args:
        origins: allowed ``Origin`` values (exact strings, compiled patterns
            matched in full, None for "no Origin"); None allows any.
        subprotocols: the server's subprotocols, in preference order.
        select_subprotocol: ``(client_subprotocols, server_subprotocols) ->
            str | None``, replacing the default choice.
        extensions: server extension factories, tried against each offer.
        server_header: the ``Server`` header; None omits it.
        extra_headers: headers added to the 101 response, or a callable
            ``(path, request_headers)`` returning them.
    """
    try:
        accept = None
        if usual_accept is not None and request.method == "GET" and request.version == "HTTP/1.1":
            accept = usual_accept(request.headers._dict)
        if accept is None:
            accept = accept_key(validate_request(request))
        _check_origin(request.headers, origins)
        extensions_header, accepted = _server_extensions(request.headers, extensions)
        subprotocol = _server_subprotocol(request.headers, subprotocols, select_subprotocol)

        # Values valid by construction (base64 for the accept key): no re-validation.
        headers = Headers._made(["Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", accept])
        if extensions_header is not None:
            headers["Sec-WebSocket-Extensions"] = extensions_header
        if subprotocol is not None:
            headers["Sec-WebSocket-Protocol"] = subprotocol
        if server_header is not None:
            _add_server_header(headers, server_header)
        if extra_headers is not None:
            extra = extra_headers(request.path, request.headers) if callable(extra_headers) else extra_headers
            if extra is not None:
                headers.update(extra)
        # Kept as long as the connection: a list of its size, not the larger one the appends grew.
        headers._list = headers._list.copy()
        response = Response(101, "Switching Protocols", headers)
        return ServerHandshakeResult(response, subprotocol, accepted, None)
    except Exception as exc:
        response = handshake_error_response(exc, server_header=server_header)
        return ServerHandshakeResult(response, None, [], exc)


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


# Documented, pickled and shown in tracebacks under its public home, as the others (wsio/protocol/errors.py).
InvalidStatus.__module__ = "wsio.exceptions"


# -- client side --------------------------------------------------------------


def client_request(
    wsuri: WebSocketURI,
    *,
    key: str,
    origin: str | None = None,
    subprotocols: Sequence[str] | None = None,
    extensions: Sequence[ClientExtensionFactory] = (),
    extra_headers: HeadersLike | None = None,
    user_agent_header: str | None = USER_AGENT,
) -> Request:
    """Build the client's handshake request (RFC 6455 4.1).

    ``Host``, ``Origin``, ``User-Agent`` and ``Authorization`` (from the
    URI's user info) are only added if ``extra_headers`` doesn't set them, so
    that extra headers override rather than duplicate them.
    """
    extra = Headers(extra_headers) if extra_headers is not None else Headers()
    headers = Headers()
    if "Host" not in extra:
        headers["Host"] = wsuri.host_header
    headers["Upgrade"] = "websocket"
    headers["Connection"] = "Upgrade"
    headers["Sec-WebSocket-Key"] = key
    headers["Sec-WebSocket-Version"] = "13"
    if extensions:
        headers["Sec-WebSocket-Extensions"] = build_extension_header(
            [(factory.name, factory.get_request_params()) for factory in extensions]
        )
    if subprotocols:
        headers["Sec-WebSocket-Protocol"] = build_subprotocol_list(subprotocols)
    if origin is not None and "Origin" not in extra:
        headers["Origin"] = origin
    if wsuri.user_info is not None and "Authorization" not in extra:
        headers["Authorization"] = build_basic_auth(*wsuri.user_info)
    if user_agent_header is not None and "User-Agent" not in extra:
        headers["User-Agent"] = user_agent_header
    headers.update(extra)
    return Request(wsuri.resource_name, headers)


def _client_extensions(headers: Headers, factories: Sequence[ClientExtensionFactory]) -> list[Extension]:
    accepted: list[Extension] = []
    header = _combined(headers, "Sec-WebSocket-Extensions")
    if header is None:
        return accepted
    used: set[int] = set()
    for name, params in parse_extension_header(header):
        # RFC 6455 9.1: the server may only accept what we offered, each once.
        error: NegotiationError | None = None
        for index, factory in enumerate(factories):
            if index in used or factory.name != name:
                continue
            try:
                extension = factory.process_response_params(params, accepted)
            except NegotiationError as exc:
                error = exc
                continue
            used.add(index)
            accepted.append(extension)
            break
        else:
            if error is not None:
                raise error
            raise NegotiationError(f"server accepted an extension we didn't offer: {name}")
    return accepted


def _client_subprotocol(request: Request, headers: Headers, subprotocols: Sequence[str] | None) -> str | None:
    header = _combined(headers, "Sec-WebSocket-Protocol")
    if header is None:
        return None
    chosen = parse_subprotocol_list(header)
    if len(chosen) > 1:
        raise InvalidHeader("Sec-WebSocket-Protocol", f"more than one subprotocol: {header}")
    (subprotocol,) = chosen
    if subprotocols is None:
        offered_header = _combined(request.headers, "Sec-WebSocket-Protocol")
        offered = parse_subprotocol_list(offered_header) if offered_header else []
    else:
        offered = list(subprotocols)
    # RFC 6455 4.1: a subprotocol we didn't offer fails the connection.
    if subprotocol not in offered:
        raise NegotiationError(f"server chose a subprotocol we didn't offer: {subprotocol}")
    return subprotocol


def client_handshake(
    request: Request,
    response: Response,
    *,
    key: str,
    subprotocols: Sequence[str] | None = None,
    extensions: Sequence[ClientExtensionFactory] = (),
) -> tuple[str | None, list[Extension]]:
    """Check the server's answer (RFC 6455 4.1); return subprotocol and extensions.

    ``subprotocols`` defaults to those offered in ``request``.  Raise
    :class:`~wsio.exceptions.InvalidStatus` for a status other than 101 and
    another :class:`~wsio.exceptions.InvalidHandshake` subclass for anything
    else that's wrong.
    """
    if response.status_code != 101:
        raise InvalidStatus(response)
    headers = response.headers

    upgrade = _combined(headers, "Upgrade")
    if upgrade is None:
        raise InvalidUpgrade("Upgrade")
    protocols = parse_upgrade(upgrade)
    if len(protocols) != 1 or protocols[0].lower() != "websocket":
        raise InvalidUpgrade("Upgrade", upgrade)
    connection = _combined(headers, "Connection")
    if connection is None:
        raise InvalidUpgrade("Connection")
    if not any(option.lower() == "upgrade" for option in parse_connection(connection)):
        raise InvalidUpgrade("Connection", connection)

    # RFC 6455 4.1: proves the server understood *this* handshake (and isn't
    # a cache replaying another one).
    accept_values = headers.get_all("Sec-WebSocket-Accept")
    if len(accept_values) != 1 or accept_values[0] != accept_key(key):
        raise InvalidHeaderValue("Sec-WebSocket-Accept", ", ".join(accept_values) if accept_values else None)

    accepted = _client_extensions(headers, extensions)
    subprotocol = _client_subprotocol(request, headers, subprotocols)
    return subprotocol, accepted
