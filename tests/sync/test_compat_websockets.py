"""Programs written for websockets 17's threading API, run with only the import changed.

Where it helps, the same code runs against websockets itself too (the
``library`` parameter): what a user observes must be the same.
"""

from __future__ import annotations

import contextlib
import http
import importlib
import itertools
import logging
import socket
import threading
import time
import warnings
from typing import Any, Iterator

import pytest
import werkzeug.routing

import wsio
from wsio.sync.client import ClientConnection, connect, reconnect, unix_connect
from wsio.sync.server import basic_auth, broadcast, serve

from tests.helpers import COMPARED_LIBRARIES as LIBRARIES


def library_module(library: str, path: str) -> Any:
    return importlib.import_module(f"{library}.{path}")


@contextlib.contextmanager
def serving(server: Any) -> Iterator[int]:
    """Run a threaded server (wsio's or websockets') in a thread; yield its port."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.socket.getsockname()[1]
    finally:
        server.shutdown()
        thread.join(5)
        server.socket.close()


def http_get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP/1.1 GET, as a load balancer's health probe sends: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):  # the server closes after answering
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in fields.items()}, body


def echo(websocket: Any) -> None:
    for message in websocket:
        websocket.send(message)


# -- connect() without with ---------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
def test_connect_without_with_returns_the_connection(library: str) -> None:
    # A websockets server on the other side for both: the peer is real either way.
    import websockets.sync.server

    client_module = library_module(library, "sync.client")
    with serving(websockets.sync.server.serve(echo, "127.0.0.1", 0)) as port:
        ws = client_module.connect(f"ws://127.0.0.1:{port}/", legacy=True if library == "websockets" else None)
        try:
            ws.send("no with")
            assert ws.recv(timeout=3) == "no with"
            ws.send(b"\x00bytes")
            assert ws.recv(timeout=3) == b"\x00bytes"
        finally:
            ws.close()
        assert isinstance(ws, client_module.ClientConnection)


def test_connect_is_a_context_manager_and_fails_at_once() -> None:
    with serving(serve(echo, "127.0.0.1", 0)) as port:
        with connect(f"ws://127.0.0.1:{port}/") as ws:
            assert isinstance(ws, ClientConnection)
            ws.send("in with")
            assert ws.recv(timeout=3) == "in with"
        assert ws.state is wsio.State.CLOSED
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        connect(f"ws://127.0.0.1:{port}/")  # no with needed to see the error


def test_iterating_a_connection_yields_messages() -> None:
    def three(websocket: Any) -> None:
        for word in ("one", "two", "three"):
            websocket.send(word)

    with serving(serve(three, "127.0.0.1", 0)) as port:
        ws = connect(f"ws://127.0.0.1:{port}/")
        assert list(ws) == ["one", "two", "three"]  # ends at the normal closure


def test_unix_connect_without_with(tmp_path: Any) -> None:
    path = str(tmp_path / "ws.sock")
    server = wsio.sync.unix_serve(echo, path)
    with serving(server):
        ws = unix_connect(path)
        ws.send("over unix")
        assert ws.recv(timeout=3) == "over unix"
        ws.close()


# -- respond(): health checks ------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
def test_health_check_with_respond(library: str, caplog: pytest.LogCaptureFixture) -> None:
    server_module = library_module(library, "sync.server")
    client_module = library_module(library, "sync.client")

    def health_check(connection: Any, request: Any) -> Any:
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        return None

    with caplog.at_level(logging.INFO):
        with serving(server_module.serve(echo, "127.0.0.1", 0, process_request=health_check)) as port:
            status, headers, body = http_get(port, "/healthz")
            with client_module.connect(f"ws://127.0.0.1:{port}/") as websocket:
                websocket.send("still a WebSocket server")
                assert websocket.recv(timeout=3) == "still a WebSocket server"
    assert (status, body) == (200, b"OK\n")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_reject_answers_without_upgrading() -> None:
    def forbid(connection: Any, request: Any) -> Any:
        return connection.reject(http.HTTPStatus.FORBIDDEN, "Bad token\n") if "good" not in request.path else None

    with serving(serve(echo, "127.0.0.1", 0, process_request=forbid)) as port:
        with pytest.raises(wsio.InvalidStatus) as caught:
            connect(f"ws://127.0.0.1:{port}/bad")
        with connect(f"ws://127.0.0.1:{port}/good") as ws:
            ws.send("in")
            assert ws.recv(timeout=3) == "in"
    assert (caught.value.response.status_code, caught.value.response.body) == (403, b"Bad token\n")


# -- basic_auth() ------------------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
def test_basic_auth_accepts_and_sets_username(library: str) -> None:
    server_module = library_module(library, "sync.server")
    client_module = library_module(library, "sync.client")

    def whoami(websocket: Any) -> None:
        websocket.send(f"hello {websocket.username}")

    auth = server_module.basic_auth(realm="test", credentials=("alice", "s3cret"))
    with serving(server_module.serve(whoami, "127.0.0.1", 0, process_request=auth)) as port:
        with client_module.connect(f"ws://alice:s3cret@127.0.0.1:{port}/") as websocket:
            assert websocket.recv(timeout=3) == "hello alice"
        for wrong in ("alice:nope@", "bob:s3cret@", ""):
            with pytest.raises(library_module(library, "exceptions").InvalidStatus) as caught:
                with client_module.connect(f"ws://{wrong}127.0.0.1:{port}/"):
                    pass
            assert caught.value.response.status_code == 401
            assert caught.value.response.headers["WWW-Authenticate"].startswith('Basic realm="test"')


def test_basic_auth_with_a_check_function() -> None:
    auth = basic_auth(check_credentials=lambda username, password: password == username[::-1])
    with serving(serve(lambda ws: ws.send(ws.username), "127.0.0.1", 0, process_request=auth)) as port:
        with connect(f"ws://anna:anna@127.0.0.1:{port}/") as ws:
            assert ws.recv(timeout=3) == "anna"
        with pytest.raises(wsio.InvalidStatus):
            connect(f"ws://anna:nope@127.0.0.1:{port}/")


# -- route() -----------------------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
def test_router_dispatches_by_path(library: str) -> None:
    router = library_module(library, "sync.router")
    client_module = library_module(library, "sync.client")

    def room_handler(websocket: Any, room: str) -> None:
        websocket.send(f"room {room}")

    url_map = werkzeug.routing.Map(
        [
            werkzeug.routing.Rule("/echo", endpoint=echo),
            werkzeug.routing.Rule("/rooms/<room>", endpoint=room_handler),
        ]
    )
    with serving(router.route(url_map, "127.0.0.1", 0)) as port:
        with client_module.connect(f"ws://127.0.0.1:{port}/echo") as websocket:
            websocket.send("ping")
            assert websocket.recv(timeout=3) == "ping"
        with client_module.connect(f"ws://127.0.0.1:{port}/rooms/lobby") as websocket:
            assert websocket.recv(timeout=3) == "room lobby"
        with pytest.raises(library_module(library, "exceptions").InvalidStatus) as caught:
            with client_module.connect(f"ws://127.0.0.1:{port}/nowhere"):
                pass
        assert caught.value.response.status_code == 404


# -- broadcast ---------------------------------------------------------------------------


def test_broadcast_reaches_every_open_connection() -> None:
    connected: list[Any] = []
    done = threading.Event()

    def handler(websocket: Any) -> None:
        connected.append(websocket)
        done.wait(5)

    with serving(serve(handler, "127.0.0.1", 0)) as port:
        clients = [connect(f"ws://127.0.0.1:{port}/") for _ in range(3)]
        deadline = time.monotonic() + 3
        while len(connected) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert broadcast(connected, "to all") == 3
        broadcast(connected, b"utf-8 text", text=True)
        for client in clients:
            assert client.recv(timeout=3) == "to all"
            assert client.recv(timeout=3) == "utf-8 text"
        clients[0].close()
        deadline = time.monotonic() + 3
        while connected[0].state is not wsio.State.CLOSED and time.monotonic() < deadline:
            time.sleep(0.01)
        assert broadcast(connected, "to the rest") == 2
        done.set()
        for client in clients[1:]:
            client.close()


# -- reconnection ------------------------------------------------------------------------


def quick_delays() -> Iterator[float]:
    return itertools.repeat(0.02)


@contextlib.contextmanager
def restarting_port() -> Iterator[tuple[int, list[int]]]:
    """A port whose listener accepts TCP and closes during the handshake, then a wsio server on it.

    Yields the port and the list of attempts the listener saw; the real
    server takes the port over after two of them.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    attempts: list[int] = []
    box: dict[str, Any] = {}

    def run() -> None:
        while len(attempts) < 2:
            client, _ = listener.accept()
            with client:
                client.recv(65536)  # the handshake request, left unanswered
                attempts.append(1)
        listener.close()
        server = serve(echo, "127.0.0.1", port)
        box["server"] = server
        server.serve_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield port, attempts
    finally:
        deadline = time.monotonic() + 5
        while "server" not in box and time.monotonic() < deadline:
            time.sleep(0.01)
        if "server" in box:
            box["server"].shutdown()
        thread.join(5)


