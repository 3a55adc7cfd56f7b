"""WebSocket over cleartext HTTP/2 with prior knowledge (h2c, RFC 9113 3.3), on the same port as HTTP/1.1."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import wsio.asyncio.http2 as http2_module
from wsio import connect, serve

from .helpers import RawH2, echo_over, open_websocket, port_of


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.fixture(autouse=True)
def forget_http1_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no origin remembered as HTTP/1.1-only (ports are reused)."""
    monkeypatch.setattr(http2_module, "_http1_only", type(http2_module._http1_only)())


@pytest.mark.async_timeout(30)
async def test_many_websockets_share_one_h2c_connection() -> None:
    seen: list[tuple[Any, int]] = []

    async def handler(ws: Any) -> None:
        seen.append((ws.transport.get_extra_info("peername"), ws.transport.get_extra_info("http2_stream_id")))
        await echo(ws)

    async def one(i: int, port: int) -> None:
        async with connect(f"ws://127.0.0.1:{port}/n{i}", http2=True) as ws:
            assert ws.transport.get_extra_info("ssl_object") is None
            await ws.send(f"text {i}")
            assert await ws.recv() == f"text {i}"
            await ws.send(bytes([i]) * 1000)
            assert await ws.recv() == bytes([i]) * 1000

    async with serve(handler, "127.0.0.1", 0, http2=True) as server:
        await asyncio.gather(*(one(i, port_of(server)) for i in range(20)))
    assert len(seen) == 20
    assert len({peer for peer, _ in seen}) == 1, "one TCP connection"
    assert sorted(stream_id for _, stream_id in seen) == list(range(1, 40, 2))


async def test_raw_h2c_client_and_http11_clients_on_the_same_port() -> None:
    async with serve(echo, "127.0.0.1", 0, http2=True) as server:
        port = port_of(server)
        raw = await RawH2.open(port, None)
        first, status = await open_websocket(raw, "/a", scheme="http")
        assert status == 200
        second, status = await open_websocket(raw, "/b", scheme="http")
        assert status == 200
        async with connect(f"ws://127.0.0.1:{port}/") as plain:
            assert plain.transport.get_extra_info("http2_stream_id") is None
            await plain.send("HTTP/1.1")
            assert await plain.recv() == "HTTP/1.1"
            assert await echo_over(raw, first, "one") == "one"
            assert await echo_over(raw, second, "two") == "two"
        raw.close()


async def test_http11_request_split_before_it_differs_from_the_preface() -> None:
    """The first bytes of "PRI * HTTP/2.0..." and of a request may share nothing but a prefix of the preface."""
    async with serve(echo, "127.0.0.1", 0, http2=True, process_request=lambda c, r: c.respond(200, "ok\n")) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(b"P")
        await asyncio.sleep(0.05)
        writer.write(b"UT / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.read(4096), 5)
        assert head.startswith(b"HTTP/1.1 ")
        writer.close()


async def test_silent_client_is_dropped_after_open_timeout() -> None:
    async with serve(echo, "127.0.0.1", 0, http2=True, open_timeout=0.2) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_h2c_client_to_an_http11_only_server_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wsio.http2")
    async with serve(echo, "127.0.0.1", 0) as server:  # no http2: the preface gets an HTTP/1.1 answer
        url = f"ws://127.0.0.1:{port_of(server)}/"
        for _ in range(3):
            async with connect(url, http2=True) as ws:
                assert ws.transport.get_extra_info("http2_stream_id") is None
                await ws.send("over HTTP/1.1")
                assert await ws.recv() == "over HTTP/1.1"
    notes = [r.getMessage() for r in caplog.records if "no h2c" in r.getMessage()]
    assert len(notes) == 1, "said once, then remembered"


async def test_h2c_client_to_a_server_that_just_closes_gets_a_clear_error() -> None:
    async def closes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(24)
        writer.close()

    server = await asyncio.start_server(closes, "127.0.0.1", 0)
    async with server:
        with pytest.raises(ConnectionError, match="doesn't speak cleartext HTTP/2"):
            await connect(f"ws://127.0.0.1:{port_of(server)}/", http2=True)


async def test_h2c_and_tls_servers_side_by_side(server_ctx: Any, client_ctx: Any) -> None:
    """ws:// and wss:// to the same host are different origins: different connections."""
    async with serve(echo, "127.0.0.1", 0, http2=True) as clear, serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=True) as tls:
        async with (
            connect(f"ws://127.0.0.1:{port_of(clear)}/", http2=True) as a,
            connect(f"wss://localhost:{port_of(tls)}/", ssl=client_ctx, http2=True) as b,
        ):
            assert a.transport._session is not b.transport._session
            assert a.transport.get_extra_info("ssl_object") is None
            assert b.transport.get_extra_info("ssl_object") is not None
            for ws in (a, b):
                await ws.send("hi")
                assert await ws.recv() == "hi"
