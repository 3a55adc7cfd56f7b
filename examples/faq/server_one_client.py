"""FAQ: Why can only one client connect at a time?"""

import asyncio
import socket
import time

import wsio as websockets


# Blocks the event loop: while one client's handler sleeps, nobody else is served.
async def handler_blocking(websocket):
    time.sleep(1)
    ...


# Yields to the event loop: clients are served concurrently.
async def handler(websocket):
    await asyncio.sleep(1)
    ...


# Newer FAQ: sending continuously doesn't yield to the event loop while there's
# room in the send buffers...
async def handler_firehose(websocket):
    while True:
        await websocket.send("firehose!")


# ... unless you yield explicitly.
async def handler_firehose_yielding(websocket):
    while True:
        await websocket.send("firehose!")
        await asyncio.sleep(0)


async def two_clients(handler):
    """Connect two clients at once; return how long until both were closed by the server."""
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]

        async def client():
            async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:
                await websocket.wait_closed()  # the handler returns, the server closes

        start = time.monotonic()
        await asyncio.gather(client(), client())
        return time.monotonic() - start


class WatchedConnection(websockets.ServerConnection):
    """Counts the most messages sent in a row while no other coroutine ran."""

    ticks = 0  # how often the other coroutine ran
    longest = 0
    streak = 0
    seen = -1

    async def send(self, message, compress=None):
        cls = WatchedConnection
        cls.streak = cls.streak + 1 if cls.ticks == cls.seen else 1
        cls.seen = cls.ticks
        cls.longest = max(cls.longest, cls.streak)
        await super().send(message, compress)


async def firehose(handler):
    """Receive 1000 messages from the firehose; return the most it sent while nothing else ran."""
    WatchedConnection.longest = 0

    async def ticker():
        while True:
            WatchedConnection.ticks += 1
            await asyncio.sleep(0)

    # A small kernel send buffer, so that the firehose fills it in a moment
    # rather than after a few megabytes.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sock.bind(("127.0.0.1", 0))
    async with websockets.serve(handler, sock=sock, create_connection=WatchedConnection) as server:
        port = server.sockets[0].getsockname()[1]
        ticking = asyncio.create_task(ticker())
        async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:
            for _ in range(1000):
                assert await websocket.recv() == "firehose!"
        ticking.cancel()
    return WatchedConnection.longest


async def main():
    elapsed = await two_clients(handler_blocking)
    assert elapsed >= 1.9, elapsed
    print(f"time.sleep(1) in the handler: two clients took {elapsed:.1f} s (one at a time)")

    elapsed = await two_clients(handler)
    assert elapsed < 1.5, elapsed
    print(f"await asyncio.sleep(1) in the handler: two clients took {elapsed:.1f} s (concurrently)")

    in_a_row = await firehose(handler_firehose)
    yielding = await firehose(handler_firehose_yielding)
    assert in_a_row > 100 and yielding == 1, (in_a_row, yielding)
    print(f"firehose: {in_a_row} messages sent while no other coroutine ran; with await asyncio.sleep(0), {yielding}")


asyncio.run(main())
