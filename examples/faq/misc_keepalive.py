"""FAQ: How do I keep idle connections open?"""

# Pings every ping_interval seconds; a peer that doesn't answer within
# ping_timeout seconds is disconnected. (20 s each by default; shorter here.)

import asyncio

import wsio as websockets

SERVER_SAW = []


async def handler(websocket):
    try:
        await websocket.recv()
    except websockets.ConnectionClosed as exc:
        SERVER_SAW.append(exc)


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0, ping_interval=0.2, ping_timeout=0.5) as server:
        port = server.sockets[0].getsockname()[1]

        # An idle client that answers pings (automatically) stays connected.
        async with websockets.connect(f"ws://127.0.0.1:{port}", ping_interval=None) as websocket:
            await asyncio.sleep(1)
            assert websocket.open, websocket.state
            print("idle for 1 s with ping_interval=0.2, ping_timeout=0.5: still open")

        # A client that stops reading (so never answers pings) is disconnected.
        SERVER_SAW.clear()
        websocket = await websockets.connect(f"ws://127.0.0.1:{port}", ping_interval=None)
        websocket.transport.pause_reading()  # as if its network were gone
        for _ in range(100):
            if SERVER_SAW:
                break
            await asyncio.sleep(0.05)
        websocket.transport.abort()
    assert SERVER_SAW, "the server should have closed the unresponsive connection"
    exc = SERVER_SAW[0]
    assert exc.sent is not None and exc.sent.code == 1011, exc
    print(f"unresponsive client: the server closed the connection: {exc}")


asyncio.run(main())
