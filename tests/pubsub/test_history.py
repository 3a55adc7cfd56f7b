"""History and recovery on both backends: offsets, epochs, bounds, the seam between history and live messages."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import wsio
from wsio.pubsub import Hub, HubUnavailable, Position, Recovery, wire
from wsio.pubsub import hub as hub_module
from wsio.pubsub.backend import History, MemoryBackend

from .helpers import Site, eventually, nothing_received
from .processes import ServerProcess
from .redis_server import RedisServer, free_port
from .test_hub import make_hub

pytestmark = pytest.mark.timeout(60)


async def recv_event(client: wsio.ClientConnection, timeout: float = 2) -> dict[str, Any]:
    """The next message, a JSON envelope."""
    event: dict[str, Any] = json.loads(await client.recv(timeout=timeout))
    return event


async def recv_data(client: wsio.ClientConnection, n: int) -> list[tuple[int, str]]:
    """``(offset, data)`` of the next ``n`` envelopes."""
    events = [await recv_event(client) for _ in range(n)]
    return [(event["offset"], event["data"]) for event in events]


def history_hub(url: str | None, **options: Any) -> Hub:
    options.setdefault("history_size", 100)
    return make_hub(url, **options)


async def test_history_is_off_by_default(hub_url: str | None) -> None:
    async with make_hub(hub_url) as hub, Site() as site:
        a, a_ws = await site.client()
        assert await hub.subscribe(a_ws, "t") is None
        assert await hub.publish("t", "raw") == 1
        assert await a.recv(timeout=2) == "raw"
        with pytest.raises(ValueError):
            Hub(history_size=-1)
        with pytest.raises(ValueError):
            Hub(history_size=1, history_ttl=10, history_meta_ttl=5)


async def test_offsets_and_epoch(hub_url: str | None) -> None:
    async with history_hub(hub_url) as hub, Site() as site:
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        first = await hub.subscribe(a_ws, "news", envelope=True)
        assert isinstance(first, Recovery)
        assert not first.recovered and first.offset == 0 and len(first.epoch) == 16
        await hub.subscribe_prefix(b_ws, "ne", envelope=True)
        assert await hub.publish("news", "one") == 2
        assert await hub.publish("news", b"\x00two") == 2
        assert await hub.publish("other", "elsewhere") == 0
        events = [await recv_event(a) for _ in range(2)]
        assert events == [
            {"type": "pub", "topic": "news", "data": "one", "offset": 1, "epoch": first.epoch},
            {"type": "pub", "topic": "news", "b64": "AHR3bw==", "offset": 2, "epoch": first.epoch},
        ]
        assert [await recv_event(b) for _ in range(2)] == events
        # Offsets are per topic.
        c, c_ws = await site.client()
        other = await hub.subscribe(c_ws, "other", envelope=True)
        assert other is not None and other.offset == 1 and other.epoch != first.epoch
        # A connection gets envelopes or raw messages, not both.
        with pytest.raises(ValueError, match="envelope"):
            await hub.subscribe(a_ws, "x")
        # A raw subscriber of a hub with history gets the payload as is.
        d, d_ws = await site.client()
        assert (await hub.subscribe(d_ws, "news")) == Recovery(False, first.epoch, 2)
        await hub.publish("news", "three")
        assert await d.recv(timeout=2) == "three"


async def test_recovery_sends_exactly_what_was_missed_then_live(hub_url: str | None) -> None:
    async with history_hub(hub_url) as hub, Site() as site:
        a, a_ws = await site.client()
        start = await hub.subscribe(a_ws, "room", envelope=True)
        assert start is not None
        for i in range(1, 4):
            await hub.publish("room", f"m{i}")
        assert await recv_data(a, 3) == [(1, "m1"), (2, "m2"), (3, "m3")]
        await a.close()
        for i in range(4, 7):
            await hub.publish("room", f"m{i}")
        # Back with (3, epoch): 4, 5, 6, then live ones; nothing twice.
        b, b_ws = await site.client()
        result = await hub.subscribe(b_ws, "room", recover=Position(3, start.epoch), envelope=True)
        assert result == Recovery(True, start.epoch, 6, 3)
        await hub.publish("room", "m7")
        assert await recv_data(b, 4) == [(4, "m4"), (5, "m5"), (6, "m6"), (7, "m7")]
        assert await nothing_received(b)
        # Up to date: recovered, nothing sent.
        c, c_ws = await site.client()
        assert await hub.subscribe(c_ws, "room", recover=(7, start.epoch), envelope=True) == Recovery(True, start.epoch, 7, 0)
        assert await nothing_received(c, 0.1)
        # An epoch that isn't the topic's, or an offset from the future: reload.
        d, d_ws = await site.client()
        assert await hub.subscribe(d_ws, "room", recover=(3, "0123456789abcdef"), envelope=True) == Recovery(
            False, start.epoch, 7
        )
        e, e_ws = await site.client()
        assert await hub.subscribe(e_ws, "room", recover=(8, start.epoch), envelope=True) == Recovery(False, start.epoch, 7)
        for client in (d, e):
            assert await nothing_received(client, 0.1)
        # Raw subscribers recover too (the application knows the offsets some other way).
        f, f_ws = await site.client()
        assert await hub.subscribe(f_ws, "room", recover=(5, start.epoch)) == Recovery(True, start.epoch, 7, 2)
        assert [await f.recv(timeout=2) for _ in range(2)] == ["m6", "m7"]


async def test_history_is_bounded_by_count(hub_url: str | None) -> None:
    async with history_hub(hub_url, history_size=5) as hub, Site() as site:
        a, a_ws = await site.client()
        start = await hub.subscribe(a_ws, "t", envelope=True)
        assert start is not None
        await a.close()
        for i in range(1, 21):
            await hub.publish("t", str(i))
        b, b_ws = await site.client()
        assert await hub.subscribe(b_ws, "t", recover=(0, start.epoch), envelope=True) == Recovery(False, start.epoch, 20)
        assert await nothing_received(b, 0.1)
        c, c_ws = await site.client()
        assert await hub.subscribe(c_ws, "t", recover=(15, start.epoch), envelope=True) == Recovery(True, start.epoch, 20, 5)
        assert await recv_data(c, 5) == [(i, str(i)) for i in range(16, 21)]
        d, d_ws = await site.client()
        assert await hub.subscribe(d_ws, "t", recover=(14, start.epoch), envelope=True) == Recovery(False, start.epoch, 20)


async def test_history_is_bounded_by_age(hub_url: str | None) -> None:
    async with history_hub(hub_url, history_ttl=1.0, history_meta_ttl=60) as hub, Site() as site:
        a, a_ws = await site.client()
        start = await hub.subscribe(a_ws, "t", envelope=True)
        assert start is not None
        await a.close()
        for i in range(1, 4):
            await hub.publish("t", str(i))
        await asyncio.sleep(1.2)
        await hub.publish("t", "4")
        b, b_ws = await site.client()
        assert await hub.subscribe(b_ws, "t", recover=(0, start.epoch), envelope=True) == Recovery(False, start.epoch, 4)
        # The epoch and offset outlive the messages: one that saw them all recovers.
        c, c_ws = await site.client()
        assert await hub.subscribe(c_ws, "t", recover=(3, start.epoch), envelope=True) == Recovery(True, start.epoch, 4, 1)
        assert await recv_data(c, 1) == [(4, "4")]


async def test_history_lost_means_a_new_epoch_in_memory() -> None:
    # A process that restarts (a new hub) starts every topic over.
    async with history_hub(None) as one, history_hub(None) as two, Site() as site:
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        before = await one.subscribe(a_ws, "t", envelope=True)
        await one.publish("t", "x")
        after = await two.subscribe(b_ws, "t", recover=(1, before.epoch), envelope=True)  # type: ignore[union-attr]
        assert after is not None and not after.recovered and after.epoch != before.epoch and after.offset == 0  # type: ignore[union-attr]


async def test_history_lost_means_a_new_epoch_in_redis(redis_server: RedisServer) -> None:
    async with history_hub(redis_server.url) as hub, Site() as site:
        a, a_ws = await site.client()
        before = await hub.subscribe(a_ws, "t", envelope=True)
        assert before is not None
        await hub.publish("t", "1")
        await hub.publish("t", "2")
        assert await recv_data(a, 2) == [(1, "1"), (2, "2")]
        redis_server.command("FLUSHALL")
        await hub.publish("t", "again")
        event = await recv_event(a)
        assert event["offset"] == 1 and event["epoch"] != before.epoch
        b, b_ws = await site.client()
        result = await hub.subscribe(b_ws, "t", recover=(2, before.epoch), envelope=True)
        assert result == Recovery(False, event["epoch"], 1)
        # Another hub on the same Redis sees the same history.
        async with history_hub(redis_server.url) as other:
            c, c_ws = await site.client()
            assert await other.subscribe(c_ws, "t", recover=(0, event["epoch"]), envelope=True) == Recovery(
                True, event["epoch"], 1, 1
            )
            assert await recv_data(c, 1) == [(1, "again")]


class CountingBackend(MemoryBackend):
    """The in-memory backend, counting history reads and making each take a while."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def history(self, topic: str, since: int | None, limit: int) -> History:
        self.reads += 1
        await asyncio.sleep(0.05)
        return await super().history(topic, since, limit)


