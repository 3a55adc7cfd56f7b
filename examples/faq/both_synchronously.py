"""FAQ: Can I use websockets synchronously, without async / await?"""

# The FAQ: wrap every asynchronous call in
# asyncio.get_event_loop().run_until_complete(...). Since Python 3.12,
# get_event_loop() wants a loop set first when none is running; set one.

import asyncio

import wsio as websockets


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


def main():
    asyncio.set_event_loop(asyncio.new_event_loop())

    server = asyncio.get_event_loop().run_until_complete(websockets.serve(echo, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]

    websocket = asyncio.get_event_loop().run_until_complete(websockets.connect(f"ws://127.0.0.1:{port}"))
    asyncio.get_event_loop().run_until_complete(websocket.send("hello"))
    reply = asyncio.get_event_loop().run_until_complete(websocket.recv())
    asyncio.get_event_loop().run_until_complete(websocket.close())

    server.close()
    asyncio.get_event_loop().run_until_complete(server.wait_closed())
    asyncio.get_event_loop().close()

    assert reply == "hello", reply
    print(f"no async / await in main(): sent 'hello', received {reply!r}")


main()
