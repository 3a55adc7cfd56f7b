"""What send() does with the caller's buffer: the peer gets what it held when
send() was called, the caller gets it back at once, and ``bytes`` aren't copied.

The transport may keep what it is given instead of copying it (asyncio's
socket transport keeps a view of what the socket didn't take, from Python
3.12 on). These tests make it keep a lot: the client stops reading and the
server's ``write_limit`` is so high that ``send()`` never waits, so the large
message waits in the transport, not in wsio.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import Any, AsyncIterator, Iterator

import pytest

import wsio
import wsio.asyncio.connection as connection_module
from wsio.protocol.frames import LARGE_PAYLOAD

SIZE = 8 << 20  # more than loopback's socket buffers take from a peer that doesn't read
NO_WAITING = 1 << 30  # write_limit: send() never waits, the transport holds everything


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def not_reading() -> AsyncIterator[tuple[wsio.ServerConnection, wsio.ClientConnection]]:
    """A server connection that never waits to send, and its client, which doesn't read until resumed."""
    accepted: asyncio.Future[wsio.ServerConnection] = asyncio.get_running_loop().create_future()

    async def handler(ws: wsio.ServerConnection) -> None:
        accepted.set_result(ws)
        await ws.wait_closed()

    async with wsio.serve(handler, "127.0.0.1", 0, compression=None, write_limit=NO_WAITING) as server:
        async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}/", compression=None, max_size=None) as client:
            ws = await accepted
            client.transport.pause_reading()
            yield ws, client


def recording_writes(ws: wsio.ServerConnection, whole_writes: bool = False) -> list[Any]:
    """What ws hands its transport from now on: every frame, large ones included,
    unless ``whole_writes`` leaves those to the socket directly (see
    test_a_large_frame_goes_to_the_socket_in_one_call_and_the_rest_to_the_transport)."""
    if not whole_writes:
        ws._large_writes = connection_module._SLICES
    writes: list[Any] = []
    write = ws.transport.write

    def recording_write(data: Any) -> None:
        writes.append(data)
        write(data)

    ws.transport.write = recording_write  # type: ignore[method-assign]
    return writes


@pytest.mark.parametrize("loop", ["asyncio", pytest.param("uvloop", marks=pytest.mark.uvloop)])
@pytest.mark.parametrize("kind", ["bytearray", "memoryview of a bytearray"])
async def test_changing_the_buffer_after_send_changes_nothing_on_the_wire(kind: str, loop: str) -> None:
    async with not_reading() as (ws, client):
        buffer = bytearray(SIZE)
        expected = []
        for i in range(3):
            buffer[:] = bytes([i + 1]) * SIZE  # in place: same object, same size
            expected.append(bytes(buffer))
            await ws.send(buffer if kind == "bytearray" else memoryview(buffer))
        assert ws.transport.get_write_buffer_size() > SIZE  # the transport holds them, unsent
        buffer[:SIZE] = b"\xff" * SIZE  # changed after send(): must not reach the peer
        buffer[:] = b"resized"  # and the caller can resize it (no BufferError: nothing holds it)
        buffer.extend(bytes(LARGE_PAYLOAD))
        client.transport.resume_reading()
        for message in expected:
            assert await client.recv() == message


async def test_a_listener_gets_its_buffer_back_when_send_returns() -> None:
    received: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    class Sender(wsio.Listener):
        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            buffer = bytearray(b"a" * SIZE)
            connection.send(buffer)
            assert connection.buffered_amount > SIZE // 2  # the peer doesn't read: it waits
            buffer[:] = b"changed"  # resizing must work, and not reach the peer
            received.set_result(None)

    async with wsio.serve_listener(Sender, "127.0.0.1", 0, compression=None, write_limit=NO_WAITING) as server:
        async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}/", compression=None, max_size=None) as client:
            client.transport.pause_reading()
            await client.send("go")
            await received
            client.transport.resume_reading()
            assert await client.recv() == b"a" * SIZE


