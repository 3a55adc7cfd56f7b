"""Getting started: a client on asyncio.

python examples/docs/asyncio_client.py ws://127.0.0.1:8765
"""

import asyncio
import sys

import wsio


async def main(uri):
    async with wsio.connect(uri) as websocket:
        await websocket.send("hello")
        reply = await websocket.recv(timeout=5)  # TimeoutError after 5 s
        print(f"received {reply!r}")
        await websocket.send(b"\x00\x01")
        print(f"received {await websocket.recv(timeout=5)!r}")
    # Leaving the block closed the connection with 1000 (normal closure).
    print(f"closed with {websocket.close_code}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765"))
