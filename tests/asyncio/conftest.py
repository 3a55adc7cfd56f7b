"""Run ``async def`` tests with ``asyncio.run``, and helpers for the loopback tests.

No pytest-asyncio: a coroutine test runs in a fresh event loop, bounded by
``ASYNC_TEST_TIMEOUT`` seconds, and fails if the loop reported an error that
nobody handled ("Task exception was never retrieved", an exception in a
callback, ...): such errors are bugs even when the test's assertions pass.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from wsio.protocol.frames import FIN, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, build_frame

#: Most tests take milliseconds; this bounds a hung one well below pytest-timeout.
ASYNC_TEST_TIMEOUT = 5.0


HERE = Path(__file__).parent
BOUNDED = {"test_server.py", "test_client.py", "test_connection.py", "test_broadcast.py", "test_tls.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session: only bound the tests of these files.
    for item in items:
        if item.path.parent == HERE and item.path.name in BOUNDED and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(ASYNC_TEST_TIMEOUT + 5))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    marker = pyfuncitem.get_closest_marker("async_timeout")
    timeout = marker.args[0] if marker is not None else ASYNC_TEST_TIMEOUT
    loop_errors: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
        await asyncio.wait_for(function(**kwargs), timeout)

    asyncio.run(main())
    if loop_errors and pyfuncitem.get_closest_marker("allow_loop_errors") is None:
        pytest.fail(f"the event loop reported unhandled errors: {loop_errors}")
    return True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "async_timeout(seconds): bound of an async test (default 5 s)")
    config.addinivalue_line("markers", "allow_loop_errors: don't fail on errors the event loop reports")


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
