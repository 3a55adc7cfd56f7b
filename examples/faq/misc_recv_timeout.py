"""FAQ: How do I set a timeout on recv()?"""

import asyncio

import wsio as websockets


async def handler(websocket):
    await asyncio.sleep(0.1)
    await websocket.send("first")
    await asyncio.sleep(0.5)
    await websocket.send("late")
    await websocket.wait_closed()


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:
            # The FAQ: wrap recv() in asyncio.wait_for().
            message = await asyncio.wait_for(websocket.recv(), timeout=10)
            assert message == "first", message
            print(f"asyncio.wait_for(websocket.recv(), timeout=10) -> {message!r}")

            try:
                await asyncio.wait_for(websocket.recv(), timeout=0.1)
            except asyncio.TimeoutError:
                print("asyncio.wait_for(websocket.recv(), timeout=0.1) -> TimeoutError")
            else:
                raise AssertionError("recv() should have timed out")

            # wsio: recv() takes a timeout itself.
            try:
                await websocket.recv(timeout=0.1)
            except asyncio.TimeoutError:
                print("websocket.recv(timeout=0.1) -> TimeoutError")
            else:
                raise AssertionError("recv() should have timed out")

            # Timing out loses no message: the late one is still delivered.
            message = await websocket.recv(timeout=10)
            assert message == "late", message
            print(f"websocket.recv(timeout=10) -> {message!r}, the connection is still fine")


asyncio.run(main())
