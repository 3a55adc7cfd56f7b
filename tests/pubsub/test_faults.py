"""Redis stops and comes back while hubs publish: clear errors, no hang, resubscription, recovery where history survived."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from wsio.pubsub import Hub, HubUnavailable

from .helpers import Site, eventually
from .redis_server import RedisServer

pytestmark = pytest.mark.timeout(120)

#: The longest a publish may take while Redis goes and comes back (the echo wait
#: of a hub with history is bounded by subscribe_timeout, 5 s by default).
PUBLISH_BOUND = 6.0


def history_hub(url: str, **options: Any) -> Hub:
    return Hub(url, history_size=1000, reconnect_initial=0.05, reconnect_max=0.3, **options)


async def recv_event(client: Any, timeout: float = 5) -> dict[str, Any]:
    return json.loads(await client.recv(timeout=timeout))  # type: ignore[no-any-return]


@pytest.mark.async_timeout(60)
@pytest.mark.parametrize("history", [False, True])
async def test_publishing_through_a_redis_restart_never_hangs(redis_server: RedisServer, history: bool) -> None:
    options: dict[str, Any] = {"history_size": 1000} if history else {}
    async with (
        Hub(redis_server.url, reconnect_initial=0.05, reconnect_max=0.3, **options) as one,
        Hub(redis_server.url, reconnect_initial=0.05, reconnect_max=0.3, **options) as two,
        Site() as site,
    ):
        a, a_ws = await site.client()
        await two.subscribe(a_ws, "t", envelope=True)
        sent: list[str] = []
        failed: list[str] = []
        longest = 0.0
        stop = asyncio.Event()

        async def publisher() -> None:
            nonlocal longest
            i = 0
            while not stop.is_set():
                i += 1
                began = time.monotonic()
                try:
                    await one.publish("t", str(i))
                except HubUnavailable as exc:
                    assert exc.delivered == 0 and "Redis" in str(exc)
                    failed.append(str(i))
                else:
                    sent.append(str(i))
                longest = max(longest, time.monotonic() - began)
                await asyncio.sleep(0.01)

        task = asyncio.get_running_loop().create_task(publisher())
        try:
            await eventually(lambda: len(sent) >= 10)
            redis_server.kill()
            await eventually(lambda: not one.connected and not two.connected and len(failed) >= 5)
            redis_server.start()  # empty: no persistence
            await eventually(lambda: one.connected and two.connected, timeout=10, what="both hubs reconnected")
            after = len(sent)
            await eventually(lambda: len(sent) >= after + 10, what="publishing works again")
        finally:
            stop.set()
            await asyncio.wait_for(task, PUBLISH_BOUND * 2)
        assert longest < PUBLISH_BOUND, f"a publish took {longest:.1f}s"
        # Two resubscribed by itself: what was published after the restart reaches a.
        received: list[dict[str, Any]] = []

        def all_there() -> bool:
            return set(sent[after:]) <= {event["data"] for event in received}

        async def drain() -> None:
            while not all_there():
                received.append(await recv_event(a))

        await asyncio.wait_for(drain(), 10)
        if history:
            # Redis came back empty: a new epoch, its offsets from 1, in order.
            epochs = [event["epoch"] for event in received]
            assert len(set(epochs)) == 2, "one epoch before the restart, another after"
            last = [event["offset"] for event in received if event["epoch"] == epochs[-1]]
            assert last == list(range(1, len(last) + 1))


@pytest.mark.async_timeout(60)
async def test_history_that_survived_a_restart_is_recovered(redis_server: RedisServer) -> None:
    async with history_hub(redis_server.url) as one, history_hub(redis_server.url) as two, Site() as site:
        a, a_ws = await site.client()
        start = await two.subscribe(a_ws, "t", envelope=True)
        assert start is not None
        for i in range(1, 4):
            await one.publish("t", str(i))
        assert [(await recv_event(a))["offset"] for _ in range(3)] == [1, 2, 3]
        assert redis_server.command("SAVE") == b"OK"  # Redis persists its data (RDB) ...
        redis_server.kill()
        await a.close()  # ... the client goes away meanwhile ...
        await eventually(lambda: not one.connected)
        with pytest.raises(HubUnavailable, match="unreachable"):
            await one.publish("t", "lost")
        redis_server.start()  # ... Redis comes back with its data.
        await eventually(lambda: one.connected and two.connected, timeout=10)
        for i in range(4, 6):
            await one.publish("t", str(i))
        b, b_ws = await site.client()
        result = await two.subscribe(b_ws, "t", recover=(3, start.epoch), envelope=True)
        assert result is not None and result.recovered and result.missed == 2 and result.epoch == start.epoch
        assert [(e["offset"], e["data"]) for e in [await recv_event(b), await recv_event(b)]] == [(4, "4"), (5, "5")]
