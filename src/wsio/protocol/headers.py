"""Parsing and building the values of WebSocket-related HTTP headers.

Pure functions over ``str``.  Parsers raise
:class:`~wsio.exceptions.InvalidHeaderFormat` with the position of the first
offending character.  They are small hand-written scanners: each regex below
matches one token or one quoted-string at a given position and cannot
backtrack, so parsing is linear in the length of the value.

A header may appear on several lines; RFC 7230 3.2.2 says that is the same as
one line with the values joined by commas.  Callers combine them before
parsing: ``parse_xxx(", ".join(headers.get_all(name)))``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from typing import Optional, TypeVar

from .errors import InvalidHeaderFormat

__all__ = [
    "ExtensionHeader",
    "parse_token_list",
    "parse_connection",
    "parse_upgrade",
    "parse_extension_header",
    "build_extension_header",
    "parse_subprotocol_list",
    "build_subprotocol_list",
    "build_basic_auth",
    "parse_basic_auth",
    "is_token",
]

#: One element of ``Sec-WebSocket-Extensions``: a name and its parameters.
ExtensionHeader = tuple[str, list[tuple[str, Optional[str]]]]

T = TypeVar("T")

# RFC 7230 3.2.6 token, quoted-string; RFC 7230 3.2.3 OWS.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# qdtext and quoted-pair start with different characters: no backtracking.
_QUOTED_STRING_RE = re.compile(r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"')
_UNQUOTE_RE = re.compile(r"\\([\t \x21-\x7e\x80-\xff])")
_OWS_RE = re.compile(r"[ \t]*")
# RFC 7230 6.7: protocol-name ["/" protocol-version], both tokens.
_PROTOCOL_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:/[!#$%&'*+\-.^_`|~0-9A-Za-z]+)?")
# RFC 7235 2.1: token68.
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def is_token(value: str) -> bool:
    """Tell whether ``value`` is an RFC 7230 token."""
    return _TOKEN_RE.fullmatch(value) is not None


def _skip_ows(header: str, pos: int) -> int:
    match = _OWS_RE.match(header, pos)
    assert match is not None  # [ \t]* always matches
    return match.end()


def _peek(header: str, pos: int) -> str | None:
    return header[pos] if pos < len(header) else None


def _parse_token(name: str, header: str, pos: int, what: str = "token") -> tuple[str, int]:
    match = _TOKEN_RE.match(header, pos)
    if match is None:
        raise InvalidHeaderFormat(name, f"expected {what}", header, pos)
    return match.group(), match.end()


def _parse_quoted_string(name: str, header: str, pos: int) -> tuple[str, int]:
    match = _QUOTED_STRING_RE.match(header, pos)
    if match is None:
        raise InvalidHeaderFormat(name, "expected quoted string", header, pos)
    return _UNQUOTE_RE.sub(r"\1", match.group()[1:-1]), match.end()


def _parse_list(
    name: str,
    header: str,
    parse_item: Callable[[str, str, int], tuple[T, int]],
) -> list[T]:
    """Parse ``1#item`` (RFC 7230 7): tolerate empty elements and OWS."""
    # #rule: [ ( "," / item ) *( OWS "," [ OWS item ] ) ]; senders may emit
    # empty elements, receivers must skip them.
    items: list[T] = []
    pos = 0
    end = len(header)
    while True:
        pos = _skip_ows(header, pos)
        while _peek(header, pos) == ",":
            pos = _skip_ows(header, pos + 1)
        if pos == end:
            break
        item, pos = parse_item(name, header, pos)
        items.append(item)
        pos = _skip_ows(header, pos)
        if pos == end:
            break
        if header[pos] != ",":
            raise InvalidHeaderFormat(name, "expected comma", header, pos)
        pos += 1
    if not items:
        # 1#: at least one element.
        raise InvalidHeaderFormat(name, "expected at least one element", header, pos)
    return items


def parse_token_list(name: str, value: str) -> list[str]:
    """Parse a comma-separated list of tokens (RFC 7230 ``1#token``).

    ``name`` is the header name, used in error messages.  Tokens are returned
    as written; compare them case-insensitively where the RFC says so.
    """
    return _parse_list(name, value, _parse_token)


def parse_connection(value: str) -> list[str]:
    """Parse a ``Connection`` header: connection options (RFC 7230 6.1)."""
    return parse_token_list("Connection", value)


def _parse_protocol(name: str, header: str, pos: int) -> tuple[str, int]:
    match = _PROTOCOL_RE.match(header, pos)
    if match is None:
        raise InvalidHeaderFormat(name, "expected protocol", header, pos)
    return match.group(), match.end()


