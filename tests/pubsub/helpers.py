"""Servers, clients and hubs for the pub/sub tests."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from typing import Any

import wsio
from tests.helpers import eventually as eventually  # where the pub/sub tests import it from
from wsio.protocol.frames import FIN, OP_CLOSE, build_frame


class Site:
    """A wsio server whose handler just waits; ``await site.client()`` returns ``(client, server_side)``."""

    def __init__(self, **serve_options: Any) -> None:
        self.serve_options = {"compression": None, **serve_options}
        self.server: wsio.Server | None = None
        self._arrived: asyncio.Queue[wsio.ServerConnection] = asyncio.Queue()
        self.clients: list[Any] = []

    async def _handler(self, ws: wsio.ServerConnection) -> None:
        self._arrived.put_nowait(ws)
        await ws.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> Site:
        self.server = await wsio.serve(self._handler, "127.0.0.1", 0, **self.serve_options)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        for client in self.clients:
            if isinstance(client, RawClient):
                client.abort()
            else:
                await client.close()
        assert self.server is not None
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), 10)

    async def client(self, **options: Any) -> tuple[wsio.ClientConnection, wsio.ServerConnection]:
        client = await wsio.connect(f"ws://127.0.0.1:{self.port}/", **{"compression": None, **options})
        self.clients.append(client)
        return client, await asyncio.wait_for(self._arrived.get(), 5)

    async def raw_client(self, rcvbuf: int | None = None) -> tuple[RawClient, wsio.ServerConnection]:
        client = await RawClient.connect(self.port, rcvbuf)
        self.clients.append(client)
        return client, await asyncio.wait_for(self._arrived.get(), 5)


class RawClient:
    """A WebSocket client by hand over a plain socket, that reads only when told to: the slow consumer.

    Nothing reads the socket in the background (an asyncio stream would), so
    a client that doesn't call :meth:`read_frame` lets the server's buffer fill.
    """

    def __init__(self, sock: socket.socket, buffered: bytes) -> None:
        self.sock = sock
        self.buffer = bytearray(buffered)
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def connect(cls, port: int, rcvbuf: int | None = None) -> RawClient:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        if rcvbuf is not None:
            # A small receive window fills up after a few KiB instead of megabytes.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(
            sock,
            (
                "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode(),
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await loop.sock_recv(sock, 4096)
            assert chunk, "connection closed during the handshake"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(sock, rest)

    async def _readexactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = await self.loop.sock_recv(self.sock, 65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buffer += chunk
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def read_frame(self) -> tuple[int, bytes]:
        head = await self._readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self._readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self._readexactly(8))
        return head[0] & 0x0F, await self._readexactly(length)

    def send_frame(self, opcode: int, payload: bytes) -> None:
        self.sock.send(build_frame(FIN | opcode, payload, os.urandom(4)))

    def send_close(self, code: int = 1000) -> None:
        self.send_frame(OP_CLOSE, struct.pack("!H", code))

    def abort(self) -> None:
        self.sock.close()


async def nothing_received(client: wsio.ClientConnection, wait: float = 0.2) -> bool:
    """Whether ``client`` receives no message within ``wait`` seconds."""
    try:
        message = await client.recv(timeout=wait)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected message: {message!r}")
