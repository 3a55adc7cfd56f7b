"""A Starlette app served by uvicorn with wsio.asgi.UvicornProtocol, driven by wsio's asyncio client.

The server is an in-process ``uvicorn.Server`` on a loopback socket bound to
port 0, with h11 and with httptools; one test runs the example app in a
subprocess under uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

import fastapi
import starlette  # noqa: F401  (the test extra has it: missing, these tests fail)
import uvicorn

from wsio.asgi import UvicornProtocol  # noqa: E402
from wsio.asyncio.client import connect  # noqa: E402
from wsio.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "asgi"))
import app as example  # noqa: E402

HTTP_CLASSES = ["h11", "httptools"]


@contextlib.asynccontextmanager
async def serve(http: str = "h11", app: Any = None, **settings: Any) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """Run the example app under uvicorn + wsio on 127.0.0.1:<ephemeral>; yield its ws:// base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app or example.app, http=http, lifespan="off", **{"ws": UvicornProtocol, "log_level": "warning", **settings}
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def last_close(base: str) -> dict[str, Any]:
    url = base.replace("ws://", "http://") + "/last-close"
    for _ in range(100):  # the app records the close a moment after it happens
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        result: dict[str, Any] = json.loads(body)
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("the app never saw the connection close")


@pytest.fixture(autouse=True)
def _forget_last_close() -> None:
    example.last_close.clear()


@pytest.mark.parametrize("http", HTTP_CLASSES)
async def test_text_bytes_and_compression(http: str) -> None:
    async with serve(http) as (base, _):
        async with connect(base + "/echo") as ws:
            assert ws.protocol.deflate is not None  # permessage-deflate negotiated
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff" * 100)
            assert await ws.recv() == b"\x00\xff" * 100


async def test_compression_settings_are_a_class_attribute() -> None:
    from wsio.protocol.deflate import ServerPerMessageDeflateFactory

    class SmallWindows(UvicornProtocol):
        per_message_deflate = ServerPerMessageDeflateFactory(server_max_window_bits=9, compress_settings={"level": 1})

    async with serve(ws=SmallWindows) as (base, _):
        async with connect(base + "/echo") as ws:
            offered = ws.response_headers["Sec-WebSocket-Extensions"] if ws.response_headers is not None else ""
            assert "server_max_window_bits=9" in offered
            await ws.send("x" * 1000)
            assert await ws.recv() == "x" * 1000


@pytest.mark.parametrize("http", HTTP_CLASSES)
async def test_compression_can_be_disabled(http: str) -> None:
    async with serve(http, ws_per_message_deflate=False) as (base, _):
        async with connect(base + "/echo") as ws:
            assert ws.protocol.deflate is None
            await ws.send("plain")
            assert await ws.recv() == "plain"


@pytest.mark.parametrize("http", HTTP_CLASSES)
async def test_one_mebibyte_message(http: str) -> None:
    message = os.urandom(1 << 20)
    text = "x" * (1 << 20)
    async with serve(http) as (base, _):
        async with connect(base + "/echo", max_size=None) as ws:
            await ws.send(message)
            assert await ws.recv() == message
            await ws.send(text)
            assert await ws.recv() == text


@pytest.mark.skipif(sys.platform != "linux", reason="SO_RCVLOWAT is only used on Linux")
@pytest.mark.parametrize("http", HTTP_CLASSES)
async def test_a_large_frame_in_pieces_wakes_the_engine_once_its_rest_is_in(http: str) -> None:
    # As serve()'s connections do (tests/asyncio/test_rcvlowat.py): uvicorn's
    # transport is asyncio's own for a plain socket.
    from tests.asyncio.conftest import RawClient

    def lowat(connection: Any) -> int:
        return int(connection.transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT))

    async def until(condition: Any) -> None:
        for _ in range(500):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("never happened")

    async with serve(http, ws_per_message_deflate=False, ws_max_size=4 << 20) as (base, server):
        client = await RawClient.connect(int(base.rsplit(":", 1)[1]), "/echo")
        await until(lambda: len(server.server_state.connections) == 1)
        (connection,) = server.server_state.connections
        message = os.urandom(900_000)
        data = client.frame(0x82, message)
        client.writer.write(data[:100_000])
        await until(lambda: lowat(connection) > 1)
        assert lowat(connection) == connection.protocol.frame_remaining
        client.writer.write(data[100_000:])
        assert await asyncio.wait_for(client.read_data_frame(), 5) == (0x2, message)
        assert lowat(connection) == 1
        client.send_text("small, right after")
        assert await asyncio.wait_for(client.read_data_frame(), 5) == (0x1, b"small, right after")
        await client.close()


