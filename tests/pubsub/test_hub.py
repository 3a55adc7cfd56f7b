"""The hub's API on both backends: subscribe, publish, patterns, unsubscribe, leaving on close."""

from __future__ import annotations

import asyncio

import pytest

import wsio
from wsio.protocol.deflate import PerMessageDeflate
from wsio.pubsub import Hub, HubUnavailable

from .helpers import Site, eventually, nothing_received

pytestmark = pytest.mark.timeout(30)


def make_hub(url: str | None, **options: object) -> Hub:
    if url is not None:
        options.setdefault("reconnect_initial", 0.05)
        options.setdefault("reconnect_max", 0.2)
    return Hub(url, **options)  # type: ignore[arg-type]


async def test_publish_reaches_subscribers_and_returns_the_count(hub_url: str | None) -> None:
    async with make_hub(hub_url) as hub, Site() as site:
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        c, _ = await site.client()
        await hub.subscribe(a_ws, "news")
        await hub.subscribe(b_ws, "news")
        assert await hub.publish("news", "hello") == 2
        assert await a.recv(timeout=2) == "hello"
        assert await b.recv(timeout=2) == "hello"
        assert await nothing_received(c)
        assert await hub.publish("nobody-listens", "hello") == 0


async def test_text_stays_text_and_binary_stays_binary(hub_url: str | None) -> None:
    async with make_hub(hub_url) as hub, Site() as site:
        a, a_ws = await site.client()
        await hub.subscribe(a_ws, "t")
        await hub.publish("t", "héllo")
        await hub.publish("t", b"\x00\xff")
        await hub.publish("t", bytearray(b"ba"))
        await hub.publish("t", memoryview(b"mv"))
        await hub.publish("t", "")
        await hub.publish("t", b"")
        assert [await a.recv(timeout=2) for _ in range(6)] == ["héllo", b"\x00\xff", b"ba", b"mv", "", b""]


async def test_prefixes(hub_url: str | None) -> None:
    async with make_hub(hub_url) as hub, Site() as site:
        rooms, rooms_ws = await site.client()
        everything, everything_ws = await site.client()
        one, one_ws = await site.client()
        await hub.subscribe_prefix(rooms_ws, "room:")
        await hub.subscribe_prefix(everything_ws, "")
        await hub.subscribe(one_ws, "room:1")
        await hub.subscribe_prefix(one_ws, "room:")  # both match: still one copy
        assert await hub.publish("room:1", "r1") == 3
        assert await hub.publish("room:2", "r2") == 3
        assert await hub.publish("lobby", "l") == 1
        assert await hub.publish("room:", "bare") == 3
        assert [await rooms.recv(timeout=2) for _ in range(3)] == ["r1", "r2", "bare"]
        assert [await everything.recv(timeout=2) for _ in range(4)] == ["r1", "r2", "l", "bare"]
        assert [await one.recv(timeout=2) for _ in range(3)] == ["r1", "r2", "bare"]
        assert await nothing_received(one)
        assert hub.subscribers("room:7") == {rooms_ws, everything_ws, one_ws}
        assert hub.subscribers("lobby") == {everything_ws}
        assert hub.prefix_subscribers("room:") == {rooms_ws, one_ws}
        assert hub.prefixes(one_ws) == {"room:"} and hub.topics(one_ws) == {"room:1"}


async def test_subscribe_takes_a_client_supplied_star_literally(hub_url: str | None, caplog: pytest.LogCaptureFixture) -> None:
    # The application builds topics from what clients send: hub.subscribe(ws, f"inbox:{name}").
    async with make_hub(hub_url) as hub, Site() as site:
        alice, alice_ws = await site.client()
        mallory, mallory_ws = await site.client()
        star, star_ws = await site.client()
        await hub.subscribe(alice_ws, "inbox:alice")
        await hub.subscribe(mallory_ws, "inbox:*")  # name = "*"
        await hub.subscribe(star_ws, "*")  # a whole topic of "*"
        assert await hub.publish("inbox:alice", "for alice only") == 1
        assert await hub.publish("inbox:bob", "for bob only") == 0
        assert await hub.publish("lobby", "for the lobby") == 0
        assert await alice.recv(timeout=2) == "for alice only"
        assert await nothing_received(mallory)
        assert await nothing_received(star)
        assert hub.subscribers("inbox:alice") == {alice_ws}
        assert hub.topics(mallory_ws) == {"inbox:*"} and hub.prefixes(mallory_ws) == set()
        # A topic named "inbox:*" is a topic like any other: publishing to it reaches it.
        assert await hub.publish("inbox:*", "to the topic named inbox:*") == 1
        assert await mallory.recv(timeout=2) == "to the topic named inbox:*"
        assert await hub.publish("*", "to the topic named *") == 1
        assert await star.recv(timeout=2) == "to the topic named *"
        assert await nothing_received(alice)
    # Code written for the old meaning of "*" hears about it, once per hub.
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "subscribe_prefix" in r.getMessage()]
    assert len(warnings) == 1, warnings


