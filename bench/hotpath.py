"""The per-message cost of wsio's read and send path, in process, with no socket.

    python -m bench.hotpath                 # every case, best of 7 alternating runs
    python -m bench.hotpath --runs 15 --messages 40000 --case asyncio-pingpong
    WSIO_NO_SPEEDUPS=1 python -m bench.hotpath   # the pure-Python path

A server connection of each API (``serve()``'s :class:`wsio.ServerConnection`
with an echo handler, ``serve_listener()``'s connection with an echo
listener) opens with a real opening handshake over a fake transport; then the
fake transport plays the client: it puts a client's masked frames into the
connection's read buffer (``get_buffer()`` / ``buffer_updated()``, as the
event loop does) and, when the echoes have been written, schedules the next
read with ``loop.call_soon()`` (one callback per read, as a socket's readiness
is). So each message costs what it costs behind a socket, minus the system
calls: the event loop's turn, the core, the API, the echo's framing and write.

Cases:

- ``*-pingpong``: one 16-byte binary frame per read, the next read once the
  echo is written (what each message of a ping-pong costs);
- ``*-burst16``: 16 frames per read (what a message costs when reads batch);
- ``core-pingpong``: the core alone, ``receive_data()`` and ``send_message()``
  of a server protocol, no event loop (how much of the above is the core);
- ``floor-pingpong``: no WebSocket, each read echoed as it is by a bare
  ``BufferedProtocol``: what the event loop and the fake transport cost, the
  floor the others are compared with (as the network benchmark's TCP echo);
- ``listener-direct``: the callback API with ``buffer_updated()`` called in a
  loop, no event loop turn between reads;
- ``core-handshake``: the core alone, a server protocol's side of an opening
  handshake (parse the request, check it, build and serialize the 101);
- ``server-connection``: what ``serve()`` makes for each accepted socket
  before it is connected, its connection and that connection's protocol.

The last two are per handshake and per connection, not per message.

Runs alternate between the cases (A B C A B C ...) so that a busy moment of a
shared machine spreads over all of them; each case's figure is its best run
(the least disturbed), in ns per message, with the median beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from typing import Any, Callable

import wsio
from wsio.protocol import ClientProtocol, ServerProtocol
from wsio.protocol.frames import FIN, OP_BINARY, SPEEDUPS, build_frame
from wsio.protocol.handshake import parse_uri

PAYLOAD = b"x" * 16


class FakeTransport(asyncio.Transport):
    """Just enough of a TCP transport; ``on_write`` sees every write."""

    def __init__(self, on_write: Callable[[bytes], None]) -> None:
        super().__init__()
        self.on_write = on_write
        self.closing = False

    def write(self, data: Any) -> None:
        self.on_write(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 9) if name in ("peername", "sockname") else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


def read_into(connection: asyncio.BufferedProtocol, data: bytes) -> None:
    """What the event loop does with bytes from the socket."""
    buffer = connection.get_buffer(len(data))
    buffer[: len(data)] = data
    connection.buffer_updated(len(data))


async def echo(ws: wsio.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


class Echo(wsio.Listener):
    def on_message(self, connection: wsio.ListenerConnection, message: Any) -> None:
        connection.send(message)


class FloorEcho(asyncio.BufferedProtocol):
    """No WebSocket at all: each read written back as it is (the TCP echo of the network benchmark)."""

    def __init__(self) -> None:
        self.buffer = memoryview(bytearray(262144))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.transport.write(self.buffer[:nbytes])


class Driver:
    """A server connection of one API, opened by a real handshake, and a client feeding it."""

    def __init__(self, api: str, per_read: int) -> None:
        self.api = api
        self.per_read = per_read
        self.client = ClientProtocol(parse_uri("ws://127.0.0.1/"))
        self.client.send_request(self.client.connect())
        frame = build_frame(FIN | OP_BINARY, PAYLOAD, os.urandom(4))
        self.read = frame * per_read  # the same mask every time: no matter to the server
        self.echo_size = len(frame) - 4  # the server doesn't mask
        self.want = 0  # echo bytes expected before the next read
        self.left = 0  # messages to go in this run
        self.direct = False
        self.done: asyncio.Future[None] | None = None
        self.handshaken: asyncio.Future[bytes] | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        if self.api == "floor":
            self.echo_size = len(self.read) // self.per_read
            self.connection = FloorEcho()
            self.transport = FakeTransport(self._on_write)
            self.connection.connection_made(self.transport)
            return
        if self.api == "asyncio":
            serving = wsio.serve(echo, "127.0.0.1", 0)
        else:
            serving = wsio.serve_listener(Echo, "127.0.0.1", 0)
        # The factory the event loop would call for an accepted socket (no socket is opened).
        self.connection = serving._factory()
        self.handshaken = loop.create_future()
        self.transport = FakeTransport(self._on_write)
        self.connection.connection_made(self.transport)
        read_into(self.connection, self.client.data_to_send())
        response = await self.handshaken
        self.client.receive_data(response)
        assert self.client.state is wsio.State.OPEN, self.client.state
        await asyncio.sleep(0)

    def _on_write(self, data: bytes) -> None:
        if self.handshaken is not None and not self.handshaken.done():
            self.handshaken.set_result(data)
            return
        self.want -= len(data)
        if self.want <= 0 and not self.direct:
            self.left -= self.per_read
            if self.left > 0:
                asyncio.get_running_loop().call_soon(self._feed)
            elif self.done is not None:
                self.done.set_result(None)

    def _feed(self) -> None:
        self.want = self.echo_size * self.per_read
        read_into(self.connection, self.read)

    async def run(self, messages: int) -> float:
        """Ping-pong ``messages`` messages; return the seconds it took."""
        self.done = asyncio.get_running_loop().create_future()
        self.left = messages
        t0 = time.perf_counter()
        self._feed()
        await self.done
        return time.perf_counter() - t0

    def run_direct(self, messages: int) -> float:
        """The callback API, with reads in a plain loop: no event loop turn between them."""
        connection, data, per_read = self.connection, self.read, self.per_read
        self.direct = True  # the echo doesn't schedule the next read
        t0 = time.perf_counter()
        for _ in range(messages // per_read):
            self.want = self.echo_size * per_read
            read_into(connection, data)
        elapsed = time.perf_counter() - t0
        self.direct = False
        return elapsed


def core_run(messages: int) -> float:
    """The core alone: a server protocol receives a frame and frames the echo."""
    client = ClientProtocol(parse_uri("ws://127.0.0.1/"))
    server = ServerProtocol()
    client.send_request(client.connect())
    [request] = server.receive_data(client.data_to_send())
    server.send_response(server.accept(request))
    client.receive_data(server.data_to_send())
    frame = memoryview(client.send_message(PAYLOAD))  # a view, as the I/O layer passes
    receive, send = server.receive_data, server.send_message
    t0 = time.perf_counter()
    for _ in range(messages):
        for message in receive(frame):
            send(message)
    return time.perf_counter() - t0


def core_handshake(handshakes: int) -> float:
    """The core alone: a server protocol parses a client's request (no compression offered) and answers 101."""
    client = ClientProtocol(parse_uri("ws://127.0.0.1/"))
    client.send_request(client.connect())
    request = client.data_to_send()
    servers = [ServerProtocol() for _ in range(handshakes)]  # made outside the timed loop
    t0 = time.perf_counter()
    for server in servers:
        [parsed] = server.receive_data(request)
        server.send_response(server.accept(parsed))
        server.data_to_send()
    return time.perf_counter() - t0


