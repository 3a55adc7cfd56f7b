"""URL routing with werkzeug, shared by :mod:`wsio.asyncio.router` and :mod:`wsio.sync.router`."""

from __future__ import annotations

import http
import urllib.parse
from typing import Any

from .protocol.http11 import Request, Response

__all__ = ["RouterBase", "import_werkzeug"]


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
