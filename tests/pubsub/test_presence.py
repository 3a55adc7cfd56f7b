"""Presence: who is subscribed to a topic, in every process, on both backends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from wsio.pubsub import Hub, HubUnavailable

from .helpers import Site, eventually
from .redis_server import RedisServer
from .test_hub import make_hub
from .test_json_protocol import ask, got, json_site

pytestmark = pytest.mark.timeout(60)


async def test_presence_follows_subscriptions(hub_url: str | None) -> None:
    async with make_hub(hub_url) as hub, Site() as site:
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        c, c_ws = await site.client()
        assert await hub.presence("room") == {}
        await hub.subscribe(a_ws, "room", presence={"user": "alice"})
        await hub.subscribe(b_ws, "room", presence="bob")
        await hub.subscribe(c_ws, "room")  # not in presence
        await hub.subscribe(c_ws, "other", presence=[1, 2])
        assert await hub.presence("room") == {str(a_ws.id): {"user": "alice"}, str(b_ws.id): "bob"}
        assert await hub.presence("other") == {str(c_ws.id): [1, 2]}
        # Subscribing again changes what the others see.
        await hub.subscribe(a_ws, "room", presence={"user": "alice", "away": True})
        assert (await hub.presence("room"))[str(a_ws.id)] == {"user": "alice", "away": True}
        # Leaving a topic, or closing, removes the entry.
        await hub.unsubscribe(b_ws, "room")
        await a.close()

        async def only_nobody() -> bool:
            return await hub.presence("room") == {}

        await eventually(only_nobody, what="a and b left the presence")
        with pytest.raises(TypeError):
            await hub.subscribe(c_ws, "x", presence=object())
        assert not hub._present.get("room")


async def test_presence_across_processes(redis_server: RedisServer) -> None:
    async with make_hub(redis_server.url) as one, make_hub(redis_server.url) as two, Site() as site:
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        await one.subscribe(a_ws, "room", presence="a")
        await two.subscribe(b_ws, "room", presence="b")
        expected = {str(a_ws.id): "a", str(b_ws.id): "b"}
        assert await one.presence("room") == expected
        assert await two.presence("room") == expected
        # A hub that closes takes its entries away.
        await one.close()
        assert await two.presence("room") == {str(b_ws.id): "b"}


async def test_entries_of_a_dead_process_expire(redis_server: RedisServer) -> None:
    async with make_hub(redis_server.url, presence_ttl=1.5) as hub, Site() as site:
        a, a_ws = await site.client()
        await hub.subscribe(a_ws, "room", presence="alive")
        # A process that died left an entry that nobody refreshes.
        redis_server.command("HSET", "wsio:presence:room", "ghost", '"dead"')
        redis_server.command("ZADD", "wsio:presence-expiry:room", "1", "ghost")
        assert await hub.presence("room") == {str(a_ws.id): "alive"}
        assert redis_server.command("HGET", "wsio:presence:room", "ghost") is None
        # The hub's own entries live on: it refreshes them every third of presence_ttl.
        await asyncio.sleep(2.0)
        assert await hub.presence("room") == {str(a_ws.id): "alive"}


async def test_presence_is_written_again_after_an_outage(redis_server: RedisServer) -> None:
    async with make_hub(redis_server.url) as hub, Site() as site:
        a, a_ws = await site.client()
        await hub.subscribe(a_ws, "room", presence="a")
        redis_server.kill()
        await eventually(lambda: not hub.connected)
        with pytest.raises(HubUnavailable):
            await hub.presence("room")
        b, b_ws = await site.client()
        await hub.subscribe(b_ws, "room", presence="b")  # doesn't fail meanwhile
        redis_server.start()  # empty: no persistence
        await eventually(lambda: hub.connected, timeout=10)

        async def both() -> bool:
            return await hub.presence("room") == {str(a_ws.id): "a", str(b_ws.id): "b"}

        await eventually(both, what="presence written again on reconnection")


async def test_presence_in_the_json_protocol() -> None:
    async with Hub() as hub:

        def presence(ws: Any, topic: str) -> Any:
            return {"user": ws.request.path}

        async for site in json_site(hub, can_subscribe=lambda ws, topic: topic != "secret", presence=presence):
            a = await site.client()
            await ask(a, type="subscribe", topic="room")
            assert (await got(a))["type"] == "subscribed"
            await ask(a, type="presence", topic="room")
            answer = await got(a)
            assert answer["type"] == "presence" and list(answer["clients"].values()) == [{"user": "/"}]
            await ask(a, type="presence", topic="secret")
            assert (await got(a))["error"] == "not allowed"
            assert json.loads(json.dumps(answer)) == answer
