"""The transport servers make for the sockets they accept (wsio/asyncio/transport.py).

With the C accelerator it is :class:`SocketTransport`, asyncio's own transport
reading and writing through a C ``Pump``; without it (``WSIO_NO_SPEEDUPS=1``,
the py jobs) it is asyncio's class itself. Every test here runs on whichever
``socket_transport_class()`` gives, so both behave as asyncio's transport does:
reads in order, end of file, errors and their messages, writes that must wait,
flow control, pausing. And each one that uses a transport runs twice: built by
the class's constructor, and by ``accepted_transport()``, which servers use
for the sockets they accept.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import wsio
from tests.helpers import eventually
from wsio.asyncio import transport as transport_module
from wsio.asyncio.transport import Pump, accepted_transport, socket_transport_class
from wsio.protocol.frames import SPEEDUPS

TransportClass = socket_transport_class()


class Reader(asyncio.BufferedProtocol):
    """Keeps what it reads; records the calls a transport makes."""

    def __init__(self, size: int = 65536) -> None:
        self.buffer = bytearray(size)
        self.received = bytearray()
        self.calls: list[str] = []
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.fail_in: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.calls.append("connection_made")

    def get_buffer(self, sizehint: int) -> Any:
        if self.fail_in == "get_buffer":
            raise ValueError("no buffer today")
        if self.fail_in == "empty":
            return bytearray()
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self.fail_in == "buffer_updated":
            raise ValueError("can't take it")
        self.received += self.buffer[:nbytes]

    def eof_received(self) -> bool | None:
        self.calls.append("eof_received")
        return None

    def pause_writing(self) -> None:
        self.calls.append("pause_writing")

    def resume_writing(self) -> None:
        self.calls.append("resume_writing")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.calls.append("connection_lost")
        self.lost.set_result(exc)


class PlainReader(asyncio.Protocol):
    """A protocol with data_received(): the transport's other read path."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


async def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of a loopback TCP connection, non-blocking."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        peer = socket.create_connection(listener.getsockname())
        ours, _ = listener.accept()
    ours.setblocking(False)
    peer.setblocking(False)
    return ours, peer


#: How transported() builds its transport: set for each test by the construction fixture.
building = "constructor"


@pytest.fixture(params=["constructor", "accepted_transport"])
def construction(request: pytest.FixtureRequest) -> Any:
    """Runs the test once with each way of building the transport ``transported()`` gives."""
    global building
    building = request.param
    yield
    building = "constructor"


@asynccontextmanager
async def transported(protocol: asyncio.BaseProtocol) -> AsyncIterator[tuple[Any, socket.socket]]:
    """``protocol`` on the server's transport class over one end of a TCP pair; the other end to play with.

    Built as the ``construction`` fixture says: by the class's constructor
    (``connection_made()`` once the waiter is done) or by
    ``accepted_transport()`` (called before it returns).
    """
    loop = asyncio.get_running_loop()
    ours, peer = await tcp_pair()
    if building == "constructor":
        waiter = loop.create_future()
        transport = TransportClass(loop, ours, protocol, waiter, {"peername": peer.getsockname()}, None)
        await waiter
    else:
        transport = accepted_transport(loop, ours, protocol, peer.getsockname(), None)
    try:
        yield transport, peer
    finally:
        if not transport.is_closing():  # (asyncio's abort() fails once a close() has flushed and lost it)
            transport.abort()
        peer.close()
        await asyncio.sleep(0)


async def release(transport: Any, peer: socket.socket) -> None:
    """End a test's transport and its peer, and let the loss run."""
    transport.abort()
    peer.close()
    await asyncio.sleep(0)


