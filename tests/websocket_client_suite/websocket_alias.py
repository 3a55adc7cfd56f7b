"""A pytest plugin (``-p websocket_alias``) that makes ``import websocket`` give ``wsio.websocket_client``.

Loaded only in the subprocess that runs websocket-client's own test suite:
``websocket`` and each ``websocket._<module>`` resolve to wsio's mirror, so
the suite's files run unedited against wsio. It is not a ``conftest.py``,
so wsio's own test run, where ``websocket`` is the real websocket-client
(used by interoperability tests), is unaffected.
"""

from __future__ import annotations

import importlib
import sys

import wsio.websocket_client

MODULES = (
    "_abnf",
    "_app",
    "_cookiejar",
    "_core",
    "_dispatcher",
    "_exceptions",
    "_handshake",
    "_http",
    "_logging",
    "_socket",
    "_ssl_compat",
    "_url",
    "_utils",
)

sys.modules["websocket"] = wsio.websocket_client
for _name in MODULES:
    sys.modules[f"websocket.{_name}"] = importlib.import_module(f"wsio.websocket_client.{_name}")
