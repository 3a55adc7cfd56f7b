"""Serve several handlers by URL path on threads: :func:`route`, :class:`Router`.

The threaded twin of :mod:`wsio.asyncio.router` (whose docs say more): the
same werkzeug URL maps, with plain functions as endpoints.
"""

from __future__ import annotations

import ssl as ssl_module
from typing import Any

from .._router import RouterBase, routed
from .server import Server, ServerConnection, serve

__all__ = ["route", "unix_route", "Router"]


class Router(RouterBase):
    """Dispatch connections to the handlers of a werkzeug URL map (see :func:`route`)."""

    def handler(self, connection: ServerConnection) -> None:
        """The server's handler: call the handler that :meth:`route_request` matched."""
        assert connection.handler is not None
        connection.handler(connection, **connection.handler_kwargs)


def route(
    url_map: Any,
    *args: Any,
    server_name: str | None = None,
    ssl: ssl_module.SSLContext | bool | None = None,
    create_router: type[Router] | None = None,
    **kwargs: Any,
) -> Server:
    """Start a threaded server that picks the handler by URL path; like :func:`~wsio.sync.server.serve`.

    ::

        from werkzeug.routing import Map, Rule

        def chat(websocket, room):
            ...

        url_map = Map([Rule("/chat/<room>", endpoint=chat)])
        with route(url_map, "localhost", 8765) as server:
            server.serve_forever()

    The arguments, the 404 and 302 answers and the order with
    ``process_request`` are those of :func:`wsio.asyncio.router.route`; each
    rule's endpoint is a function ``handler(websocket, **arguments)``, and
    ``args`` and ``kwargs`` go to :func:`~wsio.sync.server.serve`.
    """
    router = routed(create_router or Router, url_map, server_name, ssl, kwargs)
    return serve(router.handler, *args, **kwargs)


def unix_route(url_map: Any, path: str | None = None, **kwargs: Any) -> Server:
    """Like :func:`route`, on a Unix socket at ``path``."""
    return route(url_map, unix=True, path=path, **kwargs)
