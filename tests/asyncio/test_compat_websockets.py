"""Programs written for websockets 17's asyncio API, run with only the import changed.

Where it helps, the same code runs against websockets itself too (the
``library`` parameter): what a user observes must be the same.
"""

from __future__ import annotations

import asyncio
import http
import importlib
import itertools
import logging
import socket
import threading
import warnings
from typing import Any, Iterator

import pytest
import werkzeug.routing

import wsio
from wsio.asyncio.client import process_exception

from tests.helpers import COMPARED_LIBRARIES as LIBRARIES


def library_module(library: str, path: str) -> Any:
    return importlib.import_module(f"{library}.{path}")


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


async def http_get(port: int, path: str, headers: str = "") -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP/1.1 GET, as a load balancer's health probe sends: (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 3)  # the server closes after answering
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in fields.items()}, body


async def echo(websocket: Any) -> None:
    async for message in websocket:
        await websocket.send(message)


# -- respond(): health checks ------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
async def test_health_check_with_respond(library: str, caplog: pytest.LogCaptureFixture) -> None:
    server_module = library_module(library, "asyncio.server")
    client_module = library_module(library, "asyncio.client")

    def health_check(connection: Any, request: Any) -> Any:
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        return None

    with caplog.at_level(logging.INFO):
        async with server_module.serve(echo, "127.0.0.1", 0, process_request=health_check) as server:
            status, headers, body = await http_get(port_of(server), "/healthz")
            # Other paths still upgrade.
            async with client_module.connect(f"ws://127.0.0.1:{port_of(server)}/") as websocket:
                await websocket.send("still a WebSocket server")
                assert await websocket.recv() == "still a WebSocket server"
    assert (status, body) == (200, b"OK\n")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-length"] == "3"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("library", LIBRARIES)
async def test_reject_answers_without_upgrading(library: str) -> None:
    server_module = library_module(library, "asyncio.server")
    client_module = library_module(library, "asyncio.client")

    def forbid(connection: Any, request: Any) -> Any:
        if "token=good" not in request.path:
            response = (connection.reject if library == "wsio" else connection.protocol.reject)(
                http.HTTPStatus.FORBIDDEN, "Bad token\n"
            )
            response.headers["X-Reason"] = "token"
            return response
        return None

    async with server_module.serve(echo, "127.0.0.1", 0, process_request=forbid) as server:
        uri = f"ws://127.0.0.1:{port_of(server)}/"
        with pytest.raises(library_module(library, "exceptions").InvalidStatus) as caught:
            await client_module.connect(uri + "?token=bad")
        async with client_module.connect(uri + "?token=good") as websocket:
            await websocket.send("in")
            assert await websocket.recv() == "in"
    response = caught.value.response
    assert (response.status_code, response.body, response.headers["X-Reason"]) == (403, b"Bad token\n", "token")


# -- basic_auth() ------------------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
async def test_basic_auth_accepts_and_sets_username(library: str) -> None:
    server_module = library_module(library, "asyncio.server")
    client_module = library_module(library, "asyncio.client")

    async def whoami(websocket: Any) -> None:
        await websocket.send(f"hello {websocket.username}")

    auth = server_module.basic_auth(realm="test", credentials=[("alice", "s3cret"), ("bob", "pa:ss")])
    async with server_module.serve(whoami, "127.0.0.1", 0, process_request=auth) as server:
        port = port_of(server)
        async with client_module.connect(f"ws://alice:s3cret@127.0.0.1:{port}/") as websocket:
            assert await websocket.recv() == "hello alice"
        async with client_module.connect(f"ws://bob:pa%3Ass@127.0.0.1:{port}/") as websocket:
            assert await websocket.recv() == "hello bob"
        for wrong in ("alice:nope@", "mallory:s3cret@", ""):
            with pytest.raises(library_module(library, "exceptions").InvalidStatus) as caught:
                await client_module.connect(f"ws://{wrong}127.0.0.1:{port}/")
            response = caught.value.response
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith('Basic realm="test"')