def parse_upgrade(value: str) -> list[str]:
    """Parse an ``Upgrade`` header: ``protocol[/version]`` items (RFC 7230 6.7)."""
    return _parse_list("Upgrade", value, _parse_protocol)


def _parse_extension_param(name: str, header: str, pos: int) -> tuple[tuple[str, str | None], int]:
    param, pos = _parse_token(name, header, pos, "parameter name")
    pos = _skip_ows(header, pos)
    if _peek(header, pos) != "=":
        return (param, None), pos
    pos = _skip_ows(header, pos + 1)
    if _peek(header, pos) == '"':
        start = pos
        value, pos = _parse_quoted_string(name, header, pos)
        # RFC 6455 9.1: a quoted value must still be a token once unquoted.
        if not is_token(value):
            raise InvalidHeaderFormat(name, "invalid quoted parameter value", header, start)
    else:
        value, pos = _parse_token(name, header, pos, "parameter value")
    return (param, value), pos


def _parse_extension(name: str, header: str, pos: int) -> tuple[ExtensionHeader, int]:
    # RFC 6455 9.1: extension = extension-token *( ";" extension-param )
    ext_name, pos = _parse_token(name, header, pos, "extension name")
    params: list[tuple[str, str | None]] = []
    while True:
        pos = _skip_ows(header, pos)
        if _peek(header, pos) != ";":
            return (ext_name, params), pos
        pos = _skip_ows(header, pos + 1)
        param, pos = _parse_extension_param(name, header, pos)
        params.append(param)


def parse_extension_header(value: str) -> list[ExtensionHeader]:
    """Parse ``Sec-WebSocket-Extensions`` (RFC 6455 9.1).

    Return ``[(name, [(param, value or None), ...]), ...]`` in order.  Quoted
    parameter values are returned unquoted.
    """
    return _parse_list("Sec-WebSocket-Extensions", value, _parse_extension)


def build_extension_header(extensions: Sequence[ExtensionHeader]) -> str:
    """Build ``Sec-WebSocket-Extensions`` from ``[(name, params), ...]``.

    Raise :class:`ValueError` if a name or value is not a token (RFC 6455 9.1
    requires tokens, so it could not be parsed back).
    """
    elements = []
    for ext_name, params in extensions:
        if not is_token(ext_name):
            raise ValueError(f"invalid extension name: {ext_name!r}")
        parts = [ext_name]
        for param, param_value in params:
            if not is_token(param):
                raise ValueError(f"invalid extension parameter name: {param!r}")
            if param_value is None:
                parts.append(param)
            elif is_token(param_value):
                parts.append(f"{param}={param_value}")
            else:
                raise ValueError(f"invalid value for extension parameter {param}: {param_value!r}")
        elements.append("; ".join(parts))
    return ", ".join(elements)


def parse_subprotocol_list(value: str) -> list[str]:
    """Parse ``Sec-WebSocket-Protocol`` (RFC 6455 4.1: ``1#token``)."""
    return parse_token_list("Sec-WebSocket-Protocol", value)


def build_subprotocol_list(subprotocols: Sequence[str]) -> str:
    """Build ``Sec-WebSocket-Protocol``; raise ValueError for a non-token."""
    for subprotocol in subprotocols:
        if not is_token(subprotocol):
            raise ValueError(f"invalid subprotocol: {subprotocol!r}")
    return ", ".join(subprotocols)


def build_basic_auth(username: str, password: str) -> str:
    """Build an ``Authorization`` value for HTTP Basic auth (RFC 7617).

    Credentials are encoded as UTF-8 (RFC 7617 2.1 ``charset="UTF-8"``).
    """
    # RFC 7617 2: the user-id can't contain a colon; it would shift the split.
    if ":" in username:
        raise ValueError("username can't contain a colon")
    credentials = f"{username}:{password}".encode("utf-8")
    return "Basic " + base64.b64encode(credentials).decode("ascii")


def parse_basic_auth(value: str) -> tuple[str, str]:
    """Parse an ``Authorization: Basic ...`` value into ``(username, password)``."""
    name = "Authorization"
    scheme, pos = _parse_token(name, value, 0, "auth scheme")
    if scheme.lower() != "basic":
        raise InvalidHeaderFormat(name, f"unsupported auth scheme {scheme}", value, 0)
    if _peek(value, pos) != " ":
        raise InvalidHeaderFormat(name, "expected space after auth scheme", value, pos)
    pos += 1
    match = _TOKEN68_RE.fullmatch(value, pos)
    if match is None:
        raise InvalidHeaderFormat(name, "expected token68", value, pos)
    try:
        decoded = base64.b64decode(match.group(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidHeaderFormat(name, "invalid base64 credentials", value, pos) from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise InvalidHeaderFormat(name, "credentials without a colon", value, pos)
    return username, password