async def test_client_closes_with_code_and_reason() -> None:
    async with serve() as (base, _):
        async with connect(base + "/echo") as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            await ws.close(4001, "client is done")
        assert await last_close(base) == {"by": "client", "code": 4001, "reason": "client is done"}


async def test_app_closes_with_code_and_reason() -> None:
    async with serve() as (base, _):
        async with connect(base + "/echo") as ws:
            await ws.send("close 4002 app is done")
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
        assert caught.value.rcvd is not None
        assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (4002, "app is done")
        assert caught.value.rcvd_then_sent is True  # the app closed first; the client echoed it


async def test_subprotocol() -> None:
    async with serve() as (base, _):
        async with connect(base + "/echo", subprotocols=["other", "chat"]) as ws:
            assert ws.subprotocol == "chat"
        async with connect(base + "/echo", subprotocols=["other"]) as ws:
            assert ws.subprotocol is None


@pytest.mark.parametrize("http", HTTP_CLASSES)
async def test_ws_max_size_fails_with_1009(http: str) -> None:
    async with serve(http, ws_max_size=64 * 1024) as (base, _):
        async with connect(base + "/echo", compression=None) as ws:
            await ws.send(b"x" * (64 * 1024))  # at the limit: fine
            assert len(await ws.recv()) == 64 * 1024
            await ws.send(b"x" * (64 * 1024 + 1))
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1009
        assert await last_close(base) == {"by": "client", "code": 1009, "reason": caught.value.rcvd.reason}


async def test_unknown_path_is_refused_with_403() -> None:
    async with serve() as (base, _):
        with pytest.raises(InvalidStatus) as caught:
            async with connect(base + "/nowhere"):
                pass
        assert caught.value.response.status_code == 403


async def test_server_headers_and_root_path() -> None:
    async with serve(root_path="/api", headers=[("X-Served-By", "wsio")]) as (base, server):
        async with connect(base + "/echo") as ws:
            headers = ws.response.headers
            assert headers["Server"] == "uvicorn"
            assert headers["X-Served-By"] == "wsio"
            assert "Date" in headers
            protocol = next(iter(server.server_state.connections))
            assert isinstance(protocol, UvicornProtocol)
            assert protocol.scope["root_path"] == "/api"
            assert protocol.scope["path"] == "/api/echo"


async def test_keepalive_pings_and_keeps_an_answering_client() -> None:
    async with serve(ws_ping_interval=0.05, ws_ping_timeout=1.0) as (base, server):
        async with connect(base + "/echo", ping_interval=None) as ws:
            protocol = next(iter(server.server_state.connections))
            assert isinstance(protocol, UvicornProtocol)
            for _ in range(100):
                if protocol.ping_sent_at and protocol.latency > 0.0:
                    break  # a ping went out and its pong came back
                await asyncio.sleep(0.01)
            assert protocol.ping_sent_at > 0.0
            await asyncio.sleep(0.2)  # several intervals: still open
            await ws.send("still here")
            assert await ws.recv() == "still here"


async def test_keepalive_off() -> None:
    async with serve(ws_ping_interval=None) as (base, server):
        async with connect(base + "/echo", ping_interval=None):
            protocol = next(iter(server.server_state.connections))
            assert isinstance(protocol, UvicornProtocol)
            assert protocol.ping_timer is None