async def test_basic_auth_with_a_check_coroutine() -> None:
    seen = []

    async def check(username: str, password: str) -> bool:
        seen.append(username)
        return password == f"{username}-pw"

    async def whoami(websocket: Any) -> None:
        await websocket.send(websocket.username)

    auth = wsio.asyncio.server.basic_auth(check_credentials=check)
    async with wsio.serve(whoami, "127.0.0.1", 0, process_request=auth) as server:
        async with wsio.connect(f"ws://carol:carol-pw@127.0.0.1:{port_of(server)}/") as websocket:
            assert await websocket.recv() == "carol"
        with pytest.raises(wsio.InvalidStatus):
            await wsio.connect(f"ws://carol:wrong@127.0.0.1:{port_of(server)}/")
    assert seen == ["carol", "carol"]


def test_basic_auth_takes_credentials_or_a_check_not_both() -> None:
    with pytest.raises(ValueError):
        wsio.asyncio.server.basic_auth()
    with pytest.raises(ValueError):
        wsio.asyncio.server.basic_auth(credentials=("a", "b"), check_credentials=lambda u, p: True)
    with pytest.raises(TypeError):
        wsio.asyncio.server.basic_auth(credentials=[("a", "b"), "c"])  # type: ignore[list-item]


async def test_legacy_basic_auth_protocol_factory() -> None:
    from wsio.legacy.auth import basic_auth_protocol_factory

    async def whoami(websocket: Any) -> None:
        await websocket.send(websocket.username)

    factory = basic_auth_protocol_factory(realm="old", credentials=("dave", "pw"))
    async with wsio.serve(whoami, "127.0.0.1", 0, create_protocol=factory) as server:
        async with wsio.connect(f"ws://dave:pw@127.0.0.1:{port_of(server)}/") as websocket:
            assert await websocket.recv() == "dave"
        with pytest.raises(wsio.InvalidStatus) as caught:
            await wsio.connect(f"ws://dave:wrong@127.0.0.1:{port_of(server)}/")
    assert caught.value.response.status_code == 401
    assert caught.value.response.headers["WWW-Authenticate"].startswith('Basic realm="old"')


async def test_legacy_abort_handshake_in_process_request() -> None:
    async def process_request(path: str, request_headers: Any) -> None:
        raise wsio.AbortHandshake(http.HTTPStatus.SERVICE_UNAVAILABLE, [("Retry-After", "1")], b"later\n")

    async with wsio.serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        status, headers, body = await http_get(port_of(server), "/")
    assert (status, headers["retry-after"], body) == (503, "1", b"later\n")


# -- route() -----------------------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
async def test_router_dispatches_by_path(library: str) -> None:
    router = library_module(library, "asyncio.router")
    client_module = library_module(library, "asyncio.client")

    async def echo_handler(websocket: Any) -> None:
        await echo(websocket)

    async def room_handler(websocket: Any, room: str, number: int) -> None:
        await websocket.send(f"room {room} #{number}")

    url_map = werkzeug.routing.Map(
        [
            werkzeug.routing.Rule("/echo", endpoint=echo_handler),
            werkzeug.routing.Rule("/rooms/<room>/<int:number>", endpoint=room_handler),
        ]
    )
    async with router.route(url_map, "127.0.0.1", 0) as server:
        base = f"ws://127.0.0.1:{port_of(server)}"
        async with client_module.connect(f"{base}/echo") as websocket:
            await websocket.send("ping")
            assert await websocket.recv() == "ping"
        async with client_module.connect(f"{base}/rooms/lobby/7?x=1") as websocket:
            assert await websocket.recv() == "room lobby #7"
        for path in ("/nowhere", "/rooms/lobby/seven"):
            with pytest.raises(library_module(library, "exceptions").InvalidStatus) as caught:
                await client_module.connect(base + path)
            assert caught.value.response.status_code == 404


async def test_router_runs_process_request_first() -> None:
    async def hello(websocket: Any) -> None:
        await websocket.send("hello")

    def health(connection: Any, request: Any) -> Any:
        return connection.respond(http.HTTPStatus.OK, "OK\n") if request.path == "/healthz" else None

    url_map = werkzeug.routing.Map([werkzeug.routing.Rule("/hello", endpoint=hello)])
    async with wsio.route(url_map, "127.0.0.1", 0, process_request=health) as server:
        assert (await http_get(port_of(server), "/healthz"))[::2] == (200, b"OK\n")
        async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}/hello") as websocket:
            assert await websocket.recv() == "hello"


