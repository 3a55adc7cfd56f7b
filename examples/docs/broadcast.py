"""Broadcast and pub/sub in one process: wsio.broadcast() and wsio.Hub topics."""

import asyncio

import wsio

CONNECTIONS = set()
hub = wsio.Hub()  # in memory; wsio.Hub("redis://host:6379/0") spans processes


async def handler(websocket):
    # The path says which room to join: /room/42 subscribes to "room:42".
    CONNECTIONS.add(websocket)
    try:
        room = websocket.path.rsplit("/", 1)[-1]
        await hub.subscribe(websocket, f"room:{room}")
        await websocket.send("subscribed")
        async for message in websocket:
            await hub.publish(f"room:{room}", message)
    finally:
        CONNECTIONS.discard(websocket)  # the hub unsubscribes closed connections itself


async def main():
    async with hub, wsio.serve(handler, "127.0.0.1", 0) as server:
        base = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/room"
        alice = await wsio.connect(f"{base}/42")
        bob = await wsio.connect(f"{base}/42")
        carol = await wsio.connect(f"{base}/7")
        for client in (alice, bob, carol):
            assert await client.recv(timeout=5) == "subscribed"

        # broadcast(): one frame, written to every connection; returns how many.
        reached = wsio.broadcast(CONNECTIONS, "server restarting soon")
        print(f"broadcast reached {reached} connections")
        for client in (alice, bob, carol):
            assert await client.recv(timeout=5) == "server restarting soon"

        # A topic: only the subscribers of room:42 get Alice's message.
        await alice.send("hi room 42")
        print(f"bob got {await bob.recv(timeout=5)!r}")
        assert await alice.recv(timeout=5) == "hi room 42"  # Alice is subscribed too
        try:
            await carol.recv(timeout=0.2)
        except TimeoutError:
            print("carol (room 7) got nothing")

        # A prefix: "room:" receives every room. (subscribe() takes its topic
        # literally: a client asking for /room/* gets a room named "*".)
        await hub.subscribe_prefix(next(c for c in CONNECTIONS if c.path.endswith("/7")), "room:")
        reached = await hub.publish("room:42", "to room 42")
        print(f"publish reached {reached} connections")
        assert reached == 3
        for client in (alice, bob, carol):
            await client.close()


asyncio.run(main())
