"""Serve several handlers by URL path with werkzeug's URL maps: :func:`route`, :class:`Router`.

Needs werkzeug (``pip install 'wsio[router]'``); the module imports without
it and :func:`route` says so when called.
"""

from __future__ import annotations

import ssl as ssl_module
from typing import Any

from .._router import RouterBase, routed
from .server import ServerConnection, serve

__all__ = ["route", "unix_route", "Router"]


class Router(RouterBase):
    """Dispatch connections to the handlers of a werkzeug URL map (see :func:`route`)."""

    async def handler(self, connection: ServerConnection) -> None:
        """The server's handler: call the handler that :meth:`route_request` matched."""
        assert connection.handler is not None
        await connection.handler(connection, **connection.handler_kwargs)


def route(
    url_map: Any,
    *args: Any,
    server_name: str | None = None,
    ssl: ssl_module.SSLContext | bool | None = None,
    create_router: type[Router] | None = None,
    **kwargs: Any,
) -> serve:
    """Start a server that picks the handler by URL path; like :func:`~wsio.asyncio.server.serve`.

    ::

        from werkzeug.routing import Map, Rule

        async def chat(websocket, room):
            ...

        url_map = Map([Rule("/chat/<room>", endpoint=chat)])
        async with route(url_map, "localhost", 8765) as server:
            await server.serve_forever()

    A path no rule matches is answered 404; a rule that werkzeug redirects
    (a missing trailing slash) is answered 302. A ``process_request`` given
    runs first; when it returns ``None``, routing happens.

    Args:
        url_map: a ``werkzeug.routing.Map``; each rule's endpoint is a
            coroutine function ``handler(websocket, **arguments)``.
        server_name: the host name that rules with a host part match against
            (default: the request's ``Host`` header).
        ssl: an :class:`ssl.SSLContext` to serve TLS; ``True`` when TLS is
            terminated in front of the server (redirects then say ``wss://``).
        create_router: a :class:`Router` subclass.
        args, kwargs: passed to :func:`~wsio.asyncio.server.serve`.
    """
    router = routed(create_router or Router, url_map, server_name, ssl, kwargs)
    return serve(router.handler, *args, **kwargs)


def unix_route(url_map: Any, path: str | None = None, **kwargs: Any) -> serve:
    """Like :func:`route`, on a Unix socket at ``path``."""
    return route(url_map, unix=True, path=path, **kwargs)