# -- broadcast ---------------------------------------------------------------------------


async def test_broadcast_from_the_server_module_with_text() -> None:
    from wsio.asyncio.server import broadcast

    connected: list[Any] = []
    ready = asyncio.Event()

    async def handler(websocket: Any) -> None:
        connected.append(websocket)
        if len(connected) == 2:
            ready.set()
        await websocket.wait_closed()

    async with wsio.serve(handler, "127.0.0.1", 0) as server:
        uri = f"ws://127.0.0.1:{port_of(server)}/"
        async with wsio.connect(uri) as first, wsio.connect(uri) as second:
            await asyncio.wait_for(ready.wait(), 3)
            broadcast(connected, b'{"as": "text"}', text=True)
            broadcast(connected, "as binary", text=False)
            for client in (first, second):
                assert await client.recv() == '{"as": "text"}'
                assert await client.recv() == b"as binary"


# -- reconnection ------------------------------------------------------------------------


class Restarting:
    """A port whose listener accepts TCP and closes during the handshake, as a restarting server does."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.attempts = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return  # closed: the real server takes the port over
            with client:
                client.recv(65536)  # the handshake request, left unanswered
                self.attempts += 1

    def stop(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept() (closing alone doesn't, on Linux)
        self.sock.close()
        self.thread.join(1)


def quick_delays() -> Iterator[float]:
    return itertools.repeat(0.02)


async def test_reconnect_across_a_server_restart() -> None:
    restarting = Restarting()
    loop = asyncio.get_running_loop()
    started: asyncio.Future[Any] = loop.create_future()

    async def restart_when_tried() -> None:
        while restarting.attempts < 2:
            await asyncio.sleep(0.01)
        restarting.stop()
        server = await wsio.serve(echo, "127.0.0.1", restarting.port)
        started.set_result(server)

    restart = asyncio.ensure_future(restart_when_tried())
    async for websocket in wsio.connect(f"ws://127.0.0.1:{restarting.port}/", reconnect_delays=quick_delays):
        await websocket.send("back")
        assert await websocket.recv() == "back"
        break
    await restart
    server = started.result()
    server.close()
    await server.wait_closed()
    assert restarting.attempts >= 2


async def test_reconnect_raises_4xx_and_retries_5xx() -> None:
    attempts = 0

    def flaky(connection: Any, request: Any) -> Any:
        nonlocal attempts
        attempts += 1
        if request.path == "/forbidden":
            return connection.respond(http.HTTPStatus.FORBIDDEN, "no\n")
        if attempts <= 2:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "restarting\n")
        return None

    async with wsio.serve(echo, "127.0.0.1", 0, process_request=flaky) as server:
        uri = f"ws://127.0.0.1:{port_of(server)}"
        async for websocket in wsio.connect(f"{uri}/", reconnect_delays=quick_delays):
            await websocket.send("up")
            assert await websocket.recv() == "up"
            break
        assert attempts == 3  # two 503s retried, then connected
        with pytest.raises(wsio.InvalidStatus) as caught:
            async for websocket in wsio.connect(f"{uri}/forbidden", reconnect_delays=quick_delays):
                pytest.fail("a 403 is not retried")
        assert caught.value.response.status_code == 403
        assert attempts == 4


def test_process_exception_rules() -> None:
    """The rules of websockets' process_exception, on the exceptions wsio raises."""
    eof = wsio.InvalidMessage("connection closed before the HTTP response")
    eof.__cause__ = EOFError()
    assert process_exception(eof) is None
    assert process_exception(ConnectionRefusedError()) is None
    assert process_exception(TimeoutError()) is None
    for status in (500, 502, 503, 504):
        assert process_exception(wsio.InvalidStatus(wsio.Response(status, "", wsio.Headers()))) is None
    for status in (400, 401, 403, 404, 501):
        exc = wsio.InvalidStatus(wsio.Response(status, "", wsio.Headers()))
        assert process_exception(exc) is exc
    malformed = wsio.InvalidMessage("invalid status line")
    assert process_exception(malformed) is malformed
    assert process_exception(wsio.InvalidURI("http://x", "not ws")) is not None