async def test_shutdown_closes_with_1012() -> None:
    async with serve() as (base, server):
        ws = await connect(base + "/echo")
        await ws.send("hi")
        assert await ws.recv() == "hi"
        server.should_exit = True
        with pytest.raises(ConnectionClosed) as caught:
            await asyncio.wait_for(ws.recv(), 5)
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1012
        await ws.close()


async def wait_until(predicate: Any, what: str, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("http", HTTP_CLASSES)
async def test_ws_max_queue_pauses_reading_until_the_app_catches_up(http: str) -> None:
    """uvicorn's ws_max_queue: reading stops once that many messages wait for an app that doesn't
    receive, and starts again when it does; nothing is lost or reordered."""
    release = asyncio.Event()
    received: list[str] = []

    async def slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await release.wait()
        while (message := await receive())["type"] == "websocket.receive":
            received.append(message["text"])

    max_queue = 8
    async with serve(http, app=slow_app, ws_max_queue=max_queue) as (base, server):
        async with connect(base + "/", compression=None) as ws:
            protocol = next(iter(server.server_state.connections))
            assert isinstance(protocol, UvicornProtocol)
            # One message short of the queue: reading goes on.
            for i in range(max_queue - 1):
                await ws.send(f"{i:08d}")
            await wait_until(lambda: protocol._messages == max_queue - 1, "the server reading the first messages")
            assert not protocol._reading_paused
            await ws.send(f"{max_queue - 1:08d}")
            await wait_until(lambda: protocol._reading_paused, "reading pausing at ws_max_queue")
            assert protocol._messages == max_queue

            # Then far more than the queue: 6.4 MB, more than the socket buffers hold.
            count, size = 400, 16 * 1024

            async def flood() -> None:
                for i in range(max_queue, count):
                    await ws.send(f"{i:08d}" + "x" * (size - 8))

            sender = asyncio.create_task(flood())
            await asyncio.sleep(0.5)
            assert protocol._reading_paused
            assert not sender.done()  # the client is held back by TCP flow control
            assert protocol._messages == max_queue  # nothing more was read
            release.set()
            await asyncio.wait_for(sender, 10)
            await ws.close()
    assert [int(m[:8]) for m in received] == list(range(count))


async def test_app_close_resumes_paused_reading() -> None:
    """The app closes with a message it never received waiting (reading paused at ws_max_queue=1):
    reading resumes, so the client's close frame is read and TCP ends at once, not at close_timeout."""
    queued = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await queued.wait()
        await send({"type": "websocket.close", "code": 4000, "reason": "done"})

    async with serve(app=app, ws_max_queue=1) as (base, server):
        async with connect(base + "/") as ws:
            protocol = next(iter(server.server_state.connections))
            assert isinstance(protocol, UvicornProtocol)
            await ws.send("never received")
            await wait_until(lambda: protocol._reading_paused, "reading pausing at ws_max_queue=1")
            queued.set()
            with pytest.raises(ConnectionClosed) as caught:
                await ws.recv()
            started = asyncio.get_running_loop().time()
            await asyncio.wait_for(ws.wait_closed(), 2)  # close_timeout is 10 s
            assert asyncio.get_running_loop().time() - started < 1
    assert caught.value.rcvd is not None and (caught.value.rcvd.code, caught.value.rcvd.reason) == (4000, "done")


async def test_limit_concurrency_applies_to_websocket_handshakes() -> None:
    """uvicorn's --limit-concurrency: past it, a WebSocket handshake gets 503 and Retry-After, as a request does."""
    async with serve(limit_concurrency=2) as (base, _):
        first = await connect(base + "/echo")
        second = await connect(base + "/echo")
        with pytest.raises(InvalidStatus) as caught:
            await connect(base + "/echo")
        assert caught.value.response.status_code == 503
        assert caught.value.response.headers["Retry-After"] == "5"
        await first.close()
        await asyncio.sleep(0.1)  # the server sees it gone
        async with connect(base + "/echo") as third:
            await third.send("room again")
            assert await third.recv() == "room again"
        await second.close()


async def test_denial_response_from_starlette() -> None:
    """The websocket.http.response extension: the app answers the handshake with its own HTTP response."""
    from starlette.responses import JSONResponse

    async def deny(websocket: Any) -> None:
        await websocket.send_denial_response(JSONResponse({"error": "no token"}, status_code=401))

    app = example.Starlette(routes=[example.WebSocketRoute("/", deny)])
    async with serve(app=app) as (base, _):
        with pytest.raises(InvalidStatus) as caught:
            async with connect(base + "/"):
                pass
    response = caught.value.response
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == {"error": "no token"}


async def test_wsio_connection_gives_the_hub_an_asgi_websocket() -> None:
    """wsio_connection(websocket): a Starlette endpoint subscribes its WebSocket to a wsio.Hub; a
    message published reaches every subscriber, and a client that left is no longer one."""
    from starlette.websockets import WebSocket

    from wsio import Hub
    from wsio.asgi import wsio_connection

    hub = Hub()

    async def room(websocket: WebSocket) -> None:
        await websocket.accept()
        connection = wsio_connection(websocket)
        assert connection is next(c for c in server.server_state.connections if c.scope is websocket.scope)
        await hub.subscribe(connection, "room")
        # It is a wsio connection in full: its own send() and ping() work beside the app's.
        await connection.send("subscribed")
        await connection.ping()
        async for text in websocket.iter_text():
            await hub.publish("room", text)

    app = example.Starlette(routes=[example.WebSocketRoute("/room", room)])
    async with serve(app=app) as (base, server):
        clients = [await connect(base + "/room") for _ in range(3)]
        for client in clients:
            assert await client.recv() == "subscribed"
        await clients[0].send("to all")
        for client in clients:
            assert await client.recv(timeout=5) == "to all"
        await clients[2].close()
        await wait_until(lambda: len(hub.subscribers("room")) == 2, "the hub forgetting a closed connection")
        await clients[1].send("to those left")
        for client in clients[:2]:
            assert await client.recv(timeout=5) == "to those left"
        for client in clients[:2]:
            await client.close()
    await hub.close()


async def test_wsio_connection_under_another_engine_says_how_to_get_one() -> None:
    from wsio.asgi import wsio_connection

    failures: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        try:
            wsio_connection(scope)
        except LookupError as exc:
            failures.append(str(exc))
        await send({"type": "websocket.close"})

    async with serve(app=app, ws="websockets-sansio") as (base, _):
        with pytest.raises(InvalidStatus):
            await connect(base + "/")
    assert len(failures) == 1 and "--ws wsio.asgi:UvicornProtocol" in failures[0], failures


def handshake_request(port: int, path: str = "/") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def dechunk(data: bytes) -> bytes:
    """A chunked body (RFC 9112 7.1), which must end with the last chunk."""
    body = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert data == b"\r\n", data
            return body
        body, data = body + data[:size], data[size:]
        assert data[:2] == b"\r\n"
        data = data[2:]


@pytest.mark.parametrize("http", HTTP_CLASSES)
@pytest.mark.parametrize("length", [None, 27], ids=["chunked", "content-length"])
async def test_denial_response_body_streams(http: str, length: int | None) -> None:
    """websocket.http.response.body with more_body=True: each part reaches the client as the app sends it."""
    go_on = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        headers = [(b"content-type", b"text/plain")]
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b"first part\n", "more_body": True})
        await go_on.wait()
        await send({"type": "websocket.http.response.body", "body": b"second part\n", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"end\n"})

    async with serve(http, app=app) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(handshake_request(port))
        data = b""
        while b"first part\n" not in data:  # before the app sends the rest
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            assert chunk, data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().lower().split("\r\n")
        assert lines[0] == "http/1.1 401 unauthorized"
        assert "connection: close" in lines
        go_on.set()
        body += await asyncio.wait_for(reader.read(), 5)  # to EOF: the server closes after the last part
        writer.close()
        if length is None:
            assert "transfer-encoding: chunked" in lines and not any(line.startswith("content-length") for line in lines)
            assert dechunk(body) == b"first part\nsecond part\nend\n"
        else:
            assert "content-length: 27" in lines and not any(line.startswith("transfer-encoding") for line in lines)
            assert body == b"first part\nsecond part\nend\n"

        # wsio's client reads the streamed refusal too.
        go_on.clear()
        asyncio.get_running_loop().call_later(0.1, go_on.set)
        with pytest.raises(InvalidStatus) as caught:
            await connect(base + "/")
        assert caught.value.response.status_code == 401
        assert caught.value.response.body == b"first part\nsecond part\nend\n"


