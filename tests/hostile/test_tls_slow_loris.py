"""A TLS slow-loris: a client that connects to a wss:// server and never finishes the TLS handshake.

``open_timeout`` starts once TLS is up, so ``serve()`` gives the TLS handshake
the same deadline (asyncio's own default would hold the connection 60 s).
In-process, as it needs a certificate made in the test.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import pytest

import wsio
import wsio.sync.server
from tests.helpers import self_signed_cert


@pytest.fixture(scope="module")
def server_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed_cert(str(tmp_path_factory.mktemp("tls"))))
    return context


def stalled_tls_client(port: int) -> float:
    """Connect, send half a TLS ClientHello, then nothing; return when the server drops us."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        started = time.monotonic()
        try:
            while sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
        return time.monotonic() - started


async def echo(websocket: wsio.ServerConnection) -> None:
    async for message in websocket:
        await websocket.send(message)


def test_asyncio_tls_handshake_bounded_by_open_timeout(server_context: ssl.SSLContext) -> None:
    async def main() -> float:
        async with wsio.serve(echo, "127.0.0.1", 0, ssl=server_context, open_timeout=0.5) as server:
            port = server.sockets[0].getsockname()[1]
            return await asyncio.to_thread(stalled_tls_client, port)

    elapsed = asyncio.run(main())
    assert 0.4 <= elapsed < 2, elapsed


def test_sync_tls_handshake_bounded_by_open_timeout(server_context: ssl.SSLContext) -> None:
    def handler(websocket: object) -> None:
        pass

    with wsio.sync.server.serve(handler, "127.0.0.1", 0, ssl=server_context, open_timeout=0.5) as server:
        import threading

        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        elapsed = stalled_tls_client(server.socket.getsockname()[1])
        server.shutdown()
        thread.join(5)
    assert 0.4 <= elapsed < 2, elapsed
