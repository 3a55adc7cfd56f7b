"""FAQ: How do I pass arguments to the connection handler?"""

import asyncio
import functools

import wsio as websockets


# The FAQ: bind additional arguments with functools.partial.
async def handler(websocket, extra_argument):
    await websocket.send(f"extra_argument={extra_argument}")


bound_handler = functools.partial(handler, extra_argument=42)


# The other way: define the handler where the variable exists.
def make_handler(extra_argument):
    async def handler(websocket):
        await websocket.send(f"extra_argument={extra_argument}")

    return handler


async def first_message(start_server):
    async with start_server as server:
        port = server.sockets[0].getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:
            return await websocket.recv()


async def main():
    start_server = websockets.serve(bound_handler, "127.0.0.1", 0)
    reply = await first_message(start_server)
    assert reply == "extra_argument=42", reply
    print(f"functools.partial: the handler sent {reply!r}")

    reply = await first_message(websockets.serve(make_handler(43), "127.0.0.1", 0))
    assert reply == "extra_argument=43", reply
    print(f"closure: the handler sent {reply!r}")


asyncio.run(main())
