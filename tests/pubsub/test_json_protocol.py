"""wsio.pubsub.json_protocol: what a browser client sends and gets, on both backends."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import pytest

import wsio
from wsio.pubsub import Hub
from wsio.pubsub.json_protocol import handle

from .helpers import nothing_received
from .test_hub import make_hub

pytestmark = pytest.mark.timeout(60)


class JsonSite:
    """A server whose handler is ``handle(hub, ws, **options)``; ``await site.client()`` connects to it."""

    def __init__(self, hub: Hub, **options: Any) -> None:
        self.hub = hub
        self.options = options
        self.clients: list[wsio.ClientConnection] = []

    async def _handler(self, ws: wsio.ServerConnection) -> None:
        await handle(self.hub, ws, **self.options)

    async def client(self) -> wsio.ClientConnection:
        client = await wsio.connect(f"ws://127.0.0.1:{self.port}/", compression=None)
        self.clients.append(client)
        return client


async def json_site(hub: Hub, **options: Any) -> AsyncIterator[JsonSite]:
    site = JsonSite(hub, **options)
    server = await wsio.serve(site._handler, "127.0.0.1", 0, compression=None)
    site.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    try:
        yield site
    finally:
        for client in site.clients:
            await client.close()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)


async def ask(client: wsio.ClientConnection, **command: Any) -> None:
    await client.send(json.dumps(command))


async def got(client: wsio.ClientConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await client.recv(timeout=2))
    return event


async def test_subscribe_publish_and_recover(hub_url: str | None) -> None:
    async with make_hub(hub_url, history_size=50) as hub:
        async for site in json_site(hub, can_subscribe=lambda ws, topic: True, can_publish=lambda ws, topic: topic == "room:1"):
            a = await site.client()
            await ask(a, type="subscribe", topic="room:1", id=1)
            answer = await got(a)
            epoch = answer["epoch"]
            assert answer == {
                "type": "subscribed",
                "id": 1,
                "topic": "room:1",
                "recovered": False,
                "offset": 0,
                "epoch": epoch,
                "missed": 0,
            }
            await ask(a, type="publish", topic="room:1", data="hi")
            # The publication may come before or after the answer to publish: both are written as soon as they exist.
            events = [await got(a), await got(a)]
            assert {"type": "pub", "topic": "room:1", "data": "hi", "offset": 1, "epoch": epoch} in events
            assert {"type": "published", "topic": "room:1"} in events
            await ask(a, type="publish", topic="room:1", b64="AP8=")
            events = [await got(a), await got(a)]
            assert {"type": "pub", "topic": "room:1", "b64": "AP8=", "offset": 2, "epoch": epoch} in events
            await a.close()

            for i in range(3, 6):
                await hub.publish("room:1", f"m{i}")
            # Back after offset 2: 3, 4, 5, then the answer, then live ones.
            b = await site.client()
            await ask(b, type="subscribe", topic="room:1", offset=2, epoch=epoch)
            assert [await got(b) for _ in range(4)] == [
                *({"type": "pub", "topic": "room:1", "data": f"m{i}", "offset": i, "epoch": epoch} for i in range(3, 6)),
                {"type": "subscribed", "topic": "room:1", "recovered": True, "offset": 5, "epoch": epoch, "missed": 3},
            ]
            await hub.publish("room:1", "m6")
            assert (await got(b))["offset"] == 6
            # A gap (say the client dropped 5 and 6): recover while subscribed; nothing twice after.
            await ask(b, type="recover", topic="room:1", offset=4, epoch=epoch)
            assert [(await got(b)).get("offset") for _ in range(3)] == [5, 6, 6]  # two publications, the answer at 6
            await hub.publish("room:1", "m7")
            assert (await got(b))["offset"] == 7
            assert await nothing_received(b)

            # Another epoch: reload.
            c = await site.client()
            await ask(c, type="subscribe", topic="room:1", offset=2, epoch="0000000000000000")
            assert await got(c) == {
                "type": "subscribed",
                "topic": "room:1",
                "recovered": False,
                "offset": 7,
                "epoch": epoch,
                "missed": 0,
            }
            await ask(c, type="unsubscribe", topic="room:1")
            assert await got(c) == {"type": "unsubscribed", "topic": "room:1"}
            await hub.publish("room:1", "m8")
            assert await nothing_received(c)


async def test_errors_and_permissions() -> None:
    async with Hub(history_size=10) as hub:
        async for site in json_site(hub, can_subscribe=lambda ws, topic: topic != "secret"):
            a = await site.client()
            for command, error in [
                ("nope", "not JSON"),
                ("[1]", "not a JSON object"),
                ('{"type": "ping"}', "unknown type 'ping'"),
                ('{"type": "subscribe"}', "no topic"),
                ('{"type": "subscribe", "topic": "secret"}', "not allowed"),
                (
                    '{"type": "subscribe", "topic": "t", "offset": -1, "epoch": "e"}',
                    "offset must be an integer >= 0 and epoch a string",
                ),
                ('{"type": "recover", "topic": "t"}', "recover needs an offset and an epoch"),
                ('{"type": "publish", "topic": "t"}', 'publish needs "data" (a string) or "b64"'),
                ('{"type": "publish", "topic": "t", "b64": "!!"}', "b64 isn't base64"),
                ('{"type": "publish", "topic": "t", "data": "x"}', "not allowed"),  # nobody publishes by default
            ]:
                await a.send(command)
                assert (await got(a))["error"] == error, command
        # Nobody subscribes by default either.
        async for site in json_site(hub):
            b = await site.client()
            await ask(b, type="subscribe", topic="t")
            assert (await got(b))["error"] == "not allowed"


async def test_without_history() -> None:
    async with Hub() as hub:

        async def can_publish(ws: Any, topic: str) -> bool:  # a coroutine works too
            return True

        async for site in json_site(hub, can_subscribe=can_publish, can_publish=can_publish):
            a = await site.client()
            await ask(a, type="subscribe", topic="t", offset=3, epoch="e")
            assert await got(a) == {"type": "subscribed", "topic": "t", "recovered": False}
            await hub.publish("t", "plain")
            assert await got(a) == {"type": "pub", "topic": "t", "data": "plain"}
