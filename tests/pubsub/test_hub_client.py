"""wsio.pubsub.client: the reference clients of the JSON protocol, through server restarts and lost history."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
from typing import Any, AsyncIterator, Iterator, TypeVar

import pytest

from wsio.pubsub import Hub, Position
from wsio.pubsub.client import HubClient, Message, ThreadedHubClient, Tracker

from .helpers import eventually
from .processes import ServerProcess
from .redis_server import RedisServer, free_port

pytestmark = pytest.mark.timeout(120)

TOPIC = "room:1"


def pub(offset: int, epoch: str = "e1", topic: str = TOPIC) -> str:
    return json.dumps({"type": "pub", "topic": topic, "data": f"m{offset}", "offset": offset, "epoch": epoch})


def answer(recovered: bool, offset: int, epoch: str = "e1", topic: str = TOPIC) -> str:
    return json.dumps({"type": "subscribed", "topic": topic, "recovered": recovered, "offset": offset, "epoch": epoch})


class Seen:
    """What the application got: publications and lost topics."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lost: list[str] = []
        self.events: list[dict[str, Any]] = []

    def tracker(self, topics: Any = (TOPIC,)) -> Tracker:
        return Tracker(topics, on_message=self.messages.append, on_lost=self.lost.append, on_event=self.events.append)

    @property
    def data(self) -> list[str | bytes]:
        return [message.data for message in self.messages]


def test_tracker_drops_duplicates_and_recovers_gaps() -> None:
    seen = Seen()
    tracker = seen.tracker()
    assert tracker.opened() == ['{"type":"subscribe","topic":"room:1"}']
    assert tracker.received(pub(1)) == []  # before the answer: waits
    assert tracker.received(answer(False, 1)) == []
    assert seen.lost == [], "the first subscription reloads nothing"
    assert seen.data == [], "offset 1 is in the state the application loads"
    tracker.received(pub(2))
    tracker.received(pub(2))
    assert seen.data == ["m2"]
    # 3 skipped: recover after 2; what comes meanwhile waits, and arrives in order.
    assert tracker.received(pub(4)) == ['{"type":"recover","topic":"room:1","offset":2,"epoch":"e1"}']
    for text in (pub(5), pub(3), pub(4), answer(True, 4)):
        assert tracker.received(text) == []
    assert seen.data == ["m2", "m3", "m4", "m5"]
    assert tracker.positions == {TOPIC: Position(5, "e1")}
    # Reconnected: subscribe from the last position; the recovered ones, then live ones; none twice.
    assert tracker.opened() == ['{"type":"subscribe","topic":"room:1","offset":5,"epoch":"e1"}']
    for text in (pub(5), pub(6), pub(7), answer(True, 6), pub(7), pub(8)):
        tracker.received(text)
    assert seen.data == ["m2", "m3", "m4", "m5", "m6", "m7", "m8"]
    assert seen.lost == []


def test_tracker_sends_what_on_open_returns_first() -> None:
    tracker = Tracker({TOPIC: Position(3, "e1")}, on_message=print, on_open=lambda: ['{"type":"hello"}'])
    assert tracker.opened() == ['{"type":"hello"}', '{"type":"subscribe","topic":"room:1","offset":3,"epoch":"e1"}']
    assert tracker.subscribe("room:2") == '{"type":"subscribe","topic":"room:2"}'
    assert tracker.unsubscribe(TOPIC) == '{"type":"unsubscribe","topic":"room:1"}'
    assert tracker.opened() == ['{"type":"hello"}', '{"type":"subscribe","topic":"room:2"}']


def test_tracker_reports_lost_history() -> None:
    seen = Seen()
    tracker = seen.tracker({TOPIC: Position(10, "e1")})
    assert tracker.opened() == ['{"type":"subscribe","topic":"room:1","offset":10,"epoch":"e1"}']
    for text in (pub(3, "e2"), answer(False, 2, "e2"), pub(3, "e2")):
        tracker.received(text)
    assert seen.lost == [TOPIC]
    assert seen.data == ["m3"]
    # The epoch changes under a live subscription: recover, which can't, then go on.
    assert tracker.received(pub(1, "e3")) == ['{"type":"recover","topic":"room:1","offset":3,"epoch":"e2"}']
    for text in (pub(2, "e3"), answer(False, 1, "e3")):
        tracker.received(text)
    assert seen.lost == [TOPIC, TOPIC]
    assert seen.data == ["m3", "m2"]
    # Without history: everything as it comes; other messages go to on_event.
    tracker.received(json.dumps({"type": "pub", "topic": TOPIC, "b64": "AP8="}))
    tracker.received(json.dumps({"type": "join", "topic": TOPIC, "client": "c", "info": None, "count": 1}))
    tracker.received(json.dumps({"type": "pub", "topic": "other", "data": "not subscribed"}))
    assert seen.messages[-1] == Message(TOPIC, b"\x00\xff", None)
    assert [event["type"] for event in seen.events] == ["join"]