async def test_identical_history_reads_are_merged() -> None:
    backend = CountingBackend()
    async with Hub(backend=backend, history_size=100) as hub, Site() as site:
        a, a_ws = await site.client()
        start = await hub.subscribe(a_ws, "t", envelope=True)
        assert start is not None and backend.reads == 1
        for i in range(1, 6):
            await hub.publish("t", str(i))
        pairs = [await site.client() for _ in range(30)]
        # 30 clients come back at once from offset 2: one read (and perhaps one for the stragglers),
        # and each message framed once for all of them.
        envelopes = 0
        envelope = hub_module._envelope

        def counting_envelope(*args: Any) -> Any:
            nonlocal envelopes
            envelopes += 1
            return envelope(*args)

        hub_module._envelope = counting_envelope  # type: ignore[assignment]
        try:
            results = await asyncio.gather(*(hub.subscribe(ws, "t", recover=(2, start.epoch), envelope=True) for _, ws in pairs))
        finally:
            hub_module._envelope = envelope  # type: ignore[assignment]
        assert set(results) == {Recovery(True, start.epoch, 5, 3)}
        assert backend.reads <= 3
        assert envelopes <= 3 * (backend.reads - 1)
        for client, _ in pairs:
            assert await recv_data(client, 3) == [(3, "3"), (4, "4"), (5, "5")]
        # Other offsets, other reads.
        reads = backend.reads
        b, b_ws = await site.client()
        await hub.subscribe(b_ws, "t", recover=(4, start.epoch), envelope=True)
        assert backend.reads == reads + 1


