"""FAQ: How do I stop a server while keeping existing connections open?"""

import asyncio

import wsio as websockets


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    started = loop.create_future()

    # The FAQ's adaptation of the example above.
    async def server():
        server = await websockets.serve(echo, "127.0.0.1", 0)  # FAQ: "localhost", 8765
        started.set_result(server)
        await stop
        # Stops listening, then returns once the open connections have ended:
        # exiting after it doesn't cut them.
        await server.close(close_connections=False)

    async def client():
        ws_server = await started
        uri = f"ws://127.0.0.1:{ws_server.sockets[0].getsockname()[1]}"
        async with websockets.connect(uri) as websocket:
            stop.set_result(None)
            while ws_server.is_serving():
                await asyncio.sleep(0.01)

            # New connections are refused...
            try:
                await websockets.connect(uri)
            except OSError as exc:
                refused = exc
            else:
                raise AssertionError("the server still accepts connections")

            # ... while the existing one keeps working, and close() waits for it.
            await websocket.send("still here")
            reply = await websocket.recv()
            assert reply == "still here", reply
            assert not server_task.done(), "server.close() returned with a connection open"
        await asyncio.wait_for(server_task, timeout=5)
        return refused, reply

    server_task = asyncio.create_task(server())
    refused, reply = await client()
    print(
        f"after server.close(close_connections=False): new connection refused ({refused.__class__.__name__}), "
        f"existing one echoed {reply!r}; close() returned once it ended"
    )


asyncio.run(main())
