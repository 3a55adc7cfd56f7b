"""serve() end to end over loopback: what a server author relies on."""

from __future__ import annotations

import asyncio
import functools
import http
import logging
import socket
import uuid
from typing import Any

import pytest
import websockets.asyncio.client as websockets_client  # interop: the python-websockets client
import websockets.exceptions as websockets_exceptions

import wsio
import wsio as websockets  # the seeds' spelling
from wsio import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidMessage,
    InvalidStatus,
    Response,
    State,
    basic_response,
    connect,
    serve,
)
from wsio.protocol.frames import OP_TEXT


def port_of(server: wsio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


def uri_of(server: wsio.Server, path: str = "/") -> str:
    return f"ws://127.0.0.1:{port_of(server)}{path}"


async def echo(ws: wsio.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


# -- starting and stopping -------------------------------------------------------------


async def test_async_with_serve_echoes() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        assert isinstance(server, wsio.Server)
        async with connect(uri_of(server)) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"


async def test_await_serve_then_close_and_wait_closed() -> None:
    server = await serve(echo, "127.0.0.1", 0)
    uri = uri_of(server)
    async with connect(uri) as ws:
        await ws.send("hi")
        assert await ws.recv() == "hi"
    server.close()
    await asyncio.wait_for(server.wait_closed(), 1)
    assert not server.is_serving()
    with pytest.raises(OSError):
        await connect(uri)


async def test_serve_forever_returns_after_close() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        task = asyncio.create_task(server.serve_forever())
        async with connect(uri_of(server)) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
        await asyncio.sleep(0.01)
        assert not task.done()
        server.close()
        await asyncio.wait_for(task, 1)


async def test_stop_with_a_future_like_the_faq() -> None:
    # async with serve(...): await stop
    stop = asyncio.get_running_loop().create_future()
    clients: list[wsio.ClientConnection] = []

    async def main() -> None:
        async with websockets.serve(echo, "127.0.0.1", 0) as server:
            clients.append(await websockets.connect(uri_of(server)))
            await stop

    task = asyncio.create_task(main())
    while not clients:
        await asyncio.sleep(0.01)
    stop.set_result(None)
    await asyncio.wait_for(task, 2)
    with pytest.raises(ConnectionClosedOK) as info:
        await clients[0].recv()
    assert info.value.code == 1001


async def test_unix_serve_and_unix_connect(tmp_path: object) -> None:
    path = f"{tmp_path}/ws.sock"
    async with wsio.unix_serve(echo, path) as server:
        assert server.sockets
        async with wsio.unix_connect(path) as ws:
            await ws.send("over a unix socket")
            assert await ws.recv() == "over a unix socket"
        async with wsio.unix_connect(path, "ws://localhost/chat?x=1") as ws:
            await ws.send("again")
            assert await ws.recv() == "again"


# -- handlers --------------------------------------------------------------------------


async def test_handler_with_path_argument() -> None:
    seen: list[tuple[str, str]] = []

    async def handler(websocket, path):  # type: ignore[no-untyped-def]
        seen.append((path, websocket.path))
        async for message in websocket:
            await websocket.send(f"{path} {message}")

    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(uri_of(server, "/room/1?user=alice&x=%20y")) as ws:
            await ws.send("hi")
            assert await ws.recv() == "/room/1?user=alice&x=%20y hi"
    assert seen == [("/room/1?user=alice&x=%20y", "/room/1?user=alice&x=%20y")]


async def test_partial_handler_with_keyword_argument() -> None:
    # The FAQ: functools.partial(handler, extra_argument=42).
    async def handler(websocket, extra_argument):  # type: ignore[no-untyped-def]
        await websocket.send(str(extra_argument))

    bound_handler = functools.partial(handler, extra_argument=42)
    async with websockets.serve(bound_handler, "127.0.0.1", 0) as server:
        async with connect(uri_of(server)) as ws:
            assert await ws.recv() == "42"


async def test_partial_handler_with_positional_argument() -> None:
    async def handler(greeting, websocket):  # type: ignore[no-untyped-def]
        await websocket.send(greeting)

    async with serve(functools.partial(handler, "hello"), "127.0.0.1", 0) as server:
        async with connect(uri_of(server)) as ws:
            assert await ws.recv() == "hello"


async def test_bound_method_handler() -> None:
    class App:
        async def handler(self, websocket: wsio.ServerConnection) -> None:
            await websocket.send("method")

    async with serve(App().handler, "127.0.0.1", 0) as server:
        async with connect(uri_of(server)) as ws:
            assert await ws.recv() == "method"


async def test_handler_returning_closes_with_1000() -> None:
    async def handler(ws: wsio.ServerConnection) -> None:
        await ws.send("bye")

    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(uri_of(server)) as ws:
            assert await ws.recv() == "bye"
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.recv()
            assert info.value.code == 1000
            assert ws.close_code == 1000
            await ws.wait_closed()
            assert ws.state is State.CLOSED


async def _coroutine_raising(ws: wsio.ServerConnection) -> None:
    raise ValueError("boom in handler")


def _plain_returning(ws: wsio.ServerConnection) -> None:
    pass


def _plain_raising(ws: wsio.ServerConnection) -> None:
    raise ValueError("boom in a plain handler")


@pytest.mark.parametrize(
    ("handler", "error"),
    [(_coroutine_raising, ValueError), (_plain_returning, TypeError), (_plain_raising, ValueError)],
)
async def test_handler_raising_closes_with_1011_and_logs(
    caplog: pytest.LogCaptureFixture, handler: Any, error: type[Exception]
) -> None:
    """A handler that raises, or isn't a coroutine function (a bug too): its traceback logged, 1011 to the client."""
    caplog.set_level(logging.ERROR, logger="wsio.server")
    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(uri_of(server)) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1011
            assert "1011" in str(info.value)
    records = [r for r in caplog.records if r.name == "wsio.server" and r.levelno == logging.ERROR]
    assert len(records) == 1
    assert records[0].exc_info is not None and isinstance(records[0].exc_info[1], error)
    assert "Traceback" in caplog.text
    if error is ValueError:
        assert "boom in" in caplog.text


async def test_handler_task_is_the_handler_and_cancelling_it_drops_the_connection() -> None:
    tasks: list[asyncio.Task[Any] | None] = []

    async def handler(ws: wsio.ServerConnection) -> None:
        tasks.append(asyncio.current_task())
        assert ws.handler_task is asyncio.current_task()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(uri_of(server)) as ws:
            await ws.send("wake")  # the handler runs by now
            for _ in range(100):
                if tasks:
                    break
                await asyncio.sleep(0.01)
            task = tasks[0]
            assert task is not None
            task.cancel()
            with pytest.raises(ConnectionClosedError) as info:
                await asyncio.wait_for(ws.recv(), 5)
            assert info.value.code == 1006  # aborted, as websockets does when a handler is cancelled
        await asyncio.wait_for(server.close(), 5)


async def test_async_process_request_then_handler() -> None:
    """A hook that awaits moves the rest of the handshake to a task; the handler runs as its own."""

    async def process_request(ws: wsio.ServerConnection, request: wsio.Request) -> None:
        await asyncio.sleep(0.01)

    async def handler(ws: wsio.ServerConnection) -> None:
        assert ws.handler_task is asyncio.current_task()
        await ws.send(await ws.recv())

    async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
        async with connect(uri_of(server)) as ws:
            await ws.send("echo me")
            assert await ws.recv() == "echo me"
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()  # the handler returned: 1000


async def test_handler_recv_after_peer_closes_is_not_logged_as_error(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(ws: wsio.ServerConnection) -> None:
        await ws.recv()
        await ws.recv()  # the client closed: ConnectionClosedOK, not an error

    caplog.set_level(logging.INFO, logger="wsio.server")
    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(uri_of(server)) as ws:
            await ws.send("one")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- process_request ------------------------------------------------------------------


def health_legacy_sync(path, request_headers):  # type: ignore[no-untyped-def]
    if path == "/healthz":
        return http.HTTPStatus.OK, [("X-Health", "good")], b"OK\n"
    return None


async def health_legacy_async(path, request_headers):  # type: ignore[no-untyped-def]
    if path == "/healthz":
        return http.HTTPStatus.OK, {"X-Health": "good"}, b"OK\n"
    return None


def health_new_sync(connection, request):  # type: ignore[no-untyped-def]
    assert isinstance(connection, wsio.ServerConnection)
    if request.path == "/healthz":
        return 200, wsio.Headers({"X-Health": "good"}), "OK\n"
    return None


async def health_new_async(connection, request):  # type: ignore[no-untyped-def]
    if request.path == "/healthz":
        response = basic_response(200, [("X-Health", "good")], b"OK\n")
        return response
    return None


@pytest.mark.parametrize("hook", [health_legacy_sync, health_legacy_async, health_new_sync, health_new_async])
async def test_process_request_health_check(hook: object) -> None:
    async with serve(echo, "127.0.0.1", 0, process_request=hook) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(uri_of(server, "/healthz"))
        assert info.value.response.status_code == 200
        assert info.value.response.body == b"OK\n"
        assert info.value.response.headers["X-Health"] == "good"
        # Anything else goes on with the WebSocket handshake.
        async with connect(uri_of(server, "/")) as ws:
            await ws.send("still a websocket")
            assert await ws.recv() == "still a websocket"


async def test_process_request_returning_response_object() -> None:
    def auth(connection, request):  # type: ignore[no-untyped-def]
        if request.headers.get("Authorization") != "Bearer secret":
            return Response.from_status(401, "Missing token\n", {"WWW-Authenticate": "Bearer"})
        return None

    async with serve(echo, "127.0.0.1", 0, process_request=auth) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(uri_of(server))
        assert info.value.status_code == 401
        assert info.value.body == b"Missing token\n"
        assert info.value.headers["WWW-Authenticate"] == "Bearer"
        async with connect(uri_of(server), additional_headers={"Authorization": "Bearer secret"}) as ws:
            await ws.send("in")
            assert await ws.recv() == "in"


async def test_process_request_reads_cookies() -> None:
    cookies: list[str] = []

    async def process_request(path, request_headers):  # type: ignore[no-untyped-def]
        cookies.append(request_headers["Cookie"])

    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        async with connect(uri_of(server), additional_headers=[("Cookie", "session=abc")]):
            pass
    assert cookies == ["session=abc"]


async def test_process_request_raising_answers_500(caplog: pytest.LogCaptureFixture) -> None:
    def process_request(connection, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("bug in process_request")

    caplog.set_level(logging.ERROR, logger="wsio.server")
    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(uri_of(server))
        assert info.value.status_code == 500
    assert "bug in process_request" in caplog.text


class CookieProtocol(websockets.WebSocketServerProtocol):
    """The FAQ's way: override process_request as a method."""

    seen: list[str] = []

    async def process_request(self, path, request_headers):  # type: ignore[no-untyped-def, override]
        cookies = request_headers["Cookie"]
        self.seen.append(cookies)
        if cookies != "session=ok":
            return http.HTTPStatus.FORBIDDEN, [], b"bad cookie\n"
        return None


@pytest.mark.parametrize("option", ["create_protocol", "create_connection", "klass"])
async def test_process_request_method_in_subclass(option: str) -> None:
    CookieProtocol.seen = []
    async with serve(echo, "127.0.0.1", 0, **{option: CookieProtocol}) as server:
        async with connect(uri_of(server), additional_headers={"Cookie": "session=ok"}) as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"
        with pytest.raises(InvalidStatus) as info:
            await connect(uri_of(server), additional_headers={"Cookie": "session=no"})
        assert info.value.status_code == 403
        assert info.value.body == b"bad cookie\n"
    assert CookieProtocol.seen == ["session=ok", "session=no"]


async def test_subclass_connection_is_what_the_handler_gets() -> None:
    classes: list[type] = []

    async def handler(ws: wsio.ServerConnection) -> None:
        classes.append(type(ws))

    async with serve(handler, "127.0.0.1", 0, create_connection=CookieProtocol) as server:
        async with connect(uri_of(server), additional_headers={"Cookie": "session=ok"}) as ws:
            await ws.wait_closed()
    assert classes == [CookieProtocol]


async def test_process_response_adds_a_header_and_can_replace_the_response() -> None:
    def process_response(connection, request, response):  # type: ignore[no-untyped-def]
        if request.path == "/deny":
            return Response.from_status(403, "denied after all\n")
        response.headers["X-Trace"] = "123"
        return None

    async with serve(echo, "127.0.0.1", 0, process_response=process_response) as server:
        async with connect(uri_of(server)) as ws:
            assert ws.response.headers["X-Trace"] == "123"
        with pytest.raises(InvalidStatus) as info:
            await connect(uri_of(server, "/deny"))
        assert info.value.status_code == 403
        assert info.value.body == b"denied after all\n"


async def test_async_process_response() -> None:
    async def process_response(connection, request, response):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        response.headers["X-Async"] = "yes"
        return response

    async with serve(echo, "127.0.0.1", 0, process_response=process_response) as server:
        async with connect(uri_of(server)) as ws:
            assert ws.response_headers["X-Async"] == "yes"
            await ws.send("x")
            assert await ws.recv() == "x"


# -- negotiation and headers ------------------------------------------------------------


async def test_subprotocols_server_preference() -> None:
    chosen: list[str | None] = []

    async def handler(ws: wsio.ServerConnection) -> None:
        chosen.append(ws.subprotocol)

    async with serve(handler, "127.0.0.1", 0, subprotocols=["chat.v2", "chat.v1"]) as server:
        async with connect(uri_of(server), subprotocols=["chat.v1", "chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
            await ws.wait_closed()
        async with connect(uri_of(server), subprotocols=["other"]) as ws:
            assert ws.subprotocol is None
            await ws.wait_closed()
    assert chosen == ["chat.v2", None]


async def test_select_subprotocol() -> None:
    def select_subprotocol(connection, subprotocols):  # type: ignore[no-untyped-def]
        assert isinstance(connection, wsio.ServerConnection)
        return subprotocols[-1] if subprotocols else None

    async with serve(echo, "127.0.0.1", 0, select_subprotocol=select_subprotocol) as server:
        async with connect(uri_of(server), subprotocols=["a", "b", "c"]) as ws:
            assert ws.subprotocol == "c"


async def test_select_subprotocol_older_signature() -> None:
    def select_subprotocol(client_subprotocols, server_subprotocols):  # type: ignore[no-untyped-def]
        return "b" if "b" in client_subprotocols else None

    async with serve(echo, "127.0.0.1", 0, select_subprotocol=select_subprotocol) as server:
        async with connect(uri_of(server), subprotocols=["a", "b"]) as ws:
            assert ws.subprotocol == "b"
        async with connect(uri_of(server), subprotocols=["a"]) as ws:
            assert ws.subprotocol is None


async def test_compression_negotiated_by_default_and_off_with_none() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        async with connect(uri_of(server)) as ws:
            assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
            assert ws.protocol.deflate is not None
            message = "compressible " * 1000
            await ws.send(message)
            assert await ws.recv() == message
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        async with connect(uri_of(server)) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            assert ws.protocol.deflate is None
            await ws.send("x" * 10000)
            assert await ws.recv() == "x" * 10000
    async with serve(echo, "127.0.0.1", 0) as server:
        async with connect(uri_of(server), compression=None) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.request.headers
            assert "Sec-WebSocket-Extensions" not in ws.response.headers


async def test_server_header() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        async with connect(uri_of(server)) as ws:
            assert "wsio" in ws.response.headers["Server"]
    async with serve(echo, "127.0.0.1", 0, server_header=None) as server:
        async with connect(uri_of(server)) as ws:
            assert "Server" not in ws.response.headers
    async with serve(echo, "127.0.0.1", 0, server_header="Acme/1.0") as server:
        async with connect(uri_of(server)) as ws:
            assert ws.response.headers["Server"] == "Acme/1.0"


async def test_extra_headers_dict_and_callable() -> None:
    async with serve(echo, "127.0.0.1", 0, extra_headers={"X-Hello": "world"}) as server:
        async with connect(uri_of(server)) as ws:
            assert ws.response.headers["X-Hello"] == "world"

    def extra(path, request_headers):  # type: ignore[no-untyped-def]
        return {"X-Path": path, "X-Agent": request_headers.get("User-Agent", "")}

    async with serve(echo, "127.0.0.1", 0, extra_headers=extra) as server:
        async with connect(uri_of(server, "/p?q=1"), user_agent_header="me/1") as ws:
            assert ws.response.headers["X-Path"] == "/p?q=1"
            assert ws.response.headers["X-Agent"] == "me/1"


async def test_origins() -> None:
    async with serve(echo, "127.0.0.1", 0, origins=["https://good.example"]) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(uri_of(server), origin="https://evil.example")
        assert info.value.status_code == 403
        with pytest.raises(InvalidStatus) as info:
            await connect(uri_of(server))  # no Origin at all
        assert info.value.status_code == 403
        async with connect(uri_of(server), origin="https://good.example") as ws:
            await ws.send("welcome")
            assert await ws.recv() == "welcome"
    async with serve(echo, "127.0.0.1", 0, origins=[None, "https://good.example"]) as server:
        async with connect(uri_of(server)) as ws:  # None allows a missing Origin
            await ws.send("ok")
            assert await ws.recv() == "ok"


async def test_a_refused_origin_is_logged_by_name(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wsio.server")
    async with serve(echo, "127.0.0.1", 0, origins=["https://good.example"]) as server:
        for origin in ("https://evil.example", None):
            with pytest.raises(InvalidStatus):
                await connect(uri_of(server), origin=origin)
    lines = [r.getMessage() for r in caplog.records if "rejected: HTTP 403" in r.getMessage()]
    assert len(lines) == 2 and all(r.levelno == logging.INFO for r in caplog.records if "rejected" in r.getMessage())
    assert "rejected: HTTP 403: Origin 'https://evil.example' not in origins=" in lines[0]
    assert "rejected: HTTP 403: no Origin header not in origins=" in lines[1]


async def test_bad_request_gets_400_and_handler_never_runs(raw_client: type) -> None:
    calls: list[object] = []

    async def handler(ws: wsio.ServerConnection) -> None:
        calls.append(ws)

    async with serve(handler, "127.0.0.1", 0) as server:
        client = await raw_client.connect(port_of(server), handshake=False)
        client.writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # no Upgrade
        answer = await asyncio.wait_for(client.reader.read(), 1)
        assert answer.startswith(b"HTTP/1.1 426") or answer.startswith(b"HTTP/1.1 400")
        await client.close()
    assert calls == []


async def test_open_timeout_drops_half_a_request(raw_client: type) -> None:
    async with serve(echo, "127.0.0.1", 0, open_timeout=0.2) as server:
        client = await raw_client.connect(port_of(server), handshake=False)
        client.writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            data = await asyncio.wait_for(client.reader.read(), 2)
        except ConnectionResetError:
            data = b""
        assert data == b""
        assert 0.15 < loop.time() - start < 1.5
        assert not server.connections
        await client.close()


async def test_open_timeout_does_not_close_open_connections() -> None:
    async with serve(echo, "127.0.0.1", 0, open_timeout=0.1) as server:
        async with connect(uri_of(server)) as ws:
            await asyncio.sleep(0.3)
            await ws.send("still here")
            assert await ws.recv() == "still here"


# -- closing the server -------------------------------------------------------------------


async def test_close_closes_connections_with_1001() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        clients = [await connect(uri_of(server)) for _ in range(3)]
        await asyncio.wait_for(server.close(), 2)
        for ws in clients:
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.recv()
            assert info.value.code == 1001
            assert ws.close_code == 1001
        assert not server.connections


async def test_close_without_closing_connections() -> None:
    # The FAQ: stop a server while keeping existing connections open.
    server = await websockets.serve(echo, "127.0.0.1", 0)
    uri = uri_of(server)
    ws = await connect(uri)
    closing = server.close(close_connections=False)
    await asyncio.sleep(0.05)
    assert not server.is_serving()
    await ws.send("still served")
    assert await ws.recv() == "still served"
    with pytest.raises(OSError):
        await connect(uri, open_timeout=1)
    waiter = asyncio.create_task(server.wait_closed())
    await asyncio.sleep(0.05)
    assert not waiter.done()  # the server waits for its last connection
    assert not closing.done()  # and so does close(): a program may exit after it
    await ws.close()
    await asyncio.wait_for(waiter, 1)
    await asyncio.wait_for(closing, 1)


async def test_wait_closed_waits_for_handlers() -> None:
    finished: list[str] = []

    async def handler(ws: wsio.ServerConnection) -> None:
        try:
            await ws.wait_closed()
        finally:
            await asyncio.sleep(0.05)
            finished.append("handler")

    async with serve(handler, "127.0.0.1", 0) as server:
        ws = await connect(uri_of(server))
        server.close()
        await asyncio.wait_for(server.wait_closed(), 2)
        assert finished == ["handler"]
        await ws.wait_closed()


async def test_server_closes_a_connection_still_in_its_handshake(raw_client: type) -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        client = await raw_client.connect(port_of(server), handshake=False)
        client.writer.write(b"GET / HTTP/1.1\r\n")
        await asyncio.sleep(0.05)
        await asyncio.wait_for(server.close(), 1)
        assert await asyncio.wait_for(client.reader.read(), 1) == b""
        await client.close()


async def test_a_handshake_in_process_request_when_the_server_closes_gets_503() -> None:
    # As websockets answers it: the client learns why, and may retry elsewhere.
    entered = asyncio.Event()
    release = asyncio.Event()

    async def process_request(connection: Any, request: Any) -> None:
        entered.set()
        await release.wait()

    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        connecting = asyncio.ensure_future(connect(uri_of(server), open_timeout=5))
        await asyncio.wait_for(entered.wait(), 2)
        closing = server.close()
        await asyncio.sleep(0.05)
        assert not closing.done()  # it waits for the handshake under way
        release.set()
        with pytest.raises(InvalidStatus) as info:
            await connecting
        assert info.value.response.status_code == 503
        assert info.value.response.body == b"Server is shutting down.\n"
        await asyncio.wait_for(closing, 2)
        assert not server.connections


async def test_closing_waits_for_a_stuck_process_request_at_most_open_timeout() -> None:
    entered = asyncio.Event()

    async def process_request(connection: Any, request: Any) -> None:
        entered.set()
        await asyncio.Event().wait()  # never returns

    async with serve(echo, "127.0.0.1", 0, process_request=process_request, open_timeout=0.3) as server:
        connecting = asyncio.ensure_future(connect(uri_of(server), open_timeout=5))
        await asyncio.wait_for(entered.wait(), 2)
        await asyncio.sleep(0.4)  # past open_timeout from the accept: process_request may take its time...
        assert not connecting.done()
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.wait_for(server.close(), 3)  # ...until the server closes: then open_timeout from now
        assert 0.25 < loop.time() - start < 2.5
        with pytest.raises(InvalidMessage, match="connection closed before the HTTP response"):
            await connecting


# -- create_server options ------------------------------------------------------------------


async def test_sockets_family_reuse_port_and_sock() -> None:
    async with serve(echo, "127.0.0.1", 0, family=socket.AF_INET) as server:
        assert all(s.family == socket.AF_INET for s in server.sockets)
        async with connect(uri_of(server)) as ws:
            await ws.send("ipv4")
            assert await ws.recv() == "ipv4"

    async with serve(echo, "127.0.0.1", 0, reuse_port=True) as first:
        port = port_of(first)
        async with serve(echo, "127.0.0.1", port, reuse_port=True) as second:
            assert port_of(second) == port
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("shared port")
                assert await ws.recv() == "shared port"

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    async with serve(echo, sock=sock) as server:
        assert port_of(server) == port
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("own socket")
            assert await ws.recv() == "own socket"


# -- what the handler sees ---------------------------------------------------------------------


async def test_connection_attributes_in_handler() -> None:
    seen: dict[str, object] = {}

    async def handler(websocket, path):  # type: ignore[no-untyped-def]
        seen["cookie"] = websocket.request_headers["Cookie"]
        seen["remote_ip"] = websocket.remote_address[0]
        seen["local"] = websocket.local_address
        seen["path"] = websocket.path
        seen["id"] = websocket.id
        seen["subprotocol"] = websocket.subprotocol
        seen["state"] = websocket.state
        seen["open"] = websocket.open
        seen["close_code"] = websocket.close_code
        seen["request"] = websocket.request
        seen["response"] = websocket.response
        seen["response_server"] = websocket.response_headers["Server"]
        try:
            await websocket.recv()
        except ConnectionClosedOK:
            pass
        seen["after_close_code"] = websocket.close_code
        seen["after_close_reason"] = websocket.close_reason

    async with serve(handler, "127.0.0.1", 0, subprotocols=["proto"]) as server:
        port = port_of(server)
        async with connect(
            uri_of(server, "/chat?room=42"), subprotocols=["proto"], additional_headers={"Cookie": "a=1; b=2"}
        ) as ws:
            assert ws.state is State.OPEN and ws.open and not ws.closed
            assert ws.close_code is None and ws.close_reason is None
            assert ws.remote_address[:2] == ("127.0.0.1", port)
            await ws.close(1000, "done here")
            assert ws.state is State.CLOSED and ws.closed
            assert ws.close_code == 1000
        await asyncio.sleep(0.05)
    assert seen["cookie"] == "a=1; b=2"
    assert seen["remote_ip"] == "127.0.0.1"
    assert seen["local"][1] == port  # type: ignore[index]
    assert seen["path"] == "/chat?room=42"
    assert isinstance(seen["id"], uuid.UUID)
    assert seen["subprotocol"] == "proto"
    assert seen["state"] is State.OPEN and seen["open"] is True
    assert seen["close_code"] is None
    assert isinstance(seen["request"], wsio.Request) and seen["request"].path == "/chat?room=42"  # type: ignore[attr-defined]
    assert isinstance(seen["response"], wsio.Response) and seen["response"].status_code == 101  # type: ignore[attr-defined]
    assert "wsio" in seen["response_server"]  # type: ignore[operator]
    assert seen["after_close_code"] == 1000
    assert seen["after_close_reason"] == "done here"


async def test_connections_are_tracked_and_ids_unique() -> None:
    ids: list[uuid.UUID] = []
    release = asyncio.Event()

    async def handler(ws: wsio.ServerConnection) -> None:
        ids.append(ws.id)
        await release.wait()

    async with serve(handler, "127.0.0.1", 0) as server:
        clients = [await connect(uri_of(server)) for _ in range(3)]
        await asyncio.sleep(0.02)
        assert len(server.connections) == 3
        assert len(set(ids)) == 3
        release.set()
        for ws in clients:
            await ws.wait_closed()
        await asyncio.sleep(0.02)
        assert not server.connections


async def test_messages_sent_right_behind_the_request_are_not_lost(raw_client: type) -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        client = await raw_client.connect(port_of(server), handshake=False)
        # The request and a frame in one write: the frame waits for the handshake.
        client.writer.write(raw_client.request() + raw_client.frame(OP_TEXT, b"early"))
        await client.reader.readuntil(b"\r\n\r\n")
        assert await asyncio.wait_for(client.read_data_frame(), 1) == (OP_TEXT, b"early")
        await client.close()


async def test_close_completes_while_reading_is_paused_by_max_queue() -> None:
    # The handler doesn't read; max_queue paused reading. Closing must still
    # read the client's close frame instead of waiting for close_timeout.
    async def handler(ws: wsio.ServerConnection) -> None:
        await ws.wait_closed()  # never reads

    async with serve(handler, "127.0.0.1", 0, max_queue=1, compression=None) as server:
        ws = await connect(uri_of(server))
        for i in range(50):
            await ws.send(f"unread {i}")
        await asyncio.sleep(0.05)
        (server_ws,) = server.connections
        assert not server_ws.transport.is_reading()
        await asyncio.wait_for(server.close(), 2)
        assert server_ws.close_code == 1001
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.recv()
        assert info.value.code == 1001


# -- interop: the python-websockets client against a wsio server ------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_websockets_client_against_wsio_server(compression: str | None) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    text = "héllo wörld " * 1000
    async with serve(echo, "127.0.0.1", 0, compression=compression, max_size=2**21) as server:
        async with websockets_client.connect(uri_of(server), max_size=2**21) as ws:
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
            if compression is None:
                assert extensions is None
            else:
                assert extensions is not None and extensions.startswith("permessage-deflate")
                assert ws.protocol.extensions  # the websockets side agreed too
            await ws.send("text")
            assert await ws.recv() == "text"
            await ws.send(b"\x00\x01binary")
            assert await ws.recv() == b"\x00\x01binary"
            await ws.send(text)
            assert await ws.recv() == text
            await ws.send(big)
            assert await ws.recv() == big
            await ws.send(["frag", "mented"])
            assert await ws.recv() == "fragmented"
            pong = await ws.ping()
            await asyncio.wait_for(pong, 1)
        assert ws.close_code == 1000


async def test_websockets_client_sees_wsio_close_codes() -> None:
    async def handler(ws: wsio.ServerConnection) -> None:
        message = await ws.recv()
        if message == "error":
            raise RuntimeError("handler bug")
        if message == "policy":
            await ws.close(1008, "policy violation")
        # returning: 1000

    async with serve(handler, "127.0.0.1", 0) as server:
        for message, code, exc_type in [
            ("normal", 1000, websockets_exceptions.ConnectionClosedOK),
            ("error", 1011, websockets_exceptions.ConnectionClosedError),
            ("policy", 1008, websockets_exceptions.ConnectionClosedError),
        ]:
            async with websockets_client.connect(uri_of(server)) as ws:
                await ws.send(message)
                with pytest.raises(exc_type) as info:
                    await ws.recv()
                assert info.value.rcvd is not None and info.value.rcvd.code == code
        async with websockets_client.connect(uri_of(server)) as ws:
            await ws.close(4321, "client reason")
        await asyncio.sleep(0.01)


async def test_websockets_client_close_code_seen_by_wsio_handler() -> None:
    result: asyncio.Future[wsio.ConnectionClosed] = asyncio.get_running_loop().create_future()

    async def handler(ws: wsio.ServerConnection) -> None:
        try:
            await ws.recv()
        except wsio.ConnectionClosed as exc:
            result.set_result(exc)

    async with serve(handler, "127.0.0.1", 0) as server:
        async with websockets_client.connect(uri_of(server)) as ws:
            await ws.close(4321, "client reason")
        exc = await asyncio.wait_for(result, 1)
    assert isinstance(exc, ConnectionClosedError)
    assert exc.code == 4321 and exc.reason == "client reason"


async def test_frames_sent_during_a_slow_process_request_wait_for_the_handler(raw_client: type) -> None:
    async def slow(connection, request):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.1)

    async with serve(echo, "127.0.0.1", 0, process_request=slow) as server:
        client = await raw_client.connect(port_of(server), handshake=False)
        client.writer.write(raw_client.request())
        await asyncio.sleep(0.02)  # process_request is running now
        for word in (b"one", b"two"):
            client.send_frame(OP_TEXT, word)
            await asyncio.sleep(0.01)
        assert (await client.reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        assert await asyncio.wait_for(client.read_data_frame(), 1) == (OP_TEXT, b"one")
        assert await asyncio.wait_for(client.read_data_frame(), 1) == (OP_TEXT, b"two")
        await client.close()


async def test_client_going_away_during_process_request_is_cleaned_up(raw_client: type) -> None:
    entered = asyncio.Event()

    async def slow(connection, request):  # type: ignore[no-untyped-def]
        entered.set()
        await asyncio.sleep(0.1)

    handled: list[object] = []

    async def handler(ws: wsio.ServerConnection) -> None:
        handled.append(ws)

    async with serve(handler, "127.0.0.1", 0, process_request=slow) as server:
        client = await raw_client.connect(port_of(server), handshake=False)
        client.writer.write(raw_client.request())
        await asyncio.wait_for(entered.wait(), 1)
        client.abort()
        await asyncio.sleep(0.2)
        assert handled == []
        assert not server.connections