async def test_denial_response_cut_short_by_an_app_error() -> None:
    """An app that raises in the middle of a streamed refusal: no last chunk, so the client sees the body is incomplete."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("the app broke")

    async with serve(app=app, log_level="critical") as (base, _):
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(handshake_request(port))
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 ")
    assert body == b"7\r\npartial\r\n"  # and no "0\r\n\r\n"


api = fastapi.FastAPI()


@api.websocket("/rooms/{room}")
async def room_endpoint(websocket: fastapi.WebSocket, room: str, name: str = "anonymous") -> None:
    await websocket.accept()
    try:
        async for text in websocket.iter_text():
            await websocket.send_text(f"{room}/{name}: {text}")
    except fastapi.WebSocketDisconnect:
        pass


async def test_fastapi_endpoint_with_path_and_query_parameters() -> None:
    async with serve(app=api, http="httptools") as (base, _):
        async with connect(base + "/rooms/lobby?name=ada") as ws:
            await ws.send("hello")
            assert await ws.recv() == "lobby/ada: hello"


async def test_the_log_says_why_each_connection_closed() -> None:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    async with serve(ws_max_size=1000, log_level="info") as (base, _):
        handler = Collect()
        logging.getLogger("uvicorn.error").addHandler(handler)
        try:
            async with connect(base + "/echo") as ws:
                await ws.send("bye")
                await ws.recv()
            async with connect(base + "/echo", compression=None) as ws:
                await ws.send(b"x" * 1001)
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
            async with connect(base + "/echo") as ws:
                await ws.send("close 4003 done here")
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
            await asyncio.sleep(0.1)
        finally:
            logging.getLogger("uvicorn.error").removeHandler(handler)
    closes = [line for line in lines if "closed:" in line]
    assert any('"WebSocket /echo" closed: client closed with 1000' == line[line.index('"') :] for line in closes), closes
    assert any(
        re.search(r"closed: failed with 1009: message of (at least )?1001 bytes exceeds max_size=1000$", line) for line in closes
    ), closes
    assert any("closed: app closed with 4003 'done here'" in line for line in closes), closes
    assert any('"WebSocket /echo" [accepted]' in line for line in lines), lines


async def test_tls(tmp_path: Path) -> None:
    """With uvicorn's --ssl-certfile/--ssl-keyfile, wss:// works and the scope's scheme is wss."""
    import trustme
    import ssl

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with serve(ssl_certfile=str(certfile), ssl_keyfile=str(keyfile)) as (base, server):
        async with connect(base.replace("ws://", "wss://") + "/echo", ssl=client_context) as ws:
            await ws.send("secret")
            assert await ws.recv() == "secret"
            protocol = next(iter(server.server_state.connections))
            assert isinstance(protocol, UvicornProtocol)
            assert protocol.scope["scheme"] == "wss"


async def raw_client(uri: str) -> tuple[Any, asyncio.StreamReader, asyncio.StreamWriter]:
    """A client on the core over a plain stream, past its handshake: for writing frames wsio's clients wouldn't."""
    from wsio.protocol import ClientProtocol
    from wsio.protocol.uri import parse_uri

    client = ClientProtocol(parse_uri(uri))
    client.send_request(client.connect())
    reader, writer = await asyncio.open_connection("127.0.0.1", int(uri.rsplit(":", 1)[1].split("/")[0]))
    writer.write(client.data_to_send())
    events: list[Any] = []
    while not events:
        events += client.receive_data(await reader.read(65536))
    return client, reader, writer


async def test_messages_before_a_protocol_error_are_answered_first() -> None:
    """A message and a bad frame in one read: the app echoes the message, then the connection fails with 1002."""
    from wsio.protocol import Close
    from wsio.protocol.frames import FIN, OP_TEXT, build_frame

    async with serve() as (base, _):
        client, reader, writer = await raw_client(base + "/echo")
        # A text message, then a text frame with RSV2 set (no extension defines it).
        mask = b"\x01\x02\x03\x04"
        writer.write(build_frame(FIN | OP_TEXT, b"first", mask) + build_frame(FIN | 0x20 | OP_TEXT, b"bad", mask))
        received: list[Any] = []
        while not any(isinstance(event, Close) for event in received):
            data = await asyncio.wait_for(reader.read(65536), 5)
            if not data:
                break
            received += client.receive_data(data)
        writer.close()
    assert received[0] == "first"
    close = received[-1]
    assert close.code == 1002


async def test_a_failed_connection_reads_on_until_the_client_s_close_frame() -> None:
    """After a protocol error the server sends 1002 and half-closes, then reads and discards what the
    client still sends, without a reset, until its close frame: the core's should_send_eof() and
    should_close_transport(), as in wsio's own server."""
    from wsio.protocol import Close
    from wsio.protocol.frames import FIN, OP_BINARY, OP_CLOSE, OP_TEXT, build_frame

    async with serve() as (base, server):
        client, reader, writer = await raw_client(base + "/echo")
        mask = b"\x01\x02\x03\x04"
        writer.write(build_frame(FIN | 0x20 | OP_TEXT, b"bad", mask))  # RSV2: no extension defines it
        received: list[Any] = []
        while True:  # the close frame, then EOF: the server ended its side
            data = await asyncio.wait_for(reader.read(65536), 5)
            if not data:
                break
            received += client.receive_data(data)
        assert isinstance(received[-1], Close) and received[-1].code == 1002, received
        assert server.server_state.connections  # still reading
        for _ in range(32):  # 2 MiB more, which the server must read, or the client gets a reset
            writer.write(build_frame(FIN | OP_BINARY, b"x" * 65536, mask))
            await writer.drain()
        writer.write(build_frame(FIN | OP_CLOSE, b"\x03\xe8", mask))
        await writer.drain()
        await wait_until(lambda: not server.server_state.connections, "the server closing once the close frame came")
        writer.close()
        assert await last_close(base) == {"by": "client", "code": 1002, "reason": received[-1].reason}


