"""What the asyncio and threaded servers share, without I/O: default headers, responses, the opening
handshake's steps, and websockets' ``respond()``/``reject()`` and HTTP Basic Auth.

Both ``wsio/asyncio/server.py`` and ``wsio/sync/server.py`` import these, and
re-export the public one (:func:`basic_response`); neither server imports the
other.
"""

from __future__ import annotations

import email.utils
import hmac
import inspect
import http
import sys
from types import MappingProxyType
from typing import Any, Callable, Generator, Iterable, Mapping, Tuple, TypeGuard, Union

from .exceptions import AbortHandshake, InvalidHeader, InvalidOrigin
from .legacy.calls import handler_takes_path, legacy_signature
from .protocol.frames import Close, is_valid_close_code
from .protocol.headers import parse_basic_auth
from .protocol.http11 import Request, Response
from .protocol.datastructures import Headers
from .version import version

__all__ = ["basic_response"]

#: Seconds a connection refused with 503 may stay open for its request to be
#: read and dropped (closing with unread data would reset the connection, and
#: the client could lose the 503).
OVER_CAPACITY_LINGER = 1.0

#: ``Retry-After`` of the 503 answer above ``max_connections``, in seconds.
OVER_CAPACITY_RETRY_AFTER = 5

#: What the ``Server`` header says unless ``server_header`` changes it.
#: A connection's ``handler_kwargs`` until a router sets them: one shared empty mapping, not a dict per connection.
NO_HANDLER_KWARGS: Mapping[str, Any] = MappingProxyType({})

DEFAULT_SERVER_HEADER = f"Python/{sys.version_info[0]}.{sys.version_info[1]} wsio/{version}"

HeadersLike = Any  # Headers, a mapping, or a list of (name, value) pairs


def check_close_code(code: int, reason: str) -> None:
    """Raise :class:`ValueError` unless ``code`` and ``reason`` can go in the close frames of a server's shutdown.

    Checked before the server stops: the connections are closed in tasks or
    threads, where the error would be lost and the connections left open.
    """
    if type(code) is bool or not isinstance(code, int):
        raise TypeError(f"close code must be an int, not {type(code).__name__}")
    if code != 1005 and not is_valid_close_code(code):
        raise ValueError(f"close code {code} can't be sent")
    Close(code, reason).serialize()  # a reason of more than 123 bytes: ValueError


def basic_response(status: int | http.HTTPStatus, headers: HeadersLike = None, body: str | bytes = b"") -> Response:
    """Build an HTTP response, e.g. from a ``(status, headers, body)`` tuple of ``process_request``."""
    response = Response.from_status(int(status), body)
    if headers:
        items = headers.raw_items() if isinstance(headers, Headers) else headers.items() if hasattr(headers, "items") else headers
        for name, value in items:
            if name.lower() in ("content-length", "content-type", "connection") and name in response.headers:
                del response.headers[name]
            response.headers[name] = value
    return response


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple) and len(result) == 3:
        return basic_response(*result)
    raise TypeError(f"process_request must return None, a Response or (status, headers, body), not {result!r}")


def _refusal(exc: BaseException | None) -> object:
    """Why a handshake was refused, for the log: a foreign Origin is named, with what to do."""
    if not isinstance(exc, InvalidOrigin):
        return exc
    origin = "no Origin header" if exc.value is None else f"Origin {exc.value!r}"
    return f"{origin} not in origins= (a page of another site?); add it to origins= if it may connect"


def over_capacity_response(server_header: str | None) -> bytes:
    """The bytes of the 503 that a connection above ``max_connections`` gets."""
    headers = [("Retry-After", str(OVER_CAPACITY_RETRY_AFTER))]
    if server_header is not None:
        headers.append(("Server", server_header))
    # Response.from_status says "Connection: close" already.
    return basic_response(503, headers, "Too many connections; try again later.\n").serialize()


def shutting_down_response(server_header: str | None) -> Response:
    """The 503 that a handshake still under way gets once the server is closing, as websockets answers it."""
    headers = [("Server", server_header)] if server_header is not None else None
    return basic_response(503, headers, "Server is shutting down.\n")


# -- the opening handshake of a server connection ---------------------------------------------
#
# One body for both servers: process_request, accept and process_response are
# written once, as a generator that yields what each hook returned. The asyncio
# server awaits what is awaitable and sends the result back (and throws what
# the awaiting raised); the threaded server sends it back as it is
# (run_steps()). A hook's exceptions reach the generator either way.
# The connection and server classes of both layers take these as mixins.

