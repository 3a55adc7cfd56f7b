"""FAQ: How do I set which IP addresses my server listens to?"""

import asyncio
import socket

import wsio as websockets


async def handler(websocket):
    await websocket.send(websocket.local_address[0])


async def main():
    # The FAQ: `await websockets.serve(handler, host="192.168.0.1", port=8080)`;
    # here the loopback address, and port 0 for any free port.
    server = await websockets.serve(handler, host="127.0.0.1", port=0)
    addresses = [sock.getsockname()[0] for sock in server.sockets]
    assert addresses == ["127.0.0.1"], addresses
    port = server.sockets[0].getsockname()[1]
    async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:
        assert await websocket.recv() == "127.0.0.1"
    server.close()
    await server.wait_closed()
    print(f"host='127.0.0.1': listening on {addresses} only")

    # serve() takes create_server()'s other arguments too, e.g. family=.
    server = await websockets.serve(handler, host="localhost", port=0, family=socket.AF_INET)
    families = {sock.family for sock in server.sockets}
    assert families == {socket.AF_INET}, families
    port = server.sockets[0].getsockname()[1]
    async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:
        assert await websocket.recv() == "127.0.0.1"
    server.close()
    await server.wait_closed()
    print("host='localhost', family=socket.AF_INET: IPv4 sockets only")


asyncio.run(main())