async def test_process_exception_that_raises_ends_the_loop() -> None:
    def strict(exc: Exception) -> Exception | None:
        raise RuntimeError("give up") from exc

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(RuntimeError, match="give up"):
        async for _ in wsio.connect(f"ws://127.0.0.1:{port}/", process_exception=strict):
            pytest.fail("nothing listens there")


# -- recv(decode=...), recv_streaming(decode=...) -------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
async def test_recv_decode_overrides_the_frame_type(library: str) -> None:
    server_module = library_module(library, "asyncio.server")
    client_module = library_module(library, "asyncio.client")

    async def send_both_kinds(websocket: Any) -> None:
        for _ in range(3):
            await websocket.send("café")
            await websocket.send("café".encode())
        await websocket.wait_closed()

    async with server_module.serve(send_both_kinds, "127.0.0.1", 0) as server:
        async with client_module.connect(f"ws://127.0.0.1:{port_of(server)}/") as websocket:
            assert await websocket.recv(decode=True) == "café"
            assert await websocket.recv(True) == "café"  # binary, decoded: the first positional argument
            assert await websocket.recv(decode=False) == "café".encode()  # text, not decoded
            assert await websocket.recv(False) == "café".encode()
            assert await websocket.recv(decode=None) == "café"
            assert await websocket.recv() == "café".encode()


@pytest.mark.parametrize("library", LIBRARIES)
async def test_recv_decode_true_fails_with_1007_on_invalid_utf8(library: str) -> None:
    server_module = library_module(library, "asyncio.server")
    client_module = library_module(library, "asyncio.client")
    exceptions = library_module(library, "exceptions")
    seen_by_server: list[Any] = []

    async def send_latin1(websocket: Any) -> None:
        await websocket.send("été".encode("latin-1"))
        await websocket.wait_closed()
        seen_by_server.append((websocket.close_code, websocket.close_reason))

    async with server_module.serve(send_latin1, "127.0.0.1", 0) as server:
        async with client_module.connect(f"ws://127.0.0.1:{port_of(server)}/") as websocket:
            with pytest.raises(exceptions.ConnectionClosedError) as caught:
                await websocket.recv(decode=True)
            with pytest.raises(exceptions.ConnectionClosedError):
                await websocket.recv()
    assert caught.value.rcvd is None
    assert (caught.value.sent.code, caught.value.sent.reason) == (1007, "invalid continuation byte at position 0")
    assert seen_by_server == [(1007, "invalid continuation byte at position 0")]


@pytest.mark.parametrize("library", LIBRARIES)
async def test_recv_streaming_decode(library: str) -> None:
    server_module = library_module(library, "asyncio.server")
    client_module = library_module(library, "asyncio.client")

    async def send_fragmented(websocket: Any) -> None:
        await websocket.send(["caf", "é", "!"])
        await websocket.send([b"caf", b"\xc3", b"\xa9!"])  # é cut in two frames
        await websocket.send(["caf", "é", "!"])
        await websocket.send([b"caf", b"\xc3", b"\xa9!"])
        await websocket.send("whole")
        await websocket.send(b"whole")
        await websocket.wait_closed()

    async with server_module.serve(send_fragmented, "127.0.0.1", 0) as server:
        async with client_module.connect(f"ws://127.0.0.1:{port_of(server)}/") as websocket:
            pieces = [piece async for piece in websocket.recv_streaming(decode=False)]
            assert all(type(piece) is bytes for piece in pieces) and b"".join(pieces) == "café!".encode()
            pieces = [piece async for piece in websocket.recv_streaming(True)]
            assert all(type(piece) is str for piece in pieces) and "".join(pieces) == "café!"
            pieces = [piece async for piece in websocket.recv_streaming(decode=True)]
            assert all(type(piece) is str for piece in pieces) and "".join(pieces) == "café!"
            pieces = [piece async for piece in websocket.recv_streaming(decode=False)]
            assert all(type(piece) is bytes for piece in pieces) and b"".join(pieces) == "café!".encode()
            assert [piece async for piece in websocket.recv_streaming(decode=False)] == [b"whole"]
            assert [piece async for piece in websocket.recv_streaming(decode=True)] == ["whole"]


