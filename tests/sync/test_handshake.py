"""wsio.sync server and client options: handshake hooks, subprotocols, headers, timeouts, TLS, reconnection."""

from __future__ import annotations

import http
import logging
import os
import socket
import ssl
import tempfile
import threading
import time

import pytest

import wsio.asyncio.client
from wsio import ConnectionClosed, ConnectionClosedOK, InvalidHandshake, InvalidStatus, NegotiationError, Response
from wsio.sync import connect, serve, unix_connect, unix_serve
from wsio.sync.client import reconnect

from .helpers import echo, raw_server, run_server, self_signed_cert, server_ssl_context, uri

pytestmark = pytest.mark.timeout(60)


def test_process_request_tuple_and_health_check() -> None:
    def process_request(connection, request):  # type: ignore[no-untyped-def]
        if request.path == "/healthz":
            return http.HTTPStatus.OK, [("X-Health", "ok")], b"OK\n"
        if "Authorization" not in request.headers:
            return 401, {}, "missing token"
        return None

    with run_server(echo, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as info:
            with connect(uri(server)):
                pass
        assert info.value.response.status_code == 401 and info.value.response.body == b"missing token"
        with pytest.raises(InvalidStatus) as info:
            with connect(uri(server, "/healthz")):
                pass
        assert info.value.response.status_code == 200 and info.value.response.headers["X-Health"] == "ok"
        with connect(uri(server), additional_headers={"Authorization": "Bearer x"}) as ws:
            ws.send("in")
            assert ws.recv(timeout=5) == "in"


def test_process_request_legacy_signature_and_response_object() -> None:
    def process_request(path, request_headers):  # type: ignore[no-untyped-def]
        if path == "/forbidden":
            return Response.from_status(403, "no")
        return None

    with run_server(echo, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as info:
            with connect(uri(server, "/forbidden")):
                pass
        assert info.value.status_code == 403
        with connect(uri(server, "/fine")) as ws:
            assert ws.state.name == "OPEN"


def test_process_request_failure_is_500() -> None:
    def process_request(connection, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("bug")

    with run_server(echo, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as info:
            with connect(uri(server)):
                pass
        assert info.value.status_code == 500


def test_process_response() -> None:
    def process_response(connection, request, response):  # type: ignore[no-untyped-def]
        response.headers["X-Extra"] = "1"

    with run_server(echo, process_response=process_response) as server, connect(uri(server)) as ws:
        assert ws.response_headers["X-Extra"] == "1"


def test_subprotocols() -> None:
    with run_server(echo, subprotocols=["chat", "superchat"]) as server:
        with connect(uri(server), subprotocols=["superchat", "other"]) as ws:
            assert ws.subprotocol == "superchat"
        with connect(uri(server), subprotocols=["other"]) as ws:
            assert ws.subprotocol is None

    def select(connection, offered):  # type: ignore[no-untyped-def]
        return offered[-1]

    with run_server(echo, select_subprotocol=select) as server:
        with connect(uri(server), subprotocols=["a", "b"]) as ws:
            assert ws.subprotocol == "b"


def test_headers() -> None:
    seen = {}

    def handler(ws) -> None:  # type: ignore[no-untyped-def]
        seen.update(ws.request_headers.raw_items())
        ws.send("x")

    with run_server(handler, server_header=None, extra_headers={"X-Server": "yes"}) as server:
        with connect(uri(server), additional_headers=[("X-Client", "1")], user_agent_header="agent/1", origin="http://o") as ws:
            assert "Server" not in ws.response_headers
            assert ws.response_headers["X-Server"] == "yes"
            assert ws.recv(timeout=5) == "x"
        assert seen["X-Client"] == "1" and seen["User-Agent"] == "agent/1" and seen["Origin"] == "http://o"
        seen.clear()
        with connect(uri(server), extra_headers={"X-Alias": "2"}, user_agent_header=None) as ws:
            ws.recv(timeout=5)
        assert seen["X-Alias"] == "2" and "User-Agent" not in seen
    with run_server(echo) as server, connect(uri(server)) as ws:
        assert ws.response_headers["Server"].startswith("Python/")


def test_origins(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wsio.server")
    with run_server(echo, origins=["https://good.example", None]) as server:
        with connect(uri(server), origin="https://good.example") as ws:
            assert ws.open
        with connect(uri(server)) as ws:
            assert ws.open
        with pytest.raises(InvalidStatus) as info:
            with connect(uri(server), origin="https://evil.example"):
                pass
        assert info.value.status_code == 403
    assert any("rejected: HTTP 403: Origin 'https://evil.example' not in origins=" in r.getMessage() for r in caplog.records)


def test_not_a_websocket_request_is_426() -> None:
    with run_server(echo) as server:
        sock = socket.create_connection(server.socket.getsockname()[:2], timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(4096)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 426")


def test_server_open_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wsio.server")
    with run_server(echo, open_timeout=0.3) as server:
        sock = socket.create_connection(server.socket.getsockname()[:2], timeout=5)
        start = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server
        assert time.monotonic() - start < 3
        sock.close()
    assert any("open_timeout" in record.message for record in caplog.records)


def test_client_open_timeout() -> None:
    stop = threading.Event()
    with raw_server(lambda sock: stop.wait(5)) as port:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            with connect(f"ws://127.0.0.1:{port}", open_timeout=0.3):
                pass
        assert time.monotonic() - start < 3
        stop.set()


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        with connect(f"ws://127.0.0.1:{port}"):
            pass


def test_shutdown_closes_connections_with_1001() -> None:
    started = threading.Event()

    def handler(ws) -> None:  # type: ignore[no-untyped-def]
        started.set()
        for _ in ws:
            pass

    server = serve(handler, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    ws = connect(uri(server)).__enter__()
    assert started.wait(5)
    assert len(server.connections) == 1 and server.is_serving()
    server.shutdown()
    thread.join(5)
    assert not thread.is_alive() and not server.is_serving()
    with pytest.raises(ConnectionClosedOK) as info:
        ws.recv(timeout=5)
    assert info.value.code == 1001 and info.value.reason == ""  # 1001 and no reason by default, as in websockets
    assert not server.connections
    with pytest.raises(OSError):
        with connect(uri(server) if server.socket.fileno() != -1 else "ws://127.0.0.1:1"):
            pass
    server.__exit__(None, None, None)


def test_a_handshake_in_process_request_when_the_server_shuts_down_gets_503() -> None:
    # As websockets answers it: the client learns why, and may retry elsewhere.
    entered = threading.Event()
    release = threading.Event()

    def process_request(connection: object, request: object) -> None:
        entered.set()
        assert release.wait(5)

    server = serve(echo, "127.0.0.1", 0, process_request=process_request)
    serving = threading.Thread(target=server.serve_forever)
    serving.start()
    outcome: list[BaseException] = []

    def client() -> None:
        try:
            connect(uri(server), open_timeout=5)
        except BaseException as exc:
            outcome.append(exc)

    connecting = threading.Thread(target=client)
    connecting.start()
    try:
        assert entered.wait(5)
        stopping = threading.Thread(target=server.shutdown)
        stopping.start()
        time.sleep(0.1)
        assert stopping.is_alive()  # it waits for the handshake under way
        release.set()
        stopping.join(5)
        connecting.join(5)
        assert not stopping.is_alive() and not connecting.is_alive()
        [exc] = outcome
        assert isinstance(exc, InvalidStatus)
        assert exc.response.status_code == 503
        assert exc.response.body == b"Server is shutting down.\n"
        assert not server.connections
    finally:
        release.set()
        server.shutdown()
        serving.join(5)


def test_shutdown_just_after_the_response_still_sends_a_close_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection whose 101 is out but whose reader isn't running yet closes with the code, not with a dropped TCP connection."""
    from wsio.sync.server import ServerConnection

    start = ServerConnection._start
    shut = threading.Event()

    def shutdown_before_start(self: ServerConnection) -> None:
        # What shutdown() does to each connection, at the worst moment: the
        # client already has its 101, this thread hasn't started the reader.
        closer = threading.Thread(target=self.close, args=(1012, "restarting"))
        closer.start()
        closer.join(5)
        shut.set()
        start(self)

    monkeypatch.setattr(ServerConnection, "_start", shutdown_before_start)
    with run_server(echo) as server:
        with connect(uri(server)) as ws:
            assert shut.wait(5)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            assert (info.value.code, info.value.reason) == (1012, "restarting")  # not 1006: the close frame came


def test_shutdown_from_handler_and_context_manager() -> None:
    def handler(ws) -> None:  # type: ignore[no-untyped-def]
        ws.recv()
        ws.server.shutdown()

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        with connect(uri(server)) as ws:
            ws.send("stop")
            with pytest.raises(ConnectionClosedOK):
                ws.recv(timeout=5)
        thread.join(5)
        assert not thread.is_alive()


def test_logging_one_line_per_open_and_close(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wsio")
    with run_server(echo) as server:
        with connect(uri(server)) as ws:
            ws.send("x")
            ws.recv(timeout=5)
        time.sleep(0.2)
    server_lines = [r.message for r in caplog.records if r.name == "wsio.server"]
    client_lines = [r.message for r in caplog.records if r.name == "wsio.client"]
    assert sum("connection open" in line for line in server_lines) == 1
    assert sum("connection closed" in line for line in server_lines) == 1
    assert sum("connection open" in line for line in client_lines) == 1
    assert sum("connection closed" in line for line in client_lines) == 1


def test_tls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert, key = self_signed_cert(str(tmp_path))
    with run_server(echo, ssl=server_ssl_context(cert, key)) as server:
        port = server.socket.getsockname()[1]
        client_context = ssl.create_default_context(cafile=cert)
        with connect(f"wss://localhost:{port}", ssl=client_context, host="127.0.0.1") as ws:
            assert isinstance(ws.socket, ssl.SSLSocket)
            ws.send("secret" * 10_000)
            assert ws.recv(timeout=5) == "secret" * 10_000
        # The name checked is the URI's host, or server_hostname.
        with connect(f"wss://127.0.0.1:{port}", ssl=client_context, server_hostname="localhost") as ws:
            assert ws.open
        with pytest.raises(ssl.SSLCertVerificationError):
            with connect(f"wss://localhost:{port}", host="127.0.0.1"):
                pass  # the default context doesn't trust the self-signed certificate
        with pytest.raises(ValueError):
            connect(f"ws://localhost:{port}", ssl=client_context)._create()


def test_tls_handshake_failure_on_server(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="wsio.server")
    cert, key = self_signed_cert(str(tmp_path))
    with run_server(echo, ssl=server_ssl_context(cert, key)) as server:
        with pytest.raises((InvalidHandshake, OSError)):
            with connect(uri(server)):  # plain HTTP to a TLS server
                pass
        with connect(
            uri(server, scheme="wss").replace("127.0.0.1", "localhost"), ssl=ssl.create_default_context(cafile=cert)
        ) as ws:
            assert ws.open


def test_reconnecting_iteration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wsio._client_common, "BACKOFF_INITIAL_DELAY", 0.05)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    box: dict[str, object] = {}

    def later() -> None:
        time.sleep(0.3)
        server = serve(lambda ws: ws.send(f"hello {ws.remote_address[1]}"), "127.0.0.1", port)
        box["server"] = server
        server.serve_forever()

    thread = threading.Thread(target=later)
    thread.start()
    seen = []
    try:
        for ws in reconnect(f"ws://127.0.0.1:{port}"):
            seen.append(ws.recv(timeout=5))
            if len(seen) == 2:
                break
    finally:
        while "server" not in box:
            time.sleep(0.01)
        box["server"].shutdown()  # type: ignore[attr-defined]
        thread.join(5)
    assert len(seen) == 2 and seen[0] != seen[1]


def test_reconnecting_iteration_raises_fatal_errors() -> None:
    with run_server(echo, process_request=lambda c, r: (403, [], b"")) as server:
        with pytest.raises(InvalidStatus):
            for _ in reconnect(uri(server)):
                pass


def test_redirect() -> None:
    with run_server(echo) as target:
        location = uri(target, "/there")
        with run_server(echo, process_request=lambda c, r: (302, [("Location", location)], b"")) as server:
            with connect(uri(server)) as ws:
                assert ws.path == "/there"


def test_unix_socket() -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "ws.sock")
        server = unix_serve(echo, path)
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            with unix_connect(path) as ws:
                ws.send("unix")
                assert ws.recv(timeout=5) == "unix"
        finally:
            server.shutdown()
            thread.join(5)


def test_unsupported_options() -> None:
    with pytest.raises(TypeError):
        connect("ws://127.0.0.1:1", bogus=1)
    with pytest.raises(TypeError):
        serve(echo, "127.0.0.1", 0, bogus=1)


def test_negotiation_failure_raises() -> None:
    def handler(ws) -> None:  # type: ignore[no-untyped-def]
        pass

    with run_server(handler, select_subprotocol=lambda c, client: "unoffered") as server:
        with pytest.raises(InvalidStatus) as info:
            with connect(uri(server), subprotocols=["a"]):
                pass
        assert info.value.status_code == 500
    assert issubclass(NegotiationError, InvalidHandshake)


def test_shutdown_from_signal_handler() -> None:
    import signal

    server = serve(echo, "127.0.0.1", 0)
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: server.shutdown())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        start = time.monotonic()
        server.serve_forever()  # in the main thread, as a script does
        assert time.monotonic() - start < 3
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        server.__exit__(None, None, None)


def test_tls_concurrent_send_and_receive(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """TLS with the reader thread receiving while 4 threads send: every echo comes back whole."""
    cert, key = self_signed_cert(str(tmp_path))
    with run_server(echo, ssl=server_ssl_context(cert, key)) as server:
        port = server.socket.getsockname()[1]
        context = ssl.create_default_context(cafile=cert)
        with connect(f"wss://localhost:{port}", ssl=context, host="127.0.0.1", max_queue=None) as ws:

            def sender(n: int) -> None:
                for i in range(200):
                    ws.send(f"{n}:{i}:" + "t" * (i * 37 % 5000))

            threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
            for thread in threads:
                thread.start()
            received = [ws.recv(timeout=10) for _ in range(800)]
            for thread in threads:
                thread.join(10)
        for n in range(4):
            mine = [m for m in received if m.startswith(f"{n}:")]
            assert [int(m.split(":")[1]) for m in mine] == list(range(200))
            assert all(len(m.split(":")[2]) == int(m.split(":")[1]) * 37 % 5000 for m in mine)


def test_shutdown_keeping_connections() -> None:
    server = serve(echo, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    with connect(uri(server)) as ws:
        # close() waits for the kept connection: call it from another thread.
        closer = threading.Thread(target=server.close, kwargs={"close_connections": False})
        closer.start()
        thread.join(5)
        ws.send("still here")  # the open connection keeps working
        assert ws.recv(timeout=5) == "still here"
        assert closer.is_alive()
    closer.join(5)
    assert not closer.is_alive()  # returned once the connection ended
    server.shutdown()
    server.__exit__(None, None, None)
