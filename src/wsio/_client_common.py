"""What the asyncio and threaded clients share, without I/O: default headers, redirects, TLS contexts, and reconnection.

Both ``wsio/asyncio/client.py`` and ``wsio/sync/client.py`` import these, and
re-export the public ones (:func:`process_exception`, :func:`backoff`);
neither client imports the other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl as ssl_module
import sys
from typing import Any, Callable, Iterator, NoReturn

from .exceptions import InvalidMessage, InvalidProxy, InvalidStatus, RedirectError
from .protocol.redact import redact_uri
from .protocol.uri import Redirect, WebSocketURI, follow_redirect, parse_uri
from .protocol.datastructures import Headers
from .protocol.proxy import proxy_error_is_retryable
from .version import version

__all__ = ["process_exception", "backoff"]

logger = logging.getLogger("wsio.client")

#: What the ``User-Agent`` header says unless ``user_agent_header`` changes it.
DEFAULT_USER_AGENT = f"Python/{sys.version_info[0]}.{sys.version_info[1]} wsio/{version}"

# Reconnection backoff: about 1 s first, times 1.618 each failure, capped at
# 60 s, each delay jittered so that clients dropped together don't return together.
# The environment variables let tests and deployments tune them.
BACKOFF_INITIAL_DELAY = float(os.environ.get("WSIO_BACKOFF_INITIAL_DELAY", "1.0"))
BACKOFF_FACTOR = float(os.environ.get("WSIO_BACKOFF_FACTOR", "1.618"))
BACKOFF_MAX_DELAY = float(os.environ.get("WSIO_BACKOFF_MAX_DELAY", "60.0"))

MAX_REDIRECTS = int(os.environ.get("WSIO_MAX_REDIRECTS", "10"))


def backoff(initial: float | None = None, factor: float | None = None, maximum: float | None = None) -> Iterator[float]:
    """Yield reconnection delays: jittered, growing exponentially, capped."""
    delay = BACKOFF_INITIAL_DELAY if initial is None else initial
    factor = BACKOFF_FACTOR if factor is None else factor
    maximum = BACKOFF_MAX_DELAY if maximum is None else maximum
    while True:
        yield delay * random.uniform(0.5, 1.5)
        delay = min(delay * factor, maximum)


def process_exception(exc: Exception) -> Exception | None:
    """Decide whether a failed connection attempt is retried (``None``) or raised.

    The rules of websockets: retried are network errors (:exc:`OSError`,
    timeouts, :exc:`EOFError`), a connection closed during the opening
    handshake (:exc:`~wsio.InvalidMessage` caused by :exc:`EOFError` or
    :exc:`OSError`: what a restarting server does), and 500, 502, 503 and
    504 answers (:exc:`~wsio.InvalidStatus`). Anything else (a bad URI, a
    403, a failed negotiation) is a bug to fix, not to retry, and is returned
    to be raised. For proxies: an unreachable proxy or its 500/502/503/504 is
    retried; its 407 (credentials) or 403 (forbidden target) is raised.

    Pass your own as ``process_exception=`` to :func:`~wsio.connect`: return
    ``None`` to retry, or the exception (or another one) to raise.
    """
    if isinstance(exc, InvalidProxy):
        return None if proxy_error_is_retryable(exc) else exc
    if isinstance(exc, (EOFError, OSError, TimeoutError, asyncio.TimeoutError)):
        return None
    if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, (EOFError, OSError)):
        return None
    if isinstance(exc, InvalidStatus) and exc.response.status_code in (500, 502, 503, 504):
        return None
    return exc


def _exception_to_raise(process: Callable[[Exception], Exception | None], exc: Exception) -> Exception | None:
    """Run ``process_exception``; one that raises instead of returning counts as returning what it raised."""
    try:
        return process(exc)
    except Exception as raised:
        return raised


def _checked_headers(additional_headers: Any, origin: str | None, user_agent_header: str | None) -> Headers | None:
    """Check the request headers when connect() is called; return ``additional_headers`` as Headers.

    A CR or LF in a value (header injection) raises :class:`ValueError` here,
    in the caller's frame, rather than when the request is built on an open
    connection.
    """
    probe = Headers()
    if origin is not None:
        probe["Origin"] = origin
    if user_agent_header is not None:
        probe["User-Agent"] = user_agent_header
    return None if additional_headers is None else Headers(additional_headers)


def _tls_context(ssl: Any, wsuri: WebSocketURI) -> ssl_module.SSLContext | None:
    """The TLS context for ``wsuri`` from the ``ssl`` argument; raise if they contradict each other."""
    if ssl is not None and not isinstance(ssl, (bool, ssl_module.SSLContext)):
        raise TypeError(f"ssl must be an ssl.SSLContext, True, False or None, not {type(ssl).__name__}")
    if wsuri.secure:
        if ssl is False:
            raise ValueError(
                "ssl=False goes with a ws:// URI, not wss://: pass ssl=True, an ssl.SSLContext "
                "or nothing for wss://, or use a ws:// URI for an unencrypted connection"
            )
        return ssl_module.create_default_context() if ssl is None or ssl is True else ssl
    if ssl is not None and ssl is not False:
        raise ValueError("ssl= goes with a wss:// URI, not ws://")
    return None


def _log_redirect(uri: str, redirect: Redirect, additional_headers: Headers | None, origin: WebSocketURI) -> None:
    """One INFO line per redirect, with passwords redacted; it names what isn't sent, never values."""
    if redirect.same_origin:
        logger.info("redirected from %s to %s", redact_uri(uri), redact_uri(redirect.uri))
        return
    withheld = list(dict.fromkeys(name for name, _ in additional_headers.raw_items())) if additional_headers else []
    if origin.user_info is not None:
        withheld.append("the user info of the URI")
    if withheld:
        logger.info(
            "redirected from %s to %s, another origin: not sending %s",
            redact_uri(uri), redact_uri(redirect.uri), ", ".join(withheld),
        )  # fmt: skip
    else:
        logger.info("redirected from %s to %s, another origin", redact_uri(uri), redact_uri(redirect.uri))


