"""websocket-client's API and module layout on wsio: ``import wsio.websocket_client as websocket``.

Programs written for websocket-client (and the modules they import:
``websocket._abnf``, ``_app``, ``_core``, ``_exceptions``, ``_handshake``,
``_http``, ``_logging``, ``_socket``, ``_ssl_compat``, ``_url``, ``_utils``,
``_cookiejar``, ``_dispatcher``) run on wsio's thread client:

- :func:`create_connection` and :class:`WebSocket`: blocking ``send()`` / ``recv()``.
- :class:`WebSocketApp`: callbacks and ``run_forever(reconnect=...)``.
- :class:`ABNF` and the ``STATUS_*`` close codes.
- The ``WebSocket*Exception`` classes, each also the matching wsio exception.
- ``sslopt`` dictionaries, ``setdefaulttimeout()``, ``enableTrace()``.
- Proxies: ``http_proxy_host``, ``http_proxy_port``, ``http_proxy_auth``,
  ``proxy_type`` (http, socks4, socks4a, socks5, socks5h), ``http_no_proxy``,
  ``http_proxy_timeout``, and the ``http_proxy`` / ``https_proxy`` variables.

The same names are also in :mod:`wsio.sync` (``from wsio import sync as websocket``).
"""

from __future__ import annotations

from ._abnf import *  # noqa: F403
from ._abnf import __all__ as _abnf_all

# "X as X": exported for type checkers too, which can't read the __all__ built below.
from ._app import WebSocketApp as WebSocketApp, set_reconnect as set_reconnect
from ._core import WebSocket as WebSocket, create_connection as create_connection
from ._exceptions import (
    WebSocketAddressException as WebSocketAddressException,
    WebSocketBadStatusException as WebSocketBadStatusException,
    WebSocketConnectionClosedException as WebSocketConnectionClosedException,
    WebSocketException as WebSocketException,
    WebSocketHandshakeException as WebSocketHandshakeException,
    WebSocketPayloadException as WebSocketPayloadException,
    WebSocketProtocolException as WebSocketProtocolException,
    WebSocketProxyException as WebSocketProxyException,
    WebSocketTimeoutException as WebSocketTimeoutException,
)
from ._logging import *  # noqa: F403
from ._logging import __all__ as _logging_all
from ._socket import *  # noqa: F403
from ._socket import __all__ as _socket_all
from ._ssl_compat import ssl_context_from_sslopt as ssl_context_from_sslopt

#: The websocket-client version whose API this package follows.
__version__ = "1.9.2"

__all__ = sorted(
    {
        "create_connection",
        "WebSocket",
        "WebSocketApp",
        "set_reconnect",
        "ssl_context_from_sslopt",
        "WebSocketException",
        "WebSocketProtocolException",
        "WebSocketPayloadException",
        "WebSocketConnectionClosedException",
        "WebSocketTimeoutException",
        "WebSocketProxyException",
        "WebSocketBadStatusException",
        "WebSocketAddressException",
        "WebSocketHandshakeException",
        *_abnf_all,
        *_logging_all,
        *_socket_all,
    }
)
