"""wsio.sync connections over loopback: messages, fragments, pings, closing, limits, threads."""

from __future__ import annotations

import logging
import socket
import threading
import time
import zlib

import pytest

from wsio import ConcurrencyError, ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, State
from wsio.sync import connect

from .helpers import echo, handshake_then, raw_server, run_server, uri

pytestmark = pytest.mark.timeout(60)


def test_echo_text_and_binary() -> None:
    with run_server(echo) as server, connect(uri(server)) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=5) == b"\x00\xff"
        ws.send(bytearray(b"ba"))
        assert ws.recv(timeout=5) == b"ba"
        ws.send(memoryview(b"mv"))
        assert ws.recv(timeout=5) == b"mv"
        big = "x" * 500_000
        ws.send(big)
        assert ws.recv(timeout=5) == big


def test_fragmented_send_and_recv_streaming() -> None:
    with run_server(echo) as server, connect(uri(server)) as ws:
        ws.send(["frag", "ment", "ed"])
        assert ws.recv(timeout=5) == "fragmented"
        ws.send(iter([b"a", b"b"]))
        assert ws.recv(timeout=5) == b"ab"
        ws.send([])  # nothing
        ws.send(["x" * 100_000, "y" * 100_000])
        pieces = list(ws.recv_streaming())
        assert "".join(pieces) == "x" * 100_000 + "y" * 100_000
        ws.send("whole")
        assert list(ws.recv_streaming()) == ["whole"]
        with pytest.raises(TypeError):
            ws.send(["a", b"b"])
        with pytest.raises(TypeError):
            ws.send({"a": 1})  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            ws.send(42)  # type: ignore[arg-type]


def test_recv_timeout_loses_nothing() -> None:
    with run_server(echo) as server, connect(uri(server)) as ws:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.2)
        assert 0.15 < time.monotonic() - start < 2
        ws.send("late")
        assert ws.recv(timeout=5) == "late"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0)


def test_concurrent_recv_is_an_error() -> None:
    with run_server(echo) as server, connect(uri(server)) as ws:
        waiting = threading.Thread(target=lambda: pytest.raises(ConnectionClosed, ws.recv), daemon=True)
        waiting.start()
        time.sleep(0.2)
        with pytest.raises(ConcurrencyError):
            ws.recv(timeout=1)