@pytest.mark.parametrize("library", LIBRARIES)
async def test_recv_streaming_decode_true_fails_with_1007_on_invalid_utf8(library: str) -> None:
    server_module = library_module(library, "asyncio.server")
    client_module = library_module(library, "asyncio.client")
    exceptions = library_module(library, "exceptions")

    async def send_fragmented(websocket: Any) -> None:
        await websocket.send([b"ok", b"\xff", b"end"])
        await websocket.wait_closed()

    async with server_module.serve(send_fragmented, "127.0.0.1", 0) as server:
        async with client_module.connect(f"ws://127.0.0.1:{port_of(server)}/") as websocket:
            pieces = []
            with pytest.raises(exceptions.ConnectionClosedError) as caught:
                async for piece in websocket.recv_streaming(decode=True):
                    pieces.append(piece)
    assert "".join(pieces) in ("", "ok")  # the pieces before the error, as they came
    assert caught.value.sent.code == 1007 and caught.value.sent.reason.startswith("invalid start byte")


async def test_recv_timeout_as_first_argument_is_deprecated() -> None:
    async def quiet(websocket: Any) -> None:
        await websocket.send("late")
        await websocket.wait_closed()

    async with wsio.serve(quiet, "127.0.0.1", 0) as server:
        async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}/") as websocket:
            with pytest.warns(DeprecationWarning, match=r"recv\(timeout=") as warned:
                assert await websocket.recv(3) == "late"
            assert warned[0].filename == __file__  # points at the caller
            with pytest.warns(DeprecationWarning), pytest.raises(TimeoutError):
                await websocket.recv(0.05)
            with pytest.warns(DeprecationWarning), pytest.raises(TypeError):
                await websocket.recv(1, timeout=1)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                with pytest.raises(TimeoutError):
                    await websocket.recv(timeout=0.05)
                with pytest.raises(TimeoutError):
                    await websocket.recv(True, timeout=0.05)


# -- send(text=...) ---------------------------------------------------------------------------


async def report_types(websocket: Any) -> None:
    """Answer each message with its type and content, as the server received it."""
    async for message in websocket:
        await websocket.send(f"{type(message).__name__} {message!r}")


@pytest.mark.parametrize("library", LIBRARIES)
async def test_send_text_overrides_the_message_type(library: str) -> None:
    server_module = library_module(library, "asyncio.server")
    client_module = library_module(library, "asyncio.client")

    async def chunks(*items: Any) -> Any:
        for item in items:
            yield item

    async with server_module.serve(report_types, "127.0.0.1", 0) as server:
        async with client_module.connect(f"ws://127.0.0.1:{port_of(server)}/") as websocket:
            sent_and_seen = [
                (("café".encode(), True), "str 'café'"),
                ((bytearray(b"ba"), True), "str 'ba'"),
                ((memoryview(b"mv"), True), "str 'mv'"),
                (("café", False), f"bytes {'café'.encode()!r}"),
                (("plain", None), "str 'plain'"),
                ((b"plain", None), "bytes b'plain'"),
                (([b"fr", "ag".encode()], True), "str 'frag'"),
                ((["fr", "ag"], False), "bytes b'frag'"),
                ((chunks(b"as", b"ync"), True), "str 'async'"),
                ((chunks("as", "ync"), False), "bytes b'async'"),
            ]
            for (message, text), seen in sent_and_seen:
                await websocket.send(message, text=text)
                assert await websocket.recv() == seen


@pytest.mark.parametrize("library", LIBRARIES)
async def test_send_text_true_does_not_check_utf8(library: str) -> None:
    server_module = library_module(library, "asyncio.server")
    client_module = library_module(library, "asyncio.client")

    async with server_module.serve(report_types, "127.0.0.1", 0) as server:
        async with client_module.connect(f"ws://127.0.0.1:{port_of(server)}/") as websocket:
            await websocket.send(b"\xff", text=True)  # not UTF-8: the server fails the connection
            await websocket.wait_closed()
    assert websocket.close_code == 1007


