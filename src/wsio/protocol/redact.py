"""Keeping secrets out of logs and error messages: URIs and request targets with their passwords and query values hidden.

No import from the rest of wsio: the core's exceptions use it (an
:class:`~wsio.exceptions.InvalidURI` shows its URI redacted).
"""

from __future__ import annotations

import urllib.parse

__all__ = ["redact_uri", "redact_path"]


def redact_uri(uri: str) -> str:
    """Return ``uri`` fit for a log line or an error message.

    The password of the user info and the values of the query become
    ``***``: ``ws://user:secret@host/chat?token=abc&room=1`` becomes
    ``ws://user:***@host/chat?token=***&room=***``. The user name, the host,
    the path and the query keys stay, so the line still says where the client
    went. It works on malformed URIs too (an
    :class:`~wsio.exceptions.InvalidURI` shows one): when the authority can't
    be told apart, everything between the first ``:`` after the scheme and
    the last ``@`` is hidden, which may hide more than the password but never
    less.
    """
    return _redact_query(_redact_password(uri))


def _redact_password(uri: str) -> str:
    start = uri.find("://")
    start = 0 if start < 0 else start + 3
    if "@" not in uri[start:]:
        return uri
    try:
        parts = urllib.parse.urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        parts = None
    if parts is not None and parts.netloc and uri.find(parts.netloc, start) == start:
        netloc = parts.netloc
        userinfo, at_sign, hostport = netloc.rpartition("@")
        if not at_sign or ":" not in userinfo:
            return uri
        user = userinfo.partition(":")[0]
        return f"{uri[:start]}{user}:***@{hostport}{uri[start + len(netloc) :]}"
    at = uri.rfind("@", start)
    colon = uri.find(":", start, at)
    if colon < 0:
        return uri
    return f"{uri[:colon]}:***{uri[at:]}"


def _redact_query(target: str) -> str:
    base, question, query = target.partition("?")
    if not question:
        return target
    items = []
    for item in query.split("&"):
        name, equals, value = item.partition("=")
        if not equals:
            items.append("***" if item else "")
        else:
            items.append(f"{name}=***" if value else f"{name}=")
    return f"{base}?{'&'.join(items)}"


def redact_path(path: str) -> str:
    """Return a request target fit for a log line: query values become ``***``.

    ``/chat?token=abc&room=1`` becomes ``/chat?token=***&room=***``: the keys
    stay (they tell requests apart), the values go (tokens and session ids
    travel in them). An item without ``=`` is a value too. The path itself is
    kept: don't put secrets in it. An absolute-form target is redacted as by
    :func:`redact_uri`.
    """
    if "://" in path:
        return redact_uri(path)
    return _redact_query(path)
