"""FAQ: How do I close a connection properly? (server side)"""

import asyncio
import logging

import wsio as websockets


# websockets takes care of closing the connection when the handler exits.
async def handler(websocket):
    await websocket.send("goodbye")


# If the handler raises, the connection closes with 1011 (internal error).
async def handler_crashes(websocket):
    raise RuntimeError("something went wrong")


async def close_code(handler):
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:
            messages = []
            try:
                async for message in websocket:  # until the server closes
                    messages.append(message)
            except websockets.ConnectionClosedError:
                pass  # an abnormal closure (1011 below) ends the loop with an exception
            return messages, websocket.close_code


async def main():
    messages, code = await close_code(handler)
    assert messages == ["goodbye"], messages
    assert code == 1000, code
    print(f"the handler returned: the server closed the connection with {code}")

    logging.getLogger("wsio").setLevel(logging.CRITICAL)  # the traceback is expected
    messages, code = await close_code(handler_crashes)
    assert messages == [] and code == 1011, (messages, code)
    print(f"the handler raised: the server closed the connection with {code}")


asyncio.run(main())
