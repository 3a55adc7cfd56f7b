"""broadcast() over loopback: one message to many connections, framed once, never waiting."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
from typing import Any, AsyncIterator

import pytest

import wsio
import wsio as websockets  # the seeds' spelling
from wsio import broadcast, connect, serve
from wsio.protocol.deflate import ClientPerMessageDeflateFactory, PerMessageDeflate
from wsio.protocol.frames import OP_TEXT

# wsio.asyncio.broadcast is the function (re-exported); this is the module.
broadcast_module = importlib.import_module("wsio.asyncio.broadcast")


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def clients_of(
    n: int,
    server_kwargs: dict[str, Any] | None = None,
    client_kwargs: list[dict[str, Any]] | None = None,
) -> AsyncIterator[tuple[list[wsio.ServerConnection], list[wsio.ClientConnection], wsio.Server]]:
    """``n`` clients connected to one server; returns the server-side connections in client order."""
    connections: list[wsio.ServerConnection] = []
    arrived = asyncio.Condition()

    async def handler(ws: wsio.ServerConnection) -> None:
        async with arrived:
            connections.append(ws)
            arrived.notify_all()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, **(server_kwargs or {})) as server:
        clients = []
        for i in range(n):
            kwargs = client_kwargs[i] if client_kwargs else {}
            clients.append(await connect(f"ws://127.0.0.1:{port_of(server)}/", **kwargs))
            async with arrived:
                await arrived.wait_for(lambda: len(connections) == i + 1)
        try:
            yield connections, clients, server
        finally:
            await asyncio.gather(*(client.close() for client in clients))


class Counting:
    """Wrap a function and count its calls."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.function(*args, **kwargs)


def test_broadcast_is_a_plain_function() -> None:
    assert not inspect.iscoroutinefunction(broadcast)
    assert broadcast([], "nobody") == 0