EXAMPLE_COMMANDS = {
    # The command line the docs give, on uvloop and httptools.
    "uvicorn-cli-uvloop": ["-m", "uvicorn", "app:app", "--ws", "wsio.asgi:UvicornProtocol", "--loop", "uvloop",
                           "--http", "httptools", "--host", "127.0.0.1", "--port", "0",
                           "--app-dir", str(ROOT / "examples" / "asgi")],
    # The example as a script: uvicorn.run(app, ws="wsio.asgi:UvicornProtocol").
    "script": [str(ROOT / "examples" / "asgi" / "app.py"), "--port", "0"],
}  # fmt: skip


@pytest.mark.parametrize("command", EXAMPLE_COMMANDS, ids=list(EXAMPLE_COMMANDS))
def test_example_in_a_subprocess(command: str) -> None:
    """The example app, run as the docs say, serves its endpoint through wsio."""
    import uvloop  # noqa: F401  (the example runs on it)

    proc = subprocess.Popen([sys.executable, *EXAMPLE_COMMANDS[command]], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        port = None
        for line in proc.stderr:
            found = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
                break
        assert port, "uvicorn did not start"

        async def talk() -> None:
            async with connect(f"ws://127.0.0.1:{port}/echo", subprotocols=["chat"]) as ws:
                assert ws.subprotocol == "chat"
                await ws.send("over uvicorn")
                assert await ws.recv() == "over uvicorn"

        asyncio.run(talk())
    finally:
        proc.terminate()
        proc.wait(10)
