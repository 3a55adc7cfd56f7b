"""The Redis Cluster backend, on a real local cluster (3 masters, 3 replicas) that the module starts and stops by PID.

Tests share the cluster: each uses its own channel prefix.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any, Iterator

import pytest

import wsio
from wsio.pubsub import Hub
from wsio.pubsub.redis_cluster import _tag

from .helpers import Site, eventually, nothing_received
from .processes import ServerProcess
from .redis_cluster import RedisCluster, started_cluster
from .redis_server import free_port

pytestmark = pytest.mark.timeout(120)

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    yield from started_cluster()


def cluster_hub(cluster: RedisCluster, prefix: str | None = None, **options: Any) -> Hub:
    options.setdefault("reconnect_initial", 0.05)
    options.setdefault("reconnect_max", 0.3)
    options.setdefault("channel_prefix", prefix or f"t{next(_prefixes)}:")
    return Hub(cluster.url, **options)


def spread_topics(cluster: RedisCluster, prefix: str, n: int = 3) -> list[str]:
    """Topics whose channels are served by ``n`` different masters."""
    found: dict[int, str] = {}
    for i in range(1000):
        topic = f"room:{i}"
        port = cluster.master_of(f"{prefix}{{{_tag(topic)}}}").port
        found.setdefault(port, topic)
        if len(found) == n:
            return list(found.values())
    raise AssertionError("the cluster has fewer masters than expected")


async def recv_event(client: Any, timeout: float = 5) -> dict[str, Any]:
    return json.loads(await client.recv(timeout=timeout))  # type: ignore[no-any-return]


async def test_delivery_across_hubs_on_every_master(cluster: RedisCluster) -> None:
    async with cluster_hub(cluster, "a:") as one, cluster_hub(cluster, "a:") as two, Site() as s1, Site() as s2:
        topics = spread_topics(cluster, "a:")
        a, a_ws = await s1.client()
        b, b_ws = await s2.client()
        for topic in topics:
            await one.subscribe(a_ws, topic)
            await two.subscribe(b_ws, topic)
        assert one.connected and two.connected
        for topic in topics:
            assert await one.publish(topic, f"{topic} from one") == 1
            assert await two.publish(topic, f"{topic} from two".encode()) == 1
        expected = {f"{topic} from one" for topic in topics} | {f"{topic} from two".encode() for topic in topics}
        assert {await a.recv(timeout=2) for _ in range(6)} == expected
        assert {await b.recv(timeout=2) for _ in range(6)} == expected
        assert await nothing_received(a, 0.1) and await nothing_received(b, 0.1)
        # Each hub holds one subscription connection per master it needs: here, all three.
        assert len(one._backend._links) == 3  # type: ignore[attr-defined]
        # The channels are sharded: SSUBSCRIBE on the master of their slot, nothing cluster-wide.
        for topic in topics:
            master = cluster.master_of(f"a:{{{topic}}}")
            assert f"a:{{{topic}}}".encode() in master.command("PUBSUB", "SHARDCHANNELS")
            assert master.command("PUBSUB", "CHANNELS") == []
        # Unsubscribing the last subscriber unsubscribes on its master.
        await one.unsubscribe(a_ws, topics[0])
        await two.unsubscribe(b_ws, topics[0])
        master = cluster.master_of(f"a:{{{topics[0]}}}")
        await eventually(lambda: f"a:{{{topics[0]}}}".encode() not in master.command("PUBSUB", "SHARDCHANNELS"))
        # No prefixes: sharded pub/sub has no patterns.
        with pytest.raises(NotImplementedError, match="prefix"):
            await one.subscribe_prefix(a_ws, "room:")
        assert one.prefixes(a_ws) == set()


async def test_history_and_recovery_across_the_cluster(cluster: RedisCluster) -> None:
    async with (
        cluster_hub(cluster, "h:", history_size=100) as one,
        cluster_hub(cluster, "h:", history_size=100) as two,
        Site() as site,
    ):
        topics = spread_topics(cluster, "h:")
        a, a_ws = await site.client()
        starts = {}
        for topic in topics:
            start = await two.subscribe(a_ws, topic, envelope=True)
            assert start is not None and start.epoch and start.offset == 0
            starts[topic] = start
        for i in range(1, 4):
            for topic in topics:
                await one.publish(topic, f"{topic}/{i}")
        got = [await recv_event(a) for _ in range(9)]
        for topic in topics:
            mine = [(e["offset"], e["data"]) for e in got if e["topic"] == topic]
            assert mine == [(i, f"{topic}/{i}") for i in range(1, 4)]
            assert {e["epoch"] for e in got if e["topic"] == topic} == {starts[topic].epoch}
        # Every key of a topic is on its channel's slot, on that slot's master.
        for topic in topics:
            master = cluster.master_of(f"h:{{{topic}}}")
            keys = {key.decode() for key in master.command("KEYS", f"h:{{{topic}}}*")}
            assert keys == {f"h:{{{topic}}}:history", f"h:{{{topic}}}:history-meta"}
        # A client comes back on the other hub after missing two messages of each topic.
        await a.close()
        for topic in topics:
            await one.publish(topic, f"{topic}/4")
            await one.publish(topic, f"{topic}/5")
        b, b_ws = await site.client()
        for topic in topics:
            result = await one.subscribe(b_ws, topic, recover=(3, starts[topic].epoch), envelope=True)
            assert result is not None and result.recovered and result.missed == 2 and result.offset == 5
            assert [(e["offset"], e["data"]) for e in [await recv_event(b), await recv_event(b)]] == [
                (4, f"{topic}/4"),
                (5, f"{topic}/5"),
            ]
        await two.publish(topics[0], "live")
        assert (await recv_event(b))["offset"] == 6


async def test_presence_on_the_cluster(cluster: RedisCluster) -> None:
    async with cluster_hub(cluster, "p:") as one, cluster_hub(cluster, "p:") as two, Site() as site:
        topics = spread_topics(cluster, "p:")
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        for topic in topics:
            await one.subscribe(a_ws, topic, presence="a", presence_events=True)
            assert await recv_event(a) == {"type": "join", "topic": topic, "client": str(a_ws.id), "info": "a", "count": 1}
            await two.subscribe(b_ws, topic, presence="b")
            assert await recv_event(a) == {"type": "join", "topic": topic, "client": str(b_ws.id), "info": "b", "count": 2}
        for topic in topics:
            assert await one.presence(topic) == {str(a_ws.id): "a", str(b_ws.id): "b"}
            master = cluster.master_of(f"p:{{{topic}}}")
            keys = {key.decode() for key in master.command("KEYS", f"p:{{{topic}}}*")}
            assert keys == {f"p:{{{topic}}}:presence", f"p:{{{topic}}}:presence-expiry"}
        await b.close()
        leaves = [await recv_event(a) for _ in topics]
        assert {(e["type"], e["topic"], e["count"]) for e in leaves} == {("leave", topic, 1) for topic in topics}

        async def only_a() -> bool:
            return all([await two.presence(topic) == {str(a_ws.id): "a"} for topic in topics])

        await eventually(only_a, what="b left every topic's presence")


def test_names_keep_a_topic_on_one_slot() -> None:
    hub = Hub("redis+cluster://127.0.0.1:1,127.0.0.1:2")
    backend: Any = hub._backend
    from redis.crc import key_slot

    for topic in ("room:1", "}x", "~y", "a}b", "{", "}", "~", "{x}", "é"):
        names = [backend._channel(topic), *backend._keys(topic), *backend._presence_keys(topic)]
        assert len({key_slot(name) for name in names}) == 1, (topic, names)
        assert backend._topic_of(backend._channel(topic)) == topic
    assert backend._channel("}x") != backend._channel("~}x")
    with pytest.raises(ValueError, match="braces"):
        Hub("redis+cluster://127.0.0.1:1", channel_prefix="{app}:")
    assert "***" in repr(Hub("redis+cluster://:s3cret@127.0.0.1:1,127.0.0.1:2")) and "s3cret" not in repr(hub)


@pytest.mark.async_timeout(60)
async def test_two_server_processes_on_the_cluster(cluster: RedisCluster) -> None:
    # python -m tests.pubsub.app twice, on the cluster, in the JSON protocol (its channel prefix is "wsio-test:").
    servers = [ServerProcess(free_port(), cluster.url, history=100) for _ in range(2)]
    clients: list[Any] = []

    async def connect(server: ServerProcess, query: str = "") -> Any:
        client = await wsio.connect(f"ws://127.0.0.1:{server.port}/json{query}", compression=None)
        clients.append(client)
        return client

    try:
        await asyncio.gather(*(server.start() for server in servers))
        topics = spread_topics(cluster, "wsio-test:")
        browser = await connect(servers[0], "?alice")
        publisher = await connect(servers[1])
        epochs = {}
        for topic in topics:
            await browser.send(json.dumps({"type": "subscribe", "topic": topic, "presence_events": True}))
            events = {e["type"]: e for e in [await recv_event(browser), await recv_event(browser)]}
            assert events["join"]["info"] == "alice" and events["join"]["count"] == 1
            epochs[topic] = events["subscribed"]["epoch"]
        for topic in topics:
            await publisher.send(json.dumps({"type": "publish", "topic": topic, "data": f"to {topic}"}))
            assert (await recv_event(publisher))["type"] == "published"
        # One message per topic, each topic on another master: order holds within a topic
        # (docs/topics/delivery.md), not across masters, whose deliveries race.
        got = [await recv_event(browser) for _ in topics]
        assert sorted(got, key=lambda event: topics.index(event["topic"])) == [
            {"type": "pub", "topic": t, "data": f"to {t}", "offset": 1, "epoch": epochs[t]} for t in topics
        ]
        for client in clients:
            await client.close()
        assert [await server.stop() for server in servers] == [0, 0]
    finally:
        for server in servers:
            server.kill()


async def test_the_chat_demo_on_the_cluster(cluster: RedisCluster) -> None:
    from .test_chat_demo import ask, demo, join

    async with demo("--redis", cluster.url) as one, demo("--redis", cluster.url) as two:
        alice = await one.client()
        bob = await two.client()
        await join(alice, "alice", "lobby")
        answer = await ask(bob, {"type": "join", "name": "Alice", "room": "lobby"}, "error")
        assert "already called Alice" in answer["text"], "names are unique across processes, on the cluster"
        await join(bob, "bob", "lobby")
        await bob.send(json.dumps({"type": "say", "text": "hi"}))
        while (event := json.loads(await alice.recv(timeout=5)))["type"] != "message":
            pass
        assert (event["name"], event["text"]) == ("bob", "hi")