async def test_broadcast_uncompressed_frames_once(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = Counting(broadcast_module.build_frame)
    monkeypatch.setattr(broadcast_module, "build_frame", counting)
    async with clients_of(5, {"compression": None}) as (connections, clients, _):
        assert broadcast(connections, "to everyone") == 5
        assert broadcast(connections, b"\x00binary") == 5
        assert counting.calls == 2  # once per message, not per connection
        for client in clients:
            assert await client.recv(timeout=1) == "to everyone"
            assert await client.recv(timeout=1) == b"\x00binary"


async def test_broadcast_the_faq_way() -> None:
    # The FAQ: record connections in a set, websockets.broadcast(CONNECTIONS, message).
    CONNECTIONS: set[Any] = set()
    registered = asyncio.Event()

    async def handler(websocket: Any) -> None:
        CONNECTIONS.add(websocket)
        if len(CONNECTIONS) == 3:
            registered.set()
        try:
            await websocket.wait_closed()
        finally:
            CONNECTIONS.remove(websocket)

    def message_all(message: str) -> None:
        websockets.broadcast(CONNECTIONS, message)

    async with serve(handler, "127.0.0.1", 0) as server:
        clients = [await connect(f"ws://127.0.0.1:{port_of(server)}/") for _ in range(3)]
        await asyncio.wait_for(registered.wait(), 1)
        message_all("news")
        assert [await c.recv(timeout=1) for c in clients] == ["news"] * 3
        await clients[0].close()
        await asyncio.sleep(0.05)
        assert len(CONNECTIONS) == 2
        message_all("more news")
        assert [await c.recv(timeout=1) for c in clients[1:]] == ["more news"] * 2
        for c in clients[1:]:
            await c.close()


async def test_broadcast_with_default_compression_keeps_each_context() -> None:
    # The default: context takeover, so each connection gets its own compressed frame,
    # and later messages, broadcast or not, still decompress.
    big = "the same words again and again " * 20
    async with clients_of(3) as (connections, clients, _):
        assert all(ws.protocol.deflate is not None for ws in connections)
        assert all(ws.protocol.deflate.key is None for ws in connections)  # type: ignore[union-attr]
        for i in range(5):
            assert broadcast(connections, f"{i} {big}") == 3
            await connections[i % 3].send(f"direct {i} {big}")
        for index, client in enumerate(clients):
            received = [await client.recv(timeout=1) for _ in range(5 + sum(1 for i in range(5) if i % 3 == index))]
            assert [m for m in received if not m.startswith("direct")] == [f"{i} {big}" for i in range(5)]
            assert [m for m in received if m.startswith("direct")] == [f"direct {i} {big}" for i in range(5) if i % 3 == index]


async def test_broadcast_compresses_once_without_context_takeover(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Counting(PerMessageDeflate.compress)
    monkeypatch.setattr(PerMessageDeflate, "compress", lambda self, data: calls(self, data))
    offer = {"extensions": [ClientPerMessageDeflateFactory(server_no_context_takeover=True)]}
    big = "compress me once " * 50
    async with clients_of(4, client_kwargs=[offer] * 4) as (connections, clients, _):
        assert all(ws.protocol.deflate.local_no_context_takeover for ws in connections)  # type: ignore[union-attr]
        calls.calls = 0
        assert broadcast(connections, big) == 4
        assert calls.calls == 1
        for client in clients:
            assert await client.recv(timeout=1) == big
        # Short messages go uncompressed (compression_threshold), compress=False too.
        calls.calls = 0
        assert broadcast(connections, "short") == 4
        assert broadcast(connections, big, compress=False) == 4
        assert calls.calls == 0
        for client in clients:
            assert await client.recv(timeout=1) == "short"
            assert await client.recv(timeout=1) == big


async def test_broadcast_to_a_mix_of_compression_settings() -> None:
    no_takeover = {"extensions": [ClientPerMessageDeflateFactory(server_no_context_takeover=True)]}
    plain = {"compression": None}
    settings = [no_takeover, {}, plain, no_takeover, {}, plain]
    big = "mixed audience " * 40
    async with clients_of(6, client_kwargs=settings) as (connections, clients, _):
        kinds = ["plain" if ws.protocol.deflate is None else ws.protocol.deflate.local_no_context_takeover for ws in connections]
        assert kinds == [True, False, "plain", True, False, "plain"]
        for i in range(4):
            assert broadcast(connections, f"{i}: {big}") == 6
            assert broadcast(connections, f"{i}: {big}".encode()) == 6
        for ws in connections:
            await ws.send(f"after: {big}")
        for client in clients:
            for i in range(4):
                assert await client.recv(timeout=1) == f"{i}: {big}"
                assert await client.recv(timeout=1) == f"{i}: {big}".encode()
            assert await client.recv(timeout=1) == f"after: {big}"


async def test_broadcast_from_clients_masks_each_frame() -> None:
    async with clients_of(3) as (connections, clients, _):
        assert broadcast(clients, "from the clients' side") == 3
        for ws in connections:
            assert await ws.recv(timeout=1) == "from the clients' side"


async def test_broadcast_skips_closed_connections() -> None:
    async with clients_of(3) as (connections, clients, _):
        await clients[1].close()
        await connections[1].wait_closed()
        assert broadcast(connections, "who is left") == 2
        assert await clients[0].recv(timeout=1) == "who is left"
        assert await clients[2].recv(timeout=1) == "who is left"


async def test_broadcast_skips_a_connection_that_is_closing() -> None:
    async with clients_of(2) as (connections, clients, _):
        clients[0].transport.pause_reading()  # the close handshake can't complete yet
        closing = asyncio.create_task(connections[0].close())
        await asyncio.sleep(0.01)
        assert broadcast(connections, "only the open one") == 1
        assert await clients[1].recv(timeout=1) == "only the open one"
        clients[0].transport.resume_reading()
        await closing


async def test_broadcast_skips_slow_connections(raw_client: Any) -> None:
    accepted: list[wsio.ServerConnection] = []

    async def handler(ws: wsio.ServerConnection) -> None:
        accepted.append(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None, write_limit=4096) as server:
        fast = await connect(f"ws://127.0.0.1:{port_of(server)}/", max_size=None, max_queue=None)
        slow = await raw_client.connect(port_of(server))  # never reads
        while len(accepted) < 2:
            await asyncio.sleep(0.01)
        slow_port = slow.writer.get_extra_info("sockname")[1]
        (slow_ws,) = [ws for ws in accepted if ws.remote_address[1] == slow_port]
        (fast_ws,) = [ws for ws in accepted if ws is not slow_ws]

        payload = b"s" * 65536
        reached = []
        while reached[-5:] != [1] * 5:  # until the kernel buffers of the slow peer are full
            assert len(reached) < 2000
            reached.append(broadcast(accepted, payload))
            while fast_ws.transport.get_write_buffer_size():
                await asyncio.sleep(0.001)  # the fast client keeps up
        assert reached[0] == 2
        # The slow one's buffer stays near write_limit instead of growing with every message.
        assert slow_ws.transport.get_write_buffer_size() <= 4096 + len(payload) + 16
        assert slow_ws.state is wsio.State.OPEN  # skipped, not closed
        for _ in range(len(reached)):  # the fast one got every message
            assert await fast.recv(timeout=1) == payload
        slow.abort()
        await fast.close()


async def test_broadcast_skips_a_connection_in_the_middle_of_a_fragmented_send() -> None:
    async with clients_of(2) as (connections, clients, _):
        gate = asyncio.Event()

        async def chunks() -> AsyncIterator[str]:
            yield "a"
            yield "b"
            await gate.wait()
            yield "c"

        sending = asyncio.create_task(connections[0].send(chunks()))
        await asyncio.sleep(0.01)
        assert broadcast(connections, "interleaved?") == 1
        gate.set()
        await sending
        assert await clients[0].recv(timeout=1) == "abc"
        assert await clients[1].recv(timeout=1) == "interleaved?"


async def test_broadcast_rejects_wrong_types() -> None:
    with pytest.raises(TypeError):
        broadcast([], {"not": "a message"})  # type: ignore[arg-type]


async def test_broadcast_large_frame_headers() -> None:
    # 126 and 127 length encodings.
    async with clients_of(2, {"compression": None}) as (connections, clients, _):
        for size in (125, 126, 65535, 65536, 70000):
            message = b"x" * size
            assert broadcast(connections, message) == 2
            for client in clients:
                assert await client.recv(timeout=1) == message


async def test_broadcast_frame_on_the_wire(raw_client: Any) -> None:
    accepted: list[wsio.ServerConnection] = []

    async def handler(ws: wsio.ServerConnection) -> None:
        accepted.append(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        client = await raw_client.connect(port_of(server))
        while not accepted:
            await asyncio.sleep(0.01)
        assert broadcast(accepted, "é") == 1
        assert await client.read_frame() == (OP_TEXT, "é".encode())
        assert client.last_head == 0x81  # FIN, no RSV1, text
        client.abort()