@pytest.mark.parametrize("how", ["reconnect", "connect(legacy=False)"])
def test_reconnect_across_a_server_restart(how: str) -> None:
    with restarting_port() as (port, attempts):
        uri = f"ws://127.0.0.1:{port}/"
        if how == "reconnect":
            connections = reconnect(uri, reconnect_delays=quick_delays)
        else:
            connections = connect(uri, legacy=False, reconnect_delays=quick_delays)
        for websocket in connections:
            websocket.send("back")
            assert websocket.recv(timeout=3) == "back"
            break
        assert len(attempts) == 2


def test_reconnect_raises_4xx_and_retries_5xx() -> None:
    attempts = []

    def flaky(connection: Any, request: Any) -> Any:
        attempts.append(request.path)
        if request.path == "/forbidden":
            return connection.respond(http.HTTPStatus.FORBIDDEN, "no\n")
        if len(attempts) <= 2:
            return connection.respond(http.HTTPStatus.BAD_GATEWAY, "restarting\n")
        return None

    with serving(serve(echo, "127.0.0.1", 0, process_request=flaky)) as port:
        for websocket in reconnect(f"ws://127.0.0.1:{port}/", reconnect_delays=quick_delays):
            websocket.send("up")
            assert websocket.recv(timeout=3) == "up"
            break
        assert len(attempts) == 3  # two 502s retried, then connected
        with pytest.raises(wsio.InvalidStatus) as caught:
            for _ in reconnect(f"ws://127.0.0.1:{port}/forbidden", reconnect_delays=quick_delays):
                pytest.fail("a 403 is not retried")
        assert caught.value.response.status_code == 403
        assert len(attempts) == 4