async def receive_exactly(peer: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = bytearray()
    while len(data) < size:
        chunk = await loop.sock_recv(peer, size - len(data))
        assert chunk, "the transport's end closed early"
        data += chunk
    return bytes(data)


@pytest.mark.parametrize("api", ["asyncio", "callback"])
async def test_accepted_connections_run_on_it_and_exchange_messages(api: str) -> None:
    transports: list[Any] = []

    async def echo(ws: wsio.ServerConnection) -> None:
        transports.append(ws.transport)
        async for message in ws:
            await ws.send(message)

    class Echo(wsio.Listener):
        def on_open(self, connection: wsio.ListenerConnection) -> None:
            transports.append(connection.transport)

        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            connection.send(message)

    options: dict[str, Any] = {"compression": None, "max_size": None}
    serving = (
        wsio.serve(echo, "127.0.0.1", 0, **options) if api == "asyncio" else wsio.serve_listener(Echo, "127.0.0.1", 0, **options)
    )
    async with serving as server:
        port = server.sockets[0].getsockname()[1]
        async with wsio.connect(f"ws://127.0.0.1:{port}/", **options) as ws:
            for message in ["hello", b"\x00" * 5, "x" * 70000, b"y" * 3_000_000]:
                await ws.send(message)
                assert await ws.recv() == message
    [transport] = transports
    assert type(transport) is TransportClass


async def test_the_loop_reads_and_the_protocol_writes_through_the_pump_exactly_when_it_is_built(construction: None) -> None:
    assert (Pump is not None) is SPEEDUPS  # built and used together, both off with WSIO_NO_SPEEDUPS=1
    protocol = Reader()
    async with transported(protocol) as (transport, peer):
        loop: Any = asyncio.get_running_loop()
        fd = transport.get_extra_info("socket").fileno()

        def pumped(method: Any) -> bool:
            return type(method) is Pump

        reader = loop._selector.get_key(fd).data[0]
        assert reader._callback == transport._read_ready
        assert pumped(reader._callback) is SPEEDUPS and pumped(transport.write) is SPEEDUPS
        transport.pause_reading()
        transport.resume_reading()  # the reader armed again is the same
        assert pumped(loop._selector.get_key(fd).data[0]._callback) is SPEEDUPS
        if SPEEDUPS:
            with pytest.raises(TypeError, match="no argument \\(read\\) or one \\(write\\), not 2"):
                transport.write(b"a", b"b")


async def test_reads_arrive_whole_and_in_order_then_end_of_file(construction: None) -> None:
    protocol = Reader(size=4096)  # many reads for what the peer sends
    async with transported(protocol) as (transport, peer):
        data = hashlib.sha256(b"seed").digest() * 20000  # 640,000 bytes
        await asyncio.get_running_loop().sock_sendall(peer, data)
        peer.shutdown(socket.SHUT_WR)
        assert await asyncio.wait_for(protocol.lost, 5) is None
        assert protocol.received == data
        assert protocol.calls == ["connection_made", "eof_received", "connection_lost"]


async def test_a_plain_protocol_reads_through_data_received(construction: None) -> None:
    protocol = PlainReader()
    async with transported(protocol) as (transport, peer):
        await asyncio.get_running_loop().sock_sendall(peer, b"abc" * 1000)
        await eventually(lambda: len(protocol.received) == 3000)
        assert protocol.received == b"abc" * 1000
        peer.close()
        assert await asyncio.wait_for(protocol.lost, 5) is None


@pytest.mark.parametrize(
    ("fail_in", "message", "error"),
    [
        ("get_buffer", "Fatal error: protocol.get_buffer() call failed.", "no buffer today"),
        ("empty", "Fatal error: protocol.get_buffer() call failed.", "get_buffer() returned an empty buffer"),
        ("buffer_updated", "Fatal error: protocol.buffer_updated() call failed.", "can't take it"),
    ],
)
async def test_a_protocol_that_fails_a_read_closes_the_transport_with_asyncios_message(
    fail_in: str, message: str, error: str, construction: None
) -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda loop, context: reported.append(context))
    try:
        protocol = Reader()
        protocol.fail_in = fail_in
        async with transported(protocol) as (transport, peer):
            await loop.sock_sendall(peer, b"data")
            exc = await asyncio.wait_for(protocol.lost, 5)
            assert str(exc) == error
            assert [context["message"] for context in reported] == [message]
            assert reported[0]["exception"] is exc and reported[0]["transport"] is transport
            assert transport.is_closing()
    finally:
        loop.set_exception_handler(None)


