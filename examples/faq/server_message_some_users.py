"""FAQ: How do I send a message to a channel, a topic, or some users?"""

import asyncio

import wsio as websockets

# Connections keyed by user identifier, as in "How do I send a message to a single user?"
CONNECTIONS = {}


async def handler(websocket):
    user_id = websocket.path.lstrip("/")  # identify user in your app's context
    CONNECTIONS[user_id] = websocket
    try:
        await websocket.wait_closed()
    finally:
        del CONNECTIONS[user_id]


# Build the set of recipients and broadcast the message to them,
# as in "How do I send a message to all users?"
def message_users(user_ids, message):
    recipients = {CONNECTIONS[user_id] for user_id in user_ids if user_id in CONNECTIONS}
    websockets.broadcast(recipients, message)


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        users = ["alice", "bob", "carol"]
        clients = {user: await websockets.connect(f"ws://127.0.0.1:{port}/{user}") for user in users}
        while len(CONNECTIONS) < len(users):
            await asyncio.sleep(0.01)

        message_users(["alice", "carol", "dave"], "meeting at noon")  # dave isn't connected

        assert await clients["alice"].recv() == "meeting at noon"
        assert await clients["carol"].recv() == "meeting at noon"
        try:
            await clients["bob"].recv(timeout=0.2)
        except asyncio.TimeoutError:
            pass
        else:
            raise AssertionError("bob isn't a recipient")

        for client in clients.values():
            await client.close()
    print("message to alice and carol reached them; bob got nothing")


asyncio.run(main())
