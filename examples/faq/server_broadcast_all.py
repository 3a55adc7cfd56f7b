"""FAQ: How do I send a message to all users?"""

import asyncio

import wsio as websockets

# The FAQ: record all connections in a global variable...
CONNECTIONS = set()


async def handler(websocket):
    CONNECTIONS.add(websocket)
    try:
        await websocket.wait_closed()
    finally:
        CONNECTIONS.remove(websocket)


# ... then call broadcast().
def message_all(message):
    websockets.broadcast(CONNECTIONS, message)


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        clients = [await websockets.connect(f"ws://127.0.0.1:{port}") for _ in range(3)]
        while len(CONNECTIONS) < 3:  # the handlers register right after the handshake
            await asyncio.sleep(0.01)

        message_all("hello, everyone")

        replies = [await client.recv() for client in clients]
        assert replies == ["hello, everyone"] * 3, replies
        for client in clients:
            await client.close()
    assert not CONNECTIONS  # each handler removed its connection
    print(f"broadcast reached all {len(replies)} clients: {replies[0]!r}")


asyncio.run(main())