HandshakeSteps = Generator[Any, Any, Response]


class ServerConnectionBase:
    """What the server connections of both I/O layers do alike, without I/O: a mixin.

    ``self`` has ``server``, ``protocol``, ``logger``, ``_peer()`` and
    ``process_request`` (the connection classes of each layer).
    """

    __slots__ = ()

    server: Any
    protocol: Any
    logger: Any
    process_request: Callable[..., Any] | None

    def _peer(self) -> str:  # pragma: no cover - the connection classes' own
        raise NotImplementedError

    def _handshake_steps(self, request: Request) -> HandshakeSteps:
        """Run ``process_request``, accept the request, run ``process_response``: the response to send."""
        server = self.server
        hook = server.process_request
        if hook is None and self.process_request is not None:
            hook = self.process_request  # a method overridden in a subclass
        if hook is not None:
            try:
                if legacy_signature(hook, "path"):
                    result = yield hook(request.path, request.headers)
                else:
                    result = yield hook(self, request)
            except AbortHandshake as exc:  # the legacy way to answer without upgrading
                result = (exc.status, exc.headers, exc.body)
            if result is not None:
                return _as_response(result)
        response: Response = self.protocol.accept(request)
        if server.process_response is not None:
            result = yield server.process_response(self, request, response)
            if result is not None:
                response = result
        return response

    def _failed_hook_response(self) -> Response:
        """Log that ``process_request`` or ``process_response`` raised; the 500 to answer with."""
        self.logger.error("%s process_request or process_response failed", self._peer(), exc_info=True)
        return basic_response(500, None, "Failed to open a WebSocket connection.\n")

    def _log_unparsed(self) -> None:
        """Log a request the core refused before any hook ran (it answered 400 or another error)."""
        protocol = self.protocol
        status = protocol.response.status_code if protocol.response is not None else 400
        self.logger.info("%s rejected: HTTP %d: %s", self._peer(), status, protocol.handshake_exc)

    def _log_not_upgraded(self, response: Response) -> None:
        """Log a handshake answered without switching protocols: a plain answer, or a refusal."""
        if response.status_code < 400:
            self.logger.info("%s answered HTTP %d without upgrading", self._peer(), response.status_code)
        else:
            refusal = _refusal(self.protocol.handshake_exc)
            self.logger.info("%s rejected: HTTP %d: %s", self._peer(), response.status_code, refusal)

    def _call_handler(self) -> Any:
        """Call the server's handler in the style it was written for: ``(connection)`` or ``(connection, path)``."""
        server = self.server
        if server.handler_takes_path:
            return server.handler(self, self.protocol.request.path)  # what connection.path says, once open
        return server.handler(self)


def until_awaitable(steps: HandshakeSteps, send: Callable[[Any], Any], value: Any) -> Any:
    """Go on with the steps from ``send(value)`` until a hook returns an awaitable, which is returned.

    A hook's plain result goes back in at once. When the steps end, their
    ``StopIteration`` carries the response.
    """
    step = send(value)
    while not inspect.isawaitable(step):
        step = steps.send(step)
    return step


def run_steps(steps: HandshakeSteps) -> Response:
    """Drive :meth:`ServerConnectionBase._handshake_steps` without awaiting: each hook's value is its result."""
    value = None
    while True:
        try:
            value = steps.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


class ServerBase:
    """What the ``Server`` classes of both I/O layers keep of ``serve()``'s arguments: a mixin."""

    def _keep(
        self,
        handler: Callable[..., Any],
        process_request: Callable[..., Any] | None,
        process_response: Callable[..., Any] | None,
        open_timeout: float | None,
        logger: Any,
        max_connections: int | None,
        server_header: str | None,
    ) -> None:
        self.handler = handler
        self.handler_takes_path = handler_takes_path(handler)
        self.process_request = process_request
        self.process_response = process_response
        self.open_timeout = open_timeout
        self.logger = logger
        #: Connections held at once; above it, new ones get an immediate 503.
        self.max_connections = max_connections
        self.server_header = server_header
        self.over_capacity_answer = over_capacity_response(server_header)
        self.connections: set[Any] = set()

    def _log_over_capacity(self, address: Any) -> None:
        """Log a connection refused with 503 above ``max_connections``."""
        peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) and len(address) >= 2 else str(address or "?")
        self.logger.info(
            "%s rejected: HTTP 503: %d connections open, max_connections=%d", peer, len(self.connections), self.max_connections
        )


# -- websockets' respond(), reject() and basic_auth() ---------------------------------------------

Credentials = Union[Tuple[str, str], Iterable[Tuple[str, str]]]