def test_a_connection_closed_during_the_handshake_is_an_eof() -> None:
    """What process_exception (and a user's own, written for websockets) sees: InvalidMessage from EOFError."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def close_after_request() -> None:
            client, _ = listener.accept()
            with client:
                client.recv(65536)

        thread = threading.Thread(target=close_after_request, daemon=True)
        thread.start()
        with pytest.raises(wsio.InvalidMessage) as caught:
            connect(f"ws://127.0.0.1:{port}/", open_timeout=3)
        thread.join(3)
    assert isinstance(caught.value.__cause__, EOFError)


# -- recv(timeout, decode), recv_streaming(decode) ---------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
def test_recv_decode_overrides_the_frame_type(library: str) -> None:
    server_module = library_module(library, "sync.server")
    client_module = library_module(library, "sync.client")

    def send_both_kinds(websocket: Any) -> None:
        for _ in range(3):
            websocket.send("café")
            websocket.send("café".encode())
        for _ in websocket:
            pass

    with serving(server_module.serve(send_both_kinds, "127.0.0.1", 0)) as port:
        with client_module.connect(f"ws://127.0.0.1:{port}/") as websocket:
            assert websocket.recv(decode=True) == "café"
            assert websocket.recv(3, True) == "café"  # binary, decoded: (timeout, decode) as in websockets
            assert websocket.recv(timeout=3, decode=False) == "café".encode()  # text, not decoded
            assert websocket.recv(None, False) == "café".encode()
            assert websocket.recv(3, None) == "café"
            assert websocket.recv(3) == "café".encode()


@pytest.mark.parametrize("library", LIBRARIES)
def test_recv_decode_true_fails_with_1007_on_invalid_utf8(library: str) -> None:
    server_module = library_module(library, "sync.server")
    client_module = library_module(library, "sync.client")
    exceptions = library_module(library, "exceptions")
    seen_by_server: list[Any] = []

    def send_latin1(websocket: Any) -> None:
        websocket.send("été".encode("latin-1"))
        with pytest.raises(exceptions.ConnectionClosedError):
            websocket.recv()
        seen_by_server.append((websocket.close_code, websocket.close_reason))

    with serving(server_module.serve(send_latin1, "127.0.0.1", 0)) as port:
        with client_module.connect(f"ws://127.0.0.1:{port}/") as websocket:
            with pytest.raises(exceptions.ConnectionClosedError) as caught:
                websocket.recv(timeout=3, decode=True)
            with pytest.raises(exceptions.ConnectionClosedError):
                websocket.recv(timeout=3)
        deadline = time.monotonic() + 3
        while not seen_by_server and time.monotonic() < deadline:
            time.sleep(0.01)
    assert caught.value.rcvd is None
    assert (caught.value.sent.code, caught.value.sent.reason) == (1007, "invalid continuation byte at position 0")
    assert seen_by_server == [(1007, "invalid continuation byte at position 0")]


@pytest.mark.parametrize("library", LIBRARIES)
def test_recv_streaming_decode(library: str) -> None:
    server_module = library_module(library, "sync.server")
    client_module = library_module(library, "sync.client")

    def send_fragmented(websocket: Any) -> None:
        websocket.send(["caf", "é", "!"])
        websocket.send([b"caf", b"\xc3", b"\xa9!"])  # é cut in two frames
        websocket.send(["caf", "é", "!"])
        websocket.send([b"caf", b"\xc3", b"\xa9!"])
        websocket.send("whole")
        websocket.send(b"whole")
        for _ in websocket:
            pass

    with serving(server_module.serve(send_fragmented, "127.0.0.1", 0)) as port:
        with client_module.connect(f"ws://127.0.0.1:{port}/") as websocket:
            pieces = list(websocket.recv_streaming(decode=False))
            assert all(type(piece) is bytes for piece in pieces) and b"".join(pieces) == "café!".encode()
            pieces = list(websocket.recv_streaming(True))
            assert all(type(piece) is str for piece in pieces) and "".join(pieces) == "café!"
            pieces = list(websocket.recv_streaming(decode=True))
            assert all(type(piece) is str for piece in pieces) and "".join(pieces) == "café!"
            pieces = list(websocket.recv_streaming(decode=False))
            assert all(type(piece) is bytes for piece in pieces) and b"".join(pieces) == "café!".encode()
            assert list(websocket.recv_streaming(decode=False)) == [b"whole"]
            assert list(websocket.recv_streaming(decode=True)) == ["whole"]


@pytest.mark.parametrize("library", LIBRARIES)
def test_recv_streaming_decode_true_fails_with_1007_on_invalid_utf8(library: str) -> None:
    server_module = library_module(library, "sync.server")
    client_module = library_module(library, "sync.client")
    exceptions = library_module(library, "exceptions")

    def send_fragmented(websocket: Any) -> None:
        websocket.send([b"ok", b"\xff", b"end"])
        for _ in websocket:
            pass

    with serving(server_module.serve(send_fragmented, "127.0.0.1", 0)) as port:
        with client_module.connect(f"ws://127.0.0.1:{port}/") as websocket:
            pieces = []
            with pytest.raises(exceptions.ConnectionClosedError) as caught:
                for piece in websocket.recv_streaming(decode=True):
                    pieces.append(piece)
    assert "".join(pieces) in ("", "ok")  # the pieces before the error, as they came
    assert caught.value.sent.code == 1007 and caught.value.sent.reason.startswith("invalid start byte")


# -- send(text=...) ---------------------------------------------------------------------------


def report_types(websocket: Any) -> None:
    """Answer each message with its type and content, as the server received it."""
    for message in websocket:
        websocket.send(f"{type(message).__name__} {message!r}")


@pytest.mark.parametrize("library", LIBRARIES)
def test_send_text_overrides_the_message_type(library: str) -> None:
    server_module = library_module(library, "sync.server")
    client_module = library_module(library, "sync.client")

    with serving(server_module.serve(report_types, "127.0.0.1", 0)) as port:
        with client_module.connect(f"ws://127.0.0.1:{port}/") as websocket:
            sent_and_seen = [
                (("café".encode(), True), "str 'café'"),
                ((bytearray(b"ba"), True), "str 'ba'"),
                ((memoryview(b"mv"), True), "str 'mv'"),
                (("café", False), f"bytes {'café'.encode()!r}"),
                (("plain", None), "str 'plain'"),
                ((b"plain", None), "bytes b'plain'"),
                (([b"fr", "ag".encode()], True), "str 'frag'"),
                ((iter(["fr", "ag"]), False), "bytes b'frag'"),
            ]
            for (message, text), seen in sent_and_seen:
                websocket.send(message, text=text)
                assert websocket.recv(timeout=3) == seen


@pytest.mark.parametrize("library", LIBRARIES)
def test_send_text_true_does_not_check_utf8(library: str) -> None:
    server_module = library_module(library, "sync.server")
    client_module = library_module(library, "sync.client")

    with serving(server_module.serve(report_types, "127.0.0.1", 0)) as port:
        with client_module.connect(f"ws://127.0.0.1:{port}/") as websocket:
            websocket.send(b"\xff", text=True)  # not UTF-8: the server fails the connection
            with pytest.raises(library_module(library, "exceptions").ConnectionClosedError):
                websocket.recv(timeout=3)
    assert websocket.close_code == 1007


# -- close_exc ----------------------------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
def test_close_exc(library: str) -> None:
    server_module = library_module(library, "sync.server")
    client_module = library_module(library, "sync.client")
    exceptions = library_module(library, "exceptions")
    server_side: list[Any] = []

    def close_with_4000(websocket: Any) -> None:
        websocket.recv()
        websocket.close(4000, "bye")
        server_side.append(websocket.close_exc)

    with serving(server_module.serve(close_with_4000, "127.0.0.1", 0)) as port:
        uri = f"ws://127.0.0.1:{port}/"
        with client_module.connect(uri) as websocket:
            with pytest.raises(AssertionError):
                websocket.close_exc  # not closed yet
            websocket.send("close please")
            with pytest.raises(exceptions.ConnectionClosedError) as caught:
                websocket.recv(timeout=3)
            exc = websocket.close_exc
            assert type(exc) is type(caught.value) and str(exc) == str(caught.value)
            assert (exc.rcvd.code, exc.rcvd.reason, exc.sent.code, exc.rcvd_then_sent) == (4000, "bye", 4000, True)
        with client_module.connect(uri) as websocket:
            websocket.close()
            exc = websocket.close_exc
            assert isinstance(exc, exceptions.ConnectionClosedOK)
            assert (exc.sent.code, exc.rcvd.code, exc.rcvd_then_sent) == (1000, 1000, False)
    assert isinstance(server_side[0], exceptions.ConnectionClosedError) and server_side[0].sent.code == 4000


# -- Server.shutdown(close_connections, code, reason) ---------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize(
    "args, kwargs, expected",
    [((), {}, (1001, "")), ((True, 1012, "restarting"), {}, (1012, "restarting")), ((), {"code": 4001}, (4001, ""))],
)
def test_server_shutdown_with_code_and_reason(
    library: str, args: tuple[Any, ...], kwargs: dict[str, Any], expected: tuple[int, str]
) -> None:
    server = library_module(library, "sync.server").serve(echo, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with library_module(library, "sync.client").connect(f"ws://127.0.0.1:{server.socket.getsockname()[1]}/") as websocket:
            websocket.send("open")
            assert websocket.recv(timeout=3) == "open"
            server.shutdown(*args, **kwargs)
            with pytest.raises(library_module(library, "exceptions").ConnectionClosed):
                websocket.recv(timeout=3)
            assert (websocket.close_code, websocket.close_reason) == expected
    finally:
        server.shutdown()
        thread.join(5)
        server.socket.close()


def test_server_shutdown_takes_an_old_positional_timeout_with_a_warning() -> None:
    # Generous timeouts: shutdown() returns as soon as the closing handshake is done, and one
    # shorter than a loaded machine's handshake would abort the connection (1006, not 1001).
    for old in (5.0, 5, None):
        with serve(echo, "127.0.0.1", 0) as server:
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            with connect(f"ws://127.0.0.1:{server.socket.getsockname()[1]}/") as websocket:
                with pytest.warns(DeprecationWarning, match=r"shutdown\(timeout=") as warned:
                    server.shutdown(True, old)  # type: ignore[arg-type]
                assert warned[0].filename == __file__  # points at the caller
                with pytest.raises(wsio.ConnectionClosedOK):
                    websocket.recv(timeout=3)
                assert websocket.close_code == 1001  # the default code
            thread.join(5)
    with serve(echo, "127.0.0.1", 0) as server:
        with pytest.warns(DeprecationWarning), pytest.raises(TypeError):
            server.shutdown(True, 1.0, timeout=1.0)
        with pytest.raises(ValueError, match="1006"):
            server.shutdown(True, 1006)
        with pytest.raises(ValueError, match="123 bytes"):
            server.shutdown(True, 1001, "x" * 124)
        assert not server._shutdown.is_set()  # refused before anything stopped
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            server.shutdown(timeout=1.0)


# -- recv_bufsize -------------------------------------------------------------------------------


class RecordingSocket(socket.socket):
    """A socket that records the sizes it is asked to read."""

    sizes: list[int]

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self.sizes.append(bufsize)
        return super().recv(bufsize, flags)


@pytest.mark.parametrize("library", LIBRARIES)
def test_recv_bufsize_of_a_connection_subclass(library: str) -> None:
    client_module = library_module(library, "sync.client")

    class SmallReads(client_module.ClientConnection):  # type: ignore[name-defined, misc]
        recv_bufsize = 1000

    with serving(serve(echo, "127.0.0.1", 0)) as port:
        sock = RecordingSocket(socket.AF_INET, socket.SOCK_STREAM)
        sock.sizes = []
        sock.connect(("127.0.0.1", port))
        with client_module.connect(f"ws://127.0.0.1:{port}/", sock=sock, create_connection=SmallReads) as websocket:
            websocket.send("x" * 5000)
            assert websocket.recv(timeout=3) == "x" * 5000
    assert 1000 in sock.sizes and max(sock.sizes) == 1000
