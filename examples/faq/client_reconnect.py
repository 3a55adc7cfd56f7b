"""FAQ: How do I reconnect automatically when the connection drops?"""

import asyncio

import wsio as websockets

CONNECTIONS_SEEN = 0


# A flaky server: it drops the first connection as a network failure would.
async def handler(websocket):
    global CONNECTIONS_SEEN
    CONNECTIONS_SEEN += 1
    if CONNECTIONS_SEEN == 1:
        await websocket.recv()
        websocket.transport.abort()  # no close frame: the client sees 1006
        return
    async for message in websocket:
        await websocket.send(message)


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        drops = []

        # Iterate on connect() to reconnect each time the connection drops.
        async for websocket in websockets.connect(f"ws://127.0.0.1:{port}"):
            try:
                await websocket.send("hello")
                reply = await websocket.recv()
                break
            except websockets.ConnectionClosed as exc:
                drops.append(exc)
                continue

    assert len(drops) == 1 and drops[0].code == 1006, drops
    assert reply == "hello", reply
    assert CONNECTIONS_SEEN == 2, CONNECTIONS_SEEN
    print(f"the first connection dropped ({drops[0]}); the second one echoed {reply!r}")


asyncio.run(main())
