"""A property of recovery: whatever the interleaving of publishes, disconnections and reconnections,
a subscriber that comes back with its last position sees every message once, in order, while
history reaches back; and when it doesn't, ``recovered`` is false and nothing comes twice or out of order.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsio
from wsio.pubsub import Hub

from .helpers import Site
from .redis_server import RedisServer
from .test_hub import make_hub

pytestmark = pytest.mark.timeout(600)

#: ("pub", n, where): n messages, from this hub or (with Redis) another one.
#: ("drop",): the subscriber's connection closes. ("back",): it comes back with its position.
#: ("race", n): it comes back while n messages are published at once. ("yield",): let the loop run.
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("pub"), st.integers(1, 6), st.sampled_from(["here", "there"])),
        st.tuples(st.just("drop")),
        st.tuples(st.just("back")),
        st.tuples(st.just("race"), st.integers(1, 6)),
        st.tuples(st.just("yield")),
    ),
    max_size=25,
)


class Subscriber:
    """One client across its connections: what it received, and where it stands."""

    def __init__(self, hub: Hub, site: Site, topic: str) -> None:
        self.hub = hub
        self.site = site
        self.topic = topic
        self.received: list[tuple[int, str]] = []
        self.epoch = ""
        self.offset = 0
        self.client: wsio.ClientConnection | None = None
        self.server: wsio.ServerConnection | None = None
        #: Per reconnection: (recovered, missed beyond the client's position, the topic's offset then).
        self.returns: list[tuple[bool, int, int]] = []

    async def connect(self, first: bool = False) -> None:
        self.client, self.server = await self.site.client()
        recover = None if first else (self.offset, self.epoch)
        result = await self.hub.subscribe(self.server, self.topic, recover=recover, envelope=True)
        assert result is not None
        if not first:
            self.returns.append((result.recovered, result.offset - self.offset, result.offset))
        if not result.recovered:
            # Reload: go on from the position the hub gave.
            self.epoch, self.offset = result.epoch, result.offset
        self.reader = asyncio.get_running_loop().create_task(self.read(self.client))

    async def read(self, client: wsio.ClientConnection) -> None:
        try:
            async for message in client:
                event = json.loads(message)
                offset, epoch = event["offset"], event["epoch"]
                assert epoch == self.epoch, (epoch, self.epoch)
                assert offset > self.offset, f"offset {offset} after {self.offset}: twice or out of order"
                self.offset = offset
                self.received.append((offset, event["data"]))
        except wsio.ConnectionClosed:
            pass

    async def drop(self) -> None:
        assert self.server is not None and self.client is not None
        await self.server.close()  # what was written before the close frame is still read
        await self.reader
        await self.client.close()
        self.client = self.server = None


async def scenario(ops: list[Any], hub: Hub, other: Hub, history_size: int) -> None:
    topic = f"t-{uuid.uuid4().hex}"
    published: list[str] = []
    counter = 0

    async def publish(n: int, where: str) -> None:
        nonlocal counter
        for _ in range(n):
            counter += 1
            data = f"m{counter}"
            published.append(data)
            await (other if where == "there" else hub).publish(topic, data)

    async with Site() as site:
        sub = Subscriber(hub, site, topic)
        await sub.connect(first=True)
        for op in ops:
            if op[0] == "pub":
                await publish(op[1], op[2])
            elif op[0] == "drop" and sub.client is not None:
                await sub.drop()
            elif op[0] == "back" and sub.client is None:
                await sub.connect()
            elif op[0] == "race" and sub.client is None:
                await asyncio.gather(sub.connect(), publish(op[1], "here"), publish(op[1], "there"))
            elif op[0] == "yield":
                await asyncio.sleep(0)
        if sub.client is None:
            await sub.connect()
        await publish(1, "here")
        deadline = asyncio.get_running_loop().time() + 5
        while sub.offset < len(published):
            assert asyncio.get_running_loop().time() < deadline, f"stuck at {sub.offset} of {len(published)}"
            await asyncio.sleep(0.01)
        await sub.drop()

    # One epoch: offsets are 1..N in publishing order (one publisher at a time in memory; Redis orders them).
    offsets = [offset for offset, _ in sub.received]
    assert offsets == sorted(set(offsets)), "nothing twice, nothing out of order"
    for recovered, missed, _ in sub.returns:
        # History reaches back (count bound only here): recovered, and only then.
        assert recovered == (missed <= history_size), (recovered, missed, history_size)
    if all(recovered for recovered, _, _ in sub.returns):
        assert offsets == list(range(1, len(published) + 1)), "every message, once, in order"
        assert sorted(data for _, data in sub.received) == sorted(published)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, history_size=st.sampled_from([1000, 1000, 3]))
def test_recovery_in_memory(ops: list[Any], history_size: int) -> None:
    async def main() -> None:
        async with Hub(history_size=history_size) as hub:
            await asyncio.wait_for(scenario(ops, hub, hub, history_size), 30)

    asyncio.run(main())


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_recovery_with_redis(redis_server: RedisServer, ops: list[Any]) -> None:
    # Two processes (hubs) publish; the subscriber is on one of them.
    async def main() -> None:
        async with make_hub(redis_server.url, history_size=1000) as hub, make_hub(redis_server.url, history_size=1000) as other:
            await asyncio.wait_for(scenario(ops, hub, other, 1000), 30)

    asyncio.run(main())
