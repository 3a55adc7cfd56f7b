"""Closing on the wire like the peers wsio talks to (asyncio and callback APIs).

- The close frame that answers the peer's carries its code and reason back.
- A failed connection reads on, discarding, until the peer's close frame or
  EOF: a peer that keeps sending reads the close frame and its code, and gets
  no TCP reset.
- ``await server.close(close_connections=False)`` returns once the kept
  connections have ended.
- Handshake and TLS errors say what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import tracemalloc
from typing import Any

import pytest
import websockets

import wsio
import wsio.sync
from tests.asyncio.conftest import RawClient
from tests.close_peers import invalid_utf8_then_flood, oversized_then_rest, serve_invalid_utf8_then_flood
from tests.helpers import self_signed_cert
from wsio.exceptions import CertificateVerificationError, ConnectionClosedError, InvalidStatus
from wsio.protocol.frames import OP_CLOSE


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


class EchoListener(wsio.Listener):
    def on_message(self, connection: Any, message: Any) -> None:
        connection.send(message)


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


# -- the close reply carries the reason back -------------------------------------------------


async def test_close_reply_echoes_code_and_reason_to_a_raw_client() -> None:
    async with wsio.serve(echo, "127.0.0.1", 0) as server:
        client = await RawClient.connect(port_of(server))
        client.send_close(4000, "bye now, ünicode")
        assert await client.read_frame() == (OP_CLOSE, struct.pack("!H", 4000) + "bye now, ünicode".encode())
        await client.close()


async def test_close_reply_echoes_the_reason_to_websockets() -> None:
    async with wsio.serve(echo, "127.0.0.1", 0) as server:
        async with websockets.connect(f"ws://127.0.0.1:{port_of(server)}") as ws:
            await ws.close(4001, "done for today")
        rcvd = ws.protocol.close_rcvd
        assert rcvd is not None and (rcvd.code, rcvd.reason) == (4001, "done for today")


async def test_wsio_client_gets_websockets_servers_reason_and_gives_its_own() -> None:
    # The other way round: the wsio client answers websockets' close with its reason.
    async def closer(ws: Any) -> None:
        await ws.close(4002, "server leaving")

    async with websockets.serve(closer, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with wsio.connect(f"ws://127.0.0.1:{port}") as ws:
            with pytest.raises(wsio.ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd is not None and info.value.sent is not None
        assert (info.value.sent.code, info.value.sent.reason) == (4002, "server leaving")


# -- failing: a peer that keeps sending reads the close frame, gets no reset ------------------


@pytest.mark.parametrize("api", ["handler", "listener"])
async def test_invalid_utf8_then_flood_reads_1007_without_reset(api: str) -> None:
    serve = wsio.serve(echo, "127.0.0.1", 0) if api == "handler" else wsio.serve_listener(EchoListener, "127.0.0.1", 0)
    async with serve as server:
        outcome = await asyncio.to_thread(invalid_utf8_then_flood, port_of(server))
    assert outcome.reset is None, f"reset after {outcome.sent} bytes: {outcome.reset!r}"
    assert outcome.close_code == 1007
    assert outcome.eof
    assert outcome.sent > 0


@pytest.mark.parametrize("api", ["handler", "listener"])
async def test_oversized_message_then_rest_reads_1009_without_reset(api: str) -> None:
    options: dict[str, Any] = {"max_size": 1000}
    serve = (
        wsio.serve(echo, "127.0.0.1", 0, **options)
        if api == "handler"
        else wsio.serve_listener(EchoListener, "127.0.0.1", 0, **options)
    )
    async with serve as server:
        outcome = await asyncio.to_thread(oversized_then_rest, port_of(server))
    assert outcome.reset is None, f"reset after {outcome.sent} bytes: {outcome.reset!r}"
    assert outcome.close_code == 1009
    assert "max_size=1000" in outcome.close_reason
    assert outcome.eof


async def test_discarding_a_flood_keeps_memory_flat() -> None:
    # A peer that goes on sending for a second after its invalid UTF-8 (tens of
    # megabytes on loopback): the server reads it all and keeps none of it.
    async with wsio.serve(echo, "127.0.0.1", 0, max_size=None) as server:
        tracemalloc.start()
        try:
            outcome = await asyncio.to_thread(invalid_utf8_then_flood, port_of(server), 1.0)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert outcome.reset is None and outcome.close_code == 1007
    assert outcome.sent > 4 << 20, outcome.sent
    assert peak < 4 << 20, f"{peak} bytes at the peak while {outcome.sent} bytes were discarded"


async def test_server_handler_sees_the_failure_at_once() -> None:
    # Reading on after the failure doesn't delay what the application sees.
    seen: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def handler(ws: Any) -> None:
        try:
            await ws.recv()
        except BaseException as exc:
            seen.set_result(exc)
            raise

    async with wsio.serve(handler, "127.0.0.1", 0, close_timeout=5) as server:
        client = await RawClient.connect(port_of(server))
        client.send_frame(0x1, b"\xff")
        client.send_frame(0x2, b"still sending")
        exc = await asyncio.wait_for(seen, 1)
        assert isinstance(exc, ConnectionClosedError) and exc.sent is not None and exc.sent.code == 1007
        await client.close()


async def test_failed_connection_closes_tcp_after_close_timeout_if_the_peer_never_closes() -> None:
    loop = asyncio.get_running_loop()
    tcp_closed: asyncio.Future[float] = loop.create_future()

    async def handler(ws: Any) -> None:
        with contextlib.suppress(ConnectionClosedError):
            async for _ in ws:
                pass
        await ws.wait_closed()
        tcp_closed.set_result(loop.time())

    async with wsio.serve(handler, "127.0.0.1", 0, close_timeout=1.0) as server:
        client = await RawClient.connect(port_of(server))
        client.send_frame(0x1, b"\xff")
        start = loop.time()
        assert (await client.read_frame())[0] == OP_CLOSE
        # The server ends its side at once (half-close): its close frame, then EOF...
        assert await asyncio.wait_for(client.reader.read(), 3) == b""
        assert loop.time() - start < 0.6  # well before close_timeout, with room for a loaded machine
        # ...and, with neither a close frame nor EOF from us, closes TCP after close_timeout.
        assert 0.9 < await asyncio.wait_for(tcp_closed, 4) - start < 3.5


async def test_tcp_ends_by_close_timeout_when_the_close_reply_waits_behind_data_the_peer_never_reads() -> None:
    """The server answers a close frame and closes TCP with megabytes still unsent: close_timeout still ends it.

    With nothing left to write, closing needs no deadline (asyncio's transport
    ends at once); with data left for a peer that doesn't read, it does.
    """
    loop = asyncio.get_running_loop()
    closed: asyncio.Future[float] = loop.create_future()

    class Flooder(wsio.Listener):
        def on_open(self, connection: Any) -> None:
            connection.send(b"x" * (16 << 20))  # more than the sockets' buffers hold

        def on_close(self, connection: Any, exc: Any) -> None:
            closed.set_result(loop.time())

    # A write limit above the message: the server reads on, and reads the close frame.
    async with wsio.serve_listener(Flooder, "127.0.0.1", 0, close_timeout=0.5, write_limit=64 << 20) as server:
        client = await RawClient.connect(port_of(server))
        await asyncio.sleep(0.2)  # the message fills the buffers; the client reads no more of it
        start = loop.time()
        client.send_close(1000, "")
        assert 0.4 < await asyncio.wait_for(closed, 5) - start < 3
        client.writer.close()


@pytest.mark.parametrize("speed", ["asyncio", "sync"])
async def test_client_failing_against_a_flooding_server_is_read_without_reset(speed: str) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    peer = asyncio.create_task(asyncio.to_thread(serve_invalid_utf8_then_flood, listener))
    try:
        if speed == "asyncio":
            async with wsio.connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
            exc = info.value
        else:

            def sync_client() -> BaseException:
                with wsio.sync.connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
                    with pytest.raises(ConnectionClosedError) as info:
                        ws.recv()
                return info.value

            exc = await asyncio.to_thread(sync_client)
        assert exc.sent is not None and exc.sent.code == 1007
        outcome = await asyncio.wait_for(peer, 20)
    finally:
        listener.close()
    assert outcome.reset is None, f"reset after {outcome.sent} bytes: {outcome.reset!r}"
    assert outcome.close_code == 1007


# -- close(close_connections=False) waits -----------------------------------------------------


async def test_close_keeping_connections_returns_when_they_end() -> None:
    server = await wsio.serve(echo, "127.0.0.1", 0)
    ws = await wsio.connect(f"ws://127.0.0.1:{port_of(server)}")
    closing = asyncio.ensure_future(server.close(close_connections=False))
    await asyncio.sleep(0.1)
    assert not closing.done()  # the kept connection is still open
    await ws.send("served")
    assert await ws.recv() == "served"
    await ws.close()
    await asyncio.wait_for(closing, 2)
    assert not server.connections


async def test_close_keeping_connections_of_a_listener_server() -> None:
    server = await wsio.serve_listener(EchoListener, "127.0.0.1", 0)
    ws = await wsio.connect(f"ws://127.0.0.1:{port_of(server)}")
    closing = asyncio.ensure_future(server.close(close_connections=False))
    await asyncio.sleep(0.1)
    assert not closing.done()
    await ws.close()
    await asyncio.wait_for(closing, 2)


async def test_close_keeping_connections_with_none_open_returns_at_once() -> None:
    server = await wsio.serve(echo, "127.0.0.1", 0)
    await asyncio.wait_for(server.close(close_connections=False), 1)


# -- errors that say what to do ------------------------------------------------------------------


async def test_plain_http_page_says_it_is_not_a_websocket_endpoint() -> None:
    async def page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b"<html>hello</html>"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    http = await asyncio.start_server(page, "127.0.0.1", 0)
    port = http.sockets[0].getsockname()[1]
    try:
        with pytest.raises(InvalidStatus) as info:
            await wsio.connect(f"ws://127.0.0.1:{port}/chat?room=1")
        assert str(info.value) == (
            f"the server answered HTTP 200 with a page, not a WebSocket handshake: "
            f"is ws://127.0.0.1:{port}/chat?room=1 a WebSocket endpoint?"
        )
        assert info.value.status_code == 200
    finally:
        http.close()


async def test_rejection_still_says_rejected() -> None:
    async def forbid(connection: Any, request: Any) -> Any:
        return (403, [], b"no\n")

    async with wsio.serve(echo, "127.0.0.1", 0, process_request=forbid) as server:
        with pytest.raises(InvalidStatus) as info:
            await wsio.connect(f"ws://127.0.0.1:{port_of(server)}")
    assert str(info.value) == "server rejected WebSocket connection: HTTP 403"


async def test_untrusted_certificate_says_what_to_do(tmp_path: Any) -> None:
    cert, key = self_signed_cert(str(tmp_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    async with wsio.serve(echo, "127.0.0.1", 0, ssl=context) as server:
        uri = f"wss://localhost:{port_of(server)}/"
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await wsio.connect(uri)
        assert isinstance(info.value, CertificateVerificationError)
        message = str(info.value)
        assert "certificate verify failed" in message  # what ssl said, first
        assert uri in message and "ssl=ssl.create_default_context(cafile=" in message and "wsio -k" in message
        assert info.value.verify_code == 18  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        # The advice works: trusting the certificate connects.
        async with wsio.connect(uri, ssl=ssl.create_default_context(cafile=cert)) as ws:
            await ws.send("trusted")
            assert await ws.recv() == "trusted"
