"""The callback API: Listener, serve_listener, connect_listener."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import wsio
from wsio.asyncio.connection import _SLICES, _WRITE_SLICE
from wsio.protocol.machine import ClientProtocol
from wsio.protocol.uri import parse_uri


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


class Echo(wsio.Listener):
    def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
        connection.send(message)


def port_of(server: wsio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


def test_echo_keeps_order_and_types() -> None:
    async def main() -> list[Any]:
        async with wsio.serve_listener(Echo, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}") as ws:
                sent: list[Any] = ["text", b"\x00\x01", "é" * 1000, b"x" * 200_000]
                for message in sent:
                    await ws.send(message)
                await ws.send(["frag", "mented"])
                return [await ws.recv() for _ in range(5)]

    assert run(main()) == ["text", b"\x00\x01", "é" * 1000, b"x" * 200_000, "fragmented"]


def test_send_text_overrides_the_message_type() -> None:
    class Swap(wsio.Listener):
        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            if isinstance(message, str):
                connection.send(message, text=False)
            else:
                connection.send(message, text=True)

    async def main() -> list[Any]:
        async with wsio.serve_listener(Swap, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}") as ws:
                for message in ("café", "café".encode(), "é" * 70_000, b"e" * 70_000):
                    await ws.send(message)
                return [await ws.recv() for _ in range(4)]

    assert run(main()) == ["café".encode(), "café", ("é" * 70_000).encode(), "e" * 70_000]


def test_sends_during_one_read_go_out_in_one_write() -> None:
    writes: list[int] = []

    class Triple(wsio.Listener):
        def on_open(self, connection: wsio.ListenerConnection) -> None:
            write = connection.transport.write

            def counting_write(data: bytes) -> None:
                writes.append(len(data))
                write(data)

            connection.transport.write = counting_write  # type: ignore[method-assign]

        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            for i in range(3):
                connection.send(f"{message}-{i}")

    async def main() -> list[Any]:
        async with wsio.serve_listener(Triple, "127.0.0.1", 0, compression=None) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}", compression=None) as ws:
                await ws.send("m")
                return [await ws.recv() for _ in range(3)]

    assert run(main()) == ["m-0", "m-1", "m-2"]
    # The three 5-byte frames (2-byte header + "m-i") went out in one write;
    # what follows is the close frame, written later.
    assert writes[0] == 3 * 5


def counting_writes(connection: wsio.ListenerConnection, writes: list[int]) -> None:
    """Record the size of every transport write of ``connection``: every frame,
    large ones included (not written to the socket directly: see test_send_buffers)."""
    connection._large_writes = _SLICES
    write = connection.transport.write

    def counting_write(data: bytes) -> None:
        writes.append(len(data))
        write(data)

    connection.transport.write = counting_write  # type: ignore[method-assign]


def test_a_burst_broadcast_from_one_read_is_one_write_per_connection() -> None:
    """Corking: eight messages read at once and broadcast to every listener
    connection reach each of them whole, in order, in a single write."""
    writes: dict[int, list[int]] = {}
    connections: list[wsio.ListenerConnection] = []

    class Room(wsio.Listener):
        def on_open(self, connection: wsio.ListenerConnection) -> None:
            writes[id(connection)] = []
            counting_writes(connection, writes[id(connection)])
            connections.append(connection)

        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            assert wsio.broadcast(connections, message) == len(connections)

    async def main() -> list[list[Any]]:
        async with wsio.serve_listener(Room, "127.0.0.1", 0, compression=None) as server:
            uri = f"ws://127.0.0.1:{port_of(server)}"
            listeners = [await wsio.connect(uri, compression=None) for _ in range(3)]
            async with wsio.connect(uri, compression=None) as sender:
                while len(connections) < 4:
                    await asyncio.sleep(0.01)
                burst = b"".join(sender.protocol.send_text(f"m{i}") for i in range(8))
                sender.transport.write(burst)  # eight frames in one segment
                # A loop, not a comprehension in a comprehension: Python 3.10 can't
                # compile an await inside the inner one.
                received: list[list[Any]] = []
                for ws in listeners:
                    received.append([await ws.recv() for _ in range(8)])
                for ws in listeners:
                    await ws.close()
                return received

    expected = [f"m{i}" for i in range(8)]
    assert run(main()) == [expected] * 3
    # Each connection got the eight 4-byte frames in its first write.
    assert all(sizes and sizes[0] == 8 * 4 for sizes in writes.values()), writes


def test_large_frames_are_not_joined_and_keep_their_order() -> None:
    writes: list[int] = []

    class Mixed(wsio.Listener):
        def on_open(self, connection: wsio.ListenerConnection) -> None:
            counting_writes(connection, writes)

        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            connection.send("small")
            connection.send(b"L" * 100_000)
            connection.send("after")

    async def main() -> list[Any]:
        async with wsio.serve_listener(Mixed, "127.0.0.1", 0, compression=None) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}", compression=None) as ws:
                await ws.send("go")
                return [await ws.recv() for _ in range(3)]

    assert run(main()) == ["small", b"L" * 100_000, "after"]
    # The large payload is written apart from its 10-byte header, not copied into a
    # frame, in slices (the transport never holds a copy of all of it).
    assert writes[:2] == [7, 10], writes
    slices = writes[2 : writes.index(7, 2)]  # up to the frame of "after"
    assert sum(slices) == 100_000 and max(slices) <= _WRITE_SLICE, writes


def test_send_takes_any_bytes_like_object_and_sends_its_bytes() -> None:
    # An array.array of 70,000 ints: len() counts items, the frame must carry its 280,000 bytes.
    import array

    values = array.array("i", range(70_000))

    class Sender(wsio.Listener):
        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            connection.send(values)  # type: ignore[arg-type]
            connection.send("after")

    async def main() -> list[Any]:
        async with wsio.serve_listener(Sender, "127.0.0.1", 0, compression=None) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}", compression=None, max_size=None) as ws:
                await ws.send("go")
                return [await ws.recv() for _ in range(2)]

    assert run(main()) == [values.tobytes(), "after"]


def test_large_messages_to_a_slow_reader_wait_in_wsio_not_in_the_transport() -> None:
    seen: dict[str, int] = {}
    payloads = [bytes([i]) * (4 << 20) for i in range(4)]

    class Sender(wsio.Listener):
        def on_open(self, connection: wsio.ListenerConnection) -> None:
            buffer = bytearray()
            for payload in payloads:
                buffer[:] = payload
                connection.send(buffer)
            buffer[:] = b"changed after send()"  # must not reach the peer
            connection.send("end")
            seen["transport"] = connection.transport.get_write_buffer_size()
            seen["buffered"] = connection.buffered_amount

    async def main() -> list[Any]:
        async with wsio.serve_listener(Sender, "127.0.0.1", 0, compression=None) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}", compression=None, max_size=None) as ws:
                return [await ws.recv() for _ in range(5)]

    assert run(main()) == [*payloads, "end"]
    # 16 MiB sent at once: what the socket didn't take waits as the caller's
    # payloads (copies for a bytearray), the transport's buffer stays small.
    assert seen["transport"] <= 65536 + _WRITE_SLICE, seen
    assert seen["buffered"] > 8 << 20, seen


def test_echo_stops_reading_while_its_peer_does_not_read() -> None:
    """A peer that sends and never reads can't grow the server's write buffer
    without bound: reading pauses above write_limit."""
    seen: list[wsio.ListenerConnection] = []

    class EchoSeen(Echo):
        def on_open(self, connection: wsio.ListenerConnection) -> None:
            seen.append(connection)

    async def main() -> int:
        async with wsio.serve_listener(EchoSeen, "127.0.0.1", 0, compression=None, write_limit=65536, close_timeout=1) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
            client = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port_of(server)}"))
            client.send_request(client.connect())
            writer.write(client.data_to_send())
            client.receive_data(await reader.readuntil(b"\r\n\r\n"))
            frame = client.send_binary(b"x" * 16384)
            # 32 MiB offered, nothing read back: the server must stop taking it.
            for _ in range(2048):
                writer.write(frame)
                try:
                    await asyncio.wait_for(writer.drain(), 0.5)
                except asyncio.TimeoutError:
                    break
            buffered = seen[0].buffered_amount
            writer.close()
            return buffered

    buffered = run(main())
    # The kernel's socket buffers hold some; the process holds write_limit and the
    # echoes of one read at most (READ_SIZE, 1 MiB: docs/topics/security.md).
    assert buffered < 65536 + wsio.asyncio.connection.READ_SIZE + 16384 + 16, buffered


def test_on_close_reports_code_and_reason() -> None:
    closed: asyncio.Future[wsio.ConnectionClosed]

    class Recorder(wsio.Listener):
        def on_close(self, connection: wsio.ListenerConnection, exc: wsio.ConnectionClosed) -> None:
            closed.set_result(exc)

    async def main() -> wsio.ConnectionClosed:
        nonlocal closed
        closed = asyncio.get_running_loop().create_future()
        async with wsio.serve_listener(Recorder, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}") as ws:
                await ws.close(4000, "bye")
            return await closed

    exc = run(main())
    assert (exc.code, exc.reason) == (4000, "bye")
    assert isinstance(exc, wsio.ConnectionClosedError)


def test_callback_error_fails_connection_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(wsio.Listener):
        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            raise ValueError("bug in the application")

    async def main() -> wsio.ConnectionClosed:
        async with wsio.serve_listener(Broken, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}") as ws:
                await ws.send("boom")
                with pytest.raises(wsio.ConnectionClosed) as info:
                    await ws.recv()
                return info.value

    with caplog.at_level(logging.ERROR, logger="wsio.server"):
        exc = run(main())
    assert exc.code == 1011
    assert any("listener callback failed" in record.getMessage() for record in caplog.records)


def test_connect_listener_talks_to_a_coroutine_server() -> None:
    async def handler(ws: wsio.ServerConnection) -> None:
        async for message in ws:
            await ws.send(message.upper())

    class Client(wsio.Listener):
        def __init__(self) -> None:
            self.replies: list[Any] = []
            self.done = asyncio.get_running_loop().create_future()
            self.opened = False

        def on_open(self, connection: wsio.ListenerConnection) -> None:
            self.opened = True
            connection.send("one")
            connection.send("two")

        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            self.replies.append(message)
            if len(self.replies) == 2:
                connection.close()

        def on_close(self, connection: wsio.ListenerConnection, exc: wsio.ConnectionClosed) -> None:
            self.done.set_result(exc.code)

    async def main() -> tuple[bool, list[Any], int]:
        async with wsio.serve(handler, "127.0.0.1", 0) as server:
            connection = await wsio.connect_listener(Client, f"ws://127.0.0.1:{port_of(server)}")
            listener: Client = connection.listener  # type: ignore[assignment]
            code = await listener.done
            return listener.opened, listener.replies, code

    assert run(main()) == (True, ["ONE", "TWO"], 1000)


def test_on_ping_and_on_pong() -> None:
    seen: list[tuple[str, bytes]] = []

    class Pinger(wsio.Listener):
        def on_ping(self, connection: wsio.ListenerConnection, data: bytes) -> None:
            seen.append(("ping", data))

    async def main() -> float:
        async with wsio.serve_listener(Pinger, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}") as ws:
                latency = await (await ws.ping(b"abc"))
                return latency

    latency = run(main())
    assert latency >= 0
    assert seen == [("ping", b"abc")]


def test_send_after_close_raises_connection_closed() -> None:
    errors: list[BaseException] = []

    class Closer(wsio.Listener):
        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            connection.close()
            try:
                connection.send("too late")
            except wsio.ConnectionClosed as exc:
                errors.append(exc)

    async def main() -> None:
        async with wsio.serve_listener(Closer, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}") as ws:
                await ws.send("x")
                with pytest.raises(wsio.ConnectionClosedOK):
                    await ws.recv()

    run(main())
    assert len(errors) == 1


# -- naming, close() and the README's example -------------------------------------------------


def test_callbacks_get_connections_of_public_exported_classes() -> None:
    seen: list[type] = []

    class Recorder(wsio.Listener):
        def on_open(self, connection: wsio.ListenerConnection) -> None:
            seen.append(type(connection))
            connection.send("hi")

        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            seen.append(type(connection))
            connection.close()

    async def main() -> type:
        async with wsio.serve_listener(Recorder, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}") as ws:
                await ws.send("x")
                assert await ws.recv() == "hi"
            client = await wsio.connect_listener(Recorder, f"ws://127.0.0.1:{port_of(server)}")
            await client.wait_closed()
            return type(client)

    client_type = run(main())
    assert client_type is wsio.ListenerClientConnection
    # Two server connections (on_open and on_message each), one client connection.
    assert sorted(cls.__name__ for cls in seen) == ["ListenerClientConnection"] * 2 + ["ListenerServerConnection"] * 4
    for cls in (wsio.ListenerServerConnection, wsio.ListenerClientConnection):
        assert issubclass(cls, wsio.ListenerConnection)
        assert cls.__name__ in wsio.__all__ and cls.__doc__


def test_the_two_apis_are_siblings_on_one_base() -> None:
    """Issue 15: a listener connection is no Connection (its send() isn't a coroutine);
    both are BaseConnections with their role's handshake, which broadcast() and the hub take."""
    import inspect

    from wsio.asyncio.client import ClientRole
    from wsio.asyncio.connection import BaseConnection
    from wsio.asyncio.server import ServerRole

    for listener_cls, coroutine_cls, role in (
        (wsio.ListenerServerConnection, wsio.ServerConnection, ServerRole),
        (wsio.ListenerClientConnection, wsio.ClientConnection, ClientRole),
    ):
        assert issubclass(listener_cls, role) and issubclass(coroutine_cls, role)
        assert issubclass(listener_cls, BaseConnection) and issubclass(coroutine_cls, wsio.Connection)
        assert not issubclass(listener_cls, wsio.Connection)
        assert not inspect.iscoroutinefunction(listener_cls.send) and not inspect.iscoroutinefunction(listener_cls.close)
        assert inspect.iscoroutinefunction(coroutine_cls.send) and inspect.iscoroutinefunction(coroutine_cls.close)
        assert not hasattr(listener_cls, "recv")
        # The per-read batching replaces the per-turn one through the base's hooks.
        assert listener_cls._hold is wsio.ListenerConnection._write
        assert listener_cls._flush_held is wsio.ListenerConnection._flush_held
    assert not issubclass(ServerRole, wsio.Connection)

    received: list[Any] = []

    class Fan(wsio.Listener):
        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            # Both APIs in one broadcast: the listener's own connection and the hub's.
            wsio.broadcast([connection, *others], message)

    others: list[wsio.ServerConnection] = []

    async def handler(ws: wsio.ServerConnection) -> None:
        others.append(ws)
        await ws.wait_closed()

    async def main() -> None:
        async with wsio.serve(handler, "127.0.0.1", 0) as plain, wsio.serve_listener(Fan, "127.0.0.1", 0) as fan:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(plain)}") as a, wsio.connect(f"ws://127.0.0.1:{port_of(fan)}") as b:
                while not others:
                    await asyncio.sleep(0.01)
                await b.send("both")
                received.append(await b.recv())
                received.append(await a.recv())

    run(main())
    assert received == ["both", "both"]


