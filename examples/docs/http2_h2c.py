"""Cleartext HTTP/2 (h2c, prior knowledge): WebSockets between services share one TCP connection.

The server takes HTTP/1.1 and h2c on one port; browsers don't speak h2c, so
this is for service-to-service traffic on a network you trust.
"""
# requires: h2

import asyncio

import wsio


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main():
    # The server: HTTP/1.1 and h2c on one port (no ssl=).
    async with wsio.serve(echo, "127.0.0.1", 0, http2=True) as server:
        uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"

        # A service: its WebSockets to the backend share one cleartext HTTP/2 connection.
        async def subscribe(topic):
            async with wsio.connect(f"{uri}/{topic}", http2=True) as websocket:
                await websocket.send(f"subscribe {topic}")
                reply = await websocket.recv(timeout=5)
                return reply, websocket.transport.get_extra_info("sockname")

        results = await asyncio.gather(*(subscribe(topic) for topic in ("prices", "orders", "news")))
        print(f"replies: {sorted(reply for reply, _ in results)}")
        print(f"TCP connections: {len({sockname for _, sockname in results})}")

        # An HTTP/1.1 client on the same port.
        async with wsio.connect(uri) as websocket:
            await websocket.send("over HTTP/1.1")
            print(f"HTTP/1.1 client: {await websocket.recv(timeout=5)!r}")


asyncio.run(main())