async def test_messages_published_during_recovery_arrive_once_in_order(hub_url: str | None) -> None:
    async with history_hub(hub_url) as hub, Site() as site:
        a, a_ws = await site.client()
        start = await hub.subscribe(a_ws, "t", envelope=True)
        assert start is not None
        await a.close()
        for i in range(1, 11):
            await hub.publish("t", str(i))
        b, b_ws = await site.client()

        async def publish_more() -> None:
            for i in range(11, 31):
                await hub.publish("t", str(i))
                await asyncio.sleep(0)

        result, _ = await asyncio.gather(hub.subscribe(b_ws, "t", recover=(4, start.epoch), envelope=True), publish_more())
        assert result is not None and result.recovered
        assert await recv_data(b, 26) == [(i, str(i)) for i in range(5, 31)]
        assert await nothing_received(b)


async def test_redis_orders_every_process_alike(redis_server: RedisServer) -> None:
    # Two processes publishing to one topic at once: everybody sees one order, that of the offsets.
    async with history_hub(redis_server.url) as one, history_hub(redis_server.url) as two, Site() as site:
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        await one.subscribe(a_ws, "t", envelope=True)
        await two.subscribe(b_ws, "t", envelope=True)

        async def burst(hub: Hub, name: str) -> list[int]:
            return [await hub.publish("t", f"{name}{i}") for i in range(20)]

        counts = await asyncio.gather(burst(one, "one"), burst(two, "two"))
        # publish() returns once this process's subscriber has its own message (it comes back from Redis).
        assert list(counts) == [[1] * 20, [1] * 20]
        got_a = await recv_data(a, 40)
        got_b = await recv_data(b, 40)
        assert got_a == got_b
        assert [offset for offset, _ in got_a] == list(range(1, 41))
        assert {data for _, data in got_a} == {f"{name}{i}" for name in ("one", "two") for i in range(20)}


