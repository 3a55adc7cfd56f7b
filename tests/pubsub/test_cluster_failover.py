"""A master of the Redis Cluster dies: its replica takes over, and the hubs carry on (a cluster of its own: it is damaged)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Iterator

import pytest

from wsio.pubsub import HubUnavailable

from .helpers import Site, eventually
from .redis_cluster import ClusterNode, RedisCluster, started_cluster
from .test_cluster import cluster_hub, recv_event, spread_topics

pytestmark = pytest.mark.timeout(120)

#: How long publishing and delivery may take to resume after a master dies
#: (cluster-node-timeout is 1 s; a replica is promoted within a few seconds).
RESUME_WITHIN = 20.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    yield from started_cluster()


def move_slot(cluster: RedisCluster, key: str, to: ClusterNode) -> None:
    """Migrate the slot of ``key``, with its keys, to the master ``to`` (as ``redis-cli --cluster reshard`` does)."""
    source = cluster.master_of(key)
    slot = source.command("CLUSTER", "KEYSLOT", key)
    source_id, target_id = source.command("CLUSTER", "MYID"), to.command("CLUSTER", "MYID")
    assert to.command("CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id) == b"OK"
    assert source.command("CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id) == b"OK"
    while keys := source.command("CLUSTER", "GETKEYSINSLOT", str(slot), "100"):
        assert source.command("MIGRATE", "127.0.0.1", str(to.port), "", "0", "5000", "KEYS", *keys) == b"OK"
    for node in (to, source):
        assert node.command("CLUSTER", "SETSLOT", str(slot), "NODE", target_id) == b"OK"
    for node in cluster.masters():
        node.command("CLUSTER", "SETSLOT", str(slot), "NODE", target_id)


async def test_subscribers_follow_a_slot_that_moves(cluster: RedisCluster) -> None:
    async with cluster_hub(cluster, "m:", history_size=100) as one, cluster_hub(cluster, "m:", history_size=100) as two:
        async with Site() as site:
            topic, other_topic = spread_topics(cluster, "m:", 2)
            source = cluster.master_of(f"m:{{{topic}}}")
            # Another topic on the same master, on another slot: it stays there.
            slot = source.command("CLUSTER", "KEYSLOT", f"m:{{{topic}}}")
            neighbour = next(
                name
                for name in (f"n:{i}" for i in range(1000))
                if cluster.master_of(f"m:{{{name}}}") is source and source.command("CLUSTER", "KEYSLOT", f"m:{{{name}}}") != slot
            )
            a, a_ws = await site.client()
            start = await two.subscribe(a_ws, topic, envelope=True)
            assert start is not None
            await two.subscribe(a_ws, neighbour, envelope=True)
            await one.publish(topic, "before")
            assert (await recv_event(a))["data"] == "before"
            target = cluster.master_of(f"m:{{{other_topic}}}")
            move_slot(cluster, f"m:{{{topic}}}", target)
            # The old master told the hub (sunsubscribe): it subscribes again on the new one.
            await eventually(lambda: f"m:{{{topic}}}".encode() in target.command("PUBSUB", "SHARDCHANNELS"), timeout=10)
            await eventually(lambda: two.connected, timeout=10)
            await one.publish(topic, "after")
            event = await recv_event(a)
            assert (event["data"], event["offset"], event["epoch"]) == ("after", 2, start.epoch), "the history moved too"
            # Only that topic moved: the connection to its old master stays, with the neighbour's subscription.
            assert ("127.0.0.1", source.port) in two._backend._links  # type: ignore[attr-defined]
            await one.publish(neighbour, "still here")
            assert (await recv_event(a))["data"] == "still here"


def replication_offsets(master: ClusterNode) -> tuple[int, list[int]]:
    """``INFO replication`` of a master: its replication offset, and the offset each replica has acknowledged."""
    info = master.command("INFO", "replication").decode()
    written = re.search(r"master_repl_offset:(\d+)", info)
    assert written is not None, info
    return int(written.group(1)), [int(offset) for offset in re.findall(r"slave\d+:[^\r\n]*offset=(\d+)", info)]


@pytest.mark.async_timeout(90)
async def test_subscribers_carry_on_when_a_master_dies(cluster: RedisCluster) -> None:
    async with (
        cluster_hub(cluster, "f:", history_size=1000) as one,
        cluster_hub(cluster, "f:", history_size=1000) as two,
        Site() as site,
    ):
        topics = spread_topics(cluster, "f:")
        doomed, *others = topics
        a, a_ws = await site.client()
        epochs = {}
        for topic in topics:
            start = await two.subscribe(a_ws, topic, envelope=True)
            assert start is not None
            epochs[topic] = start.epoch
        published: dict[str, list[int]] = {topic: [] for topic in topics}
        received: dict[str, list[tuple[int, str, str]]] = {topic: [] for topic in topics}

        async def receive() -> None:
            while True:
                event = await recv_event(a, timeout=60)
                received[event["topic"]].append((event["offset"], event["epoch"], event["data"]))

        receiver = asyncio.get_running_loop().create_task(receive())
        try:
            counter = 0
            longest = 0.0

            async def publish(topic: str) -> bool:
                nonlocal counter, longest
                counter += 1
                began = time.monotonic()
                try:
                    await one.publish(topic, str(counter))
                except HubUnavailable:
                    return False
                finally:
                    longest = max(longest, time.monotonic() - began)
                published[topic].append(counter)
                return True

            for topic in topics:
                assert await publish(topic)
            await eventually(lambda: all(received[topic] for topic in topics))

            master = cluster.master_of(f"f:{{{doomed}}}")
            # Redis replicates asynchronously: what the replica hasn't got yet dies with the master
            # (the topic's offsets would start again). Kill it once its replica has acknowledged every
            # write so far: the failover this test is about. (Not WAIT: it waits only for the writes of
            # the connection that sends it, and this one has made none.)
            written = replication_offsets(master)[0]
            await eventually(
                lambda: min(replication_offsets(master)[1], default=-1) >= written,
                timeout=10,
                what="the replica acknowledged every write",
            )
            cluster.kill(master)
            killed = time.monotonic()
            failures = {topic: 0 for topic in topics}
            resumed: float | None = None
            # Publish to every topic every 50 ms until a message to the dead master's topic goes through
            # (redis-py's cluster client retries a while before it fails: a publish may take seconds).
            while time.monotonic() - killed < RESUME_WITHIN:
                ok = True
                for topic in topics:
                    if not await publish(topic):
                        failures[topic] += 1
                        ok = False
                if ok:
                    resumed = time.monotonic() - killed
                    break
                await asyncio.sleep(0.05)
            assert resumed is not None, f"publishing to {doomed!r} didn't resume within {RESUME_WITHIN}s"
            # A few more, then every message whose publish succeeded arrives, in order, once.
            for _ in range(3):
                for topic in topics:
                    assert await publish(topic)

            def complete() -> bool:
                return all(len(received[topic]) >= len(published[topic]) for topic in topics)

            await eventually(complete, timeout=RESUME_WITHIN, what="every published message delivered")
            delivered_again = time.monotonic() - killed
            for topic in topics:
                offsets = [offset for offset, _, _ in received[topic]]
                assert offsets == list(range(1, len(offsets) + 1)), (topic, offsets)
                assert [int(data) for _, _, data in received[topic]] == published[topic], topic
                assert {epoch for _, epoch, _ in received[topic]} == {epochs[topic]}, "the replica kept the history"
            print(
                f"\nmaster :{master.port} killed; publishing to its topic failed {failures[doomed]} times and resumed "
                f"after {resumed:.2f}s (the other topics failed {[failures[t] for t in others]} times); the longest "
                f"publish took {longest:.2f}s; every message delivered, in order, after {delivered_again:.2f}s"
            )
            assert two.connected and one.connected
        finally:
            receiver.cancel()
            try:
                await receiver
            except (asyncio.CancelledError, Exception):
                pass


@pytest.mark.async_timeout(60)
async def test_a_shard_lost_for_good_fails_clearly(cluster: RedisCluster) -> None:
    # Last in this module: it leaves the cluster down (a master and its replica killed).
    from redis.asyncio.retry import Retry
    from redis.backoff import ConstantBackoff

    # Fewer retries than redis-py's default, so that each publish gives up sooner.
    redis_options = {"retry": Retry(ConstantBackoff(0.1), 2)}
    async with cluster_hub(cluster, "g:", history_size=100, redis_options=redis_options) as hub, Site() as site:
        topic, other = spread_topics(cluster, "g:", 2)
        a, a_ws = await site.client()
        await hub.subscribe(a_ws, topic, envelope=True)
        await hub.subscribe(a_ws, other, envelope=True)
        master = cluster.master_of(f"g:{{{topic}}}")
        for node in [n for n in cluster.alive() if n.info("replication").get("master_port") == str(master.port)] + [master]:
            cluster.kill(node)
        await eventually(lambda: not hub.connected, timeout=10)
        began = time.monotonic()
        with pytest.raises(HubUnavailable, match="Redis Cluster") as raised:
            await hub.publish(topic, "lost")
        assert time.monotonic() - began < 5, "bounded by redis-py's retries"
        assert raised.value.delivered == 1, "delivered here, locally"
        assert (await recv_event(a))["data"] == "lost"
        # Another master's topic: refused too once the cluster declares itself down
        # (cluster-require-full-coverage, the default), not before; either way, promptly.
        began = time.monotonic()
        try:
            await hub.publish(other, "maybe")
        except HubUnavailable:
            pass
        assert time.monotonic() - began < 5
        began = time.monotonic()
        recovery = await hub.subscribe((await site.client())[1], topic, envelope=True, recover=(1, "0" * 16))
        assert recovery is not None and not recovery.recovered and recovery.epoch == ""
        assert time.monotonic() - began < 15
