"""The Connection API end to end over loopback: receiving, sending, pings, limits, closing."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import struct
import threading
import time
from typing import Any, AsyncIterator, Iterator

import pytest

import wsio
from wsio import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    PayloadTooBig,
    State,
    connect,
    serve,
)
from wsio.protocol.frames import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RSV1


def port_of(server: wsio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def connected(
    server_kwargs: dict[str, Any] | None = None, client_kwargs: dict[str, Any] | None = None
) -> AsyncIterator[tuple[wsio.ServerConnection, wsio.ClientConnection]]:
    """A server-side and a client-side connection to each other; the handler waits until closed."""
    accepted: asyncio.Future[wsio.ServerConnection] = asyncio.get_running_loop().create_future()

    async def handler(ws: wsio.ServerConnection) -> None:
        accepted.set_result(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, **(server_kwargs or {})) as server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/", **(client_kwargs or {})) as client:
            yield await accepted, client


@contextlib.asynccontextmanager
async def raw_peer(
    raw_client: Any, server_kwargs: dict[str, Any] | None = None, headers: str = ""
) -> AsyncIterator[tuple[wsio.ServerConnection, Any]]:
    """A wsio server connection whose client is written by hand (see conftest.RawClient)."""
    accepted: asyncio.Future[wsio.ServerConnection] = asyncio.get_running_loop().create_future()

    async def handler(ws: wsio.ServerConnection) -> None:
        accepted.set_result(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, **(server_kwargs or {})) as server:
        client = await raw_client.connect(port_of(server), headers=headers)
        try:
            yield await accepted, client
        finally:
            client.abort()


# -- receiving -------------------------------------------------------------------------


async def test_recv_timeout_raises_timeout_error() -> None:
    async with connected() as (server_ws, client):
        loop = asyncio.get_running_loop()
        start = loop.time()
        # The built-in TimeoutError on every version (asyncio's was another class before 3.11).
        with pytest.raises(TimeoutError, match=r"^no message within timeout=0\.1s$"):
            await client.recv(timeout=0.1)
        assert 0.08 < loop.time() - start < 1
        try:
            await client.recv(timeout=0)
        except TimeoutError:  # what the docs tell users to catch
            pass
        await server_ws.send("after the timeout")
        assert await client.recv(timeout=1) == "after the timeout"


async def test_recv_timeout_returns_a_message_already_there() -> None:
    async with connected() as (server_ws, client):
        await server_ws.send("ready")
        await asyncio.sleep(0.05)
        assert await client.recv(timeout=0) == "ready"


async def test_wait_for_recv_cancellation_loses_no_message() -> None:
    # The FAQ: await asyncio.wait_for(websocket.recv(), timeout=10)
    async with connected() as (server_ws, client):
        for _ in range(3):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.recv(), 0.05)
        await server_ws.send("first")
        await server_ws.send("second")
        assert await asyncio.wait_for(client.recv(), 1) == "first"
        assert await asyncio.wait_for(client.recv(), 1) == "second"


async def test_cancelled_recv_racing_an_arriving_message_loses_nothing() -> None:
    async with connected() as (server_ws, client):
        received: list[str] = []
        for i in range(50):
            task = asyncio.create_task(client.recv())
            await asyncio.sleep(0)
            await server_ws.send(str(i))
            await asyncio.sleep(0.001 * (i % 3))
            task.cancel()
            try:
                received.append(await task)
            except asyncio.CancelledError:
                pass
        while len(received) < 50:
            received.append(await client.recv(timeout=1))
        assert received == [str(i) for i in range(50)]


async def test_recv_nowait() -> None:
    async with connected() as (server_ws, client):
        with pytest.raises(asyncio.QueueEmpty):
            client.recv_nowait()
        await server_ws.send("a")
        await server_ws.send(b"b")
        await server_ws.send(["c", "d"])
        await asyncio.sleep(0.05)
        assert client.recv_nowait() == "a"
        assert client.recv_nowait() == b"b"
        assert client.recv_nowait() == "cd"
        with pytest.raises(asyncio.QueueEmpty):
            client.recv_nowait()
        await server_ws.close()
        await client.wait_closed()
        with pytest.raises(ConnectionClosedOK):
            client.recv_nowait()


async def test_messages_received_before_close_are_still_delivered() -> None:
    async with connected() as (server_ws, client):
        for i in range(5):
            await server_ws.send(str(i))
        await server_ws.close()
        await client.wait_closed()
        assert [await client.recv() for _ in range(5)] == ["0", "1", "2", "3", "4"]
        with pytest.raises(ConnectionClosedOK):
            await client.recv()


async def test_async_for_ends_on_normal_close() -> None:
    async with connected() as (server_ws, client):
        for message in ("one", "two", "three"):
            await server_ws.send(message)
        await server_ws.close()
        received = [message async for message in client]
        assert received == ["one", "two", "three"]


@pytest.mark.parametrize("code", [1000, 1001, 1011, 4000])
@pytest.mark.parametrize("when", ["waiting", "after"])
async def test_async_for_ends_on_1000_and_1001_and_raises_on_other_codes(code: int, when: str) -> None:
    """Waiting when the close frame comes, or starting once the connection is closed: only 1000 and 1001 end the loop."""
    async with connected() as (server_ws, client):
        received: list[Any] = []

        async def iterate() -> None:
            async for message in client:
                received.append(message)

        await server_ws.send("one")
        if when == "after":
            await server_ws.close(code)
            await client.wait_closed()
        task = asyncio.create_task(iterate())
        if when == "waiting":
            await asyncio.sleep(0.02)
            await server_ws.close(code)
        if code in (1000, 1001):
            await asyncio.wait_for(task, 2)
        else:
            with pytest.raises(ConnectionClosedError) as info:
                await asyncio.wait_for(task, 2)
            assert info.value.code == code
        assert received == ["one"]


async def test_async_for_raises_on_abnormal_close() -> None:
    async with connected() as (server_ws, client):
        await server_ws.send("one")
        await asyncio.sleep(0.02)
        server_ws.transport.abort()
        received = []
        with pytest.raises(ConnectionClosedError) as info:
            async for message in client:
                received.append(message)
        assert received == ["one"]
        assert info.value.code == 1006
        assert "1006" in str(info.value)


async def test_async_for_waiting_and_recv_from_another_task_raise_concurrency_error() -> None:
    async with connected() as (server_ws, client):
        received: list[Any] = []

        async def iterate() -> None:
            async for message in client:
                received.append(message)

        task = asyncio.create_task(iterate())
        await asyncio.sleep(0.01)  # the loop waits for a message
        with pytest.raises(ConcurrencyError):
            await client.recv()
        await server_ws.send("to the loop")
        await asyncio.sleep(0.01)
        assert received == ["to the loop"]
        await server_ws.close()
        await asyncio.wait_for(task, 2)


async def test_async_for_uses_a_subclass_recv() -> None:
    """Code that overrides recv() (as websockets allows) sees ``async for`` go through it."""

    class Upper(wsio.ClientConnection):
        async def recv(self, decode: bool | None = None, timeout: float | None = None) -> Any:
            return (await super().recv(decode, timeout)).upper()

    async with connected(client_kwargs={"create_connection": Upper}) as (server_ws, client):
        assert isinstance(client, Upper)
        await server_ws.send("shout")
        await server_ws.send("louder")
        await server_ws.close()
        assert [message async for message in client] == ["SHOUT", "LOUDER"]


async def test_recv_streaming_yields_fragments() -> None:
    async with connected() as (server_ws, client):
        await server_ws.send(["Hel", "lo, ", "world"])
        pieces = [piece async for piece in client.recv_streaming()]
        assert pieces == ["Hel", "lo, ", "world"]
        await server_ws.send([b"\x01", b"\x02\x03", b"\x04"])
        pieces = [piece async for piece in client.recv_streaming()]
        assert pieces == [b"\x01", b"\x02\x03", b"\x04"]
        await server_ws.send("whole")
        assert [piece async for piece in client.recv_streaming()] == ["whole"]
        await server_ws.send("after streaming")
        assert await client.recv() == "after streaming"


async def test_recv_streaming_yields_pieces_before_the_message_ends() -> None:
    async with connected() as (server_ws, client):
        gate = asyncio.Event()

        async def chunks() -> AsyncIterator[str]:
            yield "first "
            yield "second "  # send() looks one chunk ahead to know which is last
            await gate.wait()
            yield "third"

        sender = asyncio.create_task(server_ws.send(chunks()))
        stream = client.recv_streaming()
        assert await asyncio.wait_for(stream.__anext__(), 1) == "first "
        gate.set()
        assert [piece async for piece in stream] == ["second ", "third"]
        await sender


async def test_concurrent_recv_raises_concurrency_error() -> None:
    async with connected() as (server_ws, client):
        first = asyncio.create_task(client.recv())
        await asyncio.sleep(0)
        with pytest.raises(ConcurrencyError):
            await client.recv()
        await server_ws.send("for the first")
        assert await first == "for the first"


# -- sending -------------------------------------------------------------------------------


async def test_send_types() -> None:
    async with connected() as (server_ws, client):
        await client.send("text")
        assert await server_ws.recv() == "text"
        await client.send(b"bytes")
        assert await server_ws.recv() == b"bytes"
        await client.send(bytearray(b"bytearray"))
        assert await server_ws.recv() == b"bytearray"
        await client.send(memoryview(b"xxmemoryviewxx")[2:-2])
        assert await server_ws.recv() == b"memoryview"
        await client.send("")
        assert await server_ws.recv() == ""
        await client.send(b"")
        assert await server_ws.recv() == b""
        await client.send("é€😀")
        assert await server_ws.recv() == "é€😀"


async def test_send_iterables_as_fragmented_messages() -> None:
    async with connected() as (server_ws, client):
        await client.send(["a", "b", "c"])
        assert await server_ws.recv() == "abc"
        await client.send(chunk for chunk in [b"1", b"2", b"3"])
        assert await server_ws.recv() == b"123"
        await client.send(("x",))
        assert await server_ws.recv() == "x"
        await client.send([])  # nothing to send
        await client.send("next")
        assert await server_ws.recv() == "next"

        async def achunks() -> AsyncIterator[bytes]:
            for chunk in (b"as", b"ync", b"!"):
                await asyncio.sleep(0)
                yield chunk

        await client.send(achunks())
        assert await server_ws.recv() == b"async!"


async def test_send_fragments_on_the_wire(raw_client: Any) -> None:
    async with raw_peer(raw_client) as (server_ws, client):

        async def achunks() -> AsyncIterator[str]:
            yield "one"
            yield "two"
            yield "three"

        await server_ws.send(achunks())
        frames = [await client.read_frame() for _ in range(3)]
        assert frames == [(OP_TEXT, b"one"), (OP_CONT, b"two"), (OP_CONT, b"three")]
        assert client.last_head & 0x80  # FIN on the last one only


async def test_send_rejects_wrong_types() -> None:
    async with connected() as (server_ws, client):
        with pytest.raises(TypeError):
            await client.send({"not": "a message"})
        with pytest.raises(TypeError):
            await client.send(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await client.send(["text", b"bytes"])
        # A failed send leaves the connection usable.
        await client.send("fine")
        assert await server_ws.recv() == "fine"


async def test_send_iterables_of_bytes_like_chunks() -> None:
    async with connected() as (server_ws, client):
        await client.send([bytearray(b"by"), memoryview(b"te"), b"s"])
        assert await server_ws.recv() == b"bytes"
        with pytest.raises(TypeError):
            await client.send([1, 2, 3])
        await client.send("usable")
        assert await server_ws.recv() == "usable"


async def test_fragmented_send_failing_half_way_fails_the_connection_with_1011() -> None:
    # Half a message is on the wire: continuing would be a protocol error for the
    # peer, which would blame itself with 1002. Fail with 1011 instead.
    async with connected() as (server_ws, client):
        with pytest.raises(TypeError):
            await client.send(["a", "b", b"c"])
        with pytest.raises(ConnectionClosedError) as info:
            await server_ws.recv()
        assert info.value.code == 1011
        with pytest.raises(ConnectionClosedError):
            await client.send("after")

    async with connected() as (server_ws, client):

        async def producer() -> AsyncIterator[str]:
            yield "x"
            yield "y"
            raise RuntimeError("producer failed")

        with pytest.raises(RuntimeError, match="producer failed"):
            await client.send(producer())
        with pytest.raises(ConnectionClosedError) as info:
            await server_ws.recv()
        assert info.value.code == 1011 and info.value.reason == "error in fragmented message"


async def test_messages_interleaved_with_a_fragmented_send_wait_for_it() -> None:
    async with connected() as (server_ws, client):
        gate = asyncio.Event()

        async def chunks() -> AsyncIterator[str]:
            yield "frag1 "
            await gate.wait()
            yield "frag2"

        fragmented = asyncio.create_task(client.send(chunks()))
        await asyncio.sleep(0.01)
        single = asyncio.create_task(client.send("single"))
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(fragmented, single)
        assert await server_ws.recv() == "frag1 frag2"
        assert await server_ws.recv() == "single"


async def test_send_compress_false(raw_client: Any) -> None:
    message = "compress me " * 100
    async with raw_peer(raw_client, headers="Sec-WebSocket-Extensions: permessage-deflate\r\n") as (server_ws, client):
        assert server_ws.protocol.deflate is not None
        await server_ws.send(message)
        opcode, payload = await client.read_frame()
        assert opcode == OP_TEXT and client.last_head & RSV1 and len(payload) < len(message)
        await server_ws.send(message, compress=False)
        opcode, payload = await client.read_frame()
        assert opcode == OP_TEXT and not client.last_head & RSV1 and payload == message.encode()


async def test_send_after_close_raises_connection_closed() -> None:
    async with connected() as (server_ws, client):
        await client.close()
        with pytest.raises(ConnectionClosedOK):
            await client.send("too late")
        with pytest.raises(ConnectionClosed):
            await client.ping()


async def test_send_while_another_task_closes_normally_raises_ok() -> None:
    async with connected() as (server_ws, client):
        server_ws.transport.pause_reading()  # the closing handshake takes a moment
        closing = asyncio.create_task(client.close())
        await asyncio.sleep(0.01)
        assert client.state is State.CLOSING
        server_ws.transport.resume_reading()
        # A normal closure: ConnectionClosedOK, not a 1006 ConnectionClosedError.
        with pytest.raises(ConnectionClosedOK):
            await client.send("during the closing handshake")
        with pytest.raises(ConnectionClosedOK):
            await client.ping()
        await closing


async def test_send_threadsafe() -> None:
    async with connected() as (server_ws, client):
        results: list[object] = []

        def from_thread() -> None:
            future = client.send_threadsafe("from a thread")
            results.append(future)
            results.append(future.result(timeout=2))

        thread = threading.Thread(target=from_thread)
        thread.start()
        assert await server_ws.recv(timeout=2) == "from a thread"
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 2)
        assert isinstance(results[0], concurrent.futures.Future)
        assert results[1] is None


# -- ping and pong ----------------------------------------------------------------------------


async def test_ping_resolves_to_latency() -> None:
    async with connected() as (server_ws, client):
        assert client.latency == 0
        pong_waiter = await client.ping()
        latency = await asyncio.wait_for(pong_waiter, 1)
        assert isinstance(latency, float) and 0 < latency < 1
        assert client.latency == latency
        # With data, str or bytes; the seeds' spelling: await (await ws.ping()).
        assert await (await client.ping("hello")) >= 0
        assert await (await server_ws.ping(b"\x00\x01")) >= 0
        assert server_ws.latency > 0


async def test_ping_with_data_already_waiting_raises() -> None:
    async with connected() as (server_ws, client):
        server_ws.transport.pause_reading()  # the pong can't come back yet
        await client.ping(b"same")
        with pytest.raises(ConcurrencyError):
            await client.ping(b"same")
        server_ws.transport.resume_reading()


async def test_ping_waiter_raises_when_the_connection_drops() -> None:
    async with connected() as (server_ws, client):
        server_ws.transport.pause_reading()  # no pong will come
        pong_waiter = await client.ping()
        server_ws.transport.abort()
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(pong_waiter, 1)


async def test_pong_and_automatic_pong(raw_client: Any) -> None:
    async with raw_peer(raw_client) as (server_ws, client):
        await server_ws.pong(b"heartbeat")
        assert await client.read_frame() == (OP_PONG, b"heartbeat")
        client.send_frame(OP_PING, b"are you there")
        assert await asyncio.wait_for(client.read_frame(), 1) == (OP_PONG, b"are you there")


async def test_unsolicited_pong_is_ignored() -> None:
    async with connected() as (server_ws, client):
        await client.pong("nobody asked")
        await client.send("then a message")
        assert await server_ws.recv() == "then a message"


async def test_keepalive_keeps_a_healthy_connection_open() -> None:
    options = {"ping_interval": 0.05, "ping_timeout": 0.1}
    async with connected(options, options) as (server_ws, client):
        await asyncio.sleep(0.4)
        assert server_ws.state is State.OPEN and client.state is State.OPEN
        assert server_ws.latency > 0 and client.latency > 0
        await client.send("alive")
        assert await server_ws.recv() == "alive"


async def test_keepalive_closes_when_no_pong(raw_client: Any) -> None:
    options = {"ping_interval": 0.1, "ping_timeout": 0.1}
    async with raw_peer(raw_client, options) as (server_ws, client):
        # The raw client never reads, so it never answers pings.
        with pytest.raises(ConnectionClosedError) as info:
            await asyncio.wait_for(server_ws.recv(), 2)
        assert "no pong within ping_timeout" in info.value.why
        assert "no pong within ping_timeout" in str(info.value)
        assert info.value.sent is not None and info.value.sent.code == 1011


async def test_client_keepalive_closes_when_server_stops_answering() -> None:
    async with connected(client_kwargs={"ping_interval": 0.1, "ping_timeout": 0.1}) as (server_ws, client):
        server_ws.transport.pause_reading()  # the server stops reading: no pong comes back
        with pytest.raises(ConnectionClosedError) as info:
            await asyncio.wait_for(client.recv(), 2)
        assert "no pong within ping_timeout" in str(info.value)
        server_ws.transport.resume_reading()
        await asyncio.wait_for(server_ws.wait_closed(), 1)


async def test_keepalive_doesnt_kill_a_connection_paused_by_max_queue() -> None:
    # The application reads slowly, max_queue pauses reading, so pongs sit unread
    # in the socket: that says nothing about the peer, which is alive.
    options = {"ping_interval": 0.05, "ping_timeout": 0.05, "max_queue": 2, "compression": None}
    async with connected(options) as (server_ws, client):
        for i in range(20):
            await client.send(f"m{i}")
        await asyncio.sleep(0.4)  # many ping intervals with reading paused
        assert not server_ws.transport.is_reading()
        assert [await server_ws.recv(timeout=1) for _ in range(20)] == [f"m{i}" for i in range(20)]
        await asyncio.sleep(0.2)
        assert server_ws.state is State.OPEN
        await client.send("still alive")
        assert await server_ws.recv(timeout=1) == "still alive"


# -- the peer goes away ------------------------------------------------------------------------


async def test_peer_disappears_eof(raw_client: Any) -> None:
    async with raw_peer(raw_client) as (server_ws, client):
        client.writer.close()
        with pytest.raises(ConnectionClosedError) as info:
            await asyncio.wait_for(server_ws.recv(), 1)
        assert info.value.code == 1006
        assert "1006" in str(info.value)
        assert info.value.why
        assert info.value.why in str(info.value)
        assert server_ws.close_code == 1006


async def test_peer_disappears_reset(raw_client: Any) -> None:
    async with raw_peer(raw_client) as (server_ws, client):
        sock = client.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.abort()  # RST, not FIN
        with pytest.raises(ConnectionClosedError) as info:
            await asyncio.wait_for(server_ws.recv(), 1)
        assert "1006" in str(info.value)
        assert "reset" in info.value.why
        assert isinstance(info.value.__cause__, ConnectionResetError)


async def test_server_disappears_client_sees_1006() -> None:
    async with connected() as (server_ws, client):
        server_ws.transport.abort()
        with pytest.raises(ConnectionClosedError) as info:
            await asyncio.wait_for(client.recv(), 1)
        assert info.value.code == 1006
        assert "1006" in str(info.value)
        with pytest.raises(ConnectionClosedError):
            await client.send("nobody there")


# -- limits ------------------------------------------------------------------------------------------


async def test_max_size_closes_with_1009() -> None:
    async with connected({"max_size": 1000}) as (server_ws, client):
        await client.send("x" * 1000)
        assert await server_ws.recv() == "x" * 1000
        await client.send("x" * 1001)
        with pytest.raises(ConnectionClosedError) as info:
            await server_ws.recv()
        assert info.value.sent is not None and info.value.sent.code == 1009
        assert isinstance(info.value.__cause__, PayloadTooBig)
        assert "1_000" in str(info.value.__cause__) or "1000" in str(info.value.__cause__)
        with pytest.raises(ConnectionClosedError) as info:
            await client.recv()
        assert info.value.code == 1009


async def test_max_size_applies_to_decompressed_and_fragmented_messages() -> None:
    async with connected({"max_size": 10_000}) as (server_ws, client):
        assert client.protocol.deflate is not None
        await client.send("z" * 20_000)  # compresses to a few bytes
        with pytest.raises(ConnectionClosedError) as info:
            await server_ws.recv()
        assert isinstance(info.value.__cause__, PayloadTooBig)
    async with connected({"max_size": 10_000}) as (server_ws, client):
        await client.send(["y" * 6000, "y" * 6000])
        with pytest.raises(ConnectionClosedError) as info:
            await server_ws.recv()
        assert isinstance(info.value.__cause__, PayloadTooBig)


async def test_client_max_size() -> None:
    async with connected(client_kwargs={"max_size": 100}) as (server_ws, client):
        await server_ws.send(b"\x00" * 101)
        with pytest.raises(ConnectionClosedError) as info:
            await client.recv()
        assert isinstance(info.value.__cause__, PayloadTooBig)
        with pytest.raises(ConnectionClosedError) as info:
            await server_ws.recv()
        assert info.value.code == 1009


async def test_max_queue_pauses_reading_and_loses_nothing() -> None:
    async with connected({"max_queue": 2, "compression": None}) as (server_ws, client):
        for i in range(100):
            await client.send(f"message {i}")
        await asyncio.sleep(0.05)
        # The server stopped reading from the socket instead of buffering 100 messages.
        assert not server_ws.transport.is_reading()
        received = []
        for _ in range(100):
            received.append(await server_ws.recv(timeout=1))
            await asyncio.sleep(0)
        assert received == [f"message {i}" for i in range(100)]
        assert server_ws.transport.is_reading()


async def test_max_queue_bounds_memory_with_a_large_backlog() -> None:
    async with connected({"max_queue": 4, "compression": None}, {"compression": None}) as (server_ws, client):
        payload = b"p" * 10_000
        sender = asyncio.create_task(_send_many(client, payload, 3000))
        await asyncio.sleep(0.2)
        # 30 MB to send; the server holds a few messages, the rest waits in TCP buffers and the client.
        assert sum(len(item.data) if hasattr(item, "data") else len(item) for item in server_ws._queue) < 1_000_000
        assert not sender.done()
        count = 0
        while count < 3000:
            assert await server_ws.recv(timeout=2) == payload
            count += 1
        await sender


async def _send_many(ws: wsio.ClientConnection, payload: bytes, n: int) -> None:
    for _ in range(n):
        await ws.send(payload)


async def test_max_queue_none_doesnt_pause() -> None:
    async with connected({"max_queue": None}) as (server_ws, client):
        for i in range(100):
            await client.send(str(i))
        await asyncio.sleep(0.05)
        assert server_ws.transport.is_reading()
        assert [await server_ws.recv() for _ in range(100)] == [str(i) for i in range(100)]


async def test_write_limit_makes_send_wait_until_the_peer_reads(raw_client: Any) -> None:
    async with raw_peer(raw_client, {"write_limit": 65536, "compression": None}) as (server_ws, client):
        payload = b"w" * 65536
        sent = 0

        async def send_a_lot() -> None:
            nonlocal sent
            for _ in range(2000):  # 128 MiB: far more than kernel buffers hold
                await server_ws.send(payload)
                sent += 1

        sender = asyncio.create_task(send_a_lot())
        await asyncio.sleep(0.3)
        assert not sender.done(), "send() should wait while the peer doesn't read"
        stuck_at = sent
        assert server_ws.transport.get_write_buffer_size() > 0
        await asyncio.sleep(0.1)
        assert sent == stuck_at  # really waiting, not slowly progressing
        # The peer reads: send() resumes.
        for received in range(2000):
            opcode, data = await asyncio.wait_for(client.read_frame(), 2)
            assert opcode == OP_BINARY and data == payload
            if sent > stuck_at + 10:
                break
        assert sent > stuck_at + 10
        assert received < 2000
        sender.cancel()


async def test_send_waiting_on_write_limit_raises_when_connection_drops(raw_client: Any) -> None:
    async with raw_peer(raw_client, {"write_limit": 1024, "compression": None}) as (server_ws, client):

        async def send_forever() -> None:
            while True:
                await server_ws.send(b"d" * 65536)

        sender = asyncio.create_task(send_forever())
        await asyncio.sleep(0.2)
        assert not sender.done()
        client.abort()
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(sender, 2)


# -- closing -----------------------------------------------------------------------------------------


async def test_close_with_code_and_reason_is_seen_by_peer() -> None:
    async with connected() as (server_ws, client):
        await client.close(4000, "custom reason")
        with pytest.raises(ConnectionClosedError) as info:
            await server_ws.recv()
        assert info.value.code == 4000
        assert info.value.reason == "custom reason"
        assert server_ws.close_code == 4000
        assert server_ws.close_reason == "custom reason"
        assert client.close_code == 4000  # the echo of the code


async def test_close_1001_is_ok() -> None:
    async with connected() as (server_ws, client):
        await server_ws.close(1001, "going away")
        with pytest.raises(ConnectionClosedOK) as info:
            await client.recv()
        assert info.value.code == 1001 and info.value.reason == "going away"


async def test_close_twice_and_concurrently_is_fine() -> None:
    async with connected() as (server_ws, client):
        await asyncio.gather(client.close(), client.close())
        await client.close()
        await client.close(4001, "ignored")
        assert client.close_code == 1000
        assert client.state is State.CLOSED
        await server_ws.wait_closed()
        await server_ws.close()


async def test_wait_closed() -> None:
    async with connected() as (server_ws, client):
        waiter = asyncio.create_task(client.wait_closed())
        await asyncio.sleep(0.02)
        assert not waiter.done()
        await server_ws.close()
        await asyncio.wait_for(waiter, 1)
        assert client.closed
        await client.wait_closed()  # again: returns at once


async def test_close_timeout_when_peer_never_answers(raw_client: Any) -> None:
    async with raw_peer(raw_client, {"close_timeout": 0.2}) as (server_ws, client):
        loop = asyncio.get_running_loop()
        start = loop.time()
        await server_ws.close()  # the raw client never sends its close frame
        assert 0.15 < loop.time() - start < 1.5
        assert server_ws.closed
        assert server_ws.close_code == 1006
        # The peer did get the close frame.
        assert await client.read_frame() == (OP_CLOSE, struct.pack("!H", 1000))


async def test_server_close_waits_for_the_clients_close_frame(raw_client: Any) -> None:
    async with raw_peer(raw_client) as (server_ws, client):
        closing = asyncio.create_task(server_ws.close(1000, "bye"))
        assert await client.read_frame() == (OP_CLOSE, struct.pack("!H", 1000) + b"bye")
        await asyncio.sleep(0.02)
        assert not closing.done()
        client.send_close(1000)
        await asyncio.wait_for(closing, 1)
        assert server_ws.close_code == 1000
        # RFC 6455 7.1.1: the server closes TCP.
        assert await asyncio.wait_for(client.reader.read(), 1) == b""


async def test_close_with_a_reserved_code_is_rejected() -> None:
    async with connected() as (server_ws, client):
        with pytest.raises(ValueError):
            await client.close(1006)  # reserved: never sent on the wire
        assert client.state is State.OPEN
        await client.send("still open")
        assert await server_ws.recv() == "still open"


async def test_protocol_error_from_peer_fails_with_1002(raw_client: Any) -> None:
    async with raw_peer(raw_client) as (server_ws, client):
        client.send_frame(OP_CONT, b"continuation without a start")
        with pytest.raises(ConnectionClosedError) as info:
            await asyncio.wait_for(server_ws.recv(), 1)
        assert info.value.sent is not None and info.value.sent.code == 1002
        assert await client.read_frame() == (OP_CLOSE, client_close_payload(1002, info.value.sent.reason))


def client_close_payload(code: int, reason: str) -> bytes:
    return struct.pack("!H", code) + reason.encode()


async def test_invalid_utf8_fails_with_1007(raw_client: Any) -> None:
    async with raw_peer(raw_client) as (server_ws, client):
        client.send_frame(OP_TEXT, b"\xff\xfe")
        with pytest.raises(ConnectionClosedError) as info:
            await asyncio.wait_for(server_ws.recv(), 1)
        assert info.value.sent is not None and info.value.sent.code == 1007


async def test_state_through_the_lifecycle() -> None:
    async with connected() as (server_ws, client):
        assert client.state is State.OPEN and server_ws.state is State.OPEN
        closing = asyncio.create_task(client.close())
        await asyncio.sleep(0)
        assert client.state in (State.CLOSING, State.CLOSED)
        await closing
        assert client.state is State.CLOSED
        await server_ws.wait_closed()
        assert server_ws.state is State.CLOSED


async def test_many_messages_in_order_both_ways() -> None:
    async with connected() as (server_ws, client):
        n = 2000

        async def send(ws: Any, prefix: str) -> None:
            for i in range(n):
                await ws.send(f"{prefix}{i}")

        async def receive(ws: Any, prefix: str) -> list[str]:
            return [await ws.recv() for _ in range(n)]

        _, _, from_client, from_server = await asyncio.gather(
            send(client, "c"), send(server_ws, "s"), receive(server_ws, "c"), receive(client, "s")
        )
        assert from_client == [f"c{i}" for i in range(n)]
        assert from_server == [f"s{i}" for i in range(n)]


async def test_large_messages_with_and_without_compression() -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    for compression in ("deflate", None):
        async with connected({"compression": compression, "max_size": 2**21}, {"max_size": 2**21}) as (
            server_ws,
            client,
        ):
            await client.send(big)
            assert await server_ws.recv() == big
            await server_ws.send(big)
            assert await client.recv() == big


async def test_latency_uses_a_monotonic_clock() -> None:
    # Latency is measured with a monotonic clock, not wall time.
    async with connected() as (server_ws, client):
        before = time.monotonic()
        await (await client.ping())
        assert client.latency <= time.monotonic() - before


# -- write coalescing ----------------------------------------------------------------


@contextlib.contextmanager
def scheduled_callbacks(loop: asyncio.AbstractEventLoop) -> Iterator[list[Any]]:
    """Record every callback given to ``loop.call_soon()`` inside the block."""
    scheduled: list[Any] = []
    call_soon = loop.call_soon

    def counting_call_soon(callback: Any, *args: Any, **kwargs: Any) -> Any:
        scheduled.append(callback)
        return call_soon(callback, *args, **kwargs)

    loop.call_soon = counting_call_soon  # type: ignore[method-assign]
    try:
        yield scheduled
    finally:
        loop.call_soon = call_soon  # type: ignore[method-assign]


def count_writes(connection: wsio.asyncio.connection.Connection) -> list[int]:
    """Record the size of every transport write of ``connection`` from now on."""
    writes: list[int] = []
    write = connection.transport.write

    def counting_write(data: Any) -> None:
        writes.append(len(data))
        write(data)

    connection.transport.write = counting_write  # type: ignore[method-assign]
    return writes


async def test_a_burst_of_sends_in_one_turn_is_two_writes() -> None:
    async with connected(client_kwargs={"compression": None}, server_kwargs={"compression": None}) as (server, client):
        writes = count_writes(server)
        for i in range(10):
            await server.send(f"m{i}")
        # The first goes out at once; the nine after it together, when the turn ends.
        assert writes == [4]
        assert [await client.recv() for _ in range(10)] == [f"m{i}" for i in range(10)]
        assert writes == [4, 9 * 4]


async def test_bursts_on_many_connections_in_one_turn_end_with_one_callback() -> None:
    from wsio.asyncio import connection as module

    async with connected(client_kwargs={"compression": None}, server_kwargs={"compression": None}) as (server, client):
        async with connected(client_kwargs={"compression": None}, server_kwargs={"compression": None}) as (
            server2,
            client2,
        ):
            writes, writes2 = count_writes(server), count_writes(server2)
            with scheduled_callbacks(asyncio.get_running_loop()) as scheduled:
                for i in range(3):
                    await server.send(f"a{i}")
                    await server2.send(f"b{i}")
            assert scheduled == [module._end_turns]
            assert [await client.recv() for _ in range(3)] == ["a0", "a1", "a2"]
            assert [await client2.recv() for _ in range(3)] == ["b0", "b1", "b2"]
            assert writes == writes2 == [4, 2 * 4]


async def test_answering_each_message_as_it_comes_schedules_no_end_of_turn_callback() -> None:
    from wsio.asyncio import connection as module

    async with connected(client_kwargs={"compression": None}, server_kwargs={"compression": None}) as (server, client):
        writes = count_writes(server)
        with scheduled_callbacks(asyncio.get_running_loop()) as scheduled:
            for i in range(5):  # a ping-pong: each answer is the first frame after a message
                await client.send(f"p{i}")
                await server.send(await server.recv())
                assert await client.recv() == f"p{i}"
        assert module._end_turns not in scheduled
        assert writes == [4] * 5
        # Sends with no message between them are one burst: held, written together
        # when the turn ends (the last answer above started it: nothing is held).
        for i in range(3):
            await server.send(f"b{i}")
        assert writes == [4] * 5
        assert [await client.recv() for _ in range(3)] == ["b0", "b1", "b2"]
        assert writes[5:] == [3 * 4]


async def test_held_messages_survive_a_loop_that_closed_before_its_turn_ended() -> None:
    from wsio.asyncio import connection as module

    # What a loop stopped with the end-of-turn callback still pending leaves behind.
    module._turn_ends.connections = []
    module._turn_ends.loop = object()  # type: ignore[assignment]
    async with connected(client_kwargs={"compression": None}, server_kwargs={"compression": None}) as (server, client):
        for i in range(3):
            await server.send(f"m{i}")
        assert [await client.recv() for _ in range(3)] == ["m0", "m1", "m2"]


async def test_messages_kept_across_reads_into_the_shared_read_buffer() -> None:
    """Connections read into one buffer per thread: what the application gets must be its own."""
    async with connected(client_kwargs={"compression": None}, server_kwargs={"compression": None}) as (server, client):
        async with connected(client_kwargs={"compression": None}, server_kwargs={"compression": None}) as (
            server2,
            client2,
        ):
            assert isinstance(server, asyncio.BufferedProtocol)
            sent = [bytes([i]) * (i * 997 % 70_000) for i in range(40)]
            for i, message in enumerate(sent):
                # Every message in a read of its own, on two connections in turn.
                await (client if i % 2 else client2).send(message)
                await asyncio.sleep(0)
            got = [await server.recv() for _ in range(20)], [await server2.recv() for _ in range(20)]
            assert got == (sent[1::2], sent[0::2])


async def test_held_messages_go_out_before_a_ping_a_close_and_a_large_message() -> None:
    async with connected(client_kwargs={"compression": None}, server_kwargs={"compression": None}) as (server, client):
        for i in range(3):
            await server.send(f"a{i}")
        await server.ping()
        await server.send(b"L" * 100_000)
        await server.send("after")
        await server.close()
        received = [message async for message in client]
    assert received == ["a0", "a1", "a2", b"L" * 100_000, "after"]
    assert client.close_code == 1000


async def test_held_messages_count_against_write_limit() -> None:
    """A loop of sends that never suspends can't hold more than write_limit."""
    async with connected(server_kwargs={"compression": None, "write_limit": 4096}) as (server, client):
        writes = count_writes(server)
        for _ in range(100):
            await server.send(b"x" * 1000)
        assert server._held_size < 4096 + 1000
        assert len(writes) >= 100 * 1000 // (4096 + 1000)
        received = [await client.recv() for _ in range(100)]
    assert received == [b"x" * 1000] * 100


