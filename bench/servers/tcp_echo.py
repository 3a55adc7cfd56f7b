"""The limit: asyncio TCP with no WebSocket framing at all (echo, or fan-out of 64-byte chunks)."""

from __future__ import annotations

import asyncio
import sys

from ..common import BACKLOG, HOST, READ_BUFFER, ready, run_loop
from ._cli import main

#: In the broadcast scenario a "message" is this many bytes (the load generator agrees).
CHUNK = 64
OPEN: set[asyncio.Transport] = set()


class Echo(asyncio.BufferedProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        self.transport.write(READ_BUFFER[:nbytes])  # sent, or copied into the transport's buffer

    # Flow control, as every WebSocket server here has: without it the write
    # buffer grows to tens of MiB with big pipelined messages, and asyncio's
    # buffer (a bytearray before Python 3.12) copies itself on every write.
    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()


class FanOut(asyncio.BufferedProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.pending = b""
        OPEN.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        OPEN.discard(self.transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        data = self.pending + READ_BUFFER[:nbytes]
        whole = len(data) - len(data) % CHUNK
        self.pending = data[whole:]
        for start in range(0, whole, CHUNK):
            chunk = data[start : start + CHUNK]
            for target in OPEN:
                target.write(chunk)


async def serve(port: int, scenario: str) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_server(Echo if scenario == "echo" else FanOut, HOST, port, backlog=BACKLOG)
    ready(library="asyncio", version=sys.version.split()[0])
    await asyncio.Future()


if __name__ == "__main__":
    main(lambda port, scenario: run_loop(serve(port, scenario)), __doc__)