async def test_a_prefix_and_a_topic_of_the_same_text_are_distinct(hub_url: str | None) -> None:
    async with make_hub(hub_url) as hub, Site() as site:
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        await hub.subscribe(a_ws, "news")
        await hub.subscribe_prefix(b_ws, "news")
        await hub.unsubscribe(b_ws, "news")  # not subscribed by name: nothing happens
        await hub.unsubscribe_prefix(a_ws, "news")  # nor by prefix
        assert await hub.publish("newsflash", "prefix only") == 1
        assert await hub.publish("news", "both") == 2
        assert await b.recv(timeout=2) == "prefix only"
        assert await b.recv(timeout=2) == "both"
        assert await a.recv(timeout=2) == "both"
        await hub.unsubscribe_prefix(b_ws, "news")
        assert await hub.publish("newsflash", "nobody") == 0
        assert await hub.publish("news", "a only") == 1
        assert await a.recv(timeout=2) == "a only"
        assert await nothing_received(b)


async def test_prefix_characters_are_literal(hub_url: str | None) -> None:
    async with make_hub(hub_url) as hub, Site() as site:
        a, a_ws = await site.client()
        await hub.subscribe_prefix(a_ws, "a?[b]")
        assert await hub.publish("a?[b]c", "match") == 1
        assert await hub.publish("axbc", "no") == 0
        assert await a.recv(timeout=2) == "match"


async def test_unsubscribe(hub_url: str | None) -> None:
    async with make_hub(hub_url) as hub, Site() as site:
        a, a_ws = await site.client()
        await hub.subscribe(a_ws, "x")
        await hub.subscribe_prefix(a_ws, "y")
        assert hub.topics(a_ws) == {"x"} and hub.prefixes(a_ws) == {"y"}
        await hub.unsubscribe(a_ws, "x")
        await hub.unsubscribe(a_ws, "x")  # twice: nothing happens
        await hub.unsubscribe(a_ws, "never")
        assert hub.topics(a_ws) == set() and hub.prefixes(a_ws) == {"y"}
        assert await hub.publish("x", "gone") == 0
        assert await hub.publish("yes", "still") == 1
        assert await a.recv(timeout=2) == "still"
        await hub.unsubscribe_prefix(a_ws, "y")
        assert hub.prefixes(a_ws) == set()
        assert await hub.publish("yes", "gone") == 0
        assert await nothing_received(a)
        # Subscribing twice then unsubscribing once leaves the connection out.
        await hub.subscribe(a_ws, "z")
        await hub.subscribe(a_ws, "z")
        await hub.unsubscribe(a_ws, "z")
        assert hub.subscribers("z") == set()


async def test_a_connection_leaves_its_topics_when_it_closes(hub_url: str | None) -> None:
    async with make_hub(hub_url) as hub, Site() as site:
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        for topic in ("x", "y"):
            await hub.subscribe(a_ws, topic)
        await hub.subscribe_prefix(a_ws, "room:")
        await hub.subscribe(b_ws, "x")
        await a.close()
        await a_ws.wait_closed()
        await asyncio.sleep(0)  # the hub's callback runs soon after the future completes
        assert hub.topics(a_ws) == set()
        assert hub.subscribers("x") == {b_ws}
        assert hub.subscribers("y") == set()
        assert hub.prefix_subscribers("room:") == set()
        assert await hub.publish("x", "m") == 1
        assert await b.recv(timeout=2) == "m"
        # A closed connection can't subscribe.
        with pytest.raises(wsio.ConnectionClosed):
            await hub.subscribe(a_ws, "x")


