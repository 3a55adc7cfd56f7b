"""Servers on asyncio's selector loop accept without a task per connection (wsio/asyncio/accept.py).

Each test checks which accept path the listening socket is on, then that
connections made through it behave as asyncio's own path makes them behave.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from pathlib import Path
from typing import Any, Callable

import pytest

import wsio
from tests.helpers import eventually, self_signed_cert
from wsio import connect, serve, unix_connect, unix_serve
from wsio.asyncio import accept


async def echo(ws: wsio.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def listening(server: wsio.Server) -> socket.socket:
    assert server.server is not None
    sockets: list[socket.socket] = server.server._sockets  # type: ignore[attr-defined]
    return sockets[0]


def accept_callback(sock: socket.socket) -> Callable[..., Any] | None:
    """The loop's reader for a listening socket; None if it isn't watched."""
    loop: Any = asyncio.get_running_loop()
    try:
        key = loop._selector.get_key(sock.fileno())
    except KeyError:
        return None
    reader = key.data[0]
    return None if reader is None or reader.cancelled() else reader._callback  # type: ignore[no-any-return]


def accepts_directly(sock: socket.socket) -> bool:
    return isinstance(accept_callback(sock), accept._Acceptor)


def uri_of(server: wsio.Server) -> str:
    return f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


async def test_a_plain_server_accepts_directly_and_every_connection_works() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        assert accepts_directly(listening(server))

        async def one(index: int) -> str:
            async with connect(uri_of(server)) as ws:
                await ws.send(f"hello {index}")
                return str(await ws.recv())

        # More at once than one wake-up's accept() finds queued, some of the time.
        assert await asyncio.gather(*(one(i) for i in range(40))) == [f"hello {i}" for i in range(40)]
        port = listening(server).getsockname()[1]
    # Closed: the reader went with the socket, and nothing listens there.
    with pytest.raises(OSError):
        await connect(f"ws://127.0.0.1:{port}/", open_timeout=2)


def nodelay(sock: Any) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


@pytest.mark.parametrize("inherited", [True, False], ids=["from the listening socket", "set on each"])
async def test_every_accepted_tcp_socket_has_nodelay_as_asyncio_sets_it(inherited: bool) -> None:
    accepted: list[bool] = []  # each accepted socket's TCP_NODELAY, as its handler starts

    async def keep(ws: wsio.ServerConnection) -> None:
        accepted.append(nodelay(ws.transport.get_extra_info("socket")))
        await ws.wait_closed()

    async with serve(keep, "127.0.0.1", 0) as server:
        sock = listening(server)
        assert accepts_directly(sock)
        assert nodelay(sock)  # set once there: Linux copies it to each accepted socket
        if not inherited:
            # As on a system that doesn't copy it: the first socket shows it, and
            # from then on each one gets it itself.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        for _ in range(3):
            async with connect(uri_of(server)) as ws:
                await ws.send("hello")
                await eventually(lambda: len(accepted) == _ + 1)
        assert accepted == [True, True, True]
        acceptor: Any = accept_callback(sock)
        assert acceptor.nodelay is inherited


async def test_close_waits_for_connections_accepted_directly() -> None:
    released = asyncio.Event()
    handled: list[str] = []

    async def slow(ws: wsio.ServerConnection) -> None:
        await ws.recv()
        await released.wait()
        handled.append("done")

    server = await serve(slow, "127.0.0.1", 0)
    assert accepts_directly(listening(server))
    async with connect(uri_of(server)) as ws:
        await ws.send("go")
        await asyncio.sleep(0.05)
        closing = server.close(close_connections=False)
        await asyncio.sleep(0.05)
        assert not closing.done()  # the handler still runs
        released.set()
        await asyncio.wait_for(closing, 2)
    assert handled == ["done"]


async def test_start_serving_false_accepts_directly_once_started() -> None:
    async with serve(echo, "127.0.0.1", 0, start_serving=False) as server:
        assert accept_callback(listening(server)) is None
        await server.start_serving()
        assert accepts_directly(listening(server))
        async with connect(uri_of(server)) as ws:
            await ws.send("after start")
            assert await ws.recv() == "after start"


async def test_unix_server_accepts_directly(tmp_path: Path) -> None:
    path = str(tmp_path / "ws.sock")
    async with unix_serve(echo, path) as server:
        assert accepts_directly(listening(server))
        async with unix_connect(path, uri="ws://localhost/") as ws:
            await ws.send("over unix")
            assert await ws.recv() == "over unix"


async def test_tls_server_keeps_asyncio_accept(tmp_path: Path) -> None:
    cert, key = self_signed_cert(str(tmp_path), "localhost")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context()
    client_ctx.load_verify_locations(cert)
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx) as server:
        callback = accept_callback(listening(server))
        assert callback is not None and not isinstance(callback, accept._Acceptor)
        port = listening(server).getsockname()[1]
        async with connect(f"wss://localhost:{port}/", ssl=client_ctx) as ws:
            await ws.send("over tls")
            assert await ws.recv() == "over tls"


async def test_debug_mode_keeps_asyncio_accept() -> None:
    asyncio.get_running_loop().set_debug(True)
    async with serve(echo, "127.0.0.1", 0) as server:
        callback = accept_callback(listening(server))
        assert callback is not None and not isinstance(callback, accept._Acceptor)


@pytest.mark.uvloop
async def test_other_loops_keep_their_own_accept() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        assert server.server is not None
        assert not accept.accept_directly(server.server)
        async with connect(uri_of(server)) as ws:
            await ws.send("on uvloop")
            assert await ws.recv() == "on uvloop"


class RunsOutOfDescriptorsOnce:
    """A listening socket whose first accept() fails as with too many open files."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)

    def _accept(self) -> tuple[int, Any]:
        if not self.failed:
            self.failed = True
            raise OSError(errno.EMFILE, "Too many open files")
        return self.sock._accept()  # type: ignore[attr-defined,no-any-return]


@pytest.mark.allow_loop_errors
async def test_out_of_descriptors_pauses_accepting_then_resumes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accept, "_RETRY_DELAY", 0.2)
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    async with serve(echo, "127.0.0.1", 0) as server:
        sock = listening(server)
        failing = RunsOutOfDescriptorsOnce(sock)
        accept._Acceptor(loop, server.server, failing)()  # type: ignore[arg-type]
        assert [context["message"] for context in reported] == ["socket.accept() out of system resource"]
        assert accept_callback(sock) is None  # not spinning on a socket that stays readable
        # A client connecting now waits in the kernel's queue until accepting resumes.
        started = loop.time()
        async with connect(uri_of(server), open_timeout=3) as ws:
            await ws.send("after the pause")
            assert await ws.recv() == "after the pause"
        assert loop.time() - started >= 0.1
        assert accepts_directly(sock)


@pytest.mark.allow_loop_errors
async def test_a_failing_protocol_factory_is_reported_and_the_socket_closed() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))

    def broken() -> asyncio.Protocol:
        raise RuntimeError("no protocol today")

    server = await loop.create_server(broken, "127.0.0.1", 0)
    try:
        assert accept.accept_directly(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed by the server
        writer.close()
        assert [context["message"] for context in reported] == ["Error on transport creation for incoming connection"]
        assert isinstance(reported[0]["exception"], RuntimeError)
    finally:
        server.close()
        await server.wait_closed()