async def test_a_reset_connection_is_lost_with_the_error(construction: None) -> None:
    protocol = Reader()
    async with transported(protocol) as (transport, peer):
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()  # a reset, not a FIN
        exc = await asyncio.wait_for(protocol.lost, 5)
        assert isinstance(exc, ConnectionResetError)
        assert "eof_received" not in protocol.calls


async def test_a_write_the_socket_cant_take_waits_pauses_the_protocol_and_goes_out_in_order(construction: None) -> None:
    protocol = Reader()
    async with transported(protocol) as (transport, peer):
        transport.set_write_buffer_limits(high=65536)
        data = hashlib.sha256(b"big").digest() * 262144  # 8 MiB: more than loopback buffers hold
        transport.write(data[:100])  # goes at once
        transport.write(data[100:])  # part goes, the rest waits in the transport
        assert transport.get_write_buffer_size() > 0
        assert protocol.calls == ["connection_made", "pause_writing"]
        transport.write(b"tail")  # behind what waits
        assert await receive_exactly(peer, len(data) + 4) == data + b"tail"
        await eventually(lambda: transport.get_write_buffer_size() == 0)
        assert protocol.calls == ["connection_made", "pause_writing", "resume_writing"]


async def test_writes_asyncio_refuses_are_refused_the_same_way(caplog: pytest.LogCaptureFixture, construction: None) -> None:
    protocol = Reader()
    async with transported(protocol) as (transport, peer):
        with pytest.raises(TypeError, match="data argument must be a bytes-like object, not 'str'"):
            transport.write("text")
        transport.write(b"")  # nothing to do
        transport.write(bytearray(b"one "))
        transport.write(memoryview(b"two three")[:4])
        assert await receive_exactly(peer, 8) == b"one two "
        transport.write_eof()
        with pytest.raises(RuntimeError, match="Cannot call write\\(\\) after write_eof\\(\\)"):
            transport.write(b"more")
        assert await asyncio.get_running_loop().sock_recv(peer, 10) == b""  # the FIN
    # Closed: writes are dropped, and asyncio's warning comes after a few.
    protocol = Reader()
    async with transported(protocol) as (transport, peer):
        transport.abort()
        await protocol.lost
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(6):
                transport.write(b"lost")
        assert "socket.send() raised exception." in caplog.text


async def test_a_write_to_a_reset_connection_closes_the_transport_with_the_error(construction: None) -> None:
    protocol = Reader()
    async with transported(protocol) as (transport, peer):
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.pause_reading()  # so that the write, not a read, meets the reset
        peer.close()
        await asyncio.sleep(0.05)
        transport.write(b"into the void")
        exc = await asyncio.wait_for(protocol.lost, 5)
        assert isinstance(exc, (ConnectionResetError, BrokenPipeError))


async def test_a_paused_transport_reads_nothing_until_resumed(construction: None) -> None:
    loop = asyncio.get_running_loop()
    protocol = Reader()
    async with transported(protocol) as (transport, peer):
        await loop.sock_sendall(peer, b"first")
        await eventually(lambda: protocol.received == b"first")
        transport.pause_reading()
        assert not transport.is_reading()
        await loop.sock_sendall(peer, b"second")
        await asyncio.sleep(0.05)
        assert protocol.received == b"first"
        transport.resume_reading()
        await eventually(lambda: protocol.received == b"firstsecond")
        await loop.sock_sendall(peer, b"third")  # the reader armed again reads on
        await eventually(lambda: protocol.received == b"firstsecondthird")


# -- accepted_transport(): what servers build for each accepted socket ---------------


