"""The callback API: Listener, serve_listener, connect_listener."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import wsio


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
