"""websocket-client's ``_cookiejar``: cookies from ``Set-Cookie`` headers, kept per domain."""

from __future__ import annotations

import http.cookies

__all__ = ["SimpleCookieJar"]


def _domain_key(domain: str) -> str:
    return (domain if domain.startswith(".") else f".{domain}").lower()


class SimpleCookieJar:
    """Cookies by domain; only cookies with a ``domain`` attribute are kept.

    ``jar`` maps ``".domain"`` (lowercase) to a :class:`http.cookies.SimpleCookie`.
    """

    def __init__(self) -> None:
        self.jar: dict[str, http.cookies.SimpleCookie] = {}

    def add(self, set_cookie: str | None) -> None:
        """Merge the cookies of a ``Set-Cookie`` value into those already kept for its domain."""
        if not set_cookie:
            return
        parsed = http.cookies.SimpleCookie(set_cookie)
        for morsel in parsed.values():
            domain = morsel.get("domain")
            if domain:
                key = _domain_key(domain)
                kept = self.jar.get(key) or http.cookies.SimpleCookie()
                kept.update(parsed)
                self.jar[key] = kept

    def set(self, set_cookie: str | None) -> None:
        """Replace the cookies kept for the domain of a ``Set-Cookie`` value with its cookies."""
        if not set_cookie:
            return
        parsed = http.cookies.SimpleCookie(set_cookie)
        for morsel in parsed.values():
            domain = morsel.get("domain")
            if domain:
                self.jar[_domain_key(domain)] = parsed

    def get(self, host: str | None) -> str:
        """The ``Cookie`` header value for ``host``: ``"name=value; ..."`` sorted, ``""`` if none."""
        if not host:
            return ""
        host = host.lower()
        pairs: list[str] = []
        for domain, cookie in self.jar.items():
            if cookie and (host.endswith(domain) or host == domain[1:]):
                pairs.extend(f"{name}={morsel.value}" for name, morsel in cookie.items())
        return "; ".join(sorted(pair for pair in pairs if pair))
