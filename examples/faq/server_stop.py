"""FAQ: How do I stop a server?"""

import asyncio
import os
import signal

import wsio as websockets

PORT = None  # set when the server is listening
SEEN_BY_CLIENT = []


# The FAQ's example (shutdown_server.py): exit the serve() context manager on SIGTERM.
async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def server():
    # Set the stop condition when receiving SIGTERM.
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)

    async with websockets.serve(echo, "127.0.0.1", 0) as ws_server:  # FAQ: "localhost", 8765
        PORT.set_result(ws_server.sockets[0].getsockname()[1])
        await stop


# A client that connects, then sends SIGTERM to this very process.
async def client():
    port = await PORT
    async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:
        await websocket.send("ping")
        assert await websocket.recv() == "ping"
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            await websocket.recv()
        except websockets.ConnectionClosedOK as exc:
            SEEN_BY_CLIENT.append(exc)


async def main():
    global PORT
    PORT = asyncio.get_running_loop().create_future()
    await asyncio.wait_for(asyncio.gather(server(), client()), timeout=10)
    assert len(SEEN_BY_CLIENT) == 1, SEEN_BY_CLIENT
    exc = SEEN_BY_CLIENT[0]
    assert exc.code == 1001, exc  # going away
    print(f"SIGTERM stopped the server; the client saw: {exc}")


asyncio.run(main())
