"""websockets' legacy API names, gathered in one place (``websockets.legacy.*``).

websockets 14 deprecated its legacy implementation; code written for it
imports ``websockets.legacy.server``, ``.client``, ``.auth``, ``.protocol``
and ``.exceptions``. Here those names point at wsio's one implementation:
``WebSocketServerProtocol`` is :class:`wsio.ServerConnection` (overriding
``process_request(self, path, request_headers)`` works), ``serve`` is
:func:`wsio.serve` (``handler(websocket, path)`` works), and so on. The
differences that remain are in :doc:`/migrate/websockets`.
"""
