"""A chat room on wsio: one page, served by the WebSocket server itself.

Run it with ``make run`` (or ``python examples/chat/server.py --port 8765``)
and open http://127.0.0.1:8765/ in two browser windows.
"""

from __future__ import annotations

import argparse
import asyncio
import http
import json
import pathlib
import signal

import wsio

PAGE = (pathlib.Path(__file__).parent / "index.html").read_bytes()
CONNECTIONS: set[wsio.ServerConnection] = set()


def serve_page(connection: wsio.ServerConnection, request: wsio.Request) -> wsio.Response | None:
    """Answer plain HTTP requests: the page, and a health check."""
    if request.path == "/healthz":
        return wsio.basic_response(http.HTTPStatus.OK, {"Content-Type": "text/plain"}, b"OK\n")
    if "upgrade" not in request.headers.get("Connection", "").lower():
        return wsio.basic_response(http.HTTPStatus.OK, {"Content-Type": "text/html; charset=utf-8"}, PAGE)
    return None  # a WebSocket handshake: go on


async def chat(websocket: wsio.ServerConnection) -> None:
    CONNECTIONS.add(websocket)
    name = f"guest-{len(CONNECTIONS)}"
    try:
        wsio.broadcast(CONNECTIONS, json.dumps({"system": f"{name} joined"}))
        async for message in websocket:
            if not isinstance(message, str) or not message.strip():
                continue
            wsio.broadcast(CONNECTIONS, json.dumps({"name": name, "text": message[:1000]}))
    finally:
        CONNECTIONS.discard(websocket)
        wsio.broadcast(CONNECTIONS, json.dumps({"system": f"{name} left"}))


async def main(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with wsio.serve(chat, host, port, process_request=serve_page):
        print(f"chat on http://{host}:{port}/", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
