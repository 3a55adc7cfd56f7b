"""FAQ: How do I do two things in parallel? How do I integrate with another coroutine?"""

import asyncio

import wsio as websockets

SERVER_RECEIVED = []


# Server: a consumer and an endless producer, with asyncio.wait(); when the
# consumer ends (the client closed), the producer is cancelled.
async def consumer_handler(websocket):
    async for message in websocket:
        SERVER_RECEIVED.append(message)


async def producer_handler(websocket):
    count = 0
    while True:
        count += 1
        await websocket.send(f"tick {count}")
        await asyncio.sleep(0.05)


async def handler(websocket):
    consumer_task = asyncio.create_task(consumer_handler(websocket))
    producer_task = asyncio.create_task(producer_handler(websocket))
    done, pending = await asyncio.wait([consumer_task, producer_task], return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()


# Client: a producer and a consumer that both finish, with asyncio.gather().
async def main():
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:

            async def producer():
                for word in ["one", "two", "three"]:
                    await websocket.send(word)
                    await asyncio.sleep(0.05)

            async def consumer():
                return [await websocket.recv() for _ in range(3)]

            _, ticks = await asyncio.gather(producer(), consumer())
    assert ticks == ["tick 1", "tick 2", "tick 3"], ticks
    assert SERVER_RECEIVED == ["one", "two", "three"], SERVER_RECEIVED
    print(f"sent {SERVER_RECEIVED} while receiving {ticks}, in parallel")


asyncio.run(main())
