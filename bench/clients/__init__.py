"""One module per client under test; each runs alone in its own process.

``python -m bench.clients.NAME --cases JSON`` runs
each case against a fast peer server (picows' echo server; picows.websockets
for compression, since picows' core has none; the TCP echo for the TCP client)
and prints ``RESULT {...}`` per case. The peer's CPU time is measured too, so a
figure limited by the peer rather than the client shows up as such.
"""

CLIENTS = {
    "wsio_asyncio": "wsio (asyncio)",
    "wsio_listener": "wsio (callback)",
    "wsio_sync": "wsio (sync)",
    "websockets_asyncio": "websockets (asyncio)",
    "websockets_sync": "websockets (sync)",
    "picows_core": "picows",
    "picows_websockets": "picows.websockets",
    "aiohttp_client": "aiohttp",
    "websocket_client": "websocket-client",
    "tcp_raw": "TCP client (limit)",
}

REQUIRES = {
    "wsio_asyncio": ["wsio"],
    "wsio_listener": ["wsio"],
    "wsio_sync": ["wsio.sync"],
    "websockets_asyncio": ["websockets.asyncio.client"],
    "websockets_sync": ["websockets.sync.client"],
    "picows_core": ["picows"],
    "picows_websockets": ["picows.websockets"],
    "aiohttp_client": ["aiohttp"],
    "websocket_client": ["websocket"],
    "tcp_raw": [],
}

#: Clients that can't negotiate permessage-deflate.
NO_DEFLATE = {"picows_core", "websocket_client", "tcp_raw"}
