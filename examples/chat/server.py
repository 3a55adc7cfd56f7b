"""A chat with rooms and names on wsio: one page, served by the WebSocket server itself.

Run it with ``make run`` (or ``python examples/chat/server.py --port 8765``) and
open http://127.0.0.1:8765/ in two browser windows. Messages go through a
:class:`wsio.Hub`: in memory by default; with ``--redis URL --workers N``, N
processes share the port and Redis joins their rooms::

    python examples/chat/server.py --redis redis://127.0.0.1:6379/0 --workers 4

The browser and the server speak JSON. The browser sends::

    {"type": "join", "room": "lobby", "name": "alice"}   join a room ("*": watch every room)
    {"type": "name", "name": "alice"}                    change name
    {"type": "say", "text": "hello"}                     talk in the room

and receives ``hello`` (its name, the worker serving it), ``joined``,
``renamed``, ``message`` (room, name, text), ``notice`` (room, text) and
``error`` (text).
"""

from __future__ import annotations

import argparse
import http
import json
import logging
import os
import pathlib
import re
import secrets
from typing import Any

import wsio

PAGE = (pathlib.Path(__file__).parent / "index.html").read_bytes()
NAME = re.compile(r"^[^\x00-\x1f<>]{1,32}$")
ROOM = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_TEXT = 1000

logger = logging.getLogger("chat")


class Chat:
    """The chat as a :func:`wsio.run` app: one hub per worker process."""

    def __init__(self, redis_url: str | None = None) -> None:
        self.redis_url = redis_url
        self.hub: wsio.Hub | None = None

    async def startup(self) -> None:
        self.hub = wsio.Hub(self.redis_url, channel_prefix="wsio-chat:")
        await self.hub.start()

    async def shutdown(self) -> None:
        if self.hub is not None:
            await self.hub.close()

    def process_request(self, connection: wsio.ServerConnection, request: wsio.Request) -> wsio.Response | None:
        """Plain HTTP: the page and a health check; WebSocket handshakes on /chat go on."""
        if request.path == "/favicon.ico":
            return wsio.basic_response(http.HTTPStatus.NO_CONTENT)
        if request.path == "/healthz":
            return wsio.basic_response(http.HTTPStatus.OK, {"Content-Type": "text/plain"}, b"OK\n")
        if "upgrade" in request.headers.get("Connection", "").lower():
            return None
        if request.path.split("?")[0] in ("/", "/index.html"):
            return wsio.basic_response(
                http.HTTPStatus.OK, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"}, PAGE
            )
        return wsio.basic_response(http.HTTPStatus.NOT_FOUND, {"Content-Type": "text/plain"}, b"Not Found\n")

    async def _publish(self, ws: wsio.ServerConnection, room: str, event: dict[str, Any]) -> None:
        assert self.hub is not None
        try:
            await self.hub.publish(f"room:{room}", json.dumps(event))
        except wsio.HubUnavailable:
            # Delivered on this server only; say so to the one who spoke.
            await ws.send(json.dumps({"type": "error", "text": "other servers are unreachable: only people on this one got it"}))

    async def __call__(self, ws: wsio.ServerConnection) -> None:
        hub = self.hub
        assert hub is not None
        name = f"guest-{secrets.token_hex(2)}"
        room: str | None = None
        await ws.send(json.dumps({"type": "hello", "name": name, "worker": os.getpid()}))
        try:
            async for raw in ws:
                try:
                    event = json.loads(raw)
                    kind = event["type"]
                except (ValueError, KeyError, TypeError):
                    await ws.send(json.dumps({"type": "error", "text": "expected JSON with a type"}))
                    continue
                if kind in ("join", "name") and "name" in event:
                    new_name = str(event["name"]).strip()
                    if not NAME.match(new_name):
                        await ws.send(json.dumps({"type": "error", "text": "a name has 1 to 32 characters, no < or >"}))
                        continue
                    if new_name != name:
                        old, name = name, new_name
                        await ws.send(json.dumps({"type": "renamed", "name": name}))
                        if room is not None and room != "*":
                            await self._publish(ws, room, {"type": "notice", "room": room, "text": f"{old} is now {name}"})
                if kind == "join":
                    new_room = str(event.get("room", "")).strip()
                    if new_room != "*" and not ROOM.match(new_room):
                        await ws.send(json.dumps({"type": "error", "text": "a room has 1 to 32 letters, digits, - or _"}))
                        continue
                    if new_room == room:
                        continue
                    if room is not None:
                        await hub.unsubscribe(ws, f"room:{room}")
                        if room != "*":
                            await self._publish(ws, room, {"type": "notice", "room": room, "text": f"{name} left"})
                    room = new_room
                    await hub.subscribe(ws, f"room:{room}")  # "room:*" is a pattern: every room
                    await ws.send(json.dumps({"type": "joined", "room": room}))
                    if room != "*":
                        await self._publish(ws, room, {"type": "notice", "room": room, "text": f"{name} joined"})
                elif kind == "say":
                    text = str(event.get("text", "")).strip()[:MAX_TEXT]
                    if not text:
                        continue
                    if room is None or room == "*":
                        await ws.send(json.dumps({"type": "error", "text": "join a room to talk"}))
                        continue
                    await self._publish(ws, room, {"type": "message", "room": room, "name": name, "text": text})
        finally:
            if room is not None and room != "*":
                try:
                    await hub.publish(f"room:{room}", json.dumps({"type": "notice", "room": room, "text": f"{name} left"}))
                except wsio.WebSocketError:
                    pass


def main() -> None:
    parser = argparse.ArgumentParser(description="wsio chat demo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--redis", metavar="URL", help="join worker processes and hosts through Redis, e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--workers", type=int, default=1, help="worker processes sharing the port (needs --redis beyond 1)")
    args = parser.parse_args()
    if args.workers > 1 and not args.redis:
        parser.error("--workers above 1 needs --redis: without it, each worker would have rooms of its own")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def ready(port: int, pids: list[int]) -> None:
        backend = f"Redis at {args.redis}" if args.redis else "in memory"
        print(f"chat on http://{args.host}:{port}/ ({len(pids)} worker(s), rooms {backend}; Ctrl-C stops it)", flush=True)

    wsio.run(Chat(args.redis), args.host, args.port, workers=args.workers, on_ready=ready)


if __name__ == "__main__":
    main()
