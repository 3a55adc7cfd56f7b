"""connect() end to end over loopback: what a client author relies on."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import websockets.asyncio.server as websockets_server  # interop: the python-websockets server

import wsio
import wsio.asyncio.client
from wsio import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    RedirectError,
    connect,
    serve,
)


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


def uri_of(server: Any, path: str = "/") -> str:
    return f"ws://127.0.0.1:{port_of(server)}{path}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def echo(ws: wsio.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wsio._client_common, "BACKOFF_INITIAL_DELAY", 0.02)
    monkeypatch.setattr(wsio._client_common, "BACKOFF_MAX_DELAY", 0.1)


# -- opening and closing ----------------------------------------------------------------


async def test_async_with_connect_closes_on_exit() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        async with connect(uri_of(server)) as ws:
            assert isinstance(ws, wsio.ClientConnection)
            await ws.send("hi")
            assert await ws.recv() == "hi"
        assert ws.closed and ws.close_code == 1000


async def test_async_with_connect_closes_when_the_body_raises() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        with pytest.raises(ZeroDivisionError):
            async with connect(uri_of(server)) as ws:
                1 / 0
        assert ws.closed and ws.close_code == 1000


async def test_await_connect() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        ws = await connect(uri_of(server))
        try:
            await ws.send(b"bin")
            assert await ws.recv() == b"bin"
        finally:
            await ws.close()
        assert ws.closed


async def test_connect_with_host_and_port_override_and_sock() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        # The URI names the Host header; host= and port= say where to connect.
        async with connect("ws://example.invalid/", host="127.0.0.1", port=port_of(server)) as ws:
            assert ws.request.headers["Host"] == "example.invalid"
            await ws.send("routed")
            assert await ws.recv() == "routed"
        sock = socket.create_connection(("127.0.0.1", port_of(server)))
        sock.setblocking(False)
        async with connect("ws://anything.invalid/", sock=sock) as ws:
            await ws.send("own socket")
            assert await ws.recv() == "own socket"


async def test_invalid_uri() -> None:
    with pytest.raises(InvalidURI):
        await connect("http://x")
    with pytest.raises(InvalidURI):
        await connect("not a uri")


async def test_invalid_status_carries_status_headers_and_body() -> None:
    def forbid(connection, request):  # type: ignore[no-untyped-def]
        return 403, {"X-Reason": "no entry"}, b"Forbidden here\n"

    async with serve(echo, "127.0.0.1", 0, process_request=forbid) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(uri_of(server))
    exc = info.value
    assert isinstance(exc, InvalidHandshake)
    assert exc.response.status_code == 403 and exc.status_code == 403
    assert exc.headers["X-Reason"] == "no entry"
    assert exc.body == b"Forbidden here\n"
    assert "403" in str(exc)
    assert isinstance(exc, wsio.InvalidStatusCode)  # the older name


async def test_non_websocket_server_is_an_invalid_handshake() -> None:
    async def http_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(http_server, "127.0.0.1", 0)
    async with server:
        with pytest.raises(InvalidStatus) as info:
            await connect(f"ws://127.0.0.1:{port_of(server)}/")
        assert info.value.response.status_code == 200
        assert info.value.response.body == b"hello"


async def test_server_closing_during_handshake_is_an_invalid_handshake() -> None:
    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(rude, "127.0.0.1", 0)
    async with server:
        with pytest.raises(InvalidHandshake):
            await connect(f"ws://127.0.0.1:{port_of(server)}/")


async def test_open_timeout_against_a_silent_server() -> None:
    peer_closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers; returns when the client gives up
        peer_closed.set()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with server:
        loop = asyncio.get_running_loop()
        start = loop.time()
        # The built-in TimeoutError on every version (asyncio's was another class before 3.11).
        with pytest.raises(TimeoutError, match="^timed out during the opening handshake$"):
            await connect(f"ws://127.0.0.1:{port_of(server)}/", open_timeout=0.2)
        assert 0.15 < loop.time() - start < 1.5
        # The client didn't leave its TCP connection behind.
        await asyncio.wait_for(peer_closed.wait(), 1)


async def test_connection_refused() -> None:
    with pytest.raises(OSError):
        await connect(f"ws://127.0.0.1:{free_port()}/")


async def test_ssl_argument_with_ws_uri_is_an_error() -> None:
    import ssl

    with pytest.raises(ValueError):
        await connect(f"ws://127.0.0.1:{free_port()}/", ssl=ssl.create_default_context())


# -- request headers ----------------------------------------------------------------------


async def test_request_headers() -> None:
    seen: list[Any] = []

    async def handler(ws: wsio.ServerConnection) -> None:
        seen.append(ws.request_headers)

    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(uri_of(server), additional_headers={"X-Token": "abc"}) as ws:
            await ws.wait_closed()
        async with connect(uri_of(server), extra_headers=[("X-Old", "name")]) as ws:
            await ws.wait_closed()
        async with connect(uri_of(server), user_agent_header=None, origin="https://app.example") as ws:
            await ws.wait_closed()
        async with connect(uri_of(server), user_agent_header="custom-agent/2") as ws:
            await ws.wait_closed()
    assert seen[0]["X-Token"] == "abc"
    assert "wsio" in seen[0]["User-Agent"]
    assert "Origin" not in seen[0]
    assert seen[1]["X-Old"] == "name"
    assert "User-Agent" not in seen[2]
    assert seen[2]["Origin"] == "https://app.example"
    assert seen[3]["User-Agent"] == "custom-agent/2"


async def test_subprotocols() -> None:
    async with serve(echo, "127.0.0.1", 0, subprotocols=["v2", "v1"]) as server:
        async with connect(uri_of(server), subprotocols=["v1"]) as ws:
            assert ws.subprotocol == "v1"
            assert ws.request.headers["Sec-WebSocket-Protocol"] == "v1"
        async with connect(uri_of(server)) as ws:
            assert ws.subprotocol is None


async def test_user_info_in_uri_becomes_basic_authorization() -> None:
    seen: list[str] = []

    def process_request(connection, request):  # type: ignore[no-untyped-def]
        seen.append(request.headers.get("Authorization"))

    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        async with connect(f"ws://user:pass@127.0.0.1:{port_of(server)}/"):
            pass
    assert seen == ["Basic dXNlcjpwYXNz"]


# -- redirects -----------------------------------------------------------------------------


async def test_redirect_is_followed() -> None:
    async with serve(echo, "127.0.0.1", 0) as target:
        target_uri = uri_of(target, "/final?x=1")

        def redirect(connection, request):  # type: ignore[no-untyped-def]
            return 302, {"Location": target_uri}, b""

        async with serve(echo, "127.0.0.1", 0, process_request=redirect) as origin:
            async with connect(uri_of(origin)) as ws:
                assert ws.remote_address[1] == port_of(target)
                assert ws.request.path == "/final?x=1"
                await ws.send("arrived")
                assert await ws.recv() == "arrived"


async def test_relative_and_301_redirects() -> None:
    def moved(path, request_headers):  # type: ignore[no-untyped-def]
        if path == "/old":
            return 301, [("Location", "/new")], b""
        return None

    paths: list[str] = []

    async def handler(ws: wsio.ServerConnection) -> None:
        paths.append(ws.path)

    async with serve(handler, "127.0.0.1", 0, process_request=moved) as server:
        async with connect(uri_of(server, "/old")) as ws:
            await ws.wait_closed()
    assert paths == ["/new"]


async def test_redirect_loop_raises_redirect_error() -> None:
    def loop_back(connection, request):  # type: ignore[no-untyped-def]
        return 302, {"Location": request.path}, b""

    async with serve(echo, "127.0.0.1", 0, process_request=loop_back) as server:
        with pytest.raises(RedirectError):
            await connect(uri_of(server, "/again"))
        with pytest.raises(RedirectError):
            await connect(uri_of(server, "/again"), max_redirects=2)


async def test_redirect_without_location_is_invalid_status() -> None:
    def no_location(connection, request):  # type: ignore[no-untyped-def]
        return 302, {}, b""

    async with serve(echo, "127.0.0.1", 0, process_request=no_location) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(uri_of(server))
        assert info.value.status_code == 302


async def test_redirect_to_a_non_websocket_uri_is_a_redirect_error() -> None:
    def to_http(connection, request):  # type: ignore[no-untyped-def]
        return 302, {"Location": "http://example.invalid/"}, b""

    async with serve(echo, "127.0.0.1", 0, process_request=to_http) as server:
        with pytest.raises(RedirectError):
            await connect(uri_of(server))


# -- reconnecting --------------------------------------------------------------------------------


async def test_async_for_reconnects_after_the_server_drops(fast_backoff: None) -> None:
    count = 0

    async def handler(ws: wsio.ServerConnection) -> None:
        nonlocal count
        count += 1
        await ws.send(f"connection {count}")
        if count < 3:
            ws.transport.abort()  # the connection drops
        else:
            await ws.wait_closed()

    received: list[str] = []
    async with serve(handler, "127.0.0.1", 0) as server:
        async for ws in connect(uri_of(server)):
            try:
                async for message in ws:
                    received.append(message)
                    if message == "connection 3":
                        break
                else:
                    continue  # closed normally: connect again
            except ConnectionClosed:
                continue  # dropped: connect again
            break
        # Leaving the loop closes the last connection.
        await asyncio.wait_for(ws.wait_closed(), 1)
        assert ws.close_code == 1000
    assert received == ["connection 1", "connection 2", "connection 3"]


async def test_async_for_break_closes_the_connection() -> None:
    closed = asyncio.Event()
    codes: list[int | None] = []

    async def handler(ws: wsio.ServerConnection) -> None:
        await ws.wait_closed()
        codes.append(ws.close_code)
        closed.set()

    async with serve(handler, "127.0.0.1", 0) as server:
        async for ws in connect(uri_of(server)):
            break
        await asyncio.wait_for(closed.wait(), 1)
    assert codes == [1000]


async def test_async_for_retries_until_the_server_starts(fast_backoff: None) -> None:
    port = free_port()
    connected = asyncio.Event()

    async def client() -> str:
        async for ws in connect(f"ws://127.0.0.1:{port}/"):
            connected.set()
            message = await ws.recv()
            assert isinstance(message, str)
            return message
        raise AssertionError("unreachable")

    task = asyncio.create_task(client())
    await asyncio.sleep(0.3)  # several refused attempts
    assert not connected.is_set() and not task.done()

    async def hello(ws: wsio.ServerConnection) -> None:
        await ws.send("finally")

    async with serve(hello, "127.0.0.1", port):
        assert await asyncio.wait_for(task, 2) == "finally"


async def test_async_for_retries_503_and_raises_403(fast_backoff: None) -> None:
    attempts = 0

    def flaky(connection, request):  # type: ignore[no-untyped-def]
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            return 503, {}, b"try later\n"
        if request.path == "/forbidden":
            return 403, {}, b"no\n"
        return None

    async with serve(echo, "127.0.0.1", 0, process_request=flaky) as server:
        async for ws in connect(uri_of(server)):
            await ws.send("made it")
            assert await ws.recv() == "made it"
            break
        assert attempts == 3
        with pytest.raises(InvalidStatus) as info:
            async for ws in connect(uri_of(server, "/forbidden")):
                raise AssertionError("a 403 must not connect")
        assert info.value.status_code == 403
        assert attempts == 4  # not retried


async def test_process_exception_makes_an_error_fatal(fast_backoff: None) -> None:
    def nothing_is_retried(exc: Exception) -> Exception | None:
        return exc

    with pytest.raises(OSError):
        async for ws in connect(f"ws://127.0.0.1:{free_port()}/", process_exception=nothing_is_retried):
            raise AssertionError("nothing listens there")

    class Fatal(Exception):
        pass

    def wrap(exc: Exception) -> Exception | None:
        return Fatal(str(exc))

    with pytest.raises(Fatal) as info:
        async for ws in connect(f"ws://127.0.0.1:{free_port()}/", process_exception=wrap):
            raise AssertionError("nothing listens there")
    assert isinstance(info.value.__cause__, OSError)


async def test_process_exception_can_retry_what_is_fatal_by_default(fast_backoff: None) -> None:
    attempts = 0

    def forbid_twice(connection, request):  # type: ignore[no-untyped-def]
        nonlocal attempts
        attempts += 1
        return (403, {}, b"") if attempts <= 2 else None

    def retry_everything(exc: Exception) -> Exception | None:
        return None

    async with serve(echo, "127.0.0.1", 0, process_request=forbid_twice) as server:
        async for ws in connect(uri_of(server), process_exception=retry_everything):
            break
    assert attempts == 3


async def test_backoff_grows_and_is_capped() -> None:
    delays = wsio.asyncio.client.backoff(1.0, 2.0, 5.0)
    values = [next(delays) for _ in range(10)]
    assert 0.5 <= values[0] <= 1.5
    assert 1.0 <= values[1] <= 3.0
    assert all(2.5 <= v <= 7.5 for v in values[5:])


# -- closing from the client ---------------------------------------------------------------------


async def test_client_close_is_seen_by_the_handler() -> None:
    result: asyncio.Future[ConnectionClosed] = asyncio.get_running_loop().create_future()

    async def handler(ws: wsio.ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            result.set_result(exc)

    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(uri_of(server)) as ws:
            await ws.close(1001, "client leaving")
        exc = await asyncio.wait_for(result, 1)
    assert isinstance(exc, ConnectionClosedOK)
    assert exc.code == 1001 and exc.reason == "client leaving"


async def test_client_sees_a_server_error_close() -> None:
    async def handler(ws: wsio.ServerConnection) -> None:
        await ws.close(4003, "policy")

    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(uri_of(server)) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 4003 and info.value.reason == "policy"


# -- interop: the wsio client against a python-websockets server -----------------------------------


async def websockets_echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_wsio_client_against_websockets_server(compression: str | None) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    text = "héllo wörld " * 1000
    async with websockets_server.serve(websockets_echo, "127.0.0.1", 0, compression=compression, max_size=2**21) as server:
        async with connect(uri_of(server), max_size=2**21) as ws:
            if compression is None:
                assert ws.protocol.deflate is None
                assert "Sec-WebSocket-Extensions" not in ws.response.headers
            else:
                assert ws.protocol.deflate is not None
                assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
            await ws.send("text")
            assert await ws.recv() == "text"
            await ws.send(b"\x00\x01binary")
            assert await ws.recv() == b"\x00\x01binary"
            for _ in range(3):  # compression contexts carry over between messages
                await ws.send(text)
                assert await ws.recv() == text
            await ws.send(big)
            assert await ws.recv() == big
            await ws.send(["frag", "mented"])
            assert await ws.recv() == "fragmented"
            latency = await (await ws.ping())
            assert latency >= 0
        assert ws.close_code == 1000


async def test_wsio_client_sees_websockets_close_codes() -> None:
    async def handler(ws: Any) -> None:
        message = await ws.recv()
        if message == "error":
            raise RuntimeError("handler bug")
        if message == "going":
            await ws.close(1001, "going away")
        if message == "custom":
            await ws.close(4000, "custom")

    async with websockets_server.serve(handler, "127.0.0.1", 0) as server:
        for message, code, exc_type in [
            ("normal", 1000, ConnectionClosedOK),
            ("going", 1001, ConnectionClosedOK),
            ("error", 1011, ConnectionClosedError),
            ("custom", 4000, ConnectionClosedError),
        ]:
            async with connect(uri_of(server)) as ws:
                await ws.send(message)
                with pytest.raises(exc_type) as info:
                    await ws.recv()
                assert info.value.code == code
            assert ws.close_code == code


async def test_wsio_client_close_code_seen_by_websockets_server() -> None:
    result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def handler(ws: Any) -> None:
        await ws.wait_closed()
        result.set_result((ws.close_code, ws.close_reason))

    async with websockets_server.serve(handler, "127.0.0.1", 0) as server:
        async with connect(uri_of(server)) as ws:
            await ws.close(4100, "from wsio")
        assert await asyncio.wait_for(result, 1) == (4100, "from wsio")


async def test_wsio_client_gets_websockets_http_rejection() -> None:
    def reject(connection: Any, request: Any) -> Any:
        return connection.respond(401, "who are you?\n")

    async with websockets_server.serve(websockets_echo, "127.0.0.1", 0, process_request=reject) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(uri_of(server))
        assert info.value.status_code == 401
        assert info.value.body == b"who are you?\n"


# -- the seeds' older spellings ------------------------------------------------------------------------


def test_run_until_complete_style() -> None:
    # The FAQ: "convert every asynchronous call to a synchronous call by wrapping it
    # in run_until_complete(...)", and start_server = websockets.serve(...) run the same way.
    import wsio as websockets

    loop = asyncio.new_event_loop()
    try:
        start_server = websockets.serve(echo, "127.0.0.1", 0)
        server = loop.run_until_complete(start_server)
        ws = loop.run_until_complete(websockets.connect(uri_of(server)))
        loop.run_until_complete(ws.send("sync"))
        assert loop.run_until_complete(ws.recv()) == "sync"
        loop.run_until_complete(ws.send("again"))
        assert loop.run_until_complete(asyncio.wait_for(ws.recv(), timeout=10)) == "again"
        loop.run_until_complete(ws.close())
        server.close()
        loop.run_until_complete(server.wait_closed())
    finally:
        loop.close()


async def test_wrong_accept_key_fails_the_handshake() -> None:
    closed = asyncio.Event()

    async def impostor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n"
        )
        await reader.read()  # until the client drops the connection
        closed.set()
        writer.close()

    server = await asyncio.start_server(impostor, "127.0.0.1", 0)
    async with server:
        with pytest.raises(wsio.InvalidHeaderValue) as info:
            await connect(f"ws://127.0.0.1:{port_of(server)}/")
        assert "Sec-WebSocket-Accept" in str(info.value)
        await asyncio.wait_for(closed.wait(), 1)