def text_response(status: http.HTTPStatus | int, text: str) -> Response:
    """A plain-text HTTP response that closes the connection, as websockets' ``respond()`` builds it.

    ``status`` may be an :class:`http.HTTPStatus` or an ``int`` (turned into
    one, so an unknown status raises :exc:`ValueError`); ``text`` is encoded
    to UTF-8. The headers are ``Date``, ``Connection: close``,
    ``Content-Length`` and ``Content-Type: text/plain; charset=utf-8``; change
    them on the returned response as needed.
    """
    status = http.HTTPStatus(status)
    body = text.encode()
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", "text/plain; charset=utf-8"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def _is_pair(value: object) -> TypeGuard[tuple[str, str]]:
    return isinstance(value, tuple) and len(value) == 2 and all(isinstance(item, str) for item in value)


def credentials_checker(
    credentials: Credentials | None,
    check_credentials: Callable[[str, str], Any] | None,
) -> Callable[[str, str], Any]:
    """Turn ``basic_auth()``'s two ways of giving credentials into one check function.

    Exactly one of them must be given (:exc:`ValueError` otherwise);
    ``credentials`` is a ``(username, password)`` pair or an iterable of
    pairs (:exc:`TypeError` otherwise). Passwords are compared in constant time.
    """
    if (credentials is None) == (check_credentials is None):
        raise ValueError("basic_auth() takes credentials or check_credentials, one of them")
    if check_credentials is not None:
        return check_credentials
    pairs: list[tuple[str, str]]
    if _is_pair(credentials):
        pairs = [credentials]
    elif isinstance(credentials, Iterable) and not isinstance(credentials, (str, bytes)):
        pairs = list(credentials)  # type: ignore[arg-type]  # not a pair: pairs, checked next
        if not all(_is_pair(pair) for pair in pairs):
            raise TypeError(f"credentials must be (username, password) pairs of str, not {credentials!r}")
    else:
        raise TypeError(f"credentials must be a (username, password) pair or pairs, not {credentials!r}")
    passwords = dict(pairs)

    def check(username: str, password: str) -> bool:
        expected = passwords.get(username)
        if expected is None:
            # Compare anyway, so that an unknown user takes as long as a wrong password.
            hmac.compare_digest(password.encode(errors="surrogateescape"), password.encode(errors="surrogateescape"))
            return False
        return hmac.compare_digest(expected.encode(errors="surrogateescape"), password.encode(errors="surrogateescape"))

    return check


def unauthorized(realm: str, text: str) -> Response:
    """A 401 answer that asks for Basic credentials in ``realm``."""
    response = text_response(http.HTTPStatus.UNAUTHORIZED, text)
    escaped = realm.replace("\\", "\\\\").replace('"', '\\"')
    response.headers["WWW-Authenticate"] = f'Basic realm="{escaped}", charset="UTF-8"'
    return response


def authenticated(connection: Any, username: str, valid: bool, realm: str) -> Response | None:
    """The end of ``basic_auth``'s check: set the connection's ``username``, or answer 401."""
    if not valid:
        return unauthorized(realm, "Invalid credentials\n")
    connection.username = username
    return None


def check_basic_auth(request: Request, realm: str) -> tuple[str, str] | Response:
    """The ``(username, password)`` of the request's ``Authorization`` header, or the 401 to answer."""
    try:
        authorization = request.headers["Authorization"]
    except KeyError:
        return unauthorized(realm, "Missing credentials\n")
    try:
        return parse_basic_auth(authorization)
    except InvalidHeader:
        return unauthorized(realm, "Unsupported credentials\n")


class Responder:
    """``respond()`` and ``reject()``: the server connections of both I/O layers have them."""

    __slots__ = ()

    def respond(self, status: http.HTTPStatus | int, text: str) -> Response:
        """Build a plain-text HTTP response, e.g. for ``process_request`` to return.

        ``connection.respond(HTTPStatus.OK, "OK\\n")`` answers a health check
        without upgrading. The response has ``Date``, ``Connection: close``,
        ``Content-Length`` and ``Content-Type: text/plain; charset=utf-8``
        headers; add or change headers on it before returning it.

        Args:
            status: the HTTP status, an :class:`http.HTTPStatus` or an ``int``.
            text: the body, encoded to UTF-8.
        """
        return text_response(status, text)

    def reject(self, status: http.HTTPStatus | int, text: str) -> Response:
        """The same as :meth:`respond`, under the name the sans-I/O protocol of websockets uses."""
        return text_response(status, text)