def test_thread_safe_send() -> None:
    """8 threads x 1,000 messages on one connection: each arrives whole, in per-thread order."""
    threads, count = 8, 1000
    received: dict[int, list[int]] = {t: [] for t in range(threads)}
    errors: list[str] = []

    def collect(ws) -> None:  # type: ignore[no-untyped-def]
        for message in ws:
            if message == "done":
                ws.send("ok")
                continue
            tid, seq, payload, crc = message.split(":")
            if zlib.crc32(payload.encode()) != int(crc):
                errors.append(message[:80])
            received[int(tid)].append(int(seq))

    def sender(ws, tid: int) -> None:  # type: ignore[no-untyped-def]
        for seq in range(count):
            payload = f"{tid}-{seq}-" + "p" * (seq % 300)  # some above compression_threshold
            ws.send(f"{tid}:{seq}:{payload}:{zlib.crc32(payload.encode())}")

    with run_server(collect) as server, connect(uri(server)) as ws:
        workers = [threading.Thread(target=sender, args=(ws, tid)) for tid in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        ws.send("done")
        assert ws.recv(timeout=10) == "ok"
    assert not errors
    for tid in range(threads):
        assert received[tid] == list(range(count))


def test_thread_safe_send_with_fragments() -> None:
    """Fragmented messages from one thread don't interleave with whole messages from others."""
    with run_server(echo) as server, connect(uri(server)) as ws:

        def fragments() -> None:
            for _ in range(50):
                ws.send(["a" * 10, "b" * 10, "c" * 10])

        def wholes() -> None:
            for _ in range(50):
                ws.send("w")

        workers = [threading.Thread(target=fragments), threading.Thread(target=wholes)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        messages = [ws.recv(timeout=5) for _ in range(100)]
        assert sorted(set(messages)) == ["a" * 10 + "b" * 10 + "c" * 10, "w"]


def test_ping_pong_and_latency() -> None:
    with run_server(echo) as server, connect(uri(server)) as ws:
        event = ws.ping()
        assert event.wait(5)
        assert ws.latency > 0
        assert ws.ping("payload").wait(5)
        first, second = ws.ping(b"1"), ws.ping(b"2")
        assert second.wait(5) and first.is_set()
        ws.pong(b"unsolicited")
        ws.send("still fine")
        assert ws.recv(timeout=5) == "still fine"
        held = ws.ping(b"same")
        if not held.is_set():  # may already be answered
            try:
                ws.ping(b"same")
            except ConcurrencyError:
                pass
        with pytest.raises(ValueError):
            ws.ping(b"x" * 126)


def test_close_by_client() -> None:
    with run_server(echo) as server:
        with connect(uri(server)) as ws:
            assert ws.state is State.OPEN and ws.close_code is None
        assert ws.state is State.CLOSED
        assert ws.close_code == 1000 and ws.close_reason == ""
        with pytest.raises(ConnectionClosedOK):
            ws.recv()
        with pytest.raises(ConnectionClosedOK):
            ws.send("after")
        ws.close()  # closing again does nothing


def test_close_code_and_reason() -> None:
    def handler(ws) -> None:  # type: ignore[no-untyped-def]
        ws.close(4000, "custom")

    with run_server(handler) as server, connect(uri(server)) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(timeout=5)
        assert info.value.code == 4000 and info.value.reason == "custom"
        assert ws.close_code == 4000 and ws.close_reason == "custom"


def test_handler_return_closes_1000_and_iteration_ends() -> None:
    def handler(ws) -> None:  # type: ignore[no-untyped-def]
        ws.send("one")
        ws.send("two")

    with run_server(handler) as server, connect(uri(server)) as ws:
        assert list(ws) == ["one", "two"]
        assert ws.close_code == 1000


def test_handler_exception_closes_1011(caplog: pytest.LogCaptureFixture) -> None:
    def handler(ws) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    with run_server(handler) as server, connect(uri(server)) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(timeout=5)
        assert info.value.code == 1011
    assert any("connection handler failed" in record.message for record in caplog.records)


def test_legacy_handler_with_path() -> None:
    def handler(ws, path) -> None:  # type: ignore[no-untyped-def]
        ws.send(path)

    with run_server(handler) as server, connect(uri(server, "/a/b?c=d")) as ws:
        assert ws.recv(timeout=5) == "/a/b?c=d"


def test_abnormal_closure() -> None:
    def handler(ws) -> None:  # type: ignore[no-untyped-def]
        ws.recv()
        ws._abort()  # drop TCP without a close frame

    with run_server(handler) as server, connect(uri(server)) as ws:
        ws.send("x")
        with pytest.raises(ConnectionClosedError) as info:
            for _ in ws:
                pass
        assert info.value.code == 1006
        assert ws.close_code == 1006


def test_attributes() -> None:
    seen: dict[str, object] = {}

    def handler(ws) -> None:  # type: ignore[no-untyped-def]
        seen.update(
            path=ws.path,
            agent=ws.request_headers["User-Agent"],
            remote=ws.remote_address,
            id=ws.id,
            response=ws.response.status_code,
            local=ws.local_address,
        )
        ws.send("x")
        ws.recv()

    with run_server(handler) as server, connect(uri(server, "/p")) as ws:
        assert ws.recv(timeout=5) == "x"
        assert ws.remote_address == server.socket.getsockname()
        assert ws.response.status_code == 101 and ws.response_headers["Upgrade"] == "websocket"
        assert ws.request.path == "/p" and ws.path == "/p"
        assert ws.id == ws.id and ws.subprotocol is None and ws.open and not ws.closed
    assert seen["path"] == "/p" and "wsio" in str(seen["agent"]) and seen["response"] == 101
    assert seen["remote"] == ws.local_address


def test_keepalive_keeps_a_connection_alive() -> None:
    with run_server(echo, ping_interval=0.1, ping_timeout=5) as server:
        with connect(uri(server), ping_interval=0.1, ping_timeout=5) as ws:
            time.sleep(0.6)
            assert ws.latency > 0
            ws.send("alive")
            assert ws.recv(timeout=5) == "alive"


def test_keepalive_timeout_closes_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()

    def silent(sock, protocol) -> None:  # type: ignore[no-untyped-def]
        stop.wait(10)  # never reads: never answers pings

    caplog.set_level(logging.INFO, logger="wsio.client")
    with raw_server(handshake_then(silent)) as port:
        with connect(f"ws://127.0.0.1:{port}", ping_interval=0.2, ping_timeout=0.3, close_timeout=0.5) as ws:
            start = time.monotonic()
            with pytest.raises(ConnectionClosedError) as info:
                ws.recv(timeout=5)
            assert time.monotonic() - start < 3
            assert "ping_timeout" in info.value.why
            assert info.value.sent is not None and info.value.sent.code == 1011
        stop.set()
    assert any("no pong within ping_timeout" in record.message for record in caplog.records)


def test_close_timeout_when_peer_never_answers() -> None:
    stop = threading.Event()

    def silent(sock, protocol) -> None:  # type: ignore[no-untyped-def]
        stop.wait(10)

    with raw_server(handshake_then(silent)) as port:
        ws = connect(f"ws://127.0.0.1:{port}", close_timeout=0.3).__enter__()
        start = time.monotonic()
        ws.close()
        assert time.monotonic() - start < 3
        assert ws.closed and ws.close_code == 1006
        stop.set()


def test_max_size() -> None:
    with run_server(echo, max_size=1000) as server, connect(uri(server)) as ws:
        ws.send("x" * 1000)
        assert ws.recv(timeout=5) == "x" * 1000
        ws.send("x" * 1001)
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(timeout=5)
        assert info.value.code == 1009


def test_client_max_size() -> None:
    def handler(ws) -> None:  # type: ignore[no-untyped-def]
        ws.send("y" * 2000)
        ws.recv()

    with run_server(handler) as server, connect(uri(server), max_size=1000) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(timeout=5)
        assert info.value.sent is not None and info.value.sent.code == 1009


def test_max_queue_backpressure() -> None:
    def handler(ws) -> None:  # type: ignore[no-untyped-def]
        for i in range(200):
            ws.send(f"{i}:" + "z" * 1000)
        ws.recv()

    # Uncompressed: 200 compressed messages of "z"s fit in one 64 KiB read, and
    # then nothing is left to hold back when the reader is slow to start.
    with run_server(handler) as server, connect(uri(server), max_queue=4, compression=None) as ws:
        deadline = time.monotonic() + 5
        while not ws._reading_paused and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ws._reading_paused
        time.sleep(0.2)
        buffered = len(ws._queue)
        assert buffered < 200  # one read may bring several messages, but reading stopped
        time.sleep(0.2)
        assert len(ws._queue) == buffered
        messages = [ws.recv(timeout=5) for _ in range(200)]
        assert [int(m.split(":")[0]) for m in messages] == list(range(200))


def test_compression_negotiated_and_off() -> None:
    with run_server(echo) as server:
        with connect(uri(server)) as ws:
            assert "permessage-deflate" in ws.response_headers["Sec-WebSocket-Extensions"]
            assert ws.protocol.deflate is not None
            ws.send("c" * 10_000)
            assert ws.recv(timeout=5) == "c" * 10_000
        with connect(uri(server), compression=None) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response_headers
            assert ws.protocol.deflate is None
    with run_server(echo, compression=None) as server, connect(uri(server)) as ws:
        assert ws.protocol.deflate is None
    with pytest.raises(ValueError):
        connect("ws://127.0.0.1:1", compression="brotli")


def test_eof_from_raw_peer() -> None:
    def hang_up(sock, protocol) -> None:  # type: ignore[no-untyped-def]
        sock.sendall(protocol.send_message("bye"))
        sock.shutdown(socket.SHUT_RDWR)

    with raw_server(handshake_then(hang_up)) as port, connect(f"ws://127.0.0.1:{port}") as ws:
        assert ws.recv(timeout=5) == "bye"
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(timeout=5)
        assert info.value.code == 1006


def test_protocol_error_after_messages() -> None:
    """Messages before a protocol error are delivered first, then the connection fails with 1002."""

    def bad(sock, protocol) -> None:  # type: ignore[no-untyped-def]
        sock.sendall(protocol.send_message("good") + b"\x83\x00")  # reserved opcode 3
        time.sleep(1)

    with raw_server(handshake_then(bad)) as port, connect(f"ws://127.0.0.1:{port}") as ws:
        assert ws.recv(timeout=5) == "good"
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(timeout=5)
        assert info.value.sent is not None and info.value.sent.code == 1002


def test_protocol_error_waits_for_the_answer_to_a_taken_message() -> None:
    """An error arriving while the application answers the message before it fails
    the connection only once the answer is out (the reader runs on its own thread)."""
    received: list[object] = []

    def bad(sock, protocol) -> None:  # type: ignore[no-untyped-def]
        sock.sendall(protocol.send_message("question"))
        time.sleep(0.2)  # the application has taken it by now
        sock.sendall(b"\x83\x00")  # reserved opcode 3
        sock.settimeout(5)
        while not any(type(event).__name__ == "Close" for event in received):
            data = sock.recv(4096)
            if not data:
                break
            received.extend(protocol.receive_data(data))

    with raw_server(handshake_then(bad)) as port, connect(f"ws://127.0.0.1:{port}", ping_interval=None) as ws:
        assert ws.recv(timeout=5) == "question"
        time.sleep(0.5)  # the error arrives while the application "thinks"
        ws.send("answer")
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(timeout=5)
        assert info.value.sent is not None and info.value.sent.code == 1002
    assert received[0] == "answer"
    assert type(received[1]).__name__ == "Close" and received[1].code == 1002


def test_recv_makes_a_pending_protocol_error_due_even_while_the_reader_is_between_timers() -> None:
    """recv() makes a held-back protocol error due at once: the reader must see
    that even when recv() comes between its timer pass and its wait, or it
    sleeps out the old deadline (close_timeout) and recv() times out."""
    between = threading.Event()  # the reader has done its timers with the error pending
    made_due = threading.Event()  # recv() has moved the deadline
    patched = threading.Event()

    def bad(sock, protocol) -> None:  # type: ignore[no-untyped-def]
        patched.wait(5)
        sock.sendall(b"\x83\x00")  # reserved opcode 3
        sock.settimeout(5)
        while sock.recv(4096):
            pass

    with raw_server(handshake_then(bad)) as port, connect(f"ws://127.0.0.1:{port}", ping_interval=None) as ws:
        run_timers = ws._run_timers

        def run_timers_then_pause() -> float | None:
            timeout = run_timers()
            if ws.protocol.failure_pending and not between.is_set():
                between.set()
                made_due.wait(5)  # recv() runs here, between the timers and the wait
            return timeout

        ws._run_timers = run_timers_then_pause  # type: ignore[method-assign]
        patched.set()

        def watch() -> None:
            while ws._failure_deadline != 0.0 and not ws.closed:
                time.sleep(0.005)
            made_due.set()

        assert between.wait(5)
        threading.Thread(target=watch, daemon=True).start()
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(timeout=3)
        assert info.value.sent is not None and info.value.sent.code == 1002


def test_send_from_many_threads_while_closing() -> None:
    """Senders racing with close() get ConnectionClosed, never a hang or a torn frame."""
    with run_server(echo) as server:
        ws = connect(uri(server)).__enter__()
        failures: list[BaseException] = []

        def spam() -> None:
            try:
                while True:
                    ws.send("spam" * 50)
            except ConnectionClosed:
                pass
            except BaseException as exc:  # pragma: no cover
                failures.append(exc)

        workers = [threading.Thread(target=spam) for _ in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(0.2)
        ws.close()
        for worker in workers:
            worker.join(10)
            assert not worker.is_alive()
        assert not failures
        assert ws.close_code == 1000
