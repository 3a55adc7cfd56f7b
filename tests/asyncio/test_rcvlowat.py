"""Large frames wake a connection once their rest has arrived (SO_RCVLOWAT), never for bytes that won't come.

While a data frame with at least ``RCVLOWAT_FROM`` bytes still to arrive is
being received, a server's asyncio connection on a plain TCP socket (Linux) asks the
kernel not to report the socket readable before that many bytes (at most one
read buffer) are in: a 1 MiB message then costs two reads instead of four.
These tests read the option back from the server's own socket, and
check what must never happen: a connection waiting for more bytes than the
peer owes (after the frame, a small message must still get through at once;
EOF and TLS must not be held up). They run on both read paths (the c-* and
py-* jobs) and both server APIs; clients never set it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

import wsio
from tests.asyncio.conftest import RawClient
from tests.helpers import self_signed_cert
from wsio.asyncio.connection import RCVLOWAT_FROM, READ_SIZE
from wsio.protocol.frames import FIN, OP_BINARY, OP_TEXT, build_frame
from wsio.protocol.handshake import accept_key

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="SO_RCVLOWAT is only used on Linux"),
    pytest.mark.timeout(30),
]

APIS = ["asyncio", "callback"]


class Echo(wsio.Listener):
    def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
        connection.send(message)


async def echo(ws: wsio.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def serve(api: str, **options: Any) -> Any:
    if api == "callback":
        return wsio.serve_listener(Echo, "127.0.0.1", 0, **options)
    return wsio.serve(echo, "127.0.0.1", 0, **options)


def only_connection(server: Any) -> Any:
    (connection,) = server.connections
    return connection


def lowat(connection: Any) -> int:
    """SO_RCVLOWAT of the server's end of the connection, as the kernel has it."""
    sock = connection.transport.get_extra_info("socket")
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT))


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def run(api: str, test: Callable[[Any, RawClient], Awaitable[None]], **options: Any) -> None:
    async with serve(api, compression=None, max_size=8 * 2**20, **options) as server:
        client = await RawClient.connect(server.sockets[0].getsockname()[1])
        await until(lambda: len(server.connections) == 1, "the server has the connection")
        try:
            await test(only_connection(server), client)
        finally:
            await client.close()


