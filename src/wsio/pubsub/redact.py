"""Redis URLs without their secrets, for log lines, exceptions and ``repr()``: :func:`redact_url`."""

from __future__ import annotations

import urllib.parse

__all__ = ["redact_url"]

#: Query parameters whose value is a secret (compared in lower case, as substrings).
_SECRET_PARAMETERS = ("password", "passwd", "secret", "token", "auth", "credential")

_MASK = "***"


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, to show in logs and messages.

    Redacts the password of the user info (``redis://user:***@host``,
    ``redis://:***@host``) and the values of query parameters that hold
    secrets (``?password=***``, the only way to give a password with
    ``unix://``; also ``token``, ``secret``, ``auth``...). A URL that can't be
    split unambiguously (a password holding ``#``, ``/``, ``?`` or ``@``
    unescaped, an invalid port) comes back as ``scheme://***``: it may not show
    where it points, but it never shows a secret.

    ::

        >>> redact_url("redis://app:s3cret@redis.internal:6379/0")
        'redis://app:***@redis.internal:6379/0'
        >>> redact_url("unix:///run/redis.sock?db=1&password=s3cret")
        'unix:///run/redis.sock?db=1&password=***'
    """
    if "://" not in url:
        return _opaque(url)
    try:
        parts = urllib.parse.urlsplit(url)
        # Raises ValueError for a port that isn't a number; a cluster's URL lists its nodes, split by commas.
        for hostport in parts.netloc.rpartition("@")[2].split(","):
            urllib.parse.urlsplit(f"//{hostport}").port
    except ValueError:
        return _opaque(url)
    if parts.fragment or "@" in parts.path or "@" in parts.query or "#" in url:
        # Some of the user info spilled over (a password with an unescaped
        # character): nothing after the scheme can be trusted to be harmless.
        return _opaque(url)
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{_MASK}@{hostport}" if colon else f"{userinfo}@{hostport}"
    query = parts.query
    if query:
        items = []
        for item in query.replace(";", "&").split("&"):
            name, equals, _ = item.partition("=")
            if equals and any(word in urllib.parse.unquote_plus(name).lower() for word in _SECRET_PARAMETERS):
                item = f"{name}={_MASK}"
            items.append(item)
        query = "&".join(items)
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def _opaque(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    if sep and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return f"{scheme}://{_MASK}"
    return _MASK
