"""FAQ: How do I send a message to a single user?"""

import asyncio

import wsio as websockets

# The FAQ: record connections in a global variable, keyed by user identifier...
CONNECTIONS = {}


async def handler(websocket):
    user_id = websocket.path.lstrip("/")  # identify user in your app's context
    CONNECTIONS[user_id] = websocket
    try:
        await websocket.wait_closed()
    finally:
        del CONNECTIONS[user_id]


# ... then call send().
async def message_user(user_id, message):
    websocket = CONNECTIONS[user_id]  # raises KeyError if user disconnected
    await websocket.send(message)  # may raise websockets.ConnectionClosed


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        alice = await websockets.connect(f"ws://127.0.0.1:{port}/alice")
        bob = await websockets.connect(f"ws://127.0.0.1:{port}/bob")
        while len(CONNECTIONS) < 2:
            await asyncio.sleep(0.01)

        await message_user("bob", "hello, bob")
        assert await bob.recv() == "hello, bob"
        try:
            await alice.recv(timeout=0.2)
        except asyncio.TimeoutError:
            pass  # alice got nothing
        else:
            raise AssertionError("alice received bob's message")

        # A user who isn't connected.
        try:
            await message_user("carol", "hello, carol")
        except KeyError:
            pass
        else:
            raise AssertionError("carol isn't connected")

        await alice.close()
        await bob.close()
    print("message_user('bob', ...) reached bob only; 'carol' (not connected) raised KeyError")


asyncio.run(main())