# -- a protocol error behind messages ------------------------------------------------


async def test_data_after_a_protocol_error_does_not_fail_before_the_answer() -> None:
    """A message, a protocol error, then more data in a later read: the application
    still answers the message, then the connection fails with 1002."""
    from wsio.protocol.machine import ServerProtocol

    received: list[object] = []
    sent_all = asyncio.Event()

    async def raw_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        protocol = ServerProtocol()
        (request,) = protocol.receive_data(await reader.readuntil(b"\r\n\r\n"))
        protocol.send_response(protocol.accept(request))
        writer.write(protocol.data_to_send())
        writer.write(protocol.send_message("question") + b"\x83\x00")  # reserved opcode 3
        await asyncio.sleep(0.1)
        writer.write(b"\x89\x00")  # a ping, in a read of its own
        sent_all.set()
        protocol.defer_failures = True
        while not any(type(event).__name__ == "Close" for event in received):
            data = await reader.read(4096)
            if not data:
                break
            received.extend(protocol.receive_data(data))
        writer.close()

    server = await asyncio.start_server(raw_server, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as client:
            await sent_all.wait()
            await asyncio.sleep(0.1)  # the ping has been read by now
            assert await client.recv() == "question"
            await client.send("answer")
            with pytest.raises(ConnectionClosedError):
                await client.recv()
            await client.wait_closed()
    assert received[0] == "answer"
    assert type(received[1]).__name__ == "Close" and received[1].code == 1002


# -- the read path -------------------------------------------------------------------


async def test_open_connections_read_inline_unless_data_received_is_overridden() -> None:
    from wsio.asyncio.connection import _reads_inline

    class Watching(wsio.ServerConnection):
        __slots__ = ()
        seen: list[bytes] = []

        def data_received(self, data: Any) -> None:
            type(self).seen.append(bytes(data))
            super().data_received(data)

    assert _reads_inline(wsio.ServerConnection) and _reads_inline(wsio.ClientConnection)
    assert _reads_inline(wsio.ListenerServerConnection) and _reads_inline(wsio.ListenerClientConnection)
    assert not _reads_inline(Watching)

    async def echo(ws: wsio.ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, create_connection=Watching, compression=None) as server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/", compression=None) as client:
            got = []
            for message in ("a", b"b"):
                await client.send(message)
                got.append(await client.recv())
    assert got == ["a", b"b"]
    frames = [data for data in Watching.seen[1:] if data]
    assert [len(data) for data in frames[:2]] == [2 + 4 + 1] * 2  # the two masked one-byte messages
