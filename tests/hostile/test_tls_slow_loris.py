"""A TLS slow-loris: a client that connects to a wss:// server and never finishes the TLS handshake.

``open_timeout`` starts once TLS is up, so ``serve()`` gives the TLS handshake
the same deadline (asyncio's own default would hold the connection 60 s).
In-process, as it needs a certificate made in the test. Under uvicorn the
deadline is asyncio's default (see the last test).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from typing import Any

import pytest

import wsio
import wsio.sync.server
from tests.helpers import self_signed_cert


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return self_signed_cert(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def server_context(certificate: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
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


def test_uvicorn_tls_handshake_has_asyncio_s_default_deadline(certificate: tuple[str, str]) -> None:
    """Differs under uvicorn: it creates its listener without ``ssl_handshake_timeout``
    (it has no setting for it), so a client that never finishes TLS is held for
    asyncio's default 60 s; wsio's engine only gets connections uvicorn has read
    a request from. What holds: wss:// clients are served meanwhile, at once."""
    import uvicorn
    from wsio.asgi import UvicornProtocol

    async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text")})

    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE  # the test's own self-signed certificate

    def stalled_for(port: int, seconds: float) -> bool:
        """Half a ClientHello, then nothing: whether the server still holds the connection after ``seconds``."""
        with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
            sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            try:
                return sock.recv(4096) != b""
            except TimeoutError:
                return True

    async def main() -> tuple[bool, float]:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            echo, ws=UvicornProtocol, lifespan="off", log_level="warning",
            ssl_certfile=certificate[0], ssl_keyfile=certificate[1],
        )  # fmt: skip
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            stalled = asyncio.create_task(asyncio.to_thread(stalled_for, port, 1.0))
            await asyncio.sleep(0.1)
            started = time.monotonic()
            async with wsio.connect(f"wss://127.0.0.1:{port}/", ssl=client_context) as websocket:
                await websocket.send("over TLS")
                assert await websocket.recv() == "over TLS"
            served_in = time.monotonic() - started
            return await stalled, served_in
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)
            sock.close()

    still_held, served_in = asyncio.run(main())
    assert still_held, "the stalled TLS client was dropped within 1 s: uvicorn bounds the TLS handshake now? update the docs"
    assert served_in < 1, served_in
