"""FAQ: Are there onopen, onmessage, onerror, and onclose callbacks?"""

# The coroutine API expresses each of them as a place in the code (first part
# below). wsio also has callbacks: a Listener with on_open, on_message and
# on_close on the same event loop (second part), and, with threads,
# wsio.sync.WebSocketApp(on_open=..., on_message=..., on_error=..., on_close=...).

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


class Client(websockets.Listener):
    def __init__(self, events, done):
        self.events, self.done = events, done

    def on_open(self, connection):
        self.events.append("open")
        connection.send("hello")
        connection.send("world")

    def on_message(self, connection, message):
        self.events.append(f"message {message}")
        if len(self.events) == 3:
            connection.close()

    def on_close(self, connection, exc):
        self.events.append(f"close {exc.code}")
        self.done.set_result(None)


async def callbacks():
    events = []
    done = asyncio.get_running_loop().create_future()
    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        await websockets.connect_listener(lambda: Client(events, done), uri)
        await done
    assert events == ["open", "message hello", "message world", "close 1000"], events
    print(f"callback style: {events}")


asyncio.run(main())
asyncio.run(callbacks())
