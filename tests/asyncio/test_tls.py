"""wss:// over loopback with a self-signed certificate made in the test."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest

import wsio
from tests.helpers import self_signed_cert
from wsio import connect, serve


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` and ``wsio.test`` (no IP address in it)."""
    cert, key = self_signed_cert(str(tmp_path_factory.mktemp("tls")), "localhost", "wsio.test")
    return Path(cert), Path(key)


@pytest.fixture
def server_ctx(cert_files: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert_files)
    return ctx


@pytest.fixture
def client_ctx(cert_files: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cert_files[0])
    return ctx


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


async def echo(ws: wsio.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def test_wss_with_a_trusted_certificate(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    tls_seen: list[object] = []

    async def handler(ws: wsio.ServerConnection) -> None:
        tls_seen.append(ws.transport.get_extra_info("ssl_object"))
        await echo(ws)

    async with serve(handler, "127.0.0.1", 0, ssl=server_ctx) as server:
        async with connect(f"wss://localhost:{port_of(server)}", ssl=client_ctx) as ws:
            assert ws.transport.get_extra_info("ssl_object") is not None
            await ws.send("secret")
            assert await ws.recv() == "secret"
            big = bytes(range(256)) * 4096
            await ws.send(big)
            assert await ws.recv() == big
        assert ws.close_code == 1000
    assert tls_seen and tls_seen[0] is not None


async def test_default_context_rejects_a_self_signed_certificate(server_ctx: ssl.SSLContext) -> None:
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(f"wss://localhost:{port_of(server)}/", host="127.0.0.1")
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(f"wss://localhost:{port_of(server)}/", host="127.0.0.1", ssl=True)


async def test_disable_verification_like_the_faq(server_ctx: ssl.SSLContext) -> None:
    # "How do I disable TLS/SSL certificate verification? Look at the ssl argument."
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx) as server:
        async with connect(f"wss://127.0.0.1:{port_of(server)}/", ssl=ctx) as ws:
            await ws.send("unverified")
            assert await ws.recv() == "unverified"


async def test_server_hostname_override(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx) as server:
        uri = f"wss://127.0.0.1:{port_of(server)}/"
        # The certificate names no IP address: checking 127.0.0.1 fails ...
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(uri, ssl=client_ctx)
        # ... checking the name given in server_hostname succeeds.
        async with connect(uri, ssl=client_ctx, server_hostname="wsio.test") as ws:
            await ws.send("by name")
            assert await ws.recv() == "by name"


async def test_plain_client_against_a_tls_server_fails(server_ctx: ssl.SSLContext) -> None:
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, open_timeout=1) as server:
        with pytest.raises((wsio.InvalidHandshake, OSError, asyncio.TimeoutError)):
            await connect(f"ws://127.0.0.1:{port_of(server)}/", open_timeout=2)


async def test_wss_close_from_server_and_client(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    async def handler(ws: wsio.ServerConnection) -> None:
        await ws.send("bye")

    async with serve(handler, "127.0.0.1", 0, ssl=server_ctx) as server:
        uri = f"wss://localhost:{port_of(server)}/"
        # host= keeps the TCP connection on 127.0.0.1 whatever "localhost" resolves to.
        async with connect(uri, ssl=client_ctx, host="127.0.0.1") as ws:
            assert await ws.recv() == "bye"
            with pytest.raises(wsio.ConnectionClosedOK):
                await ws.recv()
            await asyncio.wait_for(ws.wait_closed(), 2)
        async with serve(echo, "127.0.0.1", 0, ssl=server_ctx) as server2:
            async with connect(f"wss://localhost:{port_of(server2)}/", ssl=client_ctx, host="127.0.0.1") as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
            assert ws.close_code == 1000
