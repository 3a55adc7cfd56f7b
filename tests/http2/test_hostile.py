"""Hostile HTTP/2 peers: floods and oversized headers end with GOAWAY, and leave nothing behind."""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Any

import h2.errors
import h2.events
import h2.settings
import pytest

from wsio import serve
from wsio.asyncio.http2 import HTTP2Limits

from .helpers import RawH2, port_of

CONNECT = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":authority", "localhost"), (":path", "/")]
WS = [*CONNECT, ("sec-websocket-version", "13")]


async def echo(ws: object) -> None:
    async for message in ws:  # type: ignore[attr-defined]
        await ws.send(message)  # type: ignore[attr-defined]


def goaway(event: object) -> bool:
    return isinstance(event, h2.events.ConnectionTerminated)


async def assert_calmed(raw: RawH2) -> None:
    event = await raw.until(goaway)
    assert isinstance(event, h2.events.ConnectionTerminated)
    assert event.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert await asyncio.wait_for(raw.reader.read(), 5) == b"", "the server closes TCP too"
    raw.close()


async def wait_empty(server: object) -> None:
    for _ in range(100):
        if not server.connections:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{len(server.connections)} connections left")  # type: ignore[attr-defined]


@pytest.mark.allow_loop_errors
async def test_rapid_reset(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    limits = HTTP2Limits(max_resets=50)
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=limits) as server:
        raw = await RawH2.open(port_of(server), client_ctx)
        for _ in range(200):
            stream_id = raw.conn.get_next_available_stream_id()
            raw.conn.send_headers(stream_id, WS)
            raw.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        raw.flush()
        await assert_calmed(raw)
        await wait_empty(server)


async def test_settings_flood(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=True) as server:
        raw = await RawH2.open(port_of(server), client_ctx)
        for i in range(150):
            raw.conn.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 4096 + i % 2})
        raw.flush()
        await assert_calmed(raw)


async def test_ping_flood(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=True) as server:
        raw = await RawH2.open(port_of(server), client_ctx)
        for i in range(150):
            raw.conn.ping(i.to_bytes(8, "big"))
        raw.flush()
        await assert_calmed(raw)


async def test_oversized_header_list(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=True) as server:
        raw = await RawH2.open(port_of(server), client_ctx)
        stream_id = raw.conn.get_next_available_stream_id()
        # 16 KiB by default: over it, the list never reaches the handshake parser.
        raw.conn.send_headers(stream_id, [*WS, ("x-big", "a" * 20_000)])
        raw.flush()
        event = await raw.until(lambda e: goaway(e) or isinstance(e, (h2.events.StreamReset, h2.events.ResponseReceived)))
        assert isinstance(event, h2.events.ConnectionTerminated)
        assert event.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        raw.close()
        await wait_empty(server)


async def test_too_many_streams(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    limits = HTTP2Limits(max_concurrent_streams=10)
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=limits) as server:
        raw = await RawH2.open(port_of(server), client_ctx)
        assert raw.conn.remote_settings.max_concurrent_streams == 10
        # A client that ignores the setting.
        raw.conn.remote_settings._settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = collections.deque([1000])
        for _ in range(11):
            raw.conn.send_headers(raw.conn.get_next_available_stream_id(), WS)
        raw.flush()
        # The 11th stream alone is refused (RFC 9113 5.1.2); the first ten are answered.
        event = await raw.until(lambda e: isinstance(e, h2.events.StreamReset))
        assert isinstance(event, h2.events.StreamReset)
        assert (event.stream_id, event.error_code) == (21, h2.errors.ErrorCodes.REFUSED_STREAM)
        for stream_id in range(1, 21, 2):
            answered = await raw.until(lambda e, i=stream_id: isinstance(e, h2.events.ResponseReceived) and e.stream_id == i)
            assert answered is not None
        assert not any(goaway(e) for e in raw.events)
        raw.close()
        await wait_empty(server)


async def test_large_headers_within_the_list_limit_meet_the_handshake_limits(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    limits = HTTP2Limits(max_header_list_size=65536)
    async with serve(echo, "127.0.0.1", 0, ssl=server_ctx, http2=limits) as server:
        raw = await RawH2.open(port_of(server), client_ctx)
        status, _, body = await raw.request([*WS, ("x-big", "a" * 20_000)], end_stream=False)
        assert status == 431  # the same HandshakeLimits as HTTP/1.1
        assert b"exceeds max_line" in body
        raw.close()
        await wait_empty(server)


async def test_data_past_the_window_is_a_flow_control_error(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    """A client that ignores flow control on a stream whose handler doesn't read: GOAWAY.

    What a stream holds unread is bounded by its window: h2 refuses DATA past it.
    """
    import hyperframe.frame

    opened = asyncio.Event()
    streams: list[Any] = []

    async def idle(ws: Any) -> None:
        streams.append(ws.transport)
        opened.set()
        await ws.wait_closed()

    async with serve(idle, "127.0.0.1", 0, ssl=server_ctx, http2=True, max_queue=1) as server:
        raw = await RawH2.open(port_of(server), client_ctx)
        stream_id = raw.conn.get_next_available_stream_id()
        raw.conn.send_headers(stream_id, WS)
        raw.flush()
        status = await raw.until(lambda e: isinstance(e, h2.events.ResponseReceived))
        assert status is not None
        await asyncio.wait_for(opened.wait(), 5)
        # Masked binary WebSocket frames of 16,000 bytes, in DATA frames h2 would refuse to send.
        frame = b"\x82\xfe\x3e\x80" + b"\x00\x00\x00\x00" + b"x" * 16000
        for _ in range(64):
            data = hyperframe.frame.DataFrame(stream_id, data=frame)
            raw.writer.write(data.serialize())
        event = await raw.until(goaway)
        assert isinstance(event, h2.events.ConnectionTerminated)
        assert event.error_code == h2.errors.ErrorCodes.FLOW_CONTROL_ERROR
        raw.close()
        await wait_empty(server)