class Server:
    """Stands in for asyncio's Server where a transport counts itself in and out (_attach, _detach)."""

    def __init__(self) -> None:
        self.attached = 0

    def _attach(self, *transport: Any) -> None:
        self.attached += 1

    def _detach(self, *transport: Any) -> None:
        self.attached -= 1


def state(transport: Any) -> dict[str, Any]:
    """A transport's attributes as comparable values: bound methods by name, buffers and extras by type and keys."""
    names = set(vars(transport)) | {n for cls in type(transport).__mro__ for n in getattr(cls, "__slots__", ())}
    described: dict[str, Any] = {}
    for name in names:
        value = getattr(transport, name)
        if getattr(value, "__self__", None) is transport:
            described[name] = ("bound", value.__name__)
        elif name in ("_sock", "_protocol", "_loop", "_server"):
            described[name] = type(value)
        elif name == "_sock_fd":
            described[name] = value >= 0
        elif name == "_buffer":
            described[name] = (type(value), len(value))
        elif name == "_extra":
            described[name] = {key: type(item) for key, item in value.items()}
        elif Pump is not None and isinstance(value, Pump):
            described[name] = "pump"
        else:
            described[name] = value
    return described


async def test_accepted_transport_builds_what_the_constructor_builds_connected_and_reading() -> None:
    # On every Python the CI runs (3.10-3.13) it copies the constructor rather than call it.
    assert transport_module._lean_construction() is not None
    loop: Any = asyncio.get_running_loop()
    built = []
    for how in ("constructor", "accepted_transport"):
        ours, peer = await tcp_pair()
        protocol, server = Reader(), Server()
        if how == "constructor":
            waiter = loop.create_future()
            transport = TransportClass(loop, ours, protocol, waiter, {"peername": peer.getsockname()}, server)
            assert protocol.calls == []  # asyncio calls connection_made() in the next iteration
            await waiter
        else:
            transport = accepted_transport(loop, ours, protocol, peer.getsockname(), server)
            assert protocol.calls == ["connection_made"]  # already
        assert protocol.transport is transport
        assert server.attached == 1 and loop._transports[ours.fileno()] is transport
        assert loop._selector.get_key(ours.fileno()).data[0]._callback == transport._read_ready  # reading
        assert transport.get_extra_info("peername") == peer.getsockname()
        assert transport.get_extra_info("sockname") == ours.getsockname()
        assert transport.get_extra_info("socket").fileno() == ours.fileno()
        built.append(state(transport))
        await loop.sock_sendall(peer, b"ping")
        await eventually(lambda: protocol.received == b"ping")
        transport.write(b"pong")
        assert await receive_exactly(peer, 4) == b"pong"
        transport.close()
        await asyncio.wait_for(protocol.lost, 5)
        assert server.attached == 0
        peer.close()
    assert built[1] == built[0]


async def test_accepted_connections_share_their_local_address_and_their_peers_host() -> None:
    # Memory per idle connection: equal addresses kept once, not once per connection.
    loop: Any = asyncio.get_running_loop()
    transports, peers = [], []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(2)
        local = listener.getsockname()
        for _ in range(2):
            peer = socket.create_connection(listener.getsockname())
            ours, address = listener.accept()
            ours.setblocking(False)
            peers.append(peer)
            transports.append(accepted_transport(loop, ours, Reader(), address, Server()))
    try:
        first, second = (t.get_extra_info("sockname") for t in transports)
        assert first == second == local and first is second
        (host1, port1), (host2, port2) = (t.get_extra_info("peername") for t in transports)
        assert (host1, port1) == peers[0].getsockname() and (host2, port2) == peers[1].getsockname()
        assert host1 is host2 and port1 != port2
    finally:
        for transport in transports:
            transport.close()
        for peer in peers:
            peer.close()


