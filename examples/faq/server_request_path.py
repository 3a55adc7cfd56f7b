"""FAQ: How do I access the request path?"""

import asyncio

import wsio as websockets


async def blue_handler(websocket):
    await websocket.send("blue")


async def green_handler(websocket):
    await websocket.send("green")


# The FAQ: route the connection on websocket.path.
async def handler(websocket):
    if websocket.path == "/blue":
        await blue_handler(websocket)
    elif websocket.path == "/green":
        await green_handler(websocket)
    else:
        # No handler for this path; close the connection.
        return


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        replies = {}
        for path in ["/blue", "/green", "/red"]:
            async with websockets.connect(f"ws://127.0.0.1:{port}{path}") as websocket:
                try:
                    replies[path] = await websocket.recv()
                except websockets.ConnectionClosedOK:
                    replies[path] = f"closed with {websocket.close_code}"
    assert replies == {"/blue": "blue", "/green": "green", "/red": "closed with 1000"}, replies
    print(f"routed on websocket.path: {replies}")


asyncio.run(main())
