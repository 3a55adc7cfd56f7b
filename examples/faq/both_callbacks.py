"""FAQ: Are there onopen, onmessage, onerror, and onclose callbacks?"""

# No: the coroutine API expresses each of them as a place in the code, as
# below. (A callback API, wsio.sync.WebSocketApp with on_open, on_message,
# on_error and on_close, is coming.)

import asyncio

import wsio as websockets

EVENTS = []


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main():
    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        websocket = None
        try:
            async with websockets.connect(uri) as websocket:
                EVENTS.append("open")  # onopen
                await websocket.send("hello")
                await websocket.send("world")
                for _ in range(2):
                    message = await websocket.recv()
                    EVENTS.append(f"message {message}")  # onmessage
        except (OSError, websockets.WebSocketError) as exc:
            EVENTS.append(f"error {exc}")  # onerror
        finally:
            EVENTS.append(f"close {websocket and websocket.close_code}")  # onclose
    assert EVENTS == ["open", "message hello", "message world", "close 1000"], EVENTS
    print(f"coroutine style: {EVENTS}")


asyncio.run(main())