async def test_send_text_on_large_messages() -> None:
    """Large payloads take another path on the server side (written in slices)."""
    from wsio.protocol.frames import LARGE_PAYLOAD

    size = LARGE_PAYLOAD * 2

    async def send_large(websocket: Any) -> None:
        await websocket.send(b"a" * size, text=True)
        await websocket.send("b" * size, text=False)
        await websocket.send(b"c" * size, text=False)
        await websocket.send("d" * size, text=True)
        await websocket.wait_closed()

    async with wsio.serve(send_large, "127.0.0.1", 0) as server:
        async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}/", max_size=None) as websocket:
            assert await websocket.recv() == "a" * size
            assert await websocket.recv() == b"b" * size
            assert await websocket.recv() == b"c" * size
            assert await websocket.recv() == "d" * size


# -- close_exc ----------------------------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
async def test_close_exc(library: str) -> None:
    server_module = library_module(library, "asyncio.server")
    client_module = library_module(library, "asyncio.client")
    exceptions = library_module(library, "exceptions")
    server_side: list[Any] = []

    async def close_with_4000(websocket: Any) -> None:
        await websocket.recv()
        await websocket.close(4000, "bye")
        server_side.append(websocket.close_exc)

    async with server_module.serve(close_with_4000, "127.0.0.1", 0) as server:
        uri = f"ws://127.0.0.1:{port_of(server)}/"
        async with client_module.connect(uri) as websocket:
            with pytest.raises(AssertionError):
                websocket.close_exc  # not closed yet
            await websocket.send("close please")
            with pytest.raises(exceptions.ConnectionClosedError) as caught:
                await websocket.recv()
            exc = websocket.close_exc
            assert type(exc) is type(caught.value) and str(exc) == str(caught.value)
            assert (exc.rcvd.code, exc.rcvd.reason, exc.sent.code, exc.rcvd_then_sent) == (4000, "bye", 4000, True)
        async with client_module.connect(uri) as websocket:
            await websocket.close()
            exc = websocket.close_exc
            assert isinstance(exc, exceptions.ConnectionClosedOK)
            assert (exc.sent.code, exc.rcvd.code, exc.rcvd_then_sent) == (1000, 1000, False)
    assert isinstance(server_side[0], exceptions.ConnectionClosedError) and server_side[0].sent.code == 4000


# -- Server.close(close_connections, code, reason) -----------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize(
    "args, kwargs, expected",
    [((), {}, (1001, "")), ((True, 1012, "restarting"), {}, (1012, "restarting")), ((), {"code": 4001}, (4001, ""))],
)
async def test_server_close_with_code_and_reason(
    library: str, args: tuple[Any, ...], kwargs: dict[str, Any], expected: tuple[int, str]
) -> None:
    server_module = library_module(library, "asyncio.server")
    client_module = library_module(library, "asyncio.client")
    server = await server_module.serve(echo, "127.0.0.1", 0)
    async with client_module.connect(f"ws://127.0.0.1:{port_of(server)}/") as websocket:
        await websocket.send("open")
        assert await websocket.recv() == "open"
        server.close(*args, **kwargs)
        await server.wait_closed()
        await websocket.wait_closed()
        assert (websocket.close_code, websocket.close_reason) == expected


async def test_server_close_refuses_a_code_that_cant_be_sent() -> None:
    async with wsio.serve(echo, "127.0.0.1", 0) as server:
        async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}/") as websocket:
            with pytest.raises(ValueError, match="1006"):
                server.close(code=1006)
            with pytest.raises(ValueError, match="123 bytes"):
                server.close(code=1001, reason="x" * 124)
            with pytest.raises(TypeError):
                server.close(True, 1.5)  # type: ignore[arg-type]
            assert server.is_serving()  # nothing was closed
            await websocket.send("still open")
            assert await websocket.recv() == "still open"
            task = server.close(True, 1012)
            await task  # wsio's close() returns a task
            assert websocket.close_code == 1012
