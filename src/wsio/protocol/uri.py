"""WebSocket URIs (RFC 6455 3) and where a redirect sends a client.

:func:`parse_uri` checks a ``ws://`` or ``wss://`` URI and returns a
:class:`WebSocketURI`; :func:`follow_redirect` decides whether and where a
client follows a 3xx answer, and whether its credentials go along.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from .errors import InvalidURI, RedirectError
from .http11 import Response
from .redact import redact_uri

__all__ = ["WebSocketURI", "parse_uri", "REDIRECT_STATUSES", "Redirect", "follow_redirect"]


# -- URIs -----------------------------------------------------------------------

# RFC 3986 3.3: pchar = unreserved / pct-encoded / sub-delims / ":" / "@".
# Everything else in the path is percent-encoded; "%" stays so that existing
# escapes aren't encoded twice.  RFC 3986 3.4: the query also allows "/?".
_PATH_SAFE = "!$&'()*+,;=:@/%"
_QUERY_SAFE = _PATH_SAFE + "?"
# RFC 3986 3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ).
_REG_NAME_RE = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=%]+")


@dataclass(frozen=True)
class WebSocketURI:
    """A parsed ``ws://`` or ``wss://`` URI (RFC 6455 3).

    ``host`` is ASCII (IDNA-encoded), without brackets for IPv6.  ``path``
    and ``query`` are percent-encoded; ``path`` is never empty.
    """

    secure: bool
    host: str
    port: int
    path: str = "/"
    query: str = ""
    username: str | None = None
    password: str | None = None

    @property
    def resource_name(self) -> str:
        """The request target: ``/path?query`` (RFC 6455 3)."""
        resource = self.path or "/"
        if self.query:
            resource += "?" + self.query
        return resource

    @property
    def user_info(self) -> tuple[str, str] | None:
        """``(username, password)`` if the URI has credentials, else None."""
        if self.username is None:
            return None
        return self.username, self.password or ""

    @property
    def host_header(self) -> str:
        """The ``Host`` header: brackets around IPv6, default port omitted."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == (443 if self.secure else 80):
            return host
        return f"{host}:{self.port}"


def parse_uri(uri: str) -> WebSocketURI:
    """Parse and check a WebSocket URI; raise InvalidURI if it isn't one."""
    try:
        parsed = urllib.parse.urlsplit(uri)
    except ValueError as exc:  # e.g. unbalanced IPv6 brackets
        raise InvalidURI(uri, str(exc)) from None
    if parsed.scheme not in ("ws", "wss"):
        raise InvalidURI(uri, "scheme isn't ws or wss")
    # RFC 6455 3: fragments are meaningless; "#" must be escaped as %23.
    if "#" in uri:
        raise InvalidURI(uri, "fragment identifier isn't allowed; escape # as %23")
    host = parsed.hostname
    if not host:
        raise InvalidURI(uri, "hostname isn't provided")
    try:
        port = parsed.port
    except ValueError:
        raise InvalidURI(uri, "port isn't an integer between 1 and 65535") from None
    if port == 0:
        raise InvalidURI(uri, "port isn't an integer between 1 and 65535")
    secure = parsed.scheme == "wss"
    if port is None:
        port = 443 if secure else 80

    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidURI(uri, f"invalid IPv6 address: {host}") from None
    else:
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise InvalidURI(uri, f"invalid internationalized hostname: {host}") from None
        if _REG_NAME_RE.fullmatch(host) is None:
            raise InvalidURI(uri, f"invalid hostname: {host}")

    path = urllib.parse.quote(parsed.path, safe=_PATH_SAFE) or "/"
    query = urllib.parse.quote(parsed.query, safe=_QUERY_SAFE)
    username = parsed.username
    password = parsed.password
    return WebSocketURI(
        secure=secure,
        host=host,
        port=port,
        path=path,
        query=query,
        username=urllib.parse.unquote(username) if username is not None else None,
        password=urllib.parse.unquote(password) if password is not None else None,
    )


# -- redirects --------------------------------------------------------------------

#: The statuses a client follows to their ``Location``.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def _same_origin(a: WebSocketURI, b: WebSocketURI) -> bool:
    return (a.secure, a.host, a.port) == (b.secure, b.host, b.port)


def _origin(wsuri: WebSocketURI) -> str:
    host = f"[{wsuri.host}]" if ":" in wsuri.host else wsuri.host
    return f"{'wss' if wsuri.secure else 'ws'}://{host}:{wsuri.port}"


@dataclass(frozen=True)
class Redirect:
    """Where a redirect sends the client: see :func:`follow_redirect`.

    Attributes:
        uri: the new URI, as a string (for the log and the next redirect).
        wsuri: the new URI, parsed; on the first URI's origin it carries that
            URI's user info, if the new one has none.
        same_origin: whether the new URI has the scheme, host and port of the
            URI the client was given. Only then may it send its
            ``additional_headers`` and the user info of that URI.
    """

    uri: str
    wsuri: WebSocketURI
    same_origin: bool


def follow_redirect(
    uri: str,
    wsuri: WebSocketURI,
    response: Response,
    *,
    origin: WebSocketURI,
    pinned: str | None = None,
) -> Redirect | None:
    """Decide where a client goes after ``response``, if anywhere.

    Args:
        uri: the URI of the request ``response`` answers (relative
            ``Location`` values are resolved against it).
        wsuri: that URI, parsed.
        response: the server's answer.
        origin: the URI the client was given, parsed: its origin (scheme,
            host, port) is the only one its credentials go to.
        pinned: what the caller fixed about where to connect, if anything
            (e.g. ``"host="`` or ``"a Unix socket"``): a redirect to another
            origin is then refused, as it is unclear where it should connect.

    Returns ``None`` if ``response`` isn't a redirect (a status other than
    301, 302, 303, 307 or 308, or no ``Location``). Raises
    :class:`~wsio.exceptions.RedirectError` if it must not be followed: a
    ``Location`` that isn't a ws:// or wss:// URI (or more than one
    ``Location``), wss:// to ws://, or another origin while ``pinned`` is set.
    """
    locations = response.headers.get_all("Location")
    if response.status_code not in REDIRECT_STATUSES or not locations:
        return None
    if len(locations) > 1:
        raise RedirectError(f"redirect with {len(locations)} Location headers; expected one")
    location = locations[0]
    try:
        new_uri = urllib.parse.urljoin(uri, location)
    except ValueError as exc:  # urljoin refuses e.g. "http://[bad"
        raise RedirectError(f"redirect to an invalid URI: {redact_uri(location)}") from exc
    try:
        new_wsuri = parse_uri(new_uri)
    except InvalidURI as exc:
        raise RedirectError(f"redirect to an invalid URI: {redact_uri(new_uri)} ({exc.msg})") from exc
    if wsuri.secure and not new_wsuri.secure:
        raise RedirectError(f"redirect from wss:// to ws:// refused: {redact_uri(new_uri)}")
    same_origin = _same_origin(origin, new_wsuri)
    if not same_origin and pinned is not None:
        raise RedirectError(
            f"redirect from {_origin(origin)} to another origin refused: {redact_uri(new_uri)}; "
            f"connect() was given {pinned}, which fixes where it connects; "
            f"connect to the new URI yourself to follow it"
        )
    if same_origin and new_wsuri.user_info is None and origin.user_info is not None:
        # An absolute Location on the same origin keeps the credentials.
        new_wsuri = dataclasses.replace(new_wsuri, username=origin.username, password=origin.password)
    return Redirect(new_uri, new_wsuri, same_origin)
