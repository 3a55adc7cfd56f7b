"""A chat with rooms and names on wsio: one page, served by the WebSocket server itself.

Run it with ``make run`` (or ``python examples/chat/server.py --port 8765``) and
open http://127.0.0.1:8765/ in two browser windows. Messages go through a
:class:`wsio.Hub`: in memory by default; with ``--redis URL --workers N``, N
processes share the port and Redis joins their rooms::

    python examples/chat/server.py --redis redis://127.0.0.1:6379/0 --workers 4

or a Redis Cluster, whose masters share the rooms (sharded pub/sub)::

    python examples/chat/server.py --redis redis+cluster://127.0.0.1:7000,127.0.0.1:7001 --workers 4

The browser and the server speak JSON. The browser sends::

    {"type": "join", "room": "lobby", "name": "alice"}   join a room (and take a name)
    {"type": "name", "name": "alice"}                    change name
    {"type": "say", "text": "hello"}                     talk in the room

and receives ``hello`` (its name, the worker serving it, its token), ``joined``,
``renamed``, ``message`` (room, name, text), ``notice`` (room, name, text) and
``error`` (text).

The page (``hub-client.js``) joins with ``"subscribe": false`` and subscribes to
the room's topic itself, in the hub's JSON protocol
(:mod:`wsio.pubsub.json_protocol`), so that it comes back after a reconnection
where it left off: the rooms keep their last ``HISTORY`` messages::

    {"type": "join", "room": "lobby", "name": "alice", "subscribe": false, "token": "..."}
    {"type": "subscribe", "topic": "room:lobby", "offset": 41, "epoch": "9f3c..."}
    {"type": "recover", "topic": "room:lobby", "offset": 41, "epoch": "9f3c..."}

It then gets ``message`` and ``notice`` events wrapped in publications,
``{"type": "pub", "topic": "room:lobby", "data": "{...}", "offset": 42, "epoch": "9f3c..."}``,
and ``subscribed`` answers (``"recovered"``). A connection may subscribe only
to the topic of the room it joined. The ``token`` of the previous connection's
``hello`` lets the page take its name back at once, even from a worker that
died (whose names would otherwise stay taken for ``Names.TTL`` seconds).

What it checks, as a server on the internet must (see "Security" in the docs):

- **Origin.** A page of any site can open a WebSocket to any server, and the
  browser sends that server's cookies along: a server that trusts cookies or
  its network position must check ``Origin``. The chat accepts pages served by
  itself (``Origin`` is ``http://HOST:PORT`` as it was started, or the ``Host``
  it is reached by) and clients without ``Origin`` (not browsers: they carry no
  ambient credentials); ``--origin https://chat.example.com`` allows another
  site. Refusals get 403 and one INFO line.
- **Rooms** are names matched literally (``hub.subscribe``, never a prefix):
  no room name reaches another room.
- **Names** are unique in a room (across workers, through Redis), compared
  after Unicode NFKC normalization and case folding, and hold no control,
  bidirectional or invisible characters: nobody can post as someone else.
- **Input**: messages are at most ``MAX_MESSAGE`` bytes (larger ones close the
  connection with 1009); bad JSON, JSON nested too deep, wrong types and
  unknown requests get an ``error`` answer, and the connection stays open.
"""

from __future__ import annotations

import argparse
import asyncio
import http
import json
import logging
import os
import pathlib
import re
import secrets
import unicodedata
from typing import Any, Sequence

import wsio
from wsio.pubsub import Position, redact_url

PAGE = (pathlib.Path(__file__).parent / "index.html").read_bytes()
HUB_CLIENT = (pathlib.Path(__file__).parent / "hub-client.js").read_bytes()
ROOM = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_NAME = 32
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
#: Messages kept per room, for pages that come back after a reconnection.
HISTORY = 500
MAX_TEXT = 1000
#: Bytes per WebSocket message: MAX_TEXT characters escaped as JSON fit easily.
MAX_MESSAGE = 16 * 1024
#: Characters that reorder or hide text: bidirectional embeddings, overrides,
#: isolates and marks. (Names also refuse every other control and format character.)
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

