"""FAQ: How do I create channels or topics?"""

# A simple in-memory implementation: a set of connections per channel, and
# broadcast() to publish. (wsio.Hub does this for you, in memory or over Redis
# across processes: see examples/docs and the pub/sub page of the docs.)

import asyncio
import collections

import wsio as websockets

CHANNELS = collections.defaultdict(set)  # channel name -> connections subscribed


def publish(channel, message):
    websockets.broadcast(CHANNELS[channel], message)


async def handler(websocket):
    subscribed = set()
    try:
        async for message in websocket:
            command, _, argument = message.partition(" ")
            if command == "subscribe":
                CHANNELS[argument].add(websocket)
                subscribed.add(argument)
                await websocket.send(f"subscribed to {argument}")
            elif command == "publish":
                channel, _, text = argument.partition(" ")
                publish(channel, f"{channel}: {text}")
    finally:
        for channel in subscribed:
            CHANNELS[channel].discard(websocket)


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with websockets.connect(uri) as sports, websockets.connect(uri) as news, websockets.connect(uri) as both:
            for websocket, channels in [(sports, ["sports"]), (news, ["news"]), (both, ["sports", "news"])]:
                for channel in channels:
                    await websocket.send(f"subscribe {channel}")
                    assert await websocket.recv() == f"subscribed to {channel}"

            await news.send("publish sports 2-1 at half time")
            assert await sports.recv() == "sports: 2-1 at half time"
            assert await both.recv() == "sports: 2-1 at half time"
            try:
                await news.recv(timeout=0.2)
            except asyncio.TimeoutError:
                pass  # news isn't subscribed to sports
            else:
                raise AssertionError("news received a sports message")

            await sports.send("publish news rain tomorrow")
            assert await news.recv() == "news: rain tomorrow"
            assert await both.recv() == "news: rain tomorrow"
    assert not any(CHANNELS.values()), CHANNELS  # handlers unsubscribed on close
    print("published to 'sports' and 'news': each reached its subscribers only")


asyncio.run(main())
