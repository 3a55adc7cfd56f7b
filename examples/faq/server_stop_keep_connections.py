"""FAQ: How do I stop a server while keeping existing connections open?"""

import asyncio

import wsio as websockets


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    port = loop.create_future()

    # The FAQ's adaptation of the example above.
    async def server():
        server = await websockets.serve(echo, "127.0.0.1", 0)  # FAQ: "localhost", 8765
        port.set_result(server.sockets[0].getsockname()[1])
        await stop
        await server.close(close_connections=False)
        return server

    async def client():
        uri = f"ws://127.0.0.1:{await port}"
        async with websockets.connect(uri) as websocket:
            stop.set_result(None)
            ws_server = await server_task
            assert not ws_server.is_serving()

            # New connections are refused...
            try:
                await websockets.connect(uri)
            except OSError as exc:
                refused = exc
            else:
                raise AssertionError("the server still accepts connections")

            # ... while the existing one keeps working.
            await websocket.send("still here")
            reply = await websocket.recv()
            assert reply == "still here", reply
        await asyncio.wait_for(ws_server.wait_closed(), timeout=5)
        return refused, reply

    server_task = asyncio.create_task(server())
    refused, reply = await client()
    print(f"after server.close(close_connections=False): new connection refused ({refused.__class__.__name__}), existing one echoed {reply!r}")


asyncio.run(main())
