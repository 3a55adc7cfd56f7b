"""The Redis backend: across hubs and processes, subscriptions in Redis, outages and reconnection."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from wsio.pubsub import Hub, HubUnavailable, wire

from .helpers import Site, eventually, nothing_received
from .processes import Peer, ServerProcess
from .redis_server import RedisServer, free_port
from .test_hub import make_hub

pytestmark = pytest.mark.timeout(120)


async def test_two_hubs_share_topics(redis_server: RedisServer) -> None:
    # Two hubs on one Redis behave as two processes would.
    async with make_hub(redis_server.url) as one, make_hub(redis_server.url) as two, Site() as s1, Site() as s2:
        a, a_ws = await s1.client()
        b, b_ws = await s2.client()
        c, c_ws = await s2.client()
        await one.subscribe(a_ws, "room:1")
        await two.subscribe(b_ws, "room:1")
        await two.subscribe_prefix(c_ws, "room:")
        # publish counts local connections only.
        assert await one.publish("room:1", "from one") == 1
        assert await two.publish("room:1", b"from two") == 2
        assert await one.publish("room:2", "pattern") == 0
        # Each publisher's messages arrive in order; the two publishers' interleave
        # as they may (one hub delivers its own at once, the other's through Redis).
        assert {await a.recv(timeout=2) for _ in range(2)} == {"from one", b"from two"}
        assert {await b.recv(timeout=2) for _ in range(2)} == {"from one", b"from two"}
        assert {await c.recv(timeout=2) for _ in range(3)} == {"from one", b"from two", "pattern"}
        for client in (a, b, c):
            assert await nothing_received(client, 0.1), "no copies: not from the echo, not from name + pattern"


async def test_redis_subscriptions_follow_local_subscribers(redis_server: RedisServer) -> None:
    async with make_hub(redis_server.url, channel_prefix="app:") as hub, Site() as site:
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        assert redis_server.channels() == set()
        await hub.subscribe(a_ws, "x")
        await hub.subscribe(b_ws, "x")
        await hub.subscribe_prefix(a_ws, "room:")
        assert redis_server.channels() == {"app:x"}, "subscribed once per process, under the prefix"
        assert redis_server.numpat() == 1
        await hub.unsubscribe(a_ws, "x")
        assert redis_server.channels() == {"app:x"}, "b is still there"
        await hub.unsubscribe(b_ws, "x")
        await eventually(lambda: redis_server.channels() == set(), what="unsubscribed when the last one left")
        await a.close()  # leaving on close unsubscribes in Redis too
        await eventually(lambda: redis_server.numpat() == 0, what="punsubscribed when its connection closed")


async def test_redis_restart(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    async with make_hub(redis_server.url) as one, make_hub(redis_server.url) as two, Site() as s1, Site() as s2:
        a, a_ws = await s1.client()
        b, b_ws = await s2.client()
        await one.subscribe(a_ws, "x")
        await two.subscribe(b_ws, "x")
        await two.subscribe_prefix(b_ws, "p:")
        assert await one.publish("x", "before") == 1
        assert await b.recv(timeout=2) == "before"
        assert await a.recv(timeout=2) == "before"

        redis_server.kill()
        await eventually(lambda: not one.connected and not two.connected, what="both hubs saw Redis go")
        # publish raises, after delivering locally.
        with pytest.raises(HubUnavailable, match="unreachable") as raised:
            await one.publish("x", "during")
        assert raised.value.delivered == 1
        assert await a.recv(timeout=2) == "during"
        assert await nothing_received(b)
        # Subscribing works meanwhile, locally at once.
        a2, a2_ws = await s1.client()
        await one.subscribe(a2_ws, "new")
        with pytest.raises(HubUnavailable) as raised:
            await one.publish("new", "local")
        assert raised.value.delivered == 1
        assert await a2.recv(timeout=2) == "local"
        b2, b2_ws = await s2.client()
        await two.subscribe(b2_ws, "new")

        redis_server.start()
        await eventually(lambda: one.connected and two.connected, timeout=10, what="both hubs reconnected")
        # Resubscribed to the topics from before and from during the outage, and to patterns.
        assert redis_server.channels() == {"wsio:x", "wsio:new"}
        assert redis_server.numpat() == 1
        assert await one.publish("x", "after") == 1
        assert await one.publish("new", "after new") == 1
        assert await one.publish("p:1", "after pattern") == 0
        assert await b.recv(timeout=2) == "after"
        assert await b.recv(timeout=2) == "after pattern"
        assert await b2.recv(timeout=2) == "after new"
        assert await a.recv(timeout=2) == "after"
        assert await a2.recv(timeout=2) == "after new"
    messages = [r.getMessage() for r in caplog.records if r.name == "wsio.pubsub"]
    assert any("lost Redis" in m and "reconnecting in" in m for m in messages), messages


async def test_redis_unreachable_from_the_start(caplog: pytest.LogCaptureFixture) -> None:
    import redis  # noqa: F401  (the test extra installs it)

    port = free_port()  # nothing listens there
    async with make_hub(f"redis://127.0.0.1:{port}/0") as hub, Site() as site:
        assert not hub.connected
        a, a_ws = await site.client()
        await hub.subscribe(a_ws, "x")  # doesn't fail: the subscription is local at once
        with pytest.raises(HubUnavailable) as raised:
            await hub.publish("x", "local only")
        assert raised.value.delivered == 1
        assert "Redis at redis://127.0.0.1" in str(raised.value)
        assert await a.recv(timeout=2) == "local only"
        # It keeps trying, with backoff, and says so.
        await eventually(lambda: sum("can't reach Redis" in r.getMessage() for r in caplog.records) >= 2)


SECRET = "s3cret-Pa55word"


def assert_no_secret(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    """Nothing the hub said, logged or raised holds the password, whole or percent-encoded."""
    said = [r.getMessage() for r in caplog.records] + [str(r.args) for r in caplog.records] + list(texts)
    assert caplog.records, "the hub logged something"
    for text in said:
        assert SECRET not in text and "s3cret" not in text, text


async def test_passwords_are_redacted_in_logs_exceptions_and_repr(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    redis_server.command("CONFIG", "SET", "requirepass", SECRET)
    texts = []
    # user:password@ and ?password=, the only way for unix://, and a wrong password.
    for url in (
        f"redis://default:{SECRET}@127.0.0.1:{redis_server.port}/0",
        f"redis://:{SECRET}@127.0.0.1:{redis_server.port}/0",
        f"redis://127.0.0.1:{redis_server.port}/0?password={SECRET}",
        f"redis://default:{SECRET}x@127.0.0.1:{redis_server.port}/0",
        f"unix:///nonexistent/redis.sock?db=0&password={SECRET}",
    ):
        async with make_hub(url) as hub, Site() as site:
            a, a_ws = await site.client()
            await hub.subscribe(a_ws, "x")
            texts += [repr(hub), str(hub.url)]
            try:
                await hub.publish("x", "m")
            except HubUnavailable as exc:
                texts.append(str(exc))
            await a.recv(timeout=2)
            if hub.connected:
                assert "***" in repr(hub) and "***" in str(hub.url)
    assert any("connected to Redis at redis://default:***@127.0.0.1" in r.getMessage() for r in caplog.records)
    assert any("?password=***" in r.getMessage() for r in caplog.records)
    assert any("unix:///nonexistent/redis.sock?db=0&password=***" in text for text in texts), texts
    assert any("can't reach Redis" in r.getMessage() for r in caplog.records), "the wrong password was reported"
    assert_no_secret(caplog, *texts)


async def test_password_is_not_logged_when_redis_goes_away(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    redis_server.command("CONFIG", "SET", "requirepass", SECRET)
    async with make_hub(f"redis://:{SECRET}@127.0.0.1:{redis_server.port}/0") as hub, Site() as site:
        a, a_ws = await site.client()
        await hub.subscribe(a_ws, "x")
        redis_server.kill()
        await eventually(lambda: not hub.connected, what="the hub saw Redis go")
        with pytest.raises(HubUnavailable) as raised:
            await hub.publish("x", "m")
        await eventually(lambda: any("can't reach Redis" in r.getMessage() for r in caplog.records))
    assert any("lost Redis at redis://:***@127.0.0.1" in r.getMessage() for r in caplog.records)
    assert_no_secret(caplog, str(raised.value), repr(hub))


async def test_a_literal_star_is_a_channel_and_a_prefix_a_pattern(redis_server: RedisServer) -> None:
    # Two hubs: the message crosses Redis, where "*" would be a glob if it got there unescaped.
    async with make_hub(redis_server.url) as one, make_hub(redis_server.url) as two, Site() as s1, Site() as s2:
        alice, alice_ws = await s1.client()
        mallory, mallory_ws = await s2.client()
        rooms, rooms_ws = await s2.client()
        await one.subscribe(alice_ws, "inbox:alice")
        await two.subscribe(mallory_ws, "inbox:*")
        await two.subscribe_prefix(rooms_ws, "room:")
        assert redis_server.channels() == {"wsio:inbox:alice", "wsio:inbox:*"}
        assert redis_server.numpat() == 1
        assert await one.publish("inbox:alice", "for alice only") == 1
        assert await one.publish("room:1", "room 1") == 0
        assert await alice.recv(timeout=2) == "for alice only"
        assert await rooms.recv(timeout=2) == "room 1"
        assert await nothing_received(mallory)
        assert await one.publish("inbox:*", "to the topic named inbox:*") == 0
        assert await mallory.recv(timeout=2) == "to the topic named inbox:*"
        assert await nothing_received(alice, 0.1)


async def test_messages_from_other_programs(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    async with make_hub(redis_server.url) as hub, Site() as site:
        a, a_ws = await site.client()
        await hub.subscribe(a_ws, "x")
        # Not in the hubs' format: ignored with a warning.
        redis_server.command("PUBLISH", "wsio:x", "plain text")
        # In the format (wire.encode), from any program: delivered, with its type.
        message = wire.encode(True, os.urandom(8), 1, "from elsewhere".encode())
        redis_server.command("PUBLISH", "wsio:x", message)
        assert await a.recv(timeout=2) == "from elsewhere"
        assert any("isn't from a wsio hub" in r.getMessage() for r in caplog.records)


@pytest.mark.async_timeout(60)
async def test_two_server_processes_share_topics_through_redis(redis_server: RedisServer) -> None:
    servers = [ServerProcess(free_port(), redis_server.url), ServerProcess(free_port(), redis_server.url)]
    try:
        await asyncio.gather(*(server.start() for server in servers))
        a = await Peer.connect(servers[0].port)
        b = await Peer.connect(servers[1].port)
        c = await Peer.connect(servers[1].port)
        d = await Peer.connect(servers[1].port)
        pid_a = (await a.call(sub="chat:lobby"))["pid"]
        pid_b = (await b.call(sub="chat:lobby"))["pid"]
        assert pid_a != pid_b and {pid_a, pid_b} == {servers[0].pids[0], servers[1].pids[0]}
        await c.call(sub_prefix="chat:")
        await d.call(sub="chat:other")
        # Without history, two processes' messages interleave as they may (docs/topics/delivery.md):
        # each message reaches every subscriber before the next one is published from the other process.
        assert await a.call(pub="chat:lobby", text="hello") == {"ok": "pub", "n": 1}
        assert [await a.delivery(), await b.delivery(), await c.delivery()] == ["hello"] * 3
        assert await b.call(pub="chat:lobby", hex="00ff10") == {"ok": "pub", "n": 2}
        assert [await a.delivery(), await b.delivery(), await c.delivery()] == [b"\x00\xff\x10"] * 3
        assert await d.nothing()
        await b.call(unsub="chat:lobby")
        assert await a.call(pub="chat:lobby", text="again") == {"ok": "pub", "n": 1}
        assert await c.delivery() == "again"
        assert await a.delivery() == "again"
        assert await b.nothing()
        for peer in (a, b, c, d):
            await peer.close()
        assert [await server.stop() for server in servers] == [0, 0]
    finally:
        for server in servers:
            server.kill()


@pytest.mark.async_timeout(60)
async def test_run_with_workers_shares_one_port(redis_server: RedisServer) -> None:
    server = ServerProcess(free_port(), redis_server.url, workers=2)
    try:
        await server.start()
        assert len(server.pids) == 2
        # The kernel spreads connections across the workers: connect until both have some.
        peers: dict[int, list[Peer]] = {pid: [] for pid in server.pids}
        for _ in range(60):
            peer = await Peer.connect(server.port)
            answer = await peer.call(whoami=True)
            peers[answer["pid"]].append(peer)
            if all(peers.values()):
                break
        assert all(peers.values()), "both workers got connections"
        first, second = (group[0] for group in peers.values())
        await first.call(sub="t")
        await second.call(sub="t")
        assert await first.call(pub="t", text="across workers") == {"ok": "pub", "n": 1}
        assert await second.delivery() == "across workers"
        assert await first.delivery() == "across workers"
        # SIGTERM: every worker closes its connections with 1001 and exits; so does the parent.
        assert await server.stop(timeout=20) == 0
        for group in peers.values():
            for peer in group:
                await asyncio.wait_for(peer.ws.wait_closed(), 5)
                assert peer.ws.close_code == 1001
        for pid in server.pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        server.kill()


def test_logger_name() -> None:
    assert Hub().logger is logging.getLogger("wsio.pubsub")
