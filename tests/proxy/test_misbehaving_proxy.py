"""Proxies that never answer, answer forever, or hang up: the limits and the timeout hold, over real sockets.

tinyproxy can't be made to misbehave, so these "proxies" are raw TCP peers.
"""

from __future__ import annotations

import socket
import time
from typing import Iterator

import pytest

import wsio
from wsio.asyncio.client import connect as async_connect
from wsio.sync.client import connect as sync_connect

from tests.sync.helpers import raw_server

pytestmark = pytest.mark.timeout(30)


def silent(sock: socket.socket) -> None:
    """Read the CONNECT and never answer."""
    sock.recv(65536)
    time.sleep(5)
    sock.close()


def endless_headers(sock: socket.socket) -> None:
    sock.recv(65536)
    try:
        sock.sendall(b"HTTP/1.1 200 OK\r\n")
        for index in range(100_000):
            sock.sendall(f"X-Filler-{index}: {'y' * 100}\r\n".encode())
    except OSError:
        pass  # the client gave up, as it should
    finally:
        sock.close()


def hang_up(sock: socket.socket) -> None:
    sock.recv(65536)
    sock.sendall(b"HTTP/1.1 200 Connection")
    sock.close()


def test_sync_silent_proxy_times_out() -> None:
    with raw_server(silent) as port:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            sync_connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}", open_timeout=0.5)._create()
        assert time.monotonic() - started < 3


async def test_async_silent_proxy_times_out() -> None:
    with raw_server(silent) as port:
        with pytest.raises(TimeoutError):
            await async_connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}", open_timeout=0.5)


def test_sync_endless_answer_is_cut_short() -> None:
    with raw_server(endless_headers) as port:
        with pytest.raises(wsio.InvalidProxy, match="invalid answer to CONNECT"):
            sync_connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}")._create()


async def test_async_endless_answer_is_cut_short() -> None:
    with raw_server(endless_headers) as port:
        with pytest.raises(wsio.InvalidProxy, match="invalid answer to CONNECT"):
            await async_connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}")


def test_sync_hang_up_mid_answer() -> None:
    with raw_server(hang_up) as port:
        with pytest.raises(wsio.InvalidProxy, match="closed the connection") as info:
            sync_connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}")._create()
    assert isinstance(info.value.__cause__, EOFError)


async def test_async_hang_up_mid_answer() -> None:
    with raw_server(hang_up) as port:
        with pytest.raises(wsio.InvalidProxy, match="closed the connection"):
            await async_connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}")


async def test_reconnecting_iterator_retries_an_unreachable_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused proxy is retried like a refused server, with backoff, until the task is cancelled."""
    import asyncio
    import itertools

    import wsio.asyncio.client as async_client

    delays_taken: list[float] = []

    def fast_backoff() -> Iterator[float]:
        for _ in itertools.count():
            delays_taken.append(0.01)
            yield 0.01

    monkeypatch.setattr(async_client, "backoff", fast_backoff)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def reconnect_forever() -> None:
        async for _ in async_connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}"):
            pytest.fail("connected through a proxy that isn't there")

    task = asyncio.ensure_future(reconnect_forever())
    while len(delays_taken) < 3 and not task.done():
        await asyncio.sleep(0.01)
    assert not task.done()  # still retrying, not raised
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
