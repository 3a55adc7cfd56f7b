"""FAQ: How do I close a connection properly? (client side)"""

import asyncio

import wsio as websockets
from wsio import connect

SERVER_SAW = []


async def echo(websocket):
    async for message in websocket:  # ends when the client closes normally
        await websocket.send(message)
    SERVER_SAW.append(websocket.close_code)


async def main():
    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]

        # The FAQ: use connect() as a context manager.
        async with connect(f"ws://127.0.0.1:{port}") as websocket:
            await websocket.send("hello")
            reply = await websocket.recv()

        assert reply == "hello", reply
        assert websocket.closed and websocket.close_code == 1000, websocket.close_code
    assert SERVER_SAW == [1000], SERVER_SAW
    print(f"async with connect(...): echoed {reply!r}, then closed with {websocket.close_code} on both sides")


asyncio.run(main())
