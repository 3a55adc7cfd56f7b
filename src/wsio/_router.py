"""URL routing with werkzeug, shared by :mod:`wsio.asyncio.router` and :mod:`wsio.sync.router`."""

from __future__ import annotations

import http
import inspect
import urllib.parse
from typing import Any, Awaitable, Callable, TypeVar

from .protocol.http11 import Request, Response

__all__ = ["RouterBase", "import_werkzeug", "routed"]


def import_werkzeug(caller: str) -> Any:
    """Import :mod:`werkzeug.routing`, or say how to install it."""
    try:
        import werkzeug.exceptions
        import werkzeug.routing
    except ImportError as exc:
        raise ImportError(f"{caller} needs werkzeug: pip install 'wsio[router]'") from exc
    return werkzeug


class RouterBase:
    """Match a request's path against a werkzeug URL map; what :func:`route` uses.

    Each rule's endpoint is a handler, called with the connection and the
    rule's converted arguments as keyword arguments.

    Args:
        url_map: a ``werkzeug.routing.Map`` whose endpoints are handlers.
        server_name: the host name rules with a host part are matched
            against; default (``None``): the request's ``Host`` header.
        url_scheme: ``"ws"`` or ``"wss"``, for the URLs of redirects.
    """

    def __init__(self, url_map: Any, server_name: str | None = None, url_scheme: str = "ws") -> None:
        self._werkzeug = import_werkzeug("Router")
        self.url_map = url_map
        self.server_name = server_name
        self.url_scheme = url_scheme
        for rule in url_map.iter_rules():
            rule.websocket = True  # werkzeug matches ws:// and wss:// only against websocket rules

    def get_server_name(self, connection: Any, request: Request) -> str:
        """The host name to match: ``server_name``, or the request's ``Host``."""
        if self.server_name is not None:
            return self.server_name
        return request.headers["Host"]

    def redirect(self, connection: Any, url: str) -> Response:
        """The answer when werkzeug redirects (e.g. to add a trailing slash): 302 to ``url``."""
        response: Response = connection.respond(http.HTTPStatus.FOUND, f"Found at {url}")
        response.headers["Location"] = url
        return response

    def not_found(self, connection: Any) -> Response:
        """The answer to a path no rule matches: 404."""
        response: Response = connection.respond(http.HTTPStatus.NOT_FOUND, "Not Found")
        return response

    def route_request(self, connection: Any, request: Request) -> Response | None:
        """Find the handler for ``request``: set it on the connection, or return a 302 or 404."""
        routing = self._werkzeug.routing
        adapter = self.url_map.bind(server_name=self.get_server_name(connection, request), url_scheme=self.url_scheme)
        parsed = urllib.parse.urlparse(request.path)
        try:
            handler, kwargs = adapter.match(path_info=parsed.path, query_args=parsed.query)
        except routing.RequestRedirect as redirect:
            return self.redirect(connection, redirect.new_url)
        except self._werkzeug.exceptions.NotFound:
            return self.not_found(connection)
        connection.handler = handler
        connection.handler_kwargs = kwargs
        return None


_Router = TypeVar("_Router", bound=RouterBase)


def routed(router_class: type[_Router], url_map: Any, server_name: str | None, ssl: Any, options: dict[str, Any]) -> _Router:
    """The router of ``route()``, asyncio or threaded; set in ``options`` what ``serve()`` needs for it.

    ``ssl=True`` says that TLS is terminated in front of the server: redirects
    say ``wss://`` and nothing is passed to ``serve()``; an
    :class:`ssl.SSLContext` is passed on. A ``process_request`` in ``options``
    runs first; when it returns ``None`` (or an awaitable that gives
    ``None``), the router matches the path.
    """
    url_scheme = "ws" if ssl is None or ssl is False else "wss"
    if ssl is not None and ssl is not True and ssl is not False:
        options["ssl"] = ssl
    router = router_class(url_map, server_name, url_scheme)
    first: Callable[..., Any] | None = options.pop("process_request", None)
    if first is None:
        options["process_request"] = router.route_request
        return router

    def process_request(connection: Any, request: Request) -> Response | None | Awaitable[Response | None]:
        response = first(connection, request)
        if inspect.isawaitable(response):
            return _route_after(response, router, connection, request)  # the asyncio server awaits it
        if response is not None:
            return response  # type: ignore[no-any-return]
        return router.route_request(connection, request)

    options["process_request"] = process_request
    return router


async def _route_after(pending: Awaitable[Any], router: RouterBase, connection: Any, request: Request) -> Response | None:
    response = await pending
    if response is not None:
        return response  # type: ignore[no-any-return]
    return router.route_request(connection, request)
