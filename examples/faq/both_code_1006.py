"""FAQ: What does ConnectionClosedError: code = 1006 mean?"""

# The TCP connection was lost without a close frame. Provoke it both ways:
# abort a transport, as a lost network or a crashed peer does, and catch
# ConnectionClosed (instead of letting it be logged) on the other side.

import asyncio

import wsio as websockets

SERVER_SAW = []


async def handler(websocket):
    try:
        async for message in websocket:
            if message == "drop me":
                websocket.transport.abort()  # the server "crashes"
    except websockets.ConnectionClosed as exc:
        SERVER_SAW.append(exc)


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"

        # The client's TCP connection is lost: the server sees 1006.
        websocket = await websockets.connect(uri)
        await websocket.send("hello")
        websocket.transport.abort()
        while not SERVER_SAW:
            await asyncio.sleep(0.01)
        exc = SERVER_SAW[0]
        assert isinstance(exc, websockets.ConnectionClosedError), exc
        assert exc.code == 1006 and "1006" in str(exc) and exc.why and exc.why in str(exc), exc
        print(f"server side: {exc.__class__.__name__}: {exc}")

        # The server's TCP connection is lost: the client sees 1006.
        async with websockets.connect(uri) as websocket:
            await websocket.send("drop me")
            try:
                await websocket.recv()
            except websockets.ConnectionClosed as exc:
                client_exc = exc
        assert isinstance(client_exc, websockets.ConnectionClosedError), client_exc
        assert client_exc.code == 1006 and "1006" in str(client_exc) and client_exc.why in str(client_exc) and client_exc.why, (
            client_exc
        )
        print(f"client side: {client_exc.__class__.__name__}: {client_exc}")


asyncio.run(main())