@pytest.mark.parametrize("then", ["pause_reading", "close"])
async def test_connection_made_that_pauses_or_closes_leaves_the_socket_unwatched(then: str) -> None:
    loop: Any = asyncio.get_running_loop()

    class Pauses(Reader):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            getattr(transport, then)()

    ours, peer = await tcp_pair()
    protocol = Pauses()
    transport = accepted_transport(loop, ours, protocol, None, None)
    try:
        await loop.sock_sendall(peer, b"unread")
        await asyncio.sleep(0.05)
        assert protocol.received == b""
        if then == "close":
            assert await asyncio.wait_for(protocol.lost, 5) is None
        else:
            transport.resume_reading()
            await eventually(lambda: protocol.received == b"unread")
    finally:
        await release(transport, peer)


async def test_connection_made_that_raises_is_reported_and_the_transport_reads_on() -> None:
    loop: Any = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda loop, context: reported.append(context))

    class Raises(Reader):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            raise ValueError("not today")

    ours, peer = await tcp_pair()
    protocol = Raises()
    transport = accepted_transport(loop, ours, protocol, None, None)
    try:
        [context] = reported
        assert isinstance(context["exception"], ValueError) and context["transport"] is transport
        assert "connection_made()" in context["message"]
        await loop.sock_sendall(peer, b"still read")  # as asyncio's loop goes on after a callback raised
        await eventually(lambda: protocol.received == b"still read")
    finally:
        loop.set_exception_handler(None)
        await release(transport, peer)


async def test_a_plain_protocol_is_connected_by_the_constructor_in_the_next_iteration() -> None:
    loop: Any = asyncio.get_running_loop()
    made: list[Any] = []

    class Plain(PlainReader):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            made.append(transport)

    ours, peer = await tcp_pair()
    protocol = Plain()
    transport = accepted_transport(loop, ours, protocol, None, None)
    try:
        assert made == []
        await eventually(lambda: made == [transport])
        await loop.sock_sendall(peer, b"plain")
        await eventually(lambda: protocol.received == b"plain")
    finally:
        await release(transport, peer)


async def test_close_with_nothing_to_write_stops_reading_and_loses_the_connection_next_turn(construction: None) -> None:
    loop: Any = asyncio.get_running_loop()
    protocol = Reader()
    async with transported(protocol) as (transport, peer):
        fd = transport.get_extra_info("socket").fileno()
        transport.close()
        assert transport.is_closing() and protocol.calls == ["connection_made"]
        with pytest.raises(KeyError):
            loop._selector.get_key(fd)  # watched neither for reading nor for writing
        assert await asyncio.wait_for(protocol.lost, 5) is None
        assert transport.get_extra_info("socket").fileno() == -1  # closed by the transport
        assert await loop.sock_recv(peer, 1) == b""  # the peer sees the end
        transport.close()  # again: nothing happens
        assert protocol.calls == ["connection_made", "connection_lost"]


class Closer(Reader):
    """Answers a read with a last write and closes, as a server does the client's close frame."""

    def __init__(self, fail_lost: bool = False) -> None:
        super().__init__()
        self.fail_lost = fail_lost
        self.turn_later: list[str] = []

    def buffer_updated(self, nbytes: int) -> None:
        super().buffer_updated(nbytes)
        # What a callback scheduled before close() sees in the loop's next turn.
        asyncio.get_running_loop().call_soon(lambda: self.turn_later.append(" ".join(self.calls)))
        self.transport.write(b"bye")
        self.transport.close()
        self.calls.append("closed")

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if self.fail_lost:
            raise RuntimeError("lost badly")


async def test_a_close_while_handling_a_read_loses_the_connection_once_the_read_returns(construction: None) -> None:
    """With the pump, connection_lost() runs right after buffer_updated() returns; asyncio's transport: next turn."""
    loop: Any = asyncio.get_running_loop()
    protocol = Closer()
    async with transported(protocol) as (transport, peer):
        await loop.sock_sendall(peer, b"close, please")
        assert await asyncio.wait_for(protocol.lost, 5) is None
        assert await receive_exactly(peer, 3) == b"bye"
        assert await loop.sock_recv(peer, 1) == b""
        await eventually(lambda: bool(protocol.turn_later))
    lost_at_once = Pump is not None and type(transport) is transport_module.SocketTransport
    # Never inside buffer_updated() itself; after it, before the loop's next turn only through the pump.
    assert protocol.calls == ["connection_made", "closed", "connection_lost"]
    assert protocol.turn_later == ["connection_made closed connection_lost" if lost_at_once else "connection_made closed"]
    assert transport.get_extra_info("socket").fileno() == -1