logger = logging.getLogger("chat")


class BadInput(Exception):
    """What a client sent can't be used; the message says why, for that client."""


def check_name(value: Any) -> str:
    """A name as sent by a client, or :exc:`BadInput`."""
    if not isinstance(value, str):
        raise BadInput("a name is a string")
    name = unicodedata.normalize("NFC", value.strip())
    if not 1 <= len(name) <= MAX_NAME:
        raise BadInput(f"a name has 1 to {MAX_NAME} characters")
    for char in name:
        # Cc control, Cf format (bidi controls, zero-width characters), Co private
        # use, Cs surrogate, Cn unassigned, Zl / Zp line and paragraph separators,
        # Zs spaces other than " ": all of them can make a name look like another.
        if char != " " and unicodedata.category(char)[0] in "CZ":
            raise BadInput(f"a name can't hold the character U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')})")
    if "  " in name:
        raise BadInput("a name can't hold two spaces in a row")
    return name


def name_key(name: str) -> str:
    """What makes two names the same: "Alice", "alice" and "ａｌｉｃｅ" are one name."""
    return unicodedata.normalize("NFKC", name).casefold()


def check_text(value: Any) -> str:
    """A chat message as sent by a client ("" to ignore), or :exc:`BadInput`."""
    if not isinstance(value, str):
        raise BadInput("a message is a string")
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise BadInput(f"a message has at most {MAX_TEXT} characters")
    for char in text:
        if char in BIDI or unicodedata.category(char) == "Cc":
            raise BadInput(f"a message can't hold the control character U+{ord(char):04X}")
    return text


def parse(raw: str | bytes) -> dict[str, Any]:
    """A client's request, or :exc:`BadInput`."""
    if not isinstance(raw, str):
        raise BadInput("send JSON in text messages")
    try:
        event = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
        raise BadInput("expected a JSON object with a type") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise BadInput("expected a JSON object with a type")
    return event


class Names:
    """Who holds which name in which room: in this process, or in Redis across workers.

    In Redis, a name is a key ``wsio-chat:name:ROOM:NAME`` set with ``NX`` (the
    first one wins) and an expiry that this worker renews while the name is
    held: names held by a worker that died come free after ``TTL`` seconds.

    A page that reconnects takes its name back at once: its join carries the
    ``token`` its previous connection got in ``hello`` (a secret, the owner of
    the name), and the name passes to the new connection's owner.
    """

    TTL = 60
    _RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
    # Free, held by this owner, or by the previous connection of the same page: take it.
    _CLAIM = (
        "local v = redis.call('get', KEYS[1]) "
        "if v == false or v == ARGV[1] or (ARGV[2] ~= '' and v == ARGV[2]) then "
        "redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[3]) return 1 end return 0"
    )

    def __init__(self, redis_url: str | None) -> None:
        self.redis_url = redis_url
        self.held: dict[str, str] = {}  # key -> owner: in memory, every name; with Redis, this worker's
        self.redis: Any = None
        self.renewing: asyncio.Task[None] | None = None

    @staticmethod
    def _key(room: str, name: str) -> str:
        return f"wsio-chat:name:{room}:{name_key(name)}"

    async def start(self) -> None:
        if self.redis_url is not None:
            import redis.asyncio

            scheme, _, rest = self.redis_url.partition("://")
            if scheme.endswith("+cluster"):
                # redis-py's cluster client, from the first node of the hub's URL (it finds the others).
                from redis.asyncio.cluster import RedisCluster

                netloc, _, path = rest.partition("/")
                userinfo, at, nodes = netloc.rpartition("@")
                url = f"{scheme.removesuffix('+cluster')}://{userinfo}{at}{nodes.split(',')[0]}/{path}"
                self.redis = RedisCluster.from_url(url, socket_connect_timeout=5, socket_timeout=5)
            else:
                self.redis = redis.asyncio.Redis.from_url(self.redis_url, socket_connect_timeout=5, socket_timeout=5)
            self.renewing = asyncio.get_running_loop().create_task(self._renew())

    async def close(self) -> None:
        if self.renewing is not None:
            self.renewing.cancel()
            await asyncio.wait([self.renewing])
        if self.redis is not None:
            try:
                for key, owner in list(self.held.items()):
                    await self.redis.eval(self._RELEASE, 1, key, owner)
            except Exception:
                pass  # they expire
            await self.redis.aclose()

    async def claim(self, room: str, name: str, owner: str, previous: str | None = None) -> bool:
        """Take ``name`` in ``room`` for ``owner`` (from ``previous``, the page's last connection); False if someone else holds it."""
        key = self._key(room, name)
        if self.held.get(key) == owner:
            return True
        if self.redis is None:
            if key in self.held and self.held[key] != previous:
                return False
        else:
            try:
                if not await self.redis.eval(self._CLAIM, 1, key, owner, previous or "", self.TTL):
                    return False
            except Exception as exc:
                raise BadInput("names can't be checked right now (Redis is unreachable): try again later") from exc
        self.held[key] = owner
        return True

    async def release(self, room: str, name: str, owner: str) -> None:
        key = self._key(room, name)
        if self.held.get(key) != owner:
            return
        del self.held[key]
        if self.redis is not None:
            try:
                await self.redis.eval(self._RELEASE, 1, key, owner)
            except Exception:
                pass  # it expires

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.TTL / 3)
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key in self.held:
                        pipe.expire(key, self.TTL)
                    await pipe.execute()
            except Exception as exc:
                logger.warning("can't renew the names held in Redis: %s", exc)