def payload(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + bytes(range(size % 256))


async def send_start(connection: Any, client: RawClient, message: bytes, first: int) -> bytes:
    """Write the first ``first`` bytes of ``message``'s frame, wait until the server has read some; return the rest."""
    data = client.frame(FIN | OP_BINARY, message)
    client.writer.write(data[:first])
    await until(lambda: connection.protocol.frame_remaining > 0, "the server reads the frame's start")
    return data[first:]


async def send_rest(connection: Any, client: RawClient, rest: bytes, message: bytes, timeout: float = 5) -> None:
    """Write the rest of the frame: the echo comes back whole, and the socket wakes for any byte again."""
    client.writer.write(rest)
    assert await asyncio.wait_for(client.read_data_frame(), timeout) == (OP_BINARY, message)
    assert lowat(connection) == 1


@pytest.mark.parametrize("api", APIS)
def test_a_large_frame_arriving_in_pieces_wakes_the_connection_for_its_rest(api: str) -> None:
    async def test(connection: Any, client: RawClient) -> None:
        assert lowat(connection) == 1
        message = payload(600_000)
        rest = await send_start(connection, client, message, 100_000)
        # Whatever part the server has read, it waits for the rest, and no more.
        await until(lambda: lowat(connection) > 1, "the server asks for the rest")
        assert lowat(connection) == connection.protocol.frame_remaining >= len(rest)
        client.writer.write(rest[:400_000])
        await send_rest(connection, client, rest[400_000:], message)
        # Small messages right after it: the default is back, they aren't held up.
        for text in ("after", "and again"):
            client.send_text(text)
            assert await asyncio.wait_for(client.read_data_frame(), 5) == (OP_TEXT, text.encode())

    asyncio.run(run(api, test))


@pytest.mark.parametrize("api", APIS)
def test_a_frame_larger_than_a_read_asks_for_a_read_buffer_at_a_time(api: str) -> None:
    async def test(connection: Any, client: RawClient) -> None:
        message = payload(3 * READ_SIZE)
        rest = await send_start(connection, client, message, 50_000)
        await until(lambda: lowat(connection) == READ_SIZE, "the server asks for one read buffer")
        await send_rest(connection, client, rest, message, timeout=10)

    asyncio.run(run(api, test))


@pytest.mark.parametrize("api", APIS)
def test_frames_too_small_to_gain_leave_the_socket_alone(api: str) -> None:
    async def test(connection: Any, client: RawClient) -> None:
        message = payload(RCVLOWAT_FROM - 1)  # never RCVLOWAT_FROM to go, wherever a read ends
        rest = await send_start(connection, client, message, 2000)
        assert lowat(connection) == 1
        await send_rest(connection, client, rest, message)

    asyncio.run(run(api, test))


@pytest.mark.parametrize("api", APIS)
def test_eof_in_the_middle_of_a_large_frame_still_wakes_the_connection(api: str) -> None:
    async def test(connection: Any, client: RawClient) -> None:
        await send_start(connection, client, payload(800_000), 100_000)
        await until(lambda: lowat(connection) > 1, "the server asks for the rest")
        client.writer.write_eof()  # far fewer bytes than the server waits for
        await asyncio.wait_for(connection.wait_closed(), 5)
        assert connection.close_code == 1006

    asyncio.run(run(api, test))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = self_signed_cert(str(tmp_path_factory.mktemp("tls")), "localhost")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context()
    client_ctx.load_verify_locations(Path(cert))
    return server_ctx, client_ctx


@pytest.mark.parametrize("api", APIS)
def test_tls_connections_leave_the_socket_alone(api: str, tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    # Through TLS the bytes on the socket aren't the frame's, and some may wait
    # undecrypted in the TLS layer: waiting for the frame's count could wait forever.
    server_ctx, client_ctx = tls

    async def main() -> None:
        async with serve(api, compression=None, max_size=8 * 2**20, ssl=server_ctx) as server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
            client = RawClient(reader, writer)
            await client.handshake()
            connection = only_connection(server)
            message = payload(700_000)
            rest = await send_start(connection, client, message, 100_000)
            await until(lambda: connection.protocol.frame_remaining >= RCVLOWAT_FROM, "the server reads more of it")
            assert lowat(connection) == 1
            await send_rest(connection, client, rest, message)
            await client.close()

    asyncio.run(main())


@pytest.mark.parametrize("api", APIS)
def test_clients_leave_the_socket_alone(api: str) -> None:
    # A client, usually one connection with a core to itself, echoed 1 MiB
    # messages up to 24 % slower when it waited for whole frames.
    async def main() -> None:
        message = payload(700_000)
        frame = build_frame(FIN | OP_BINARY, message)
        sent_first = asyncio.Event()
        finish = asyncio.Event()

        async def raw_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            key = next(
                line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("sec-websocket-key:")
            )
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode()
            )
            writer.write(frame[:100_000])
            sent_first.set()
            await finish.wait()
            writer.write(frame[100_000:])
            await reader.read()  # until the client closes
            writer.close()

        server = await asyncio.start_server(raw_server, "127.0.0.1", 0)
        uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        received: list[Any] = []
        if api == "callback":

            class Keep(wsio.Listener):
                def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
                    received.append(message)

            ws: Any = await wsio.connect_listener(Keep, uri, compression=None, max_size=None)
        else:
            ws = await wsio.connect(uri, compression=None, max_size=None)
        await sent_first.wait()
        await until(lambda: ws.protocol.frame_remaining >= RCVLOWAT_FROM, "the client reads the frame's start")
        assert lowat(ws) == 1
        finish.set()
        if api == "callback":
            await until(lambda: bool(received), "the message arrives")
        else:
            received.append(await asyncio.wait_for(ws.recv(), 5))
        assert received == [message]
        ws.transport.abort()
        server.close()

    asyncio.run(main())
