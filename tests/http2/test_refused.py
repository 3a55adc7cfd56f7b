"""A stream over the concurrent-stream limit is refused alone (RFC 9113 5.1.2, 8.7)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import h2.errors
import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

import wsio.asyncio.http2 as http2_module
from wsio import connect, serve
from wsio.asyncio.http2 import HTTP2Limits

from .helpers import RawH2, echo_over, open_websocket, port_of


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


class Pushy(h2.connection.H2Connection):
    """A client that opens streams past the server's SETTINGS_MAX_CONCURRENT_STREAMS."""

    open_outbound_streams = property(lambda self: 0)  # type: ignore[assignment]


async def test_stream_over_the_limit_is_refused_alone(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=HTTP2Limits(max_concurrent_streams=2)) as server:
        raw = await RawH2.open(port_of(server), client_ctx)
        raw.conn.__class__ = Pushy
        assert raw.conn.remote_settings.max_concurrent_streams == 2
        first, status = await open_websocket(raw, "/1")
        assert status == 200
        second, status = await open_websocket(raw, "/2")
        assert status == 200
        _, status = await open_websocket(raw, "/3")
        assert status == 0, "the third stream is reset, not answered"
        assert not any(isinstance(e, (h2.events.ConnectionTerminated, h2.events.StreamReset)) for e in raw.events)
        for i in range(5):
            assert await echo_over(raw, first, f"one {i}") == f"one {i}"
            assert await echo_over(raw, second, f"two {i}") == f"two {i}"
        # Once a stream is done, there is room again on the same connection.
        raw.conn.reset_stream(first, h2.errors.ErrorCodes.CANCEL)
        raw.flush()
        await asyncio.sleep(0.1)
        fourth, status = await open_websocket(raw, "/4")
        assert status == 200
        assert await echo_over(raw, fourth, "four") == "four"
        assert await echo_over(raw, second, "two again") == "two again"
        raw.close()


async def test_refusal_code_is_refused_stream(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=HTTP2Limits(max_concurrent_streams=1)) as server:
        raw = await RawH2.open(port_of(server), client_ctx)
        raw.conn.__class__ = Pushy
        _, status = await open_websocket(raw, "/1")
        assert status == 200
        stream_id = raw.conn.get_next_available_stream_id()
        raw.conn.send_headers(
            stream_id,
            [
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "https"),
                (":authority", "localhost"),
                (":path", "/2"),
            ],
        )
        raw.flush()
        event = await raw.until(lambda e: isinstance(e, h2.events.StreamReset) and e.stream_id == stream_id)
        assert isinstance(event, h2.events.StreamReset)
        assert event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
        raw.close()


async def test_refusals_count_as_a_flood(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    limits = HTTP2Limits(max_concurrent_streams=1, max_resets=5)
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=limits) as server:
        raw = await RawH2.open(port_of(server), client_ctx)
        raw.conn.__class__ = Pushy
        _, status = await open_websocket(raw, "/1")
        assert status == 200
        headers = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":authority", "localhost"),
            (":path", "/"),
        ]
        for _ in range(10):
            raw.conn.send_headers(raw.conn.get_next_available_stream_id(), headers)
        raw.flush()
        event = await raw.until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
        assert isinstance(event, h2.events.ConnectionTerminated)
        assert event.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        raw.close()


async def test_client_opens_a_refused_websocket_on_another_connection(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's view of the limit is wrong (as after a SETTINGS change in flight): the server refuses, the client goes elsewhere."""
    monkeypatch.setattr(http2_module._H2Connection, "open_outbound_streams", property(lambda self: 0))
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=HTTP2Limits(max_concurrent_streams=2)) as server:
        url = f"wss://localhost:{port_of(server)}/"
        first = await connect(url, ssl=client_ctx, http2=True)
        second = await connect(url, ssl=client_ctx, http2=True)
        assert first.transport._session is second.transport._session
        third = await connect(url, ssl=client_ctx, http2=True)
        assert third.transport._session is not first.transport._session
        assert third.transport.get_extra_info("http2_stream_id") == 1
        for ws in (first, second, third):
            await ws.send("still here")
            assert await ws.recv() == "still here"
        for ws in (first, second, third):
            await ws.close()


@pytest.mark.parametrize("how", ["REFUSED_STREAM", "GOAWAY"])
async def test_client_gives_up_after_one_retry(client_ctx: ssl.SSLContext, cert_files: tuple[str, str], how: str) -> None:
    """A server that refuses every stream: the WebSocket opens twice, on two connections, then connect() raises.

    GOAWAY with a last stream id below the stream's: not processed either (RFC 9113 8.7).
    """
    from wsio.exceptions import InvalidMessage

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert_files)
    context.set_alpn_protocols(["h2"])
    connections = []

    async def refusing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.local_settings = h2.settings.Settings(
            client=False, initial_values={h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1}
        )
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        connections.append(conn)
        while data := await reader.read(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    if how == "GOAWAY":
                        conn.close_connection(last_stream_id=0)
                    else:
                        conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            writer.write(conn.data_to_send())
        writer.close()

    server = await asyncio.start_server(refusing, "127.0.0.1", 0, ssl=context)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(InvalidMessage) as raised:
            await connect(f"wss://localhost:{port}/", ssl=client_ctx, http2=True)
        assert f"on two connections ({how})" in str(raised.value)
    assert len(connections) == 2


async def test_server_allowing_no_stream_is_a_clear_error(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    from wsio.exceptions import InvalidHandshake

    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=HTTP2Limits(max_concurrent_streams=0)) as server:
        with pytest.raises(InvalidHandshake, match="allows no HTTP/2 stream"):
            await connect(f"wss://localhost:{port_of(server)}/", ssl=client_ctx, http2=True)