def server_connection(connections: int) -> float:
    """What serve() makes for each accepted socket, unconnected: a connection of the coroutine API and its protocol."""
    factory = wsio.serve(echo, "127.0.0.1", 0)._factory  # never started: only its factory is used
    factory()  # the first call builds the prototypes it copies
    t0 = time.perf_counter()
    for _ in range(connections):
        factory()
    return time.perf_counter() - t0


CASES = [
    "floor-pingpong",
    "asyncio-pingpong",
    "listener-pingpong",
    "asyncio-burst16",
    "listener-burst16",
    "listener-direct",
    "core-pingpong",
    "core-handshake",  # ns per handshake, not per message
    "server-connection",  # ns per connection
]


async def measure(cases: list[str], runs: int, messages: int) -> dict[str, list[float]]:
    drivers: dict[str, Driver] = {}
    for case in cases:
        if case.startswith("core") or case == "server-connection":
            continue
        api = case.split("-")[0]
        driver = drivers[case] = Driver(api, 16 if case.endswith("burst16") else 1)
        await driver.open()
        await driver.run(2000)  # warm-up
    results: dict[str, list[float]] = {case: [] for case in cases}
    gc.collect()
    gc.disable()  # a collection landing in one run and not another is noise
    try:
        for _ in range(runs):
            for case in cases:
                if case == "core-handshake":
                    seconds = core_handshake(messages)
                elif case == "server-connection":
                    seconds = server_connection(messages)
                elif case.startswith("core"):
                    seconds = core_run(messages)
                elif case == "listener-direct":
                    seconds = drivers[case].run_direct(messages)
                else:
                    seconds = await drivers[case].run(messages)
                results[case].append(seconds / messages * 1e9)
                gc.collect()
    finally:
        gc.enable()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--messages", type=int, default=20000, help="per run and case")
    parser.add_argument("--case", action="append", choices=CASES, help="repeat for several; default: all")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop rather than asyncio's loop")
    args = parser.parse_args()
    cases = args.case or CASES
    runner: Any = asyncio.run
    if args.uvloop:
        import uvloop

        runner = uvloop.run
    results = runner(measure(cases, args.runs, args.messages))
    path = "C" if SPEEDUPS else "Python"
    print(f"wsio {wsio.__version__}, {path} core, Python {sys.version.split()[0]}, pid {os.getpid()}")
    floor = min(results["floor-pingpong"]) if "floor-pingpong" in results else None
    print(f"{'case':<20} {'best ns/msg':>12} {'median':>10} {'above floor':>12}")
    for case in cases:
        values = results[case]
        above = (
            f"{min(values) - floor:>12.0f}"
            if floor is not None and case.endswith("pingpong") and not case.startswith("core")
            else ""
        )
        print(f"{case:<20} {min(values):>12.0f} {statistics.median(values):>10.0f} {above}")


if __name__ == "__main__":
    main()
