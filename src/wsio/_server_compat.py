"""What the asyncio and threaded servers share for websockets' API: ``respond()`` and ``basic_auth()``.

The servers import these; nothing here is public under this module's name.
"""

from __future__ import annotations

import email.utils
import hmac
import http
from typing import Any, Callable, Iterable, Tuple, TypeGuard, Union

from .exceptions import InvalidHeader
from .protocol.headers import parse_basic_auth
from .protocol.http11 import Request, Response
from .protocol.datastructures import Headers

__all__ = ["text_response", "credentials_checker", "check_basic_auth", "unauthorized"]

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