async def test_redis_outage_with_history(redis_server: RedisServer) -> None:
    async with history_hub(redis_server.url) as hub, Site() as site:
        a, a_ws = await site.client()
        await hub.subscribe(a_ws, "t", envelope=True)
        redis_server.kill()
        await eventually(lambda: not hub.connected)
        # Delivered here, without a position (it is in no history), then HubUnavailable.
        with pytest.raises(HubUnavailable) as raised:
            await hub.publish("t", "local")
        assert raised.value.delivered == 1
        assert await recv_event(a) == {"type": "pub", "topic": "t", "data": "local"}
        # Subscribing works, without history: nothing to recover from.
        b, b_ws = await site.client()
        assert await hub.subscribe(b_ws, "t", recover=(1, "0123456789abcdef"), envelope=True) == Recovery(False, "", 0)
        redis_server.start()
        await eventually(lambda: hub.connected, timeout=10)
        assert await hub.publish("t", "back") == 2
        assert (await recv_event(b))["data"] == "back"


def test_wire_position_round_trip() -> None:
    header = wire.TEXT_AT + b"o" * 8 + (7).to_bytes(8, "big")
    data = header + (42).to_bytes(8, "big") + bytes([4]) + b"abcd" + "héllo".encode()
    assert wire.decode_position(data) == (True, b"o" * 8, b"o" * 8 + (7).to_bytes(8, "big"), "héllo".encode(), (42, "abcd"))
    assert wire.decode(data) == (True, b"o" * 8, b"o" * 8 + (7).to_bytes(8, "big"), "héllo".encode())
    plain = wire.encode(False, b"p" * 8, 3, b"\x00")
    assert wire.decode_position(plain)[4] is None
    for broken in (header, header + (1).to_bytes(8, "big") + bytes([9]) + b"ab", b"x" * 20):
        with pytest.raises(ValueError):
            wire.decode_position(broken)


async def test_recover_while_subscribed_fills_a_gap(hub_url: str | None) -> None:
    # A client that noticed a missing offset (it was too slow, say) asks again from the last one it handled.
    async with history_hub(hub_url) as hub, Site() as site:
        a, a_ws = await site.client()
        start = await hub.subscribe(a_ws, "t", envelope=True)
        assert start is not None
        for i in range(1, 5):
            await hub.publish("t", str(i))
        assert await recv_data(a, 4) == [(i, str(i)) for i in range(1, 5)]
        result, _ = await asyncio.gather(hub.subscribe(a_ws, "t", recover=(2, start.epoch), envelope=True), hub.publish("t", "5"))
        assert result is not None and result.recovered
        await hub.publish("t", "6")
        assert await recv_data(a, 4) == [(3, "3"), (4, "4"), (5, "5"), (6, "6")]
        assert await nothing_received(a)
        assert hub.topics(a_ws) == {"t"}