async def test_a_connection_lost_that_raises_after_a_read_is_reported(construction: None) -> None:
    loop: Any = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        protocol = Closer(fail_lost=True)
        async with transported(protocol) as (transport, peer):
            await loop.sock_sendall(peer, b"close, please")
            await asyncio.wait_for(protocol.lost, 5)
            await eventually(lambda: bool(reported))
            assert await loop.sock_recv(peer, 1) == b"b"  # written, then TCP ended
        [context] = reported
        assert isinstance(context["exception"], RuntimeError)
        assert "connection_lost" in context["message"] or "_call_connection_lost" in context["message"]
        assert transport.get_extra_info("socket").fileno() == -1  # closed all the same
    finally:
        loop.set_exception_handler(None)


async def test_close_with_writes_waiting_sends_them_all_first(construction: None) -> None:
    protocol = Reader()
    async with transported(protocol) as (transport, peer):
        data = hashlib.sha256(b"last words").digest() * 262144  # 8 MiB: more than the socket takes at once
        transport.write(data)
        assert transport.get_write_buffer_size() > 0
        transport.close()
        assert await receive_exactly(peer, len(data)) == data
        assert await asyncio.get_running_loop().sock_recv(peer, 1) == b""
        assert await asyncio.wait_for(protocol.lost, 5) is None


async def test_accepted_transport_replaces_a_reader_left_on_the_same_descriptor() -> None:
    loop: Any = asyncio.get_running_loop()
    ours, peer = await tcp_pair()
    left: list[str] = []
    loop.add_reader(ours.fileno(), left.append, "stale")
    stale = loop._selector.get_key(ours.fileno()).data[0]
    protocol = Reader()
    transport = accepted_transport(loop, ours, protocol, None, None)
    try:
        assert stale.cancelled()  # as asyncio's _add_reader() replaces a reader
        await loop.sock_sendall(peer, b"to the transport")
        await eventually(lambda: protocol.received == b"to the transport")
        assert left == []
    finally:
        await release(transport, peer)


class Unfamiliar(TransportClass):  # type: ignore[misc, valid-type]
    """A transport class as another Python's asyncio might make it: one attribute more than 3.10-3.13 set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._something_new = object()


class WantsMoreOfTheLoop(TransportClass):  # type: ignore[misc, valid-type]
    """A transport class whose constructor uses a part of the loop the 3.10-3.13 constructors don't."""

    def __init__(self, loop: Any, *args: Any, **kwargs: Any) -> None:
        self._born = loop.time()
        super().__init__(loop, *args, **kwargs)


@pytest.mark.parametrize("unknown", [Unfamiliar, WantsMoreOfTheLoop])
async def test_a_transport_the_template_cant_copy_is_built_by_its_constructor(
    unknown: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport_module, "socket_transport_class", lambda: unknown)
    monkeypatch.setattr(transport_module, "_lean", False)  # taken again, from this class
    assert transport_module._lean_construction() is None
    loop: Any = asyncio.get_running_loop()
    ours, peer = await tcp_pair()
    protocol = Reader()
    transport = accepted_transport(loop, ours, protocol, peer.getsockname(), None)
    try:
        assert type(transport) is unknown
        assert protocol.calls == []  # the constructor's way: connection_made() in the next iteration
        await eventually(lambda: protocol.calls == ["connection_made"])
        await loop.sock_sendall(peer, b"built the old way")
        await eventually(lambda: protocol.received == b"built the old way")
    finally:
        await release(transport, peer)