@pytest.mark.parametrize("kind", ["bytes", "memoryview of bytes"])
async def test_a_large_bytes_payload_goes_to_the_transport_uncopied(kind: str) -> None:
    payload = bytes(range(256)) * (SIZE // 256)
    async with not_reading() as (ws, client):
        writes = recording_writes(ws)
        await ws.send(payload if kind == "bytes" else memoryview(payload))
        header, *pieces = writes
        assert len(header) == 10
        # Views of the caller's own immutable object: the kernel is the only copier.
        assert pieces and all(type(piece) is memoryview and piece.obj is payload for piece in pieces)
        assert sum(map(len, pieces)) == SIZE
        client.transport.resume_reading()
        assert await client.recv() == payload


async def test_a_large_bytearray_goes_to_the_transport_as_a_copy_taken_once() -> None:
    buffer = bytearray(b"x" * SIZE)
    async with not_reading() as (ws, client):
        writes = recording_writes(ws)
        await ws.send(buffer)
        header, *pieces = writes
        # Slices of one snapshot, never of the caller's bytearray.
        assert len({id(piece.obj) for piece in pieces}) == 1
        assert type(pieces[0].obj) is bytes
        client.transport.resume_reading()
        assert await client.recv() == bytes(buffer)


@contextlib.asynccontextmanager
async def server_not_reading(write_limit: int, callback_api: bool = False) -> AsyncIterator[tuple[wsio.ServerConnection, Any]]:
    """A client connection with ``write_limit`` (the callback API's if ``callback_api``), and its server's
    connection, which doesn't read until resumed."""
    accepted: asyncio.Future[wsio.ServerConnection] = asyncio.get_running_loop().create_future()

    async def handler(ws: wsio.ServerConnection) -> None:
        ws.transport.pause_reading()
        accepted.set_result(ws)
        await ws.wait_closed()

    async with wsio.serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
        url = f"ws://127.0.0.1:{port_of(server)}/"
        if callback_api:
            connecting: Any = wsio.connect_listener(wsio.Listener, url, compression=None, write_limit=write_limit)
        else:
            connecting = wsio.connect(url, compression=None, write_limit=write_limit)
        async with connecting as client:
            yield await accepted, client


@pytest.mark.parametrize("kind", ["bytes", "str"])
async def test_a_client_masks_a_large_payload_a_slice_at_a_time(kind: str) -> None:
    # Masking it whole would make an 8 MiB copy; the writes are slices, each masked as it goes.
    payload: Any = bytes(range(256)) * (SIZE // 256) if kind == "bytes" else "é" * (SIZE // 2)
    async with server_not_reading(NO_WAITING) as (ws, client):
        writes = recording_writes(client)  # type: ignore[arg-type]
        await client.send(payload)
        header, *pieces = writes
        assert len(header) == 14 and header[1] & 0x80  # masked, with its key
        assert len(pieces) > 1 and all(type(piece) is bytes and len(piece) <= 262144 for piece in pieces)
        assert sum(map(len, pieces)) == SIZE
        ws.transport.resume_reading()
        assert await ws.recv() == payload


async def test_a_small_message_sent_behind_a_large_masked_one_waits_its_turn() -> None:
    payload = bytes(range(256)) * (SIZE // 256)
    async with server_not_reading(LARGE_PAYLOAD) as (ws, client):
        large = asyncio.create_task(client.send(payload))
        await asyncio.sleep(0.05)
        small = asyncio.create_task(client.send("after"))
        await asyncio.sleep(0.05)
        assert not large.done() and client.buffered_amount > SIZE // 2
        ws.transport.resume_reading()
        assert await ws.recv() == payload
        assert await ws.recv() == "after"
        await asyncio.gather(large, small)


async def test_a_callback_client_s_small_message_behind_a_large_one_waits_its_turn_too() -> None:
    # Sent outside any read (not held): queued behind the large payload, not written before it.
    payload = bytes(range(256)) * (SIZE // 256)
    async with server_not_reading(LARGE_PAYLOAD, callback_api=True) as (ws, client):
        client.send(payload)
        client.send("after")
        assert client.buffered_amount > SIZE // 2  # the large payload still waits
        ws.transport.resume_reading()
        assert await ws.recv() == payload
        assert await ws.recv() == "after"


async def test_a_large_masked_payload_still_waiting_goes_out_whole_before_the_close_frame() -> None:
    payload = bytes(range(256)) * (SIZE // 256)
    async with server_not_reading(LARGE_PAYLOAD) as (ws, client):
        sending = asyncio.create_task(client.send(payload))
        await asyncio.sleep(0.05)
        assert not sending.done() and client.buffered_amount > SIZE // 2  # most of it not masked yet
        client.fail(1011, "giving up")  # the rest goes to the transport at once, then the close frame
        ws.transport.resume_reading()
        assert await ws.recv() == payload
        with pytest.raises(wsio.ConnectionClosedError) as raised:
            await ws.recv()
        assert raised.value.rcvd is not None and raised.value.rcvd.code == 1011
        with pytest.raises(wsio.ConnectionClosed):
            await sending


@contextlib.contextmanager
def recording_direct_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[tuple[Any, ...], int]]]:
    """The buffers of every direct write to a socket, each with what the socket took."""
    calls: list[tuple[tuple[Any, ...], int]] = []
    writev = os.writev

    def recording_writev(fd: int, buffers: Any) -> int:
        sent = writev(fd, buffers)
        calls.append((tuple(buffers), sent))
        return sent

    monkeypatch.setattr(connection_module.os, "writev", recording_writev)
    yield calls


async def test_a_large_frame_goes_to_the_socket_in_one_call_and_the_rest_to_the_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One system call for the header and as much of the payload as the socket
    # takes (loopback takes a few MiB from a peer that doesn't read); the rest
    # through the transport as views of the caller's bytes, nothing copied.
    payload = bytes(range(256)) * (SIZE // 256)
    async with not_reading() as (ws, client):
        writes = recording_writes(ws, whole_writes=True)
        with recording_direct_writes(monkeypatch) as direct:
            await ws.send(payload)
            await ws.send("after")
        [((header, written), sent)] = direct
        assert len(header) == 10 and written is payload
        assert 10 < sent < SIZE  # the socket took part of it, not all: the rest is the transport's
        assert all(type(piece) is memoryview and piece.obj is payload for piece in writes[:-1])
        assert sum(map(len, writes[:-1])) == SIZE + 10 - sent
        client.transport.resume_reading()
        assert await client.recv() == payload
        assert await client.recv() == "after"


async def test_a_client_writes_its_header_and_first_masked_slice_in_one_call_and_the_rest_as_it_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payload = bytes(range(256)) * (SIZE // 256)
    async with server_not_reading(NO_WAITING) as (ws, client):
        with recording_direct_writes(monkeypatch) as direct:
            writes = recording_writes(client, whole_writes=True)  # type: ignore[arg-type]
            await client.send(payload)
        [((header, masked), sent)] = direct
        assert len(header) == 14 and header[1] & 0x80 and len(masked) == 262144
        assert all(type(piece) is not bytes or len(piece) <= 262144 for piece in writes)
        assert sum(map(len, writes)) == SIZE + 14 - sent
        ws.transport.resume_reading()
        assert await ws.recv() == payload


@pytest.mark.parametrize("error", [BlockingIOError, BrokenPipeError])
async def test_a_direct_write_that_fails_leaves_the_frame_to_the_transport(
    monkeypatch: pytest.MonkeyPatch, error: type[OSError]
) -> None:
    # Full: the transport waits for room as usual. Broken: the transport's own
    # write meets the error (here it doesn't, the socket is fine) and reports it.
    tried: list[int] = []

    def failing_writev(fd: int, buffers: Any) -> int:
        tried.append(fd)
        raise error()

    payload = bytes(range(256)) * (LARGE_PAYLOAD // 256)
    async with not_reading() as (ws, client):
        monkeypatch.setattr(connection_module.os, "writev", failing_writev)
        await ws.send(payload)
        await ws.send(bytearray(payload))
        assert len(tried) == 2  # the direct write was tried, for both
        client.transport.resume_reading()
        assert await client.recv() == payload
        assert await client.recv() == payload


class RecordingWritelines:
    """A transport as it is, but for the buffers of every writelines() call, recorded
    (uvloop's transports don't let a test replace a method)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.calls: list[tuple[Any, ...]] = []

    def writelines(self, buffers: Any) -> None:
        self.calls.append(tuple(buffers))
        self.transport.writelines(buffers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def recording_writelines(ws: wsio.ServerConnection) -> list[tuple[Any, ...]]:
    """The buffers of every writelines() call of ws's transport from now on."""
    recording = RecordingWritelines(ws.transport)
    ws.transport = recording  # type: ignore[assignment]
    return recording.calls


@pytest.mark.uvloop
@pytest.mark.parametrize("kind", ["bytes", "bytearray"])
async def test_on_uvloop_a_large_frame_is_one_writelines_call_that_keeps_bytes_uncopied(kind: str) -> None:
    payload = bytes(range(256)) * (SIZE // 256)
    async with not_reading() as (ws, client):
        calls = recording_writelines(ws)
        message = payload if kind == "bytes" else bytearray(payload)
        references = sys.getrefcount(payload)
        await ws.send(message)
        if kind == "bytearray":
            message[:] = b"changed"  # after send(): must not reach the peer
        await ws.send("after")
        [(header, written)] = calls
        assert len(header) == 10
        assert written is payload if kind == "bytes" else type(written) is bytes
        if kind == "bytes":
            del written
            calls.clear()
            # The peer doesn't read: uvloop holds what the socket didn't take as the object itself, not a copy.
            assert sys.getrefcount(payload) > references
        client.transport.resume_reading()
        assert await client.recv() == payload
        assert await client.recv() == "after"


@pytest.mark.uvloop
async def test_on_uvloop_a_client_writes_its_header_and_first_masked_slice_in_one_writelines_call() -> None:
    payload = bytes(range(256)) * (SIZE // 256)
    async with server_not_reading(NO_WAITING) as (ws, client):
        calls = recording_writelines(client)  # type: ignore[arg-type]
        await client.send(payload)
        [(header, masked)] = calls
        assert len(header) == 14 and header[1] & 0x80 and len(masked) == 262144
        ws.transport.resume_reading()
        assert await ws.recv() == payload
