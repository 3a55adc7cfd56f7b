"""How code written for websockets' older API calls wsio's hooks, recognised in one place.

Handlers and hooks are told apart by their signatures: ``handler(websocket,
path)``, ``process_request(path, request_headers)`` and
``select_subprotocol(client_subprotocols, server_subprotocols)`` are the
older forms (websockets < 13); the newer ones start with the connection. The
servers (``wsio/_server_common.py``) and the options (``wsio/options.py``) ask
these functions which form they were given. The other legacy pieces are the
names of :mod:`wsio.legacy` and the exceptions kept for ``except`` clauses
(``AbortHandshake``, ``InvalidStatusCode``, ... in :mod:`wsio.exceptions`).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

__all__ = ["legacy_signature", "handler_takes_path"]


def legacy_signature(function: Callable[..., Any], first: str) -> bool:
    """Whether ``function``'s first parameter has the name of the older call style.

    ``process_request(path, request_headers)`` and
    ``select_subprotocol(client_subprotocols, server_subprotocols)`` are the
    older forms; the newer ones start with the connection.
    """
    try:
        params = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0] == first


def handler_takes_path(handler: Callable[..., Any]) -> bool:
    """Whether the handler is the older ``(websocket, path)`` kind."""
    try:
        params = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return len(positional) >= 2
