"""Logging: what wsio logs under wsio.server and wsio.client, at INFO and DEBUG."""

import asyncio
import logging
import sys

import wsio

# Everything to stdout, with the logger's name: wsio.server or wsio.client.
logging.basicConfig(stream=sys.stdout, format="%(name)s %(levelname)s %(message)s", level=logging.INFO)
# The frame-by-frame lines are at DEBUG; turn them on for the client only.
logging.getLogger("wsio.client").setLevel(logging.DEBUG)


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main():
    async with wsio.serve(echo, "127.0.0.1", 0) as server:
        async with wsio.connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}") as websocket:
            await websocket.send("hello")
            await websocket.recv(timeout=5)
        await websocket.wait_closed()
        await asyncio.sleep(0.1)  # let the server log its side of the close


asyncio.run(main())