def test_create_connection_subclass_is_used_and_checked() -> None:
    class Counted(wsio.ListenerServerConnection):
        __slots__ = ()
        made = 0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            type(self).made += 1

    async def main() -> str:
        async with wsio.serve_listener(Echo, "127.0.0.1", 0, create_connection=Counted) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}") as ws:
                await ws.send("x")
                return str(await ws.recv())

    assert run(main()) == "x"
    assert Counted.made == 1
    with pytest.raises(TypeError, match="subclass of ListenerServerConnection"):
        wsio.serve_listener(Echo, "127.0.0.1", 0, create_connection=wsio.ServerConnection)


def test_a_subclass_overriding_data_received_sees_every_read() -> None:
    # An open connection's reads skip data_received() (buffer_updated() handles
    # them inline), unless a subclass overrides it.
    class Watching(wsio.ListenerServerConnection):
        __slots__ = ()
        seen: list[bytes] = []

        def data_received(self, data: Any) -> None:
            type(self).seen.append(bytes(data))
            super().data_received(data)

    async def main() -> list[Any]:
        async with wsio.serve_listener(Echo, "127.0.0.1", 0, create_connection=Watching) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}", compression=None) as ws:
                got = []
                for message in ("a", b"b"):
                    await ws.send(message)
                    got.append(await ws.recv())
                return got

    assert run(main()) == ["a", b"b"]
    assert Watching.seen[0].startswith(b"GET / HTTP/1.1")
    frames = [data for data in Watching.seen[1:] if data]
    assert [len(data) for data in frames[:2]] == [2 + 4 + 1] * 2  # the two masked one-byte messages
    assert frames[2][0] == 0x88  # and the close frame


