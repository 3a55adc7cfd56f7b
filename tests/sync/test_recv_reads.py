"""recv() reads the socket in its own thread when nobody else does: one wake-up per round trip.

The observable: which thread fed the core the bytes that carried a message
(``_handle_events``, which queues what the core returned, records it). Timings are never asserted
beyond "promptly" (seconds).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any, Callable

import pytest

from wsio import ConnectionClosedError, ConnectionClosedOK, State
from wsio.sync import connect
from wsio.sync.client import ClientConnection
from wsio.sync.connection import _RECV

from .helpers import echo, handshake_then, raw_server, run_server, self_signed_cert, server_ssl_context, uri

pytestmark = pytest.mark.timeout(60)


class Recording(ClientConnection):
    """Records the thread that fed the core each read that gave events."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fed_by: list[threading.Thread] = []

    def _handle_events(self, events: list[Any]) -> None:
        self.fed_by.append(threading.current_thread())
        super()._handle_events(events)


def wait_until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def reading_in_recv(ws: Any) -> bool:
    with ws._lock:
        return ws._reading == _RECV  # type: ignore[no-any-return]


def recv_in_thread(ws: Any, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Call ``ws.recv(**kwargs)`` in a thread; the dict gets its ``result`` or ``error``."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = ws.recv(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            out["error"] = exc
        out["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_round_trips_are_read_by_the_recv_thread() -> None:
    with run_server(echo) as server, connect(uri(server), create_connection=Recording, ping_interval=None) as ws:
        assert isinstance(ws, Recording)
        me = threading.current_thread()
        ws.send("warm-up")  # the reader may be reading already: it hands over after this one
        assert ws.recv(timeout=5) == "warm-up"
        # The reader thread takes the socket back only after _IDLE seconds without a
        # recv(), and a loaded machine (CI runs other jobs beside this one) can stall
        # this thread that long, and then the reader reads a run of round trips. So up
        # to three batches of 50: with recv() reading for itself, one batch has 45 of
        # them read in this thread; without it, none does. (Which thread read the very
        # last one is timing, so it isn't asserted.)
        by_me = []
        for batch in range(3):
            ws.fed_by.clear()
            for i in range(50):
                ws.send(f"{batch}.{i}")
                assert ws.recv(timeout=5) == f"{batch}.{i}"
            assert len(ws.fed_by) >= 50
            by_me.append(sum(thread is me for thread in ws.fed_by))
            if by_me[-1] >= 45:
                break
        assert max(by_me) >= 45, by_me


class CountingTurns(ClientConnection):
    """Counts the reader thread's turns round its loop: each is a wake-up of that thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reader_turns = 0

    def _run_timers(self) -> float | None:
        self.reader_turns += 1
        # Slow to come back, as a reader is behind a hundred other threads: by the
        # time it looks at the token, recv() is in its next read.
        time.sleep(0.002)
        return super()._run_timers()  # type: ignore[no-any-return]


def test_the_reader_sleeps_while_recv_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """While recv() reads, the reader thread wakes every _IDLE seconds, not once per message.

    Waking it after each read (to say "the token is free") cost a context switch
    per message with many connections: it came back to find the next read under
    way, and waited for the one after. A slow turn (CountingTurns) makes the
    reader late, as it is behind a hundred other threads.
    """
    monkeypatch.setattr("wsio.sync.connection._IDLE", 0.05)

    def slow_echo(ws: Any) -> None:
        for message in ws:
            time.sleep(0.004)  # the reads take longer than a reader's turn
            ws.send(message)

    with run_server(slow_echo) as server, connect(uri(server), create_connection=CountingTurns, ping_interval=None) as ws:
        assert isinstance(ws, CountingTurns)
        for i in range(10):  # recv() takes the socket over
            ws.send(str(i))
            assert ws.recv(timeout=5) == str(i)
        turns = ws.reader_turns
        started = time.monotonic()
        for i in range(150):
            ws.send(str(i))
            assert ws.recv(timeout=5) == str(i)
        turns = ws.reader_turns - turns
        elapsed = time.monotonic() - started
        # About one turn per _IDLE: far below one per message, 150 in at least 0.6 s
        # (the bound tells them apart unless the machine stretches those to 3.6 s).
        assert turns <= 2 * elapsed / 0.05 + 5, (turns, elapsed)


def test_reader_reads_again_when_recv_stops() -> None:
    """After recv() stops being called, the reader thread reads: pings answered, close noticed."""
    with run_server(echo) as server, connect(uri(server), create_connection=Recording, ping_interval=None) as ws:
        for i in range(5):
            ws.send(str(i))
            assert ws.recv(timeout=5) == str(i)
        assert ws.ping().wait(5)  # no recv() running: the reader reads the pong
        ws.fed_by.clear()
        time.sleep(1.2)  # more than twice _IDLE
        ws.send("late")
        wait_until(lambda: ws._messages == 1)  # queued by the reader, nobody in recv()
        assert ws.fed_by and ws.fed_by[-1] is ws._reader
        assert ws.recv(timeout=5) == "late"
        # The reader is reading now; a recv() that waits gets the socket when nothing comes.
        thread, out = recv_in_thread(ws, timeout=10)
        wait_until(lambda: reading_in_recv(ws))
        ws.send("handed over")
        thread.join(5)
        assert out["result"] == "handed over"
        assert ws.fed_by[-1] is thread


def test_close_from_another_thread_while_recv_reads() -> None:
    def quiet(ws: Any) -> None:
        for _ in ws:
            pass

    with run_server(quiet) as server, connect(uri(server), ping_interval=None) as ws:
        thread, out = recv_in_thread(ws)
        wait_until(lambda: reading_in_recv(ws))
        started = time.monotonic()
        ws.close()
        thread.join(5)
        assert not thread.is_alive()
        assert isinstance(out["error"], ConnectionClosedOK)
        assert out["at"] - started < 3
        assert ws.wait_closed(5)


def test_close_while_recv_reads_and_the_peer_never_answers() -> None:
    """close_timeout drops TCP; the recv() blocked in the socket returns at once."""
    release = threading.Event()

    def mute(sock: socket.socket, protocol: Any) -> None:
        release.wait(10)  # reads nothing, answers nothing

    with raw_server(handshake_then(mute)) as port, connect(f"ws://127.0.0.1:{port}", close_timeout=0.5, ping_interval=None) as ws:
        thread, out = recv_in_thread(ws)
        wait_until(lambda: reading_in_recv(ws))
        ws.close()
        thread.join(5)
        release.set()
        assert not thread.is_alive()
        assert isinstance(out["error"], ConnectionClosedError)
        assert ws.closed


def test_peer_hangs_up_while_recv_reads() -> None:
    go = threading.Event()

    def hang_up(sock: socket.socket, protocol: Any) -> None:
        go.wait(10)
        sock.shutdown(socket.SHUT_RDWR)

    with raw_server(handshake_then(hang_up)) as port, connect(f"ws://127.0.0.1:{port}", ping_interval=None) as ws:
        thread, out = recv_in_thread(ws)
        wait_until(lambda: reading_in_recv(ws))
        go.set()
        thread.join(5)
        assert isinstance(out["error"], ConnectionClosedError)
        assert out["error"].code == 1006
        assert ws.wait_closed(5)


def test_peer_ping_answered_while_recv_reads() -> None:
    go = threading.Event()
    got: dict[str, Any] = {}

    def pinger(sock: socket.socket, protocol: Any) -> None:
        go.wait(10)
        sock.sendall(protocol.send_ping(b"are you there"))
        sock.settimeout(5)
        while "pong" not in got:
            data = sock.recv(65536)
            if not data:
                return
            for event in protocol.receive_data(data):
                if type(event).__name__ == "Pong":
                    got["pong"] = event.data
        sock.sendall(protocol.send_message("thanks"))
        sock.recv(65536)  # the close frame

    with (
        raw_server(handshake_then(pinger)) as port,
        connect(f"ws://127.0.0.1:{port}", create_connection=Recording, ping_interval=None, close_timeout=1) as ws,
    ):
        thread, out = recv_in_thread(ws, timeout=10)
        wait_until(lambda: reading_in_recv(ws))
        go.set()
        thread.join(10)
        assert out.get("result") == "thanks"
        assert got["pong"] == b"are you there"
        assert ws._reader not in ws.fed_by  # the pong went out from recv()'s thread


def test_keepalive_while_recv_reads() -> None:
    """The reader thread sends keepalive pings while recv() holds the socket; recv() reads the pongs."""
    with run_server(echo) as server, connect(uri(server), ping_interval=0.1, ping_timeout=1) as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1.5)
        assert ws.protocol.state is State.OPEN
        assert ws.latency > 0
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


def test_keepalive_timeout_while_recv_reads() -> None:
    """A peer that stops answering pings fails the connection with 1011 even while recv() blocks in
    the socket, and recv() raises then, not close_timeout later."""
    release = threading.Event()

    def mute(sock: socket.socket, protocol: Any) -> None:
        release.wait(30)

    with raw_server(handshake_then(mute)) as port:
        with connect(f"ws://127.0.0.1:{port}", ping_interval=1.5, ping_timeout=0.5, close_timeout=20) as ws:
            thread, out = recv_in_thread(ws)
            wait_until(lambda: reading_in_recv(ws))  # before the first ping
            started = time.monotonic()
            thread.join(15)
            assert isinstance(out["error"], ConnectionClosedError)
            assert out["at"] - started < 10
            assert out["error"].sent is not None and out["error"].sent.code == 1011
        release.set()


def test_recv_timeout_while_reading_loses_nothing() -> None:
    with run_server(echo) as server, connect(uri(server), ping_interval=None) as ws:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.2)
        assert 0.15 < time.monotonic() - started < 3
        ws.send("after")
        assert ws.recv(timeout=5) == "after"


def test_recv_timeout_zero_reads_what_is_there() -> None:
    """A loop of recv(timeout=0) keeps the reader thread away: each call must read, or nothing would."""
    with run_server(echo) as server, connect(uri(server), ping_interval=None) as ws:
        for i in range(3):
            ws.send(f"polled {i}")
            assert poll_recv(ws) == f"polled {i}"


class SmallReads(Recording):
    recv_bufsize = 16  # TLS keeps the rest of each record decrypted and pending: poll() doesn't see it


def poll_recv(ws: Any) -> Any:
    """recv(timeout=0) again and again until a message comes, as a polling application does."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return ws.recv(timeout=0)
        except TimeoutError:
            assert time.monotonic() < deadline, "recv(timeout=0) never got the message"
            time.sleep(0.001)


@pytest.mark.parametrize("timeout", [None, 5])
def test_tls_pending_data(tmp_path: Any, timeout: float | None) -> None:
    """Over TLS, recv() reads for itself without a timeout; with one, the reader reads (poll()
    allowing a read that then waits for the rest of a record would break the timeout)."""
    cert, key = self_signed_cert(str(tmp_path))
    with run_server(echo, ssl=server_ssl_context(cert, key)) as server:
        port = server.socket.getsockname()[1]
        context = ssl.create_default_context(cafile=cert)
        with connect(
            f"wss://localhost:{port}", ssl=context, host="127.0.0.1", create_connection=SmallReads, ping_interval=None
        ) as ws:
            assert isinstance(ws, SmallReads)
            ws.fed_by.clear()  # the handshake's read
            for size in (1, 100, 1000, 20_000):
                ws.send("x" * size)
                assert ws.recv(timeout=timeout) == "x" * size
            ws.send(["a" * 300, "b" * 300, "c"])  # several frames in one TLS record
            assert ws.recv(timeout=timeout) == "a" * 300 + "b" * 300 + "c"
            me = threading.current_thread()
            if timeout is None:
                # Most reads are recv()'s own; a stall longer than _IDLE on a loaded machine
                # lets the reader take one now and then (see the round-trip test above).
                ws.fed_by.clear()
                for i in range(20):
                    ws.send(str(i))
                    assert ws.recv() == str(i)
                assert sum(thread is me for thread in ws.fed_by) >= 15
            else:
                assert me not in ws.fed_by
                started = time.monotonic()
                with pytest.raises(TimeoutError):
                    ws.recv(timeout=0.2)
                assert time.monotonic() - started < 3
                ws.send("polled")
                assert poll_recv(ws) == "polled"


def test_recv_streaming_reads_in_its_thread() -> None:
    with run_server(echo) as server, connect(uri(server), create_connection=Recording, ping_interval=None) as ws:
        ws.send("warm-up")
        assert ws.recv(timeout=5) == "warm-up"
        for _ in range(3):
            ws.send([b"one", b"two", b"three"])
            assert b"".join(ws.recv_streaming()) == b"onetwothree"


def test_max_queue_with_recv_reading() -> None:
    """One read by recv() may queue more than max_queue: the reader pauses, nothing is lost."""

    def burst(ws: Any) -> None:
        for i in range(200):
            ws.send(str(i))
        ws.recv()

    with run_server(burst) as server, connect(uri(server), max_queue=4, ping_interval=None) as ws:
        assert [ws.recv(timeout=5) for _ in range(200)] == [str(i) for i in range(200)]


def test_server_handler_reads_in_its_thread() -> None:
    """The sync server's connections are the same class: the handler's recv() reads for itself."""
    threads: dict[str, Any] = {}

    def handler(ws: Any) -> None:
        original = ws._handle_events

        def handle_events(events: list[Any]) -> None:
            threads.setdefault("fed_by", []).append(threading.current_thread())
            original(events)

        ws._handle_events = handle_events
        threads["handler"] = threading.current_thread()
        echo(ws)

    with run_server(handler) as server, connect(uri(server), ping_interval=None) as ws:
        for i in range(20):
            ws.send(str(i))
            assert ws.recv(timeout=5) == str(i)
    assert sum(thread is threads["handler"] for thread in threads["fed_by"]) >= 15
