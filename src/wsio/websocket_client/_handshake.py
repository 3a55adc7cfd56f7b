"""websocket-client's ``_handshake``: the opening handshake over a connected socket.

:class:`~wsio.websocket_client.WebSocket` performs its handshake with wsio's
client; these functions serve programs and tests that drive a socket
themselves. Keys and the ``Sec-WebSocket-Accept`` check come from wsio's
core (``wsio.protocol.handshake.generate_key`` and ``accept_key``).
"""

from __future__ import annotations

import hmac
import socket
from http import HTTPStatus
from typing import Any, Sequence

from ..protocol.handshake import accept_key, generate_key
from ._cookiejar import SimpleCookieJar
from ._exceptions import WebSocketBadStatusException, WebSocketException
from ._http import read_headers
from ._logging import dump, error
from . import _socket
from ._socket import send

__all__ = ["handshake_response", "handshake", "SUPPORTED_REDIRECT_STATUSES"]

#: The WebSocket protocol version sent in ``Sec-WebSocket-Version``.
VERSION = 13

#: Redirects the handshake reports to its caller (which follows them).
SUPPORTED_REDIRECT_STATUSES = (
    HTTPStatus.MOVED_PERMANENTLY,
    HTTPStatus.FOUND,
    HTTPStatus.SEE_OTHER,
    HTTPStatus.TEMPORARY_REDIRECT,
    HTTPStatus.PERMANENT_REDIRECT,
)
SUCCESS_STATUSES = SUPPORTED_REDIRECT_STATUSES + (HTTPStatus.SWITCHING_PROTOCOLS,)

#: Cookies servers set during handshakes, sent back to them on later ones.
CookieJar = SimpleCookieJar()


class handshake_response:
    """The outcome of :func:`handshake`: ``status``, ``headers`` (lowercase names) and ``subprotocol``."""

    def __init__(self, status: int, headers: dict[str, str], subprotocol: str | None) -> None:
        self.status = status
        self.headers = headers
        self.subprotocol = subprotocol
        CookieJar.add(headers.get("set-cookie"))


def handshake(sock: socket.socket, url: str, hostname: str, port: int, resource: str, **options: Any) -> handshake_response:
    """Send the upgrade request on ``sock`` and check the answer.

    Options: ``header``, ``host``, ``suppress_host``, ``origin``,
    ``suppress_origin``, ``subprotocols``, ``cookie``, ``connection``.
    Raises :class:`~wsio.sync.WebSocketBadStatusException` for a status other than 101
    or a redirect, and :class:`~wsio.sync.WebSocketException` for an answer that isn't
    a valid WebSocket upgrade.
    """
    headers, key = _get_handshake_headers(resource, url, hostname, port, options)
    request = "\r\n".join(headers)
    send(sock, request)
    dump("request header", request)
    status, response_headers = _get_resp_headers(sock)
    if status in SUPPORTED_REDIRECT_STATUSES:
        return handshake_response(status, response_headers, None)
    ok, subprotocol = _validate(response_headers, key, options.get("subprotocols"))
    if not ok:
        raise WebSocketException("Invalid WebSocket Header")
    return handshake_response(status, response_headers, subprotocol)


def _pack_hostname(hostname: str) -> str:
    """``hostname`` as written in a URL authority: IPv6 addresses in brackets."""
    return f"[{hostname}]" if ":" in hostname else hostname