class Chat:
    """The chat as a :func:`wsio.run` app: one hub per worker process.

    Args:
        redis_url: join the workers' rooms (and names) through Redis.
        host: the address the chat listens on: pages from ``http://HOST:PORT``
            may connect (and pages from the ``Host`` the chat is reached by).
        origins: other origins whose pages may connect, e.g.
            ``["https://chat.example.com"]``.
    """

    def __init__(self, redis_url: str | None = None, host: str = "127.0.0.1", origins: Sequence[str] = ()) -> None:
        self.redis_url = redis_url
        self.host = f"[{host}]" if ":" in host else host
        self.origins = frozenset(origin.lower().rstrip("/") for origin in origins)
        self.hub: wsio.Hub | None = None
        self.names = Names(redis_url)

    async def startup(self) -> None:
        self.hub = wsio.Hub(self.redis_url, channel_prefix="wsio-chat:", history_size=HISTORY)
        await self.hub.start()
        await self.names.start()

    async def shutdown(self) -> None:
        await self.names.close()
        if self.hub is not None:
            await self.hub.close()

    def allowed_origins(self, connection: wsio.ServerConnection, request: wsio.Request) -> set[str]:
        """Origins whose pages may open a WebSocket: the chat's own, and those given."""
        allowed = set(self.origins)
        port = connection.local_address[1] if connection.local_address else None
        if port is not None:
            allowed.add(f"http://{self.host}:{port}".lower())
        host = request.headers.get("Host")
        if host:
            allowed.update((f"http://{host}".lower(), f"https://{host}".lower()))
        return allowed

    def process_request(self, connection: wsio.ServerConnection, request: wsio.Request) -> wsio.Response | None:
        """Plain HTTP: the page and a health check; WebSocket handshakes from the chat's pages go on."""
        if request.path == "/favicon.ico":
            return wsio.basic_response(http.HTTPStatus.NO_CONTENT)
        if request.path == "/healthz":
            return wsio.basic_response(http.HTTPStatus.OK, {"Content-Type": "text/plain"}, b"OK\n")
        if "upgrade" in request.headers.get("Connection", "").lower():
            origins = request.headers.get_all("Origin")
            if not origins:
                return None  # not a browser: no cookies or network position to abuse
            allowed = self.allowed_origins(connection, request)
            if len(origins) == 1 and origins[0].lower() in allowed:
                return None
            # Cross-site WebSocket hijacking: a page of another site, in the
            # browser of someone who can reach the chat.
            logger.info(
                "%s refused: Origin %s isn't one of the chat's (%s); start the chat with --origin ORIGIN to allow another site",
                peer(connection),
                ", ".join(map(repr, origins)),
                ", ".join(sorted(allowed)),
            )
            return wsio.basic_response(
                http.HTTPStatus.FORBIDDEN,
                {"Content-Type": "text/plain"},
                b"Forbidden: this chat accepts WebSocket connections from its own pages only.\n",
            )
        if request.path.split("?")[0] in ("/", "/index.html"):
            return wsio.basic_response(
                http.HTTPStatus.OK, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"}, PAGE
            )
        if request.path.split("?")[0] == "/hub-client.js":
            return wsio.basic_response(
                http.HTTPStatus.OK, {"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache"}, HUB_CLIENT
            )
        return wsio.basic_response(http.HTTPStatus.NOT_FOUND, {"Content-Type": "text/plain"}, b"Not Found\n")

    async def _publish(self, ws: wsio.ServerConnection, room: str, event: dict[str, Any]) -> None:
        assert self.hub is not None
        try:
            await self.hub.publish(f"room:{room}", json.dumps(event))
        except wsio.HubUnavailable:
            # Delivered on this server only; say so to the one who spoke.
            await ws.send(json.dumps({"type": "error", "text": "other servers are unreachable: only people on this one got it"}))

    async def _subscription(self, ws: wsio.ServerConnection, event: dict[str, Any], room: str | None) -> None:
        """``subscribe``, ``recover`` or ``unsubscribe``, in the hub's JSON protocol: the joined room's topic only."""
        assert self.hub is not None
        kind, topic = event["type"], event.get("topic")
        if not isinstance(topic, str):
            raise BadInput("a topic is a string")
        if kind == "unsubscribe":
            await self.hub.unsubscribe(ws, topic)
            await ws.send(json.dumps({"type": "unsubscribed", "topic": topic}))
            return
        error = None
        recover = None
        offset, epoch = event.get("offset"), event.get("epoch")
        if room is None or topic != f"room:{room}":
            error = "join a room, then subscribe to its topic, room:NAME"
        elif offset is not None or epoch is not None:
            if type(offset) is not int or offset < 0 or not isinstance(epoch, str) or len(epoch) > 64:
                error = "offset must be an integer >= 0 and epoch a string"
            else:
                recover = Position(offset, epoch)
        elif kind == "recover":
            error = "recover needs an offset and an epoch"
        if error is None:
            try:
                result = await self.hub.subscribe(ws, topic, recover=recover, envelope=True)
            except ValueError:
                error = 'this connection gets its room\'s messages as they are: join with "subscribe": false to subscribe'
        if error is not None:
            await ws.send(json.dumps({"type": "error", "text": error, "topic": topic}))
            return
        answer: dict[str, Any] = {"type": "subscribed", "topic": topic, "recovered": False}
        if result is not None:
            answer.update(recovered=result.recovered, offset=result.offset, epoch=result.epoch, missed=result.missed)
        await ws.send(json.dumps(answer))

    async def __call__(self, ws: wsio.ServerConnection) -> None:
        hub = self.hub
        assert hub is not None
        owner = secrets.token_urlsafe(16)  # who holds a name; the page's token to take it back after a reconnection
        name = f"guest-{secrets.token_hex(3)}"
        room: str | None = None
        subscribe = True  # the room's messages as they are; False: the page subscribes itself (with recovery)
        await ws.send(json.dumps({"type": "hello", "name": name, "worker": os.getpid(), "token": owner}))
        try:
            async for raw in ws:
                try:
                    event = parse(raw)
                    kind = event["type"]
                    if kind in ("subscribe", "recover", "unsubscribe"):
                        await self._subscription(ws, event, room)
                    elif kind in ("join", "name"):
                        new_name = check_name(event["name"]) if "name" in event else name
                        new_room = room
                        if kind == "join":
                            new_room = event.get("room")
                            if not isinstance(new_room, str) or not ROOM.match(new_room.strip()):
                                raise BadInput("a room has 1 to 32 letters, digits, - or _")
                            new_room = new_room.strip()
                            subscribe = event.get("subscribe", True)
                            if not isinstance(subscribe, bool):
                                raise BadInput("subscribe is true or false")
                        if new_room == room and new_name == name:
                            continue
                        previous = event.get("token") if kind == "join" and room is None else None
                        if previous is not None and not (isinstance(previous, str) and TOKEN.match(previous)):
                            raise BadInput("a token is the one hello gave")
                        if new_room is not None and not await self.names.claim(new_room, new_name, owner, previous):
                            raise BadInput(f"someone in {new_room} is already called {new_name}: pick another name")
                        old_name, old_room = name, room
                        name, room = new_name, new_room
                        if old_room is not None and (old_room, name_key(old_name)) != (room, name_key(name)):
                            await self.names.release(old_room, old_name, owner)
                        if name != old_name:
                            await ws.send(json.dumps({"type": "renamed", "name": name}))
                        if room != old_room:
                            if old_room is not None:
                                await hub.unsubscribe(ws, f"room:{old_room}")
                                await self._publish(
                                    ws, old_room, {"type": "notice", "room": old_room, "name": old_name, "text": "left"}
                                )
                            assert room is not None
                            if subscribe:
                                await hub.subscribe(ws, f"room:{room}")  # a name, never a prefix
                            await ws.send(json.dumps({"type": "joined", "room": room, "topic": f"room:{room}"}))
                            await self._publish(ws, room, {"type": "notice", "room": room, "name": name, "text": "joined"})
                        elif room is not None:
                            await self._publish(
                                ws, room, {"type": "notice", "room": room, "name": old_name, "text": f"is now {name}"}
                            )
                    elif kind == "say":
                        text = check_text(event.get("text", ""))
                        if not text:
                            continue
                        if room is None:
                            raise BadInput("join a room to talk")
                        await self._publish(ws, room, {"type": "message", "room": room, "name": name, "text": text})
                    else:
                        raise BadInput("expected a type of join, name or say")
                except BadInput as exc:
                    await ws.send(json.dumps({"type": "error", "text": str(exc)}))
        finally:
            if room is not None:
                await self.names.release(room, name, owner)
                try:
                    await hub.publish(f"room:{room}", json.dumps({"type": "notice", "room": room, "name": name, "text": "left"}))
                except wsio.WebSocketError:
                    pass


def peer(connection: wsio.ServerConnection) -> str:
    """``host:port`` of the client, for log lines."""
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description="wsio chat demo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="join worker processes and hosts through Redis, e.g. redis://127.0.0.1:6379/0 (or redis+cluster://host:port,...)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes sharing the port (needs --redis beyond 1)")
    parser.add_argument(
        "--origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also accept WebSocket connections from pages of this origin, e.g. https://chat.example.com (repeatable); "
        "the chat's own pages are always accepted",
    )
    args = parser.parse_args()
    if args.workers > 1 and not args.redis:
        parser.error("--workers above 1 needs --redis: without it, each worker would have rooms of its own")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def ready(port: int, pids: list[int]) -> None:
        backend = f"Redis at {redact_url(args.redis)}" if args.redis else "in memory"
        print(f"chat on http://{args.host}:{port}/ ({len(pids)} worker(s), rooms {backend}; Ctrl-C stops it)", flush=True)

    chat = Chat(args.redis, args.host, args.origin)
    wsio.run(chat, args.host, args.port, workers=args.workers, on_ready=ready, max_size=MAX_MESSAGE)


if __name__ == "__main__":
    main()