class Redirects:
    """Where one ``connect()`` goes: the URI, then where each followed 3xx points.

    What both clients loop over (the asyncio one awaiting each attempt)::

        redirects = Redirects(uri, max_redirects, additional_headers, pinned)
        for wsuri, redirect in redirects:
            try:
                return open(wsuri, redirect)
            except InvalidStatus as exc:
                redirects.follow(exc)  # raises it unless it is a redirect to follow

    Credentials (``additional_headers``, the URI's user info) go to the origin
    of ``uri`` only; see :func:`~wsio.protocol.handshake.follow_redirect`.
    More than ``max_redirects`` raises :exc:`~wsio.RedirectError`.
    """

    def __init__(self, uri: str, max_redirects: int, additional_headers: Headers | None, pinned: str | None) -> None:
        self.uri = uri
        self.origin = self.wsuri = parse_uri(uri)
        self.redirect: Redirect | None = None
        self.max_redirects = max_redirects
        self.additional_headers = additional_headers
        self.pinned = pinned

    def __iter__(self) -> Iterator[tuple[WebSocketURI, Redirect | None]]:
        for _ in range(self.max_redirects + 1):
            yield self.wsuri, self.redirect
        raise RedirectError(f"more than max_redirects={self.max_redirects} redirects")

    def follow(self, exc: InvalidStatus) -> None:
        """Take the redirect that ``exc`` answered with; raise ``exc`` if it isn't one to follow."""
        redirect = follow_redirect(self.uri, self.wsuri, exc.response, origin=self.origin, pinned=self.pinned)
        if redirect is None:
            raise exc
        _log_redirect(self.uri, redirect, self.additional_headers, self.origin)
        self.uri, self.wsuri, self.redirect = redirect.uri, redirect.wsuri, redirect


class Retries:
    """The delays of ``for websocket in connect(...)``: what both clients' reconnection loops share.

    After a failed attempt, :meth:`delay_after` raises what ``process_exception``
    says to raise, or logs and returns how long to wait before the next
    attempt (growing while attempts fail); :meth:`succeeded` starts over.
    ``reconnect_delays`` is the caller's (its module's ``backoff``, which tests
    replace, unless ``reconnect_delays=`` was given).
    """

    def __init__(
        self,
        uri: str,
        process: Callable[[Exception], Exception | None],
        reconnect_delays: Callable[[], Iterator[float]],
    ) -> None:
        self.uri = uri
        self.process = process
        self.reconnect_delays = reconnect_delays
        self.delays: Iterator[float] | None = None

    def delay_after(self, exc: Exception) -> float:
        error = _exception_to_raise(self.process, exc)
        if error is exc:
            raise exc
        if error is not None:
            _raise_from(error, exc)
        if self.delays is None:
            self.delays = iter(self.reconnect_delays())
        delay = next(self.delays)
        logger.info("connecting to %s failed (%s); retrying in %.1f s", redact_uri(self.uri), exc or type(exc).__name__, delay)
        return delay

    def succeeded(self) -> None:
        self.delays = None


def _raise_from(error: Exception, cause: Exception) -> NoReturn:
    raise error from cause