def _get_handshake_headers(resource: str, url: str, host: str, port: int, options: dict[str, Any]) -> tuple[list[str], str]:
    """The request lines (ending with two empty strings, for ``"\\r\\n".join()``) and the key sent."""
    hostport = _pack_hostname(host) if port in (80, 443) else f"{_pack_hostname(host)}:{port}"
    lines = [f"GET {resource} HTTP/1.1", "Upgrade: websocket"]
    if not options.get("suppress_host"):
        lines.append(f"Host: {options['host']}" if options.get("host") else f"Host: {hostport}")
    scheme = url.split(":", 1)[0]
    if not options.get("suppress_origin"):
        if options.get("origin") is not None:
            lines.append(f"Origin: {options['origin']}")
        else:
            lines.append(f"Origin: {'https' if scheme == 'wss' else 'http'}://{hostport}")
    header = options.get("header")
    key = _create_sec_websocket_key()
    if isinstance(header, dict) and "Sec-WebSocket-Key" in header:
        key = header["Sec-WebSocket-Key"]
    elif not (header and "Sec-WebSocket-Key" in header):
        lines.append(f"Sec-WebSocket-Key: {key}")
    if not (header and "Sec-WebSocket-Version" in header):
        lines.append(f"Sec-WebSocket-Version: {VERSION}")
    lines.append(options["connection"] if options.get("connection") else "Connection: Upgrade")
    subprotocols = options.get("subprotocols")
    if subprotocols:
        lines.append(f"Sec-WebSocket-Protocol: {','.join(subprotocols)}")
    if header:
        if isinstance(header, dict):
            lines.extend(f"{name}: {value}" for name, value in header.items() if value is not None)
        else:
            lines.extend(header)
    cookie = "; ".join(filter(None, [CookieJar.get(host), options.get("cookie")]))
    if cookie:
        lines.append(f"Cookie: {cookie}")
    lines.extend(("", ""))
    return lines, key


def _get_resp_headers(sock: socket.socket, success_statuses: tuple[int, ...] = SUCCESS_STATUSES) -> tuple[int, dict[str, str]]:
    """Read the response head; return ``(status, headers)``, or raise
    :class:`~wsio.sync.WebSocketBadStatusException` (with the body, read by its
    ``Content-Length``) for a status outside ``success_statuses``."""
    status, headers, status_message = read_headers(sock)
    if status is None:
        raise WebSocketException("Invalid status line: the server's answer began with an empty line")
    if status in success_statuses:
        return status, headers
    body: bytes | None = None
    length_text = headers.get("content-length")
    if length_text:
        try:
            remaining = int(length_text)
        except ValueError:
            raise WebSocketException(f"Invalid content-length header: {length_text!r}") from None
        chunks = []
        while remaining > 0:
            chunk = _socket.recv(sock, min(remaining, 16384))
            chunks.append(chunk)
            remaining -= len(chunk)
        body = b"".join(chunks)
    shown = body.decode("utf-8", errors="replace") if body else None
    raise WebSocketBadStatusException(
        f"Handshake status {status} {status_message} -+-+- {headers} -+-+- {shown}",
        status,
        status_message,
        headers,
        body,
    )


_HEADERS_TO_CHECK = {"upgrade": "websocket", "connection": "upgrade"}


def _validate(headers: dict[str, str], key: str, subprotocols: Sequence[str] | None) -> tuple[bool, str | None]:
    """Check an upgrade response's headers (lowercase names) against the ``key`` sent.

    Returns ``(True, subprotocol)`` (lowercase, or ``None`` if none was
    asked) or ``(False, None)``.
    """
    for name, expected in _HEADERS_TO_CHECK.items():
        value = headers.get(name)
        if not value or expected not in [item.strip().lower() for item in value.split(",")]:
            return False, None
    subprotocol = None
    if subprotocols:
        subprotocol = headers.get("sec-websocket-protocol")
        if not subprotocol or subprotocol.lower() not in [s.lower() for s in subprotocols]:
            error(f"Invalid subprotocol: {subprotocols}")
            return False, None
        subprotocol = subprotocol.lower()
    answer = headers.get("sec-websocket-accept")
    if not answer:
        return False, None
    expected_answer = accept_key(key).lower().encode("utf-8")
    if hmac.compare_digest(expected_answer, answer.strip().lower().encode("utf-8")):
        return True, subprotocol
    return False, None


def _create_sec_websocket_key() -> str:
    """A fresh ``Sec-WebSocket-Key`` (16 random bytes, base64)."""
    return generate_key()