def test_invalid_utf8_on_an_open_connection_fails_with_1007() -> None:
    async def main() -> wsio.ConnectionClosed:
        async with wsio.serve_listener(Echo, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}", compression=None) as ws:
                await ws.send("ok")
                assert await ws.recv() == "ok"
                await ws.send(b"\xff", text=True)  # not UTF-8, sent as text
                with pytest.raises(wsio.ConnectionClosed) as info:
                    await ws.recv()
                return info.value

    exc = run(main())
    assert exc.rcvd is not None and exc.rcvd.code == 1007


@pytest.mark.parametrize(
    "style",
    ["no arguments", "positional", "keywords", "awaited"],
)
def test_close_call_styles(style: str) -> None:
    closed: asyncio.Future[tuple[int, str]]
    returned: list[bool] = []
    expected = {"no arguments": (1000, ""), "positional": (4000, "bye"), "keywords": (4001, "done"), "awaited": (4002, "x")}[
        style
    ]

    class Closer(wsio.Listener):
        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            if style == "no arguments":
                connection.close()
            elif style == "positional":
                connection.close(4000, "bye")
            elif style == "keywords":
                connection.close(code=4001, reason="done")
            else:
                return
            # close() returned at once: the closing handshake isn't done yet.
            returned.append(connection.protocol.state is wsio.State.CLOSING)

        def on_close(self, connection: wsio.ListenerConnection, exc: wsio.ConnectionClosed) -> None:
            if style == "awaited":  # the client closed
                assert exc.rcvd is not None
                closed.set_result((exc.rcvd.code, exc.rcvd.reason))
            else:
                assert exc.sent is not None
                closed.set_result((exc.sent.code, exc.sent.reason))

    async def main() -> tuple[int, str]:
        nonlocal closed
        closed = asyncio.get_running_loop().create_future()
        async with wsio.serve_listener(Closer, "127.0.0.1", 0) as server:
            if style == "awaited":
                # From a coroutine, like the asyncio API: waits until closed.
                client = await wsio.connect_listener(wsio.Listener, f"ws://127.0.0.1:{port_of(server)}")
                await client.close(4002, "x")
                assert client.closed
                returned.append(True)
            else:
                async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}") as ws:
                    await ws.send("close, please")
                    with pytest.raises(wsio.ConnectionClosed):
                        await ws.recv()
            return await closed

    assert run(main()) == expected
    assert returned == [True]


