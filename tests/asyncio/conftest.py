"""Helpers for the loopback tests of the asyncio API.

``async def`` tests run through tests/conftest.py, bounded by
``ASYNC_TEST_TIMEOUT`` seconds here.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from pathlib import Path

import pytest

from tests.conftest import ASYNC_TEST_TIMEOUTS

from wsio.protocol.frames import FIN, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, build_frame

#: Most tests take milliseconds; this bounds a hung one well below pytest-timeout.
ASYNC_TEST_TIMEOUT = ASYNC_TEST_TIMEOUTS["asyncio"]


HERE = Path(__file__).parent
BOUNDED = {"test_server.py", "test_client.py", "test_connection.py", "test_broadcast.py", "test_tls.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session: only bound the tests of these files.
    for item in items:
        if item.path.parent == HERE and item.path.name in BOUNDED and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(ASYNC_TEST_TIMEOUT + 5))


# -- helpers ------------------------------------------------------------------------


class RawClient:
    """A WebSocket client written by hand over a plain asyncio stream.

    For peers that misbehave on purpose: never read, never answer pings,
    send half a request, disappear.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.response_head = b""
        self.last_head = 0  # first byte of the last frame read: FIN, RSV1-3, opcode

    @classmethod
    async def connect(
        cls, port: int, path: str = "/", headers: str = "", handshake: bool = True, host: str = "127.0.0.1"
    ) -> RawClient:
        reader, writer = await asyncio.open_connection(host, port)
        client = cls(reader, writer)
        if handshake:
            await client.handshake(path, headers)
        return client

    @staticmethod
    def request(path: str = "/", headers: str = "") -> bytes:
        """An opening handshake request; ``headers`` are extra ``Name: value\\r\\n`` lines."""
        key = base64.b64encode(os.urandom(16)).decode()
        return (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{headers}\r\n"
        ).encode()

    @staticmethod
    def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
        """A masked frame, as a client sends it."""
        return build_frame((FIN if fin else 0) | opcode, payload, os.urandom(4))

    async def handshake(self, path: str = "/", headers: str = "") -> None:
        self.writer.write(self.request(path, headers))
        self.response_head = await self.reader.readuntil(b"\r\n\r\n")
        assert self.response_head.startswith(b"HTTP/1.1 101"), self.response_head

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.writer.write(self.frame(opcode, payload, fin))

    def send_text(self, text: str) -> None:
        self.send_frame(OP_TEXT, text.encode())

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode())

    async def read_frame(self) -> tuple[int, bytes]:
        """Read one unmasked frame from the server: ``(opcode, payload)``."""
        head = await self.reader.readexactly(2)
        self.last_head = head[0]
        length = head[1] & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return head[0] & 0x0F, await self.reader.readexactly(length)

    async def read_data_frame(self) -> tuple[int, bytes]:
        """Read frames, answering pings, until one that isn't a ping or pong."""
        while True:
            opcode, payload = await self.read_frame()
            if opcode == OP_PING:
                self.send_frame(OP_PONG, payload)
            elif opcode != OP_PONG:
                return opcode, payload

    def abort(self) -> None:
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


@pytest.fixture
def raw_client() -> type[RawClient]:
    return RawClient
