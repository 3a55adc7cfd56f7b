"""The read path of both asyncio APIs: what one read of many frames does.

With the accelerator built, ``buffer_updated()`` is C for the coroutine API
and the callback API, and so is the callback API's ``send()`` (``ReadLane``
in ``wsio/protocol/_speedups.c``): whole messages of one frame each go from
the read buffer to ``on_message`` or to ``recv()``'s queue, and the rest of the
read to the core. Without it, the Python path does the same through the core.
These tests run on both (the c-* and py-* jobs) and expect the same: a client
writes many frames at once, so that they arrive in one read (or in a few:
nothing below depends on where a read ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from typing import Any, AsyncIterator

import pytest

import wsio
import wsio.asyncio.connection
from wsio.protocol import ClientProtocol
from wsio.protocol.events import Pong
from wsio.protocol.frames import FIN, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, SPEEDUPS, Close, build_frame
from wsio.protocol.uri import parse_uri


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


def frame(head: int, payload: bytes) -> bytes:
    """A client's (masked) frame."""
    return build_frame(head, payload, os.urandom(4))


class Recorder(wsio.Listener):
    """Echoes and records every message; raises on "boom"."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.pings: list[bytes] = []

    def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
        self.messages.append(message)
        if message == "boom":
            raise ValueError("bug in the application")
        connection.send(message)

    def on_ping(self, connection: wsio.ListenerConnection, data: bytes) -> None:
        self.pings.append(data)


APIS = ["callback", "asyncio"]


def serve(api: str, recorder: Recorder, **options: Any) -> Any:
    """A server of ``api`` that hands every message to ``recorder``, as a listener or from a handler."""
    if api == "callback":
        return wsio.serve_listener(lambda: recorder, "127.0.0.1", 0, **options)

    async def handler(ws: wsio.ServerConnection) -> None:
        async for message in ws:
            recorder.messages.append(message)
            if message == "boom":
                raise ValueError("bug in the application")
            await ws.send(message)

    return wsio.serve(handler, "127.0.0.1", 0, **options)


async def exchange(
    listener: Recorder, *writes: bytes, pause: float = 0, max_size: int | None = 2**20, api: str = "callback"
) -> tuple[list[Any], Close | None]:
    """Open a connection to a server of ``api``, write ``writes`` (``pause`` s apart), read until closed.

    Returns the events the server sent (messages and pongs) and its close frame.
    """
    async with serve(api, listener, compression=None, max_size=max_size) as server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/"))
        client.send_request(client.connect())
        writer.write(client.data_to_send())
        while client.state is wsio.State.CONNECTING:
            client.receive_data(await reader.read(65536))
        for i, data in enumerate(writes):
            if i and pause:
                await asyncio.sleep(pause)
            writer.write(data)
        events: list[Any] = []
        while True:
            data = await reader.read(65536)
            if not data:
                break
            events += [event for event in client.receive_data(data) if type(event) in (str, bytes, Pong)]
            writer.write(client.data_to_send())
        writer.close()
        return events, client.close_rcvd


def test_both_apis_read_in_c_when_the_accelerator_is_built() -> None:
    # So that the c-* jobs test the C read path and the py-* jobs the Python one.
    assert wsio.asyncio.connection.C_READS is SPEEDUPS
    for cls in (wsio.ListenerServerConnection, wsio.ListenerClientConnection, wsio.ServerConnection, wsio.ClientConnection):
        assert ("ReadLane" in repr(cls.buffer_updated)) is SPEEDUPS
    assert ("ReadLane" in repr(wsio.ListenerClientConnection.send)) is SPEEDUPS
    assert "ReadLane" not in repr(wsio.ClientConnection.send)  # a coroutine function


@pytest.mark.parametrize("api", APIS)
def test_one_read_of_mixed_frames_reaches_the_listener_in_order(api: str) -> None:
    listener = Recorder()
    burst = b"".join(
        [
            frame(FIN | OP_TEXT, b"a"),
            frame(FIN | OP_PING, b"p"),
            frame(FIN | OP_BINARY, b"b"),
            frame(OP_TEXT, b"c"),  # a fragmented message, with a ping between its frames
            frame(FIN | OP_PING, b"q"),
            frame(FIN | OP_CONT, b"d"),
            frame(FIN | OP_TEXT, "é".encode()),
            frame(FIN | OP_BINARY, b"x" * 300),  # a 16-bit length
        ]
    )
    # The close frame later: messages read with it can't be answered any more.
    close_frame = frame(FIN | OP_CLOSE, Close(1000, "done").serialize())
    events, close = run(exchange(listener, burst, close_frame, pause=0.1, api=api))
    assert listener.messages == ["a", b"b", "cd", "é", b"x" * 300]
    if api == "callback":
        assert listener.pings == [b"p", b"q"]
    assert [e for e in events if type(e) is not Pong] == ["a", b"b", "cd", "é", b"x" * 300]
    assert [e.data for e in events if type(e) is Pong] == [b"p", b"q"]
    assert close is not None and close.code == 1000


@pytest.mark.parametrize("api", APIS)
def test_messages_split_across_reads_arrive_whole(api: str) -> None:
    listener = Recorder()
    first, second = frame(FIN | OP_BINARY, b"0123456789"), frame(FIN | OP_TEXT, b"next")
    # A frame cut in its header, then in its payload: the core keeps the pieces,
    # and whole messages after them go to the listener again.
    writes = [first[:1], first[1:9], first[9:] + second, frame(FIN | OP_CLOSE, Close(1000, "").serialize())]
    events, close = run(exchange(listener, *writes, pause=0.05, api=api))
    assert listener.messages == [b"0123456789", "next"]
    assert events == [b"0123456789", "next"]
    assert close is not None and close.code == 1000


@pytest.mark.parametrize("api", APIS)
def test_an_application_error_mid_read_fails_with_1011_and_nothing_after_it_is_delivered(
    api: str, caplog: pytest.LogCaptureFixture
) -> None:
    listener = Recorder()
    burst = b"".join(
        [
            frame(FIN | OP_TEXT, b"ok"),
            frame(FIN | OP_TEXT, b"boom"),
            frame(FIN | OP_TEXT, b"never"),
            frame(FIN | OP_PING, b"p"),
        ]
    )
    with caplog.at_level(logging.ERROR, logger="wsio.server"):
        events, close = run(exchange(listener, burst, api=api))
    assert listener.messages == ["ok", "boom"]
    # The ping behind the failing message is still answered (the core read it),
    # whether before or after the echo of the message before it.
    assert sorted(map(repr, events)) == sorted(map(repr, ["ok", Pong(b"p")]))
    assert close is not None and close.code == 1011
    failures = [r for r in caplog.records if r.exc_info is not None]
    assert len(failures) == 1 and failures[0].exc_info is not None
    assert str(failures[0].exc_info[1]) == "bug in the application"


@pytest.mark.parametrize("api", APIS)
def test_invalid_utf8_behind_a_valid_message_fails_with_1007_after_delivering_it(api: str) -> None:
    listener = Recorder()
    burst = frame(FIN | OP_TEXT, b"fine") + frame(FIN | OP_TEXT, b"\xff\xfe") + frame(FIN | OP_TEXT, b"late")
    events, close = run(exchange(listener, burst, api=api))
    assert listener.messages == ["fine"]
    assert events == ["fine"]
    assert close is not None and close.code == 1007


@pytest.mark.parametrize("api", APIS)
def test_a_message_over_max_size_in_a_read_of_small_ones_fails_with_1009(api: str) -> None:
    listener = Recorder()
    burst = frame(FIN | OP_TEXT, b"x" * 10) + frame(FIN | OP_TEXT, b"y" * 11)
    events, close = run(exchange(listener, burst, max_size=10, api=api))
    assert listener.messages == ["x" * 10]
    assert events == ["x" * 10]
    assert close is not None and close.code == 1009


@pytest.mark.parametrize(
    ("sent", "received"),
    [
        ("text", "text"),
        (b"bytes", b"bytes"),
        (bytearray(b"array"), b"array"),
        (memoryview(b"view"), b"view"),
        ("é" * 40, "é" * 40),
        ("", ""),
        (b"", b""),
    ],
)
def test_send_keeps_the_message_type(sent: Any, received: Any) -> None:
    class Sender(wsio.Listener):
        def on_open(self, connection: wsio.ListenerConnection) -> None:
            connection.send(sent)

    async def main() -> Any:
        async with wsio.serve_listener(Sender, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}") as ws:
                return await ws.recv()

    assert run(main()) == received


@pytest.mark.parametrize(
    ("sent", "received"),
    [("text", "text"), (b"bytes", b"bytes"), (bytearray(b"array"), b"array"), ("é" * 40, "é" * 40), ("", ""), (b"", b"")],
)
def test_coroutine_api_send_keeps_the_message_type(sent: Any, received: Any) -> None:
    # A small str or bytes is framed in C when the accelerator is built (ReadLane._send_small()).
    async def handler(ws: wsio.ServerConnection) -> None:
        await ws.send(sent)
        with pytest.raises(UnicodeEncodeError):
            await ws.send("\ud800")
        await ws.send("after")

    async def main() -> list[Any]:
        async with wsio.serve(handler, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}") as ws:
                return [await ws.recv(), await ws.recv()]

    assert run(main()) == [received, "after"]


def test_send_of_a_lone_surrogate_raises_and_sends_nothing() -> None:
    errors: list[BaseException] = []

    class Sender(wsio.Listener):
        def on_open(self, connection: wsio.ListenerConnection) -> None:
            try:
                connection.send("\ud800")
            except UnicodeEncodeError as exc:
                errors.append(exc)
            connection.send("after")

    async def main() -> Any:
        async with wsio.serve_listener(Sender, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}") as ws:
                return await ws.recv()

    assert run(main()) == "after"
    assert len(errors) == 1


def test_the_client_side_masks_what_it_sends() -> None:
    got: list[Any] = []

    class Hello(wsio.Listener):
        def on_open(self, connection: wsio.ListenerConnection) -> None:
            connection.send("hello")
            connection.send(b"\x00" * 200)

        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            got.append(message)

    async def handler(ws: wsio.ServerConnection) -> None:
        # The server's core refuses unmasked frames (1002): receiving them proves the mask.
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with wsio.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            connection = await wsio.connect_listener(Hello, f"ws://127.0.0.1:{port}")
            for _ in range(200):
                if len(got) == 2:
                    break
                await asyncio.sleep(0.01)
            await connection.close()

    run(main())
    assert got == ["hello", b"\x00" * 200]


class TurnProbe(wsio.ClientConnection):
    """Notes, for each read, whether the loop has run anything scheduled since it."""

    turn_ended = True

    def buffer_updated(self, nbytes: int) -> None:
        # Scheduled before the read's messages wake anyone: it runs first in the next
        # turn, so a task resumed in the next turn finds it True, one resumed in the read False.
        self.turn_ended = False
        self.loop.call_soon(setattr, self, "turn_ended", True)
        super().buffer_updated(nbytes)


async def echo_handler(ws: wsio.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@contextlib.asynccontextmanager
async def echo_connection(**options: Any) -> AsyncIterator[Any]:
    """A client connection (``options`` for ``connect()``) to a server that echoes every message."""
    async with wsio.serve(echo_handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with wsio.connect(f"ws://127.0.0.1:{port}", compression=None, **options) as ws:
            yield ws


def test_a_task_waiting_in_recv_resumes_in_the_read_that_brings_its_message() -> None:
    # One turn of the loop less per message: what a ping-pong costs the coroutine API.
    async def main() -> list[tuple[str, bool]]:
        async with echo_connection(create_connection=TurnProbe) as ws:
            seen = []
            for text in ("one", "two", "three"):
                await ws.send(text)
                message = await ws.recv()
                seen.append((message, ws.turn_ended))
            async with asyncio.timeout(5) if hasattr(asyncio, "timeout") else _no_timeout():
                await ws.send("four")
                seen.append((await ws.recv(), ws.turn_ended))
            return seen

    assert run(main()) == [("one", False), ("two", False), ("three", False), ("four", False)]


class _no_timeout:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: Any) -> None:
        return None


def test_recv_under_wait_for_asyncio_wait_or_a_timeout_loses_no_message() -> None:
    # wait_for() on 3.10 and 3.11 runs recv() in a task of its own, asyncio.wait() adds its
    # own callback to that task, recv(timeout=) arms a timer on the same future: each still
    # gets its message, in the read or on the next turn.
    async def main() -> list[str]:
        async with echo_connection() as ws:
            got = []
            await ws.send("a")
            got.append(await asyncio.wait_for(ws.recv(), 5))
            await ws.send("b")
            task = asyncio.ensure_future(ws.recv())
            done, _ = await asyncio.wait([task], timeout=5)
            got.append(task.result())
            await ws.send("c")
            got.append(await ws.recv(timeout=5))
            return got

    assert run(main()) == ["a", "b", "c"]


def test_a_read_handled_inside_a_task_wakes_the_reader_on_the_next_turn() -> None:
    # A read fed from a running task (a test, a wrapper transport): resuming another
    # task there would be entering a task from inside one, which asyncio refuses.
    async def main() -> tuple[str, bool]:
        async with echo_connection(create_connection=TurnProbe) as ws:
            reader = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(0)
            ws.turn_ended = False
            asyncio.get_running_loop().call_soon(setattr, ws, "turn_ended", True)
            ws.data_received(build_frame(FIN | OP_TEXT, b"fed", None))  # unmasked: from the server
            assert not reader.done()
            message = await reader
            return message, ws.turn_ended

    assert run(main()) == ("fed", True)


def test_a_message_read_with_the_peer_s_close_frame_wakes_the_reader_after_the_close() -> None:
    # The reader is woken once the core has read the whole read, on both paths: here it
    # finds the connection closing, with the message still to take.
    async def main() -> tuple[Any, Any, Any]:
        async with echo_connection(create_connection=TurnProbe) as ws:
            reader = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(0)

            def read() -> None:  # a read, from the loop as a socket's would be
                ws.turn_ended = False
                ws.loop.call_soon(setattr, ws, "turn_ended", True)
                ws.data_received(build_frame(FIN | OP_TEXT, b"last", None) + build_frame(FIN | OP_CLOSE, b"\x03\xe8bye", None))

            ws.loop.call_soon(read)
            message = await reader
            state = ws.protocol.state
            with pytest.raises(wsio.ConnectionClosedOK):
                await ws.recv()
            return message, state, ws.turn_ended

    message, state, turn_ended = run(main())
    assert message == "last"
    assert state is not wsio.State.OPEN
    assert turn_ended is True


def test_a_future_that_isn_t_asyncio_s_is_woken_the_usual_way() -> None:
    # Another event loop's create_future() may return its own kind of future.
    class OtherFuture:
        result: Any = "unset"

        def set_result(self, result: Any) -> None:
            self.result = result

    async def main() -> Any:
        future = OtherFuture()
        asyncio.get_running_loop().call_soon(wsio.asyncio.connection._resume_now, future, asyncio.get_running_loop())
        await asyncio.sleep(0)
        return future.result

    assert run(main()) is None


def test_a_waiter_that_isn_t_asyncio_s_future_gets_its_result_set_by_the_read() -> None:
    # The same through a read (on the C path, ReadLane's own hand-off): no _callbacks, set_result().
    class OtherFuture:
        result: Any = "unset"

        def done(self) -> bool:
            return self.result != "unset"

        def set_result(self, result: Any) -> None:
            self.result = result

    async def main() -> tuple[Any, Any]:
        async with echo_connection() as ws:
            await ws.send("first")
            assert await ws.recv() == "first"  # the queue exists: the lane's own hand-off takes the next read
            future = ws._recv_waiter = OtherFuture()  # type: ignore[assignment]

            def read() -> None:  # from the loop, as a socket's read
                data = build_frame(FIN | OP_TEXT, b"fed", None)
                ws.get_buffer(-1)[: len(data)] = data
                ws.buffer_updated(len(data))

            ws.loop.call_soon(read)
            await asyncio.sleep(0.05)
            ws._recv_waiter = None
            return future.result, ws.recv_nowait()

    assert run(main()) == (None, "fed")


def test_a_subclass_s_handle_events_and_hold_see_every_read_and_frame() -> None:
    # The C read path does what these methods do only for classes that don't override them.
    handled: list[list[Any]] = []
    held: list[bytes] = []

    class Recording(wsio.ClientConnection):
        def _handle_events(self, events: list[Any]) -> None:
            handled.append(list(events))
            super()._handle_events(events)

        def _hold(self, data: bytes) -> None:
            held.append(data)
            super()._hold(data)

    async def main() -> list[Any]:
        async with echo_connection(create_connection=Recording) as ws:
            got = []
            for text in ("one", "two", "three"):
                await ws.send(text)
                got.append(await ws.recv())
            return got

    assert run(main()) == ["one", "two", "three"]
    messages = [[event for event in events if type(event) is str] for events in handled]
    assert [each for each in messages if each] == [["one"], ["two"], ["three"]]
    assert len(held) == 3 and all(frame[0] == FIN | OP_TEXT for frame in held)


def test_what_a_read_s_callbacks_sent_goes_out_without_python_frames_in_c() -> None:
    # The C read path writes what the callbacks sent itself (ListenerConnection's
    # _flush_held() and asyncio's is_closing() run in Python only without it).
    called: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_name in ("_flush_held", "is_closing"):
            called.append(frame.f_code.co_name)

    class Triple(wsio.Listener):
        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            sys.setprofile(profile)
            for i in range(3):
                connection.send(f"{message}{i}")

    async def main() -> list[Any]:
        async with wsio.serve_listener(Triple, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}") as ws:
                try:
                    await ws.send("m")
                    got = [await ws.recv() for _ in range(3)]
                finally:
                    sys.setprofile(None)
                return got

    assert run(main()) == ["m0", "m1", "m2"]
    if SPEEDUPS:
        assert called == []
    else:
        assert called[:2] == ["_flush_held", "is_closing"]


def test_a_subclass_s_flush_held_writes_what_each_read_s_callbacks_sent() -> None:
    # The C read path does what _flush_held() does only for classes that don't override it.
    flushed: list[list[bytes]] = []

    class Recording(wsio.ListenerServerConnection):
        __slots__ = ()

        def _flush_held(self) -> None:
            flushed.append(list(self._held or []))
            super()._flush_held()

    class Pair(wsio.Listener):
        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            connection.send(message)
            connection.send(message.upper())

    async def main() -> list[Any]:
        async with wsio.serve_listener(Pair, "127.0.0.1", 0, create_connection=Recording) as server:
            async with wsio.connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}") as ws:
                got = []
                for text in ("one", "two"):
                    await ws.send(text)
                    got += [await ws.recv(), await ws.recv()]
                return got

    assert run(main()) == ["one", "ONE", "two", "TWO"]
    # Each read's two frames, held and written together (then the closing handshake's).
    assert [[frame[2:] for frame in frames] for frames in flushed if frames][:2] == [[b"one", b"ONE"], [b"two", b"TWO"]]


def test_a_client_s_small_frames_take_fresh_keys_from_the_core_s_mask_source() -> None:
    # On the C path the lane takes keys from the core's source itself (wsio's own, without a call).
    async def main() -> list[bytes]:
        async with echo_connection() as ws:
            writes: list[bytes] = []
            write = ws.transport.write
            ws.transport.write = lambda data: (writes.append(bytes(data)), write(data))[1]  # type: ignore[method-assign]
            for text in ("a", "b", "c"):
                await ws.send(text)
                assert await ws.recv() == text
            ws.protocol._mask = lambda: b"\x01\x02\x03\x04"  # any callable the core is given
            await ws.send("d")
            assert await ws.recv() == "d"
            return writes

    writes = run(main())[:4]  # then the close frame
    assert [frame[1] for frame in writes] == [0x81] * 4  # masked, 1 byte
    keys = [frame[2:6] for frame in writes]
    assert len(set(keys[:3])) == 3 and keys[3] == b"\x01\x02\x03\x04"
    assert [bytes(b ^ k for b, k in zip(frame[6:], key)) for frame, key in zip(writes, keys)] == [b"a", b"b", b"c", b"d"]