def test_close_twice_does_nothing_more() -> None:
    codes: list[int | None] = []

    class Closer(wsio.Listener):
        def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
            connection.close(4000, "first")
            connection.close(4001, "second")

        def on_close(self, connection: wsio.ListenerConnection, exc: wsio.ConnectionClosed) -> None:
            codes.append(exc.code)

    async def main() -> int | None:
        async with wsio.serve_listener(Closer, "127.0.0.1", 0) as server:
            async with wsio.connect(f"ws://127.0.0.1:{port_of(server)}") as ws:
                await ws.send("x")
                with pytest.raises(wsio.ConnectionClosed) as info:
                    await ws.recv()
                return info.value.rcvd.code if info.value.rcvd else None

    assert run(main()) == 4000
    assert codes == [4000]


def test_readme_callbacks_example_runs_as_shown(tmp_path: Any) -> None:
    import os
    import re
    import subprocess
    import sys

    from tests.helpers import ROOT, free_port

    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("## Callbacks", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "no python block in the README's Callbacks section"
    code = match.group(1)
    assert "8765" in code
    program = tmp_path / "readme_callbacks.py"
    program.write_text(code.replace("8765", str(free_port())))  # an ephemeral port, not the README's
    result = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "received 'hello'\nclosed with 1000\n"
