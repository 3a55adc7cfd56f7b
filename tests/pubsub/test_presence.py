"""Presence: who is subscribed to a topic, in every process, on both backends."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

import wsio
from wsio.pubsub import Hub, HubUnavailable

from .helpers import Site, eventually, nothing_received
from .processes import ServerProcess
from .redis_server import RedisServer, free_port
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


async def test_presence_events(hub_url: str | None) -> None:
    async with make_hub(hub_url) as hub, Site() as site:
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        c, c_ws = await site.client()
        await hub.subscribe(a_ws, "room", presence="a", presence_events=True)
        a_id, b_id = str(a_ws.id), str(b_ws.id)
        assert json.loads(await a.recv(timeout=2)) == {"type": "join", "topic": "room", "client": a_id, "info": "a", "count": 1}
        await hub.subscribe(b_ws, "room", presence={"user": "b"})
        assert json.loads(await a.recv(timeout=2)) == {
            "type": "join",
            "topic": "room",
            "client": b_id,
            "info": {"user": "b"},
            "count": 2,
        }
        await hub.subscribe(b_ws, "room", presence={"user": "b"})  # the same: nothing new
        await hub.subscribe(c_ws, "room")  # no presence
        await hub.subscribe(b_ws, "other", presence="b")  # another topic
        assert await nothing_received(a)
        await hub.subscribe(b_ws, "room", presence={"user": "b", "away": True})  # changed: a join again
        assert (json.loads(await a.recv(timeout=2)))["info"] == {"user": "b", "away": True}
        await b.close()
        assert json.loads(await a.recv(timeout=2)) == {
            "type": "leave",
            "topic": "room",
            "client": b_id,
            "info": {"user": "b", "away": True},
            "count": 1,
        }
        assert await nothing_received(c)  # c doesn't watch presence
        await hub.unsubscribe(a_ws, "room")
        assert await nothing_received(a), "a leaves: no more events for it"


@pytest.mark.async_timeout(60)
async def test_presence_events_across_processes_and_a_crashed_process(redis_server: RedisServer) -> None:
    # A server process (python -m tests.pubsub.app, the JSON protocol on /json) has a member; it is killed.
    server = ServerProcess(free_port(), redis_server.url, presence_ttl=1.0)
    try:
        await server.start()
        async with make_hub(redis_server.url, channel_prefix="wsio-test:", presence_ttl=1.0) as hub, Site() as site:
            a, a_ws = await site.client()
            await hub.subscribe(a_ws, "room", presence_events=True)
            member = await wsio.connect(f"ws://127.0.0.1:{server.port}/json?carol", compression=None)
            await member.send(json.dumps({"type": "subscribe", "topic": "room"}))
            assert json.loads(await member.recv(timeout=5))["type"] == "subscribed"
            join = json.loads(await a.recv(timeout=5))
            assert join["type"] == "join" and join["info"] == "carol" and join["count"] == 1
            server.kill()  # SIGKILL: nobody removes carol's entry
            killed = time.monotonic()
            leave = json.loads(await a.recv(timeout=10))
            expired_after = time.monotonic() - killed
            assert leave == {**join, "type": "leave", "count": 0}
            # Within its presence_ttl (1 s), plus a third of the watching hub's for it to look.
            assert expired_after < 1.0 + 1.0 / 3 + 2.0, expired_after
            assert await hub.presence("room") == {}
            await member.close()
    finally:
        server.kill()


async def test_presence_events_in_the_json_protocol(hub_url: str | None) -> None:
    async with make_hub(hub_url) as hub:

        def presence(ws: Any, topic: str) -> Any:
            return {"user": ws.request.path}

        anyone = lambda ws, topic: True  # noqa: E731
        async for site in json_site(hub, can_subscribe=anyone, presence=presence):
            a = await site.client()
            b = await site.client()
            await ask(a, type="subscribe", topic="room", presence_events=True)
            # Its own join, and the answer: with Redis, the event may come after the answer.
            events = {event["type"]: event for event in [await got(a), await got(a)]}
            join = events["join"]
            assert join["count"] == 1 and join["info"] == {"user": "/"} and "subscribed" in events
            await ask(b, type="subscribe", topic="room")
            assert (await got(b))["type"] == "subscribed"
            assert (await got(a))["count"] == 2
            await b.close()
            leave = await got(a)
            assert leave["type"] == "leave" and leave["count"] == 1
            await ask(a, type="subscribe", topic="x", presence_events="yes")
            assert (await got(a))["error"] == "presence_events must be true or false"