class LossyBackend(MemoryBackend):
    """The in-memory backend, losing the live delivery of the offsets in ``lose`` (as a process that lost Redis would)."""

    def __init__(self) -> None:
        super().__init__()
        self.lose: set[int] = set()

    async def append(self, topic: str, text: bool, payload: bytes) -> tuple[Position, int]:
        if self._topic(topic).offset + 1 not in self.lose:
            return await super().append(topic, text, payload)
        entry = self._topic(topic)
        entry.offset += 1
        entry.entries.append((entry.offset, entry.touched, text, payload))
        return Position(entry.offset, entry.epoch), 0


async def test_the_hub_fills_the_gaps_of_a_process_that_missed_messages() -> None:
    backend = LossyBackend()
    backend.lose = {2, 3, 6}
    async with Hub(backend=backend, history_size=100) as hub, Site() as site:
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        await hub.subscribe(a_ws, "t", envelope=True)
        await hub.subscribe(b_ws, "t")
        for i in range(1, 6):
            await hub.publish("t", str(i))
        # 2 and 3 came from history when 4 showed the gap, before 4.
        assert await recv_data(a, 5) == [(i, str(i)) for i in range(1, 6)]
        assert [await b.recv(timeout=2) for _ in range(5)] == ["1", "2", "3", "4", "5"]
        await hub.publish("t", "6")
        assert await nothing_received(a, 0.1)
        # 6 was the last: nothing shows the gap until the backend says it may have missed messages.
        backend.sink.reconnected()
        assert await recv_data(a, 1) == [(6, "6")]
        assert await b.recv(timeout=2) == "6"
        await hub.publish("t", "7")
        assert await recv_data(a, 1) == [(7, "7")]
        assert await nothing_received(a)


async def test_a_process_that_lost_its_redis_subscription_gets_what_it_missed(redis_server: RedisServer) -> None:
    async with history_hub(redis_server.url) as one, history_hub(redis_server.url) as two, Site() as site:
        a, a_ws = await site.client()
        await two.subscribe(a_ws, "t", envelope=True)
        await one.publish("t", "1")
        assert await recv_data(a, 1) == [(1, "1")]
        # Cut two's subscription connection (the one subscribed to a channel), not one's.
        clients = redis_server.command("CLIENT", "LIST").decode().splitlines()
        ids = [line.split()[0].partition("=")[2] for line in clients if " sub=1 " in f" {line} "]
        assert len(ids) == 1, clients
        redis_server.command("CLIENT", "KILL", "ID", ids[0])
        await eventually(lambda: not two.connected)
        for i in range(2, 5):
            await one.publish("t", str(i))
        await eventually(lambda: two.connected, timeout=10)
        # Filled from history on reconnection, in order, then live.
        assert await recv_data(a, 3) == [(2, "2"), (3, "3"), (4, "4")]
        await one.publish("t", "5")
        assert await recv_data(a, 1) == [(5, "5")]
        assert await nothing_received(a)


async def test_a_topic_left_alone_for_meta_ttl_starts_a_new_epoch(hub_url: str | None) -> None:
    async with history_hub(hub_url, history_ttl=0.1, history_meta_ttl=0.3) as hub, Site() as site:
        a, a_ws = await site.client()
        before = await hub.subscribe(a_ws, "t", envelope=True)
        assert before is not None
        await hub.publish("t", "1")
        await a.close()
        await asyncio.sleep(0.5)
        b, b_ws = await site.client()
        after = await hub.subscribe(b_ws, "t", recover=(1, before.epoch), envelope=True)
        assert after is not None and not after.recovered and after.epoch != before.epoch and after.offset == 0


