"""A hub with a backend of its own: the interface in wsio.pubsub.backend is all a backend needs."""

from __future__ import annotations

import asyncio

import pytest

from wsio.pubsub import Hub, HubUnavailable
from wsio.pubsub.backend import Backend, MemoryBackend

from .helpers import Site, eventually, nothing_received

pytestmark = pytest.mark.timeout(30)


class Bus:
    """What stands for a broker: every message published goes into a queue; one task hands it to every backend."""

    def __init__(self) -> None:
        self.backends: list[QueueBackend] = []
        self.queue: asyncio.Queue[tuple[QueueBackend, str, bool, bytes]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            origin, topic, text, payload = await self.queue.get()
            for backend in self.backends:
                if backend is not origin and backend.wants(topic):
                    backend.sink.deliver(topic, text, payload)


class QueueBackend(Backend):
    """Relays through a :class:`Bus`, and writes down what the hub asked of it."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.calls: list[tuple[str, ...]] = []
        self.online = True
        bus.backends.append(self)

    @property
    def up(self) -> bool:
        return self.online

    def wants(self, topic: str) -> bool:
        return self.sink.has_subscribers(False, topic) or any(
            self.sink.has_subscribers(True, topic[:n]) for n in range(len(topic) + 1)
        )

    async def start(self) -> None:
        self.calls.append(("start",))
        if self.bus.task is None:
            self.bus.task = asyncio.get_running_loop().create_task(self.bus.run())

    async def close(self) -> None:
        self.calls.append(("close",))
        self.bus.backends.remove(self)
        if not self.bus.backends and self.bus.task is not None:
            self.bus.task.cancel()

    async def subscribe(self, is_prefix: bool, name: str) -> None:
        self.calls.append(("subscribe", "prefix" if is_prefix else "topic", name))

    def unsubscribe(self, is_prefix: bool, name: str) -> None:
        self.calls.append(("unsubscribe", "prefix" if is_prefix else "topic", name))

    async def publish(self, topic: str, text: bool, payload: bytes | bytearray | memoryview) -> None:
        if not self.online:
            raise HubUnavailable("the bus is away")
        self.bus.queue.put_nowait((self, topic, text, bytes(payload)))


async def test_a_custom_backend_carries_messages_between_hubs() -> None:
    bus = Bus()
    one, two = QueueBackend(bus), QueueBackend(bus)
    async with Hub(backend=one) as hub_one, Hub(backend=two) as hub_two, Site() as site:
        assert repr(hub_one).startswith("<Hub QueueBackend:")
        a, a_ws = await site.client()
        b, b_ws = await site.client()
        c, c_ws = await site.client()
        await hub_one.subscribe(a_ws, "news")
        await hub_two.subscribe(b_ws, "news")
        await hub_two.subscribe_prefix(c_ws, "ne")
        assert sorted(two.sink.names()) == [(False, "news"), (True, "ne")]

        assert await hub_one.publish("news", "hello") == 1  # a, here; b and c through the bus
        assert await hub_two.publish("news", b"\x00bin") == 2  # b and c here; a through the bus
        # No order between processes: one's own message goes out at once, the other's through the bus.
        for client in (a, b, c):
            assert {await client.recv(timeout=2) for _ in range(2)} == {"hello", b"\x00bin"}
        assert await nothing_received(a)  # nothing twice

        # What arrives as text and isn't UTF-8 never reaches a connection.
        assert two.sink.deliver("news", True, b"\xff") == 0
        assert await nothing_received(b)

        # The backend hears of the first subscriber and of the last one leaving.
        await hub_two.unsubscribe(b_ws, "news")
        await c.close()
        await eventually(lambda: ("unsubscribe", "prefix", "ne") in two.calls)
        assert two.calls == [
            ("start",),
            ("subscribe", "topic", "news"),
            ("subscribe", "prefix", "ne"),
            ("unsubscribe", "topic", "news"),
            ("unsubscribe", "prefix", "ne"),
        ]
        assert two.sink.names() == []

        # The backend's outage is the hub's.
        assert hub_one.connected
        one.online = False
        assert not hub_one.connected
        with pytest.raises(HubUnavailable) as raised:
            await hub_one.publish("news", "local only")
        assert raised.value.delivered == 1
        assert await a.recv(timeout=2) == "local only"
    assert one.calls[-1] == two.calls[-1] == ("close",)


async def test_a_backend_serves_one_hub() -> None:
    backend = MemoryBackend()
    Hub(backend=backend)
    with pytest.raises(RuntimeError):
        Hub(backend=backend)
    with pytest.raises(ValueError):
        Hub("redis://localhost", backend=MemoryBackend())
    assert repr(Hub()).startswith("<Hub memory:") and Hub().connected
