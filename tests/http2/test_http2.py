"""WebSocket over HTTP/2 (RFC 8441): wsio's client and server, over loopback TLS."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import h2.errors
import h2.events
import pytest

from wsio import connect, serve
from wsio.exceptions import InvalidHandshake, InvalidStatus
from wsio.protocol.http11 import Response
from wsio.protocol.datastructures import Headers

from .helpers import RawH2, port_of

WEBSOCKET = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":authority", "localhost")]


async def echo(ws: object) -> None:
    async for message in ws:  # type: ignore[attr-defined]
        await ws.send(message)  # type: ignore[attr-defined]


@pytest.mark.async_timeout(30)
async def test_100_websockets_share_one_connection(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    seen: list[tuple[object, int]] = []

    async def handler(ws: object) -> None:
        transport = ws.transport  # type: ignore[attr-defined]
        seen.append((transport.get_extra_info("peername"), transport.get_extra_info("http2_stream_id")))
        await echo(ws)

    async def one(i: int, port: int) -> None:
        async with connect(f"wss://localhost:{port}/n{i}", ssl=client_ctx, http2=True) as ws:
            await ws.send(f"text {i}")
            assert await ws.recv() == f"text {i}"
            await ws.send(bytes([i]) * 1000)
            assert await ws.recv() == bytes([i]) * 1000

    async with serve(handler, "127.0.0.1", 0, ssl=server_ctx, http2=True) as server:
        port = port_of(server)
        await asyncio.gather(*(one(i, port) for i in range(100)))
    assert len(seen) == 100
    assert len({peer for peer, _ in seen}) == 1, "one TCP connection"
    assert sorted(stream_id for _, stream_id in seen) == list(range(1, 200, 2))


async def test_compression_both_ways_and_close_reasons(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    closed: list[tuple[int | None, str | None]] = []

    async def handler(ws: object) -> None:
        message = await ws.recv()  # type: ignore[attr-defined]
        assert (ws.protocol.deflate is not None) == message.startswith("server")  # type: ignore[attr-defined]
        await ws.send(message * 2)  # type: ignore[attr-defined]
        if message.startswith("server"):
            await ws.close(4001, "server says bye")  # type: ignore[attr-defined]
        else:
            await ws.wait_closed()  # type: ignore[attr-defined]
        closed.append((ws.close_code, ws.close_reason))  # type: ignore[attr-defined]

    async with serve(handler, "127.0.0.1", 0, ssl=server_ctx, http2=True) as server:
        url = f"wss://localhost:{port_of(server)}/"
        async with connect(url, ssl=client_ctx, http2=True) as ws:
            assert ws.protocol.deflate is not None
            assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
            await ws.send("server " + "a" * 100_000)
            assert await ws.recv() == ("server " + "a" * 100_000) * 2
            await ws.wait_closed()
            assert (ws.close_code, ws.close_reason) == (4001, "server says bye")
        async with connect(url, ssl=client_ctx, http2=True, compression=None) as ws:
            assert ws.protocol.deflate is None
            await ws.send("client")
            assert await ws.recv() == "clientclient"
            await ws.close(4002, "client says bye")
        await asyncio.sleep(0.1)
    assert closed == [(4001, "server says bye"), (4002, "client says bye")]


async def test_subprotocols_and_process_request(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    def process_request(connection: object, request: object) -> Response | None:
        if request.path == "/forbidden":  # type: ignore[attr-defined]
            return Response(403, "Forbidden", Headers(), b"no\n")
        assert request.headers["Host"] == f"localhost:{port}"  # type: ignore[attr-defined]
        return None

    async def handler(ws: object) -> None:
        await ws.send(ws.subprotocol)  # type: ignore[attr-defined]

    async with serve(
        handler, "127.0.0.1", 0, ssl=server_ctx, http2=True, subprotocols=["chat"], process_request=process_request
    ) as server:
        port = port_of(server)
        async with connect(f"wss://localhost:{port}/", ssl=client_ctx, http2=True, subprotocols=["x", "chat"]) as ws:
            assert ws.subprotocol == "chat"
            assert await ws.recv() == "chat"
        with pytest.raises(InvalidStatus) as raised:
            await connect(f"wss://localhost:{port}/forbidden", ssl=client_ctx, http2=True)
        assert raised.value.response.status_code == 403
        assert raised.value.response.body == b"no\n"


async def test_falls_back_to_http11_without_h2(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx) as server:  # no http2: ALPN picks nothing
        async with connect(f"wss://localhost:{port_of(server)}/", ssl=client_ctx, http2=True) as ws:
            assert ws.transport.get_extra_info("http2_stream_id") is None
            await ws.send("over HTTP/1.1")
            assert await ws.recv() == "over HTTP/1.1"


async def test_http11_clients_still_served(server_ctx: ssl.SSLContext, http1_client_ctx: ssl.SSLContext) -> None:
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=True) as server:
        async with connect(f"wss://localhost:{port_of(server)}/", ssl=http1_client_ctx) as ws:
            assert ws.transport.get_extra_info("ssl_object").selected_alpn_protocol() in (None, "http/1.1")
            await ws.send("hi")
            assert await ws.recv() == "hi"


async def test_http2_needs_an_ssl_context_or_none() -> None:
    with pytest.raises(ValueError, match="needs an ssl.SSLContext"):
        serve(echo, "127.0.0.1", 0, ssl=True, http2=True)  # type: ignore[arg-type]


async def test_plain_requests_get_404_or_process_request(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    def process_request(connection: object, request: object) -> Response | None:
        if request.path == "/health":  # type: ignore[attr-defined]
            return Response(200, "OK", Headers(), b"OK\n")
        return None

    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=True, process_request=process_request) as server:
        raw = await RawH2.open(port_of(server), client_ctx)
        get = [(":method", "GET"), (":scheme", "https"), (":authority", "localhost")]
        status, _, body = await raw.request([*get, (":path", "/health")])
        assert (status, body) == (200, b"OK\n")
        status, _, _ = await raw.request([*get, (":path", "/nothing")])
        assert status == 404
        raw.close()


async def test_slow_stream_does_not_stall_others(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    stalled = asyncio.Event()

    async def handler(ws: object) -> None:
        if ws.request.path == "/slow":  # type: ignore[attr-defined]
            await stalled.wait()  # reads nothing: its window closes
        await echo(ws)

    async with serve(handler, "127.0.0.1", 0, ssl=server_ctx, http2=True, max_queue=1, compression=None) as server:
        url = f"wss://localhost:{port_of(server)}"
        async with connect(url + "/slow", ssl=client_ctx, http2=True, compression=None, write_limit=1024) as slow:

            async def flood() -> None:
                for _ in range(50):
                    await slow.send(b"x" * 100_000)

            sending = asyncio.ensure_future(flood())
            try:
                await asyncio.sleep(0.2)
                assert not sending.done(), "flow control holds the slow stream's sender"
                async with connect(url + "/fast", ssl=client_ctx, http2=True) as fast:
                    assert fast.transport.get_extra_info("peername") == slow.transport.get_extra_info("peername")
                    for i in range(20):
                        await fast.send(str(i) * 10_000)
                        assert await fast.recv() == str(i) * 10_000
                assert not sending.done()
            finally:
                stalled.set()
            for _ in range(50):
                assert len(await slow.recv()) == 100_000
            await sending


async def test_stream_reset_by_peer_is_a_clear_reason(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    reasons: list[str] = []
    done = asyncio.Event()

    async def handler(ws: object) -> None:
        try:
            await ws.recv()  # type: ignore[attr-defined]
        except Exception as exc:
            reasons.append(f"{exc} / {ws._why}")  # type: ignore[attr-defined]
        done.set()

    async with serve(handler, "127.0.0.1", 0, ssl=server_ctx, http2=True) as server:
        async with connect(f"wss://localhost:{port_of(server)}/", ssl=client_ctx, http2=True) as ws:
            await asyncio.sleep(0.05)
            ws.transport.abort()  # RST_STREAM CANCEL
            await asyncio.wait_for(done.wait(), 5)
    assert len(reasons) == 1
    assert "reset by peer (CANCEL)" in reasons[0]


async def test_server_close_closes_h2_websockets_then_the_connection(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=True) as server:
        url = f"wss://localhost:{port_of(server)}/"
        first = await connect(url, ssl=client_ctx, http2=True)
        second = await connect(url, ssl=client_ctx, http2=True)
        assert first.transport._session is second.transport._session
        session = first.transport._session
        await asyncio.wait_for(server.close(), 5)
        assert (first.close_code, second.close_code) == (1001, 1001)
        await asyncio.wait_for(first.wait_closed(), 5)
        for _ in range(50):
            if session.closed:
                break
            await asyncio.sleep(0.02)
        assert session.closed


async def test_max_connections_counts_websockets_on_h2(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=True, max_connections=2) as server:
        url = f"wss://localhost:{port_of(server)}/"
        async with connect(url, ssl=client_ctx, http2=True), connect(url, ssl=client_ctx, http2=True):
            with pytest.raises(InvalidStatus) as raised:
                await connect(url, ssl=client_ctx, http2=True)
            assert raised.value.response.status_code == 503


async def test_idle_h2_connection_gets_goaway(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    from wsio.asyncio.http2 import HTTP2Limits

    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=HTTP2Limits(idle_timeout=0.2)) as server:
        raw = await RawH2.open(port_of(server), client_ctx)
        event = await raw.until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
        assert isinstance(event, h2.events.ConnectionTerminated)
        assert event.error_code == h2.errors.ErrorCodes.NO_ERROR
        raw.close()


async def test_h2_server_without_extended_connect(ca: object, client_ctx: ssl.SSLContext, cert_files: tuple[str, str]) -> None:
    """A context the caller passed offers h2; the server speaks HTTP/2 without RFC 8441: a clear error."""
    import h2.config
    import h2.connection

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert_files)
    context.set_alpn_protocols(["h2"])

    async def plain_h2(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        while data := await reader.read(65536):
            conn.receive_data(data)
            writer.write(conn.data_to_send())
        writer.close()

    server = await asyncio.start_server(plain_h2, "127.0.0.1", 0, ssl=context)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(InvalidHandshake, match="doesn't support WebSocket over HTTP/2"):
            await connect(f"wss://localhost:{port}/", ssl=client_ctx, http2=True)


@pytest.mark.async_timeout(30)
async def test_both_ends_flooding_each_other_make_progress(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    """Small windows, small queues, both sides sending more than either buffers: no deadlock."""
    count, size = 60, 50_000

    async def flood_back(ws: Any) -> None:
        async def send_all() -> None:
            for _ in range(count):
                await ws.send(b"s" * size)

        sending = asyncio.ensure_future(send_all())
        for _ in range(count):
            assert len(await ws.recv()) == size
        await sending

    async with serve(
        flood_back, "127.0.0.1", 0, ssl=server_ctx, http2=True, max_queue=2, compression=None, write_limit=4096
    ) as server:
        url = f"wss://localhost:{port_of(server)}/"
        async with connect(url, ssl=client_ctx, http2=True, max_queue=2, compression=None, write_limit=4096) as ws:

            async def send_all() -> None:
                for _ in range(count):
                    await ws.send(b"c" * size)

            sending = asyncio.ensure_future(send_all())
            await asyncio.sleep(0.3)  # both ends' windows fill up before anyone reads
            for _ in range(count):
                assert len(await ws.recv()) == size
            await sending


async def test_limits_and_keepalive_as_over_http11(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    codes: list[int | None] = []

    async def handler(ws: Any) -> None:
        try:
            await ws.recv()
        except Exception:
            pass
        await ws.wait_closed()
        codes.append(ws.protocol.close_sent.code)

    async with serve(handler, "127.0.0.1", 0, ssl=server_ctx, http2=True, max_size=1000) as server:
        url = f"wss://localhost:{port_of(server)}/"
        async with connect(url, ssl=client_ctx, http2=True) as ws:
            latency = await asyncio.wait_for(await ws.ping(), 5)
            assert latency >= 0
            await ws.send("x" * 1001)
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == 1009
    assert codes == [1009]


def test_http2_argument_type() -> None:
    from wsio.asyncio.http2 import HTTP2Limits, limits_from

    assert limits_from(None) is None and limits_from(False) is None
    assert limits_from(True) == HTTP2Limits()
    with pytest.raises(TypeError, match="http2 must be"):
        limits_from("yes")  # type: ignore[arg-type]


async def test_tls_errors_reach_every_caller(server_ctx: ssl.SSLContext) -> None:
    untrusting = ssl.create_default_context()
    untrusting.set_alpn_protocols(["h2", "http/1.1"])
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=True) as server:
        url = f"wss://localhost:{port_of(server)}/"
        results = await asyncio.gather(*(connect(url, ssl=untrusting, http2=True) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(result, ssl.SSLCertVerificationError) for result in results), results


async def test_wss_without_ssl_argument_offers_h2(server_ctx: ssl.SSLContext, ca: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ssl=, wsio makes the context, and its own HTTP/2 one offers h2 in ALPN."""
    import wsio.asyncio.http2 as http2_module

    create_default_context = ssl.create_default_context

    def trusting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = create_default_context(*args, **kwargs)
        ca.configure_trust(context)
        return context

    monkeypatch.setattr(ssl, "create_default_context", trusting)
    monkeypatch.setattr(http2_module, "_default_context", None)
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=True) as server:
        async with connect(f"wss://localhost:{port_of(server)}/", http2=True) as ws:
            assert ws.transport.get_extra_info("http2_stream_id") == 1
            await ws.send("default context")
            assert await ws.recv() == "default context"


async def test_http11_client_with_an_h2_context_gets_a_clear_error(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    """http2=False with a context that offers h2: the server picks h2, and the client says so at once."""
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=True) as server:
        with pytest.raises(InvalidHandshake, match="chose HTTP/2 in TLS ALPN"):
            await connect(f"wss://localhost:{port_of(server)}/", ssl=client_ctx)