async def test_nothing_is_left_behind_when_subscribers_leave(hub_url: str | None) -> None:
    async with history_hub(hub_url) as hub, Site() as site:
        pairs = [await site.client() for _ in range(5)]
        start = await hub.subscribe(pairs[0][1], "t", envelope=True)
        assert start is not None
        await hub.publish("t", "1")
        for _, ws in pairs[1:]:
            await hub.subscribe(ws, "t", recover=(0, start.epoch), envelope=True)
            await hub.subscribe_prefix(ws, "", envelope=True)
        await hub.publish("t", "2")
        for client, _ in pairs:
            await client.close()
        await eventually(lambda: not hub._subscribers)
        assert not hub._seams and not hub._enveloped and not hub._reads and not hub._last and not hub._filling
        assert not hub._exact and not hub._prefixes


async def test_hubs_with_and_without_history_share_a_redis(redis_server: RedisServer) -> None:
    # A rolling upgrade: one process keeps history, the other doesn't yet.
    async with history_hub(redis_server.url) as keeps, make_hub(redis_server.url) as plain, Site() as site:
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        await keeps.subscribe(a_ws, "t", envelope=True)
        await plain.subscribe(b_ws, "t")
        await keeps.publish("t", "with an offset")
        assert (await recv_event(a))["offset"] == 1
        assert await b.recv(timeout=2) == "with an offset"
        await plain.publish("t", "without")
        assert await b.recv(timeout=2) == "without"
        assert await recv_event(a) == {"type": "pub", "topic": "t", "data": "without"}


@pytest.mark.async_timeout(60)
async def test_a_browser_recovers_on_another_server_process(redis_server: RedisServer) -> None:
    # Two server processes (python -m tests.pubsub.app) on one Redis, spoken to in the JSON protocol.
    servers = [ServerProcess(free_port(), redis_server.url, history=100) for _ in range(2)]
    clients: list[wsio.ClientConnection] = []

    async def connect(server: ServerProcess, query: str = "") -> wsio.ClientConnection:
        client = await wsio.connect(f"ws://127.0.0.1:{server.port}/json{query}", compression=None)
        clients.append(client)
        return client

    async def call(client: wsio.ClientConnection, **command: Any) -> list[dict[str, Any]]:
        """Send a command; what comes until its answer (publications, then the answer)."""
        await client.send(json.dumps(command))
        events = []
        while not events or events[-1]["type"] == "pub":
            events.append(await recv_event(client, timeout=5))
        return events

    try:
        await asyncio.gather(*(server.start() for server in servers))
        browser = await connect(servers[0], "?alice")
        publisher = await connect(servers[1])
        [answer] = await call(browser, type="subscribe", topic="room")
        epoch = answer["epoch"]
        assert answer == {"type": "subscribed", "topic": "room", "recovered": False, "offset": 0, "epoch": epoch, "missed": 0}
        [presence] = await call(publisher, type="presence", topic="room")
        assert list(presence["clients"].values()) == ["alice"], "seen from the other process"
        for i in (1, 2):
            await call(publisher, type="publish", topic="room", data=f"m{i}")
        assert [await recv_event(browser, 5) for _ in range(2)] == [
            {"type": "pub", "topic": "room", "data": f"m{i}", "offset": i, "epoch": epoch} for i in (1, 2)
        ]
        await browser.close()
        for i in (3, 4):
            await call(publisher, type="publish", topic="room", data=f"m{i}")
        # Back, on the other process, from offset 2.
        browser = await connect(servers[1], "?alice")
        assert await call(browser, type="subscribe", topic="room", offset=2, epoch=epoch) == [
            {"type": "pub", "topic": "room", "data": "m3", "offset": 3, "epoch": epoch},
            {"type": "pub", "topic": "room", "data": "m4", "offset": 4, "epoch": epoch},
            {"type": "subscribed", "topic": "room", "recovered": True, "offset": 4, "epoch": epoch, "missed": 2},
        ]
        await call(publisher, type="publish", topic="room", data="m5")
        assert await recv_event(browser, 5) == {"type": "pub", "topic": "room", "data": "m5", "offset": 5, "epoch": epoch}
        for client in clients:
            await client.close()
        assert [await server.stop() for server in servers] == [0, 0]
    finally:
        for server in servers:
            server.kill()
