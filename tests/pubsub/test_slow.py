"""Slow subscribers: a raw client that never reads, under both policies, with bounded memory."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import AsyncIterator

import pytest

import wsio
from wsio.protocol.frames import OP_CLOSE, OP_TEXT
from wsio.pubsub import SLOW_CLOSE_CODE, Hub

from .helpers import Site, eventually
from .test_hub import make_hub

pytestmark = pytest.mark.timeout(30)

PAYLOAD = "x" * 1000


@contextlib.asynccontextmanager
async def hubs(url: str | None, **options: object) -> AsyncIterator[tuple[Hub, Hub]]:
    """``(delivering, publishing)``: the same hub in memory; two hubs (two "processes") through Redis."""
    async with make_hub(url, **options) as local:
        if url is None:
            yield local, local
            return
        async with make_hub(url) as remote:
            yield local, remote


def shrink_send_buffer(ws: wsio.ServerConnection) -> None:
    # So that the kernel holds a few KiB for the stuck peer, not megabytes.
    ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def flood(publisher: Hub, fast: wsio.ClientConnection, stuck: wsio.ServerConnection, count: int) -> int:
    """Publish ``count`` messages; the fast subscriber reads each; return the largest buffer of the stuck one."""
    largest = 0
    for i in range(count):
        await publisher.publish("feed", f"{i:05d}{PAYLOAD}")
        message = await fast.recv(timeout=5)
        assert message == f"{i:05d}{PAYLOAD}", "the fast subscriber missed nothing"
        largest = max(largest, stuck.transport.get_write_buffer_size())
    return largest


@pytest.mark.parametrize("bound", ["max_buffer", "write_limit"])
async def test_drop_skips_and_counts(hub_url: str | None, bound: str) -> None:
    limit = 16384
    hub_options: dict[str, object] = {"max_buffer": limit} if bound == "max_buffer" else {}
    site_options: dict[str, object] = {} if bound == "max_buffer" else {"write_limit": limit}
    async with hubs(hub_url, **hub_options) as (hub, publisher), Site(**site_options) as site:
        fast, fast_ws = await site.client()
        stuck, stuck_ws = await site.raw_client(rcvbuf=4096)
        shrink_send_buffer(stuck_ws)
        await hub.subscribe(fast_ws, "feed")
        await hub.subscribe(stuck_ws, "feed")
        largest = await flood(publisher, fast, stuck_ws, 300)
        assert 0 < largest <= limit, "the stuck subscriber's buffer stays within the bound"
        assert hub.dropped > 200
        assert hub.dropped_for(stuck_ws) == hub.dropped
        assert hub.dropped_for(fast_ws) == 0
        assert stuck_ws.open, "dropping keeps the connection"
        # Once it reads, it gets whole messages, in order, with gaps where they were dropped.
        received = []
        while True:
            try:
                opcode, payload = await asyncio.wait_for(stuck.read_frame(), 0.5)
            except asyncio.TimeoutError:
                break
            assert opcode == OP_TEXT
            received.append(int(payload[:5]))
            assert payload[5:] == PAYLOAD.encode()
        assert received == sorted(received)
        assert len(received) + hub.dropped == 300
        # And it gets new messages again once it caught up.
        await publisher.publish("feed", "again")
        await fast.recv(timeout=5)
        assert (await asyncio.wait_for(stuck.read_frame(), 5)) == (OP_TEXT, b"again")


async def test_close_policy_closes_with_1008(hub_url: str | None) -> None:
    limit = 16384
    async with hubs(hub_url, slow="close", max_buffer=limit) as (hub, publisher), Site(close_timeout=5) as site:
        fast, fast_ws = await site.client()
        stuck, stuck_ws = await site.raw_client(rcvbuf=4096)
        shrink_send_buffer(stuck_ws)
        await hub.subscribe(fast_ws, "feed")
        await hub.subscribe(stuck_ws, "feed")
        largest = await flood(publisher, fast, stuck_ws, 100)
        assert largest <= limit
        assert not stuck_ws.open
        close = stuck_ws.protocol.close_sent
        assert close is not None and close.code == SLOW_CLOSE_CODE == 1008
        assert close.reason.startswith("subscriber too slow: ")
        assert f"> max_buffer={limit}" in close.reason
        # The stuck client finds the close frame behind the messages once it reads.
        while True:
            opcode, payload = await asyncio.wait_for(stuck.read_frame(), 5)
            if opcode == OP_CLOSE:
                break
        assert int.from_bytes(payload[:2], "big") == 1008
        assert payload[2:].decode() == close.reason
        stuck.send_close(1008)
        await asyncio.wait_for(stuck_ws.wait_closed(), 5)
        await eventually(lambda: hub.topics(stuck_ws) == set(), what="the closed subscriber left")
        assert hub.subscribers("feed") == {fast_ws}
        assert await publisher.publish("feed", "after") >= 0
        assert await fast.recv(timeout=5) == "after"


async def test_close_policy_aborts_a_peer_that_never_reads() -> None:
    # A peer that never reads doesn't even read the close frame: close_timeout ends it.
    async with Hub(slow="close", max_buffer=8192) as hub, Site(close_timeout=0.5) as site:
        fast, fast_ws = await site.client()
        stuck, stuck_ws = await site.raw_client(rcvbuf=4096)
        shrink_send_buffer(stuck_ws)
        await hub.subscribe(fast_ws, "feed")
        await hub.subscribe(stuck_ws, "feed")
        await flood(hub, fast, stuck_ws, 100)
        await asyncio.wait_for(stuck_ws.wait_closed(), 5)
        await asyncio.sleep(0)
        assert hub.topics(stuck_ws) == set()
        assert hub.dropped >= 1


async def test_a_message_larger_than_the_bound_goes_to_an_idle_subscriber() -> None:
    async with Hub(max_buffer=1024) as hub, Site() as site:
        a, a_ws = await site.client()
        await hub.subscribe(a_ws, "big")
        assert await hub.publish("big", "y" * 100_000) == 1
        assert await a.recv(timeout=5) == "y" * 100_000


@pytest.mark.parametrize("max_buffer", [4096, 16384, None])
async def test_the_bound_counts_frames_held_for_the_end_of_the_turn(max_buffer: int | None) -> None:
    # A burst published within one turn of the event loop: the connection holds
    # the frames after the first and writes them together when the turn ends.
    # Those count towards max_buffer (None: write_limit) like the transport's buffer.
    limit = max_buffer or 16384
    async with Hub(max_buffer=max_buffer) as hub, Site(write_limit=16384) as site:
        fast, fast_ws = await site.client()
        stuck, stuck_ws = await site.raw_client(rcvbuf=4096)
        shrink_send_buffer(stuck_ws)
        await hub.subscribe(fast_ws, "feed")
        await hub.subscribe(stuck_ws, "feed")
        largest = 0
        for i in range(300):  # no await that yields: one turn
            assert await hub.publish("feed", f"{i:05d}{PAYLOAD}") >= 1
            largest = max(largest, stuck_ws.buffered_amount)
        assert 0 < largest <= limit
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the turn ended: the held frames went to the transport
        assert 0 < stuck_ws.transport.get_write_buffer_size() <= limit
        assert hub.dropped_for(stuck_ws) > 200
        # A subscriber that reads misses nothing: held frames are handed to its
        # socket before the bound is checked again.
        assert [int((await fast.recv(timeout=5))[:5]) for _ in range(300)] == list(range(300))
        assert hub.dropped_for(fast_ws) == 0
