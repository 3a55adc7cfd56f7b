"""Legacy HTTP Basic authentication (``websockets.legacy.auth``): a connection class that checks credentials.

::

    serve(handler, host, port, create_protocol=basic_auth_protocol_factory(
        realm="chat", credentials=("alice", "s3cret"),
    ))

New code passes ``process_request=basic_auth(...)`` (:func:`wsio.asyncio.server.basic_auth`) instead.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Awaitable, Callable, Iterable

from .._server_common import credentials_checker
from ..exceptions import InvalidHeader
from ..protocol.headers import parse_basic_auth
from ..protocol.datastructures import Headers
from ..asyncio.server import ServerConnection

__all__ = ["BasicAuthWebSocketServerProtocol", "basic_auth_protocol_factory"]


class BasicAuthWebSocketServerProtocol(ServerConnection):
    """A server connection that requires HTTP Basic credentials before upgrading.

    A request without valid credentials is answered ``401 Unauthorized``
    with a ``WWW-Authenticate`` header for :attr:`realm`; with valid ones,
    :attr:`username` is set and the handshake goes on.

    Args:
        realm: the protection space named in ``WWW-Authenticate``; default:
            the class attribute :attr:`realm` (``""``).
        check_credentials: a coroutine function (or function)
            ``(username, password)`` returning whether they are valid;
            default: the :meth:`check_credentials` method, which refuses all.
    """

    #: The protection space named in ``WWW-Authenticate``.
    realm: str = ""

    def __init__(
        self,
        *args: Any,
        realm: str | None = None,
        check_credentials: Callable[[str, str], Awaitable[bool] | bool] | None = None,
        **kwargs: Any,
    ) -> None:
        if realm is not None:
            self.realm = realm
        self._check_credentials = check_credentials
        super().__init__(*args, **kwargs)

    async def check_credentials(self, username: str, password: str) -> bool:
        """Whether ``username`` and ``password`` are valid; override it, or pass ``check_credentials``."""
        if self._check_credentials is None:
            return False
        valid = self._check_credentials(username, password)
        if inspect.isawaitable(valid):
            valid = await valid
        return bool(valid)

    def _unauthorized(self, text: bytes) -> tuple[int, Headers, bytes]:
        escaped = self.realm.replace("\\", "\\\\").replace('"', '\\"')
        headers = Headers([("WWW-Authenticate", f'Basic realm="{escaped}", charset="UTF-8"')])
        return 401, headers, text

    async def process_request(self, path: str, request_headers: Headers) -> tuple[int, Headers, bytes] | None:
        """Check the ``Authorization`` header: ``None`` to go on, or the 401 answer as ``(status, headers, body)``."""
        try:
            authorization = request_headers["Authorization"]
        except KeyError:
            return self._unauthorized(b"Missing credentials\n")
        try:
            username, password = parse_basic_auth(authorization)
        except InvalidHeader:
            return self._unauthorized(b"Unsupported credentials\n")
        if not await self.check_credentials(username, password):
            return self._unauthorized(b"Invalid credentials\n")
        self.username = username
        return None


def basic_auth_protocol_factory(
    realm: str | None = None,
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None = None,
    check_credentials: Callable[[str, str], Awaitable[bool] | bool] | None = None,
    create_protocol: Callable[..., BasicAuthWebSocketServerProtocol] | None = None,
) -> Callable[..., BasicAuthWebSocketServerProtocol]:
    """Build the ``create_protocol`` (or ``create_connection``) of a server that requires Basic credentials.

    Args:
        realm: the protection space named in ``WWW-Authenticate``.
        credentials: a ``(username, password)`` pair or an iterable of pairs.
        check_credentials: instead of ``credentials``, a coroutine function
            (or function) ``(username, password)`` returning whether they are valid.
        create_protocol: a :class:`BasicAuthWebSocketServerProtocol` subclass
            (default: that class).

    Raises:
        ValueError: if both or neither of ``credentials`` and ``check_credentials`` are given.
        TypeError: if ``credentials`` isn't a pair or an iterable of pairs.
    """
    check = credentials_checker(credentials, check_credentials)
    return functools.partial(
        create_protocol or BasicAuthWebSocketServerProtocol,
        realm=realm,
        check_credentials=check,
    )
