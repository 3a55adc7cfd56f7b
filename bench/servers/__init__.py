"""One module per server under test; each runs alone in its own process.

``python -m bench.servers.NAME --port PORT --scenario echo|broadcast`` listens
on 127.0.0.1, prints ``READY {...}`` and serves until SIGTERM:

- ``echo``: every message goes back to its sender (ping-pong, pipelined,
  100 connections, idle connections, connection rate, compression);
- ``broadcast``: every message goes to every open connection, framed once
  where the library can (that is how a trigger from one connection fans out).

Compression is enabled the way each library enables it by default: it is on
only when the load generator offers permessage-deflate.
"""

#: Module name -> label in the results, in the order of the tables.
SERVERS = {
    "wsio_asyncio": "wsio (asyncio)",
    "wsio_listener": "wsio (callback)",
    "websockets_asyncio": "websockets (asyncio)",
    "websockets_sync": "websockets (sync)",
    "picows_core": "picows",
    "picows_websockets": "picows.websockets",
    "socketify_server": "socketify (uWebSockets)",
    "aiohttp_server": "aiohttp",
    "tcp_echo": "TCP echo (limit)",
    "c_epoll": "C epoll WebSocket echo (machine limit)",
}

#: Which libraries each one imports (a server is skipped when one is missing).
REQUIRES = {
    "wsio_asyncio": ["wsio"],
    "wsio_listener": ["wsio"],
    "websockets_asyncio": ["websockets.asyncio.server"],
    "websockets_sync": ["websockets.sync.server"],
    "picows_core": ["picows"],
    "picows_websockets": ["picows.websockets"],
    "socketify_server": ["socketify"],
    "aiohttp_server": ["aiohttp"],
    "tcp_echo": [],
    "c_epoll": [],
}

#: Programs a server needs besides Python modules (skipped, with the reason, when one is missing).
PROGRAMS = {
    "c_epoll": ["cc"],  # builds bench/native/ws_echo.c at bench time (bench/native/__init__.py)
}

#: Shared libraries a server's Python package loads at import (name for ctypes.util.find_library,
#: and the Debian package that has it): socketify's uWebSockets build links against libuv.
SHARED_LIBRARIES = {
    "socketify_server": {"uv": "libuv1"},
}

#: What the report says under its header about a server that ran: how to read its figures.
NOTES = {
    "socketify_server": "polls its libuv loop from asyncio's without sleeping while there is traffic, "
    "so it uses about a whole core under any load: read its figures beside its *server CPU* column.",
    "c_epoll": "a WebSocket echo in C on one epoll loop (bench/native/ws_echo.c, "
    "built with cc -O2 at bench time); no permessage-deflate.",
}

#: Servers that can't negotiate permessage-deflate.
NO_DEFLATE = {"picows_core", "tcp_echo", "c_epoll"}

#: The ASGI suite (``python -m bench --suite asgi``): a Starlette echo endpoint on
#: uvicorn (httptools, uvloop), one server per WebSocket engine; websockets-sansio
#: (uvicorn's default engine) is the reference. Not part of the main suite.
ASGI_SERVERS = {
    "uvicorn_wsio": "uvicorn + wsio",
    "uvicorn_websockets_sansio": "uvicorn + websockets-sansio",
    "uvicorn_wsproto": "uvicorn + wsproto",
    "uvicorn_floor": "uvicorn + Starlette, no engine (floor)",
}

_UVICORN = ["uvicorn", "starlette", "httptools", "uvloop"]
ASGI_REQUIRES = {
    "uvicorn_wsio": [*_UVICORN, "wsio.asgi"],
    "uvicorn_websockets_sansio": [*_UVICORN, "websockets"],
    "uvicorn_wsproto": [*_UVICORN, "wsproto"],
    "uvicorn_floor": _UVICORN,
}

#: Servers that only hold idle connections (the floor of the ASGI suite's memory figure):
#: n/a in every other scenario.
IDLE_ONLY = {"uvicorn_floor"}

#: Every server's label, in either suite.
LABELS = {**SERVERS, **ASGI_SERVERS}