class Publisher:
    """Publishes m0, m1, ... on TOPIC every few ms through its own hub on Redis (not through the server)."""

    def __init__(self, redis_url: str) -> None:
        self.hub = Hub(redis_url, channel_prefix="wsio-test:", history_size=1000, reconnect_initial=0.05, reconnect_max=0.3)
        self.count = 0

    async def publish(self, n: int, every: float = 0.01) -> None:
        for _ in range(n):
            await self.hub.publish(TOPIC, f"m{self.count}")
            self.count += 1
            await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def setup(redis_server: RedisServer) -> AsyncIterator[tuple[ServerProcess, Publisher]]:
    server = ServerProcess(free_port(), redis_server.url, history=1000)
    publisher = Publisher(redis_server.url)
    await publisher.hub.start()
    try:
        await server.start()
        yield server, publisher
    finally:
        await reap(server)
        await publisher.hub.close()


async def reap(server: ServerProcess) -> None:
    """Kill the server (SIGKILL, by PID) and wait for it, its output read to the end (its pipe closed)."""
    server.kill()
    if server.process is not None:
        assert server.process.stdout is not None
        await asyncio.wait_for(server.process.stdout.read(), 10)
        await asyncio.wait_for(server.process.wait(), 10)


async def restart(server: ServerProcess, down: float = 0.5) -> None:
    """Kill the server and start it again on the same port after ``down`` seconds."""
    await reap(server)
    await asyncio.sleep(down)
    await server.start()


def fast_reconnect() -> Iterator[float]:
    return itertools.repeat(0.1)


T = TypeVar("T", HubClient, ThreadedHubClient)


def json_client(kind: type[T], server: ServerProcess, seen: Seen) -> T:
    """A client of ``kind`` on the server's JSON endpoint, subscribed to TOPIC, telling ``seen`` what it gets."""
    return kind(
        f"ws://127.0.0.1:{server.port}/json",
        [TOPIC],
        on_message=seen.messages.append,
        on_lost=seen.lost.append,
        compression=None,
        reconnect_delays=fast_reconnect,
    )


@pytest.mark.async_timeout(90)
async def test_asyncio_client_gets_everything_once_through_server_restarts(redis_server: RedisServer) -> None:
    seen = Seen()
    async with setup(redis_server) as (server, publisher):
        client = json_client(HubClient, server, seen)
        running = asyncio.get_running_loop().create_task(client.run())
        try:
            await eventually(lambda: client.tracker.positions[TOPIC] is not None, 10, "subscribed")
            publishing = asyncio.get_running_loop().create_task(publisher.publish(300))
            for _ in range(3):
                await asyncio.sleep(0.6)
                await restart(server)
            await publishing
            await eventually(lambda: len(seen.messages) >= 300, 20, "every message")
            await asyncio.sleep(0.3)
        finally:
            running.cancel()
            await asyncio.wait([running], timeout=10)
    assert seen.data == [f"m{i}" for i in range(300)]
    assert seen.lost == []
    offsets = [message.position.offset for message in seen.messages if message.position]
    assert offsets == list(range(offsets[0], offsets[0] + 300))


@pytest.mark.async_timeout(90)
async def test_threaded_client_gets_everything_once_through_a_server_restart(redis_server: RedisServer) -> None:
    seen = Seen()
    async with setup(redis_server) as (server, publisher):
        client = json_client(ThreadedHubClient, server, seen)
        thread = threading.Thread(target=client.run, daemon=True)
        thread.start()
        try:
            await eventually(lambda: client.tracker.positions.get(TOPIC) is not None, 10, "subscribed")
            publishing = asyncio.get_running_loop().create_task(publisher.publish(150))
            await asyncio.sleep(0.6)
            await restart(server)
            await publishing
            await eventually(lambda: len(seen.messages) >= 150, 20, "every message")
            await asyncio.sleep(0.3)
        finally:
            client.close()
            await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()
    assert seen.data == [f"m{i}" for i in range(150)]
    assert seen.lost == []


@pytest.mark.async_timeout(90)
async def test_client_is_told_when_history_is_lost(redis_server: RedisServer) -> None:
    seen = Seen()
    async with setup(redis_server) as (server, publisher):
        client = json_client(HubClient, server, seen)
        running = asyncio.get_running_loop().create_task(client.run())
        try:
            await eventually(lambda: client.tracker.positions[TOPIC] is not None, 10, "subscribed")
            await publisher.publish(5)
            await eventually(lambda: len(seen.messages) == 5, 10, "five messages")
            before = client.tracker.positions[TOPIC]
            await reap(server)
            assert redis_server.command("FLUSHALL") == b"OK"  # the history is gone
            await publisher.publish(3)
            await server.start()
            await eventually(lambda: seen.lost == [TOPIC], 10, "on_lost")
            after = client.tracker.positions[TOPIC]
            assert after is not None and before is not None and after.epoch != before.epoch
            await publisher.publish(3)
            await eventually(lambda: len(seen.messages) == 8, 10, "the messages after the reload")
        finally:
            running.cancel()
            await asyncio.wait([running], timeout=10)
    # m5..m7 are in the state the application reloads; what follows arrives once, in order.
    assert seen.data == [f"m{i}" for i in (0, 1, 2, 3, 4, 8, 9, 10)]
    assert seen.lost == [TOPIC]