async def test_client_connections_can_subscribe_too(hub_url: str | None) -> None:
    # A client-side connection frames (and masks) its own copy.
    async with make_hub(hub_url) as hub, Site() as site:
        client, server_side = await site.client()
        await hub.subscribe(client, "up")
        assert await hub.publish("up", "from the client side") == 1
        assert await server_side.recv(timeout=2) == "from the client side"


async def test_compressed_once_per_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    compress = PerMessageDeflate.compress
    monkeypatch.setattr(PerMessageDeflate, "compress", lambda self, data: calls.append(1) or compress(self, data))
    from wsio.protocol.deflate import ClientPerMessageDeflateFactory

    # Both sides without context takeover: one compression for all of them.
    no_takeover = [ClientPerMessageDeflateFactory(client_no_context_takeover=True, server_no_context_takeover=True)]
    async with Hub() as hub, Site(compression="deflate") as site:
        clients = []
        for _ in range(5):
            client, ws = await site.client(compression=None, extensions=no_takeover)
            clients.append(client)
            await hub.subscribe(ws, "z")
        message = "compress me " * 100
        assert await hub.publish("z", message) == 5
        for client in clients:
            assert await client.recv(timeout=2) == message
    # The clients decompress (not patched away) as well: count only the server's compressions.
    assert sum(calls) == 1


async def test_hub_as_context_manager_and_close() -> None:
    async with Site() as site:
        a, a_ws = await site.client()
        async with Hub() as hub:
            await hub.subscribe(a_ws, "x")
            assert hub.connected
        assert not hub.connected
        with pytest.raises(HubUnavailable, match="closed"):
            await hub.publish("x", "late")
        with pytest.raises(HubUnavailable):
            await hub.subscribe(a_ws, "x")
        await hub.close()  # twice: nothing happens
        # The connection stays open and the hub no longer tracks it.
        assert a_ws.open
        assert hub.topics(a_ws) == set()


async def test_bad_arguments() -> None:
    async with Hub() as hub, Site() as site:
        _, ws = await site.client()
        with pytest.raises(ValueError, match=r"without '\*': subscribe_prefix\(connection, 'room:'\)"):
            await hub.subscribe_prefix(ws, "room:*")
        with pytest.raises(TypeError):
            await hub.subscribe_prefix(ws, None)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await hub.publish("x", 42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await hub.subscribe(ws, b"x")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await hub.subscribe(ws, "")
    with pytest.raises(ValueError):
        Hub(slow="ignore")  # type: ignore[arg-type]


async def test_many_subscribers_one_frame() -> None:
    # 200 connections: the frame is built once, whatever the number of subscribers.
    import importlib

    broadcast_module = importlib.import_module("wsio.asyncio.broadcast")
    built = []
    build_frame = broadcast_module.build_frame

    def counting(*args: object) -> bytes:
        built.append(1)
        return build_frame(*args)  # type: ignore[arg-type]

    async with Hub() as hub, Site() as site:
        clients = []
        for _ in range(200):
            client, ws = await site.client()
            clients.append(client)
            await hub.subscribe(ws, "all")
        broadcast_module.build_frame = counting
        try:
            assert await hub.publish("all", "x" * 100) == 200
        finally:
            broadcast_module.build_frame = build_frame
        assert len(built) == 1
        for client in clients:
            assert await client.recv(timeout=5) == "x" * 100


async def test_two_hubs_in_memory_are_separate() -> None:
    async with Hub() as one, Hub() as two, Site() as site:
        a, a_ws = await site.client()
        await one.subscribe(a_ws, "x")
        assert await two.publish("x", "other hub") == 0
        assert await nothing_received(a)


async def test_eventually_helper_fails_clearly() -> None:
    with pytest.raises(AssertionError, match="never"):
        await eventually(lambda: False, timeout=0.05, what="never")


def test_wire_format() -> None:
    from wsio.pubsub import wire

    data = wire.encode(True, b"12345678", 7, "é".encode())
    assert data[:1] == b"T" and len(data) == wire.HEADER_SIZE + 2
    text, origin, message_id, payload = wire.decode(data)
    assert (text, origin, payload) == (True, b"12345678", "é".encode())
    assert message_id == b"12345678" + (7).to_bytes(8, "big")
    assert wire.decode(wire.encode(False, b"abcdefgh", 2**64 + 1, b"\x00"))[0] is False
    with pytest.raises(ValueError, match="shorter"):
        wire.decode(b"T123")
    with pytest.raises(ValueError, match="unknown message type"):
        wire.decode(b"X" + bytes(16))
