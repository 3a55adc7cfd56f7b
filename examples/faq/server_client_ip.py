"""FAQ: How do I get the IP address of the client connecting to my server?"""

import asyncio

import wsio as websockets


# Older FAQ: handler(websocket, path).
async def handler_with_path(websocket, path):
    remote_ip = websocket.remote_address[0]
    await websocket.send(remote_ip)


# Newer FAQ: handler(websocket).
async def handler(websocket):
    remote_ip = websocket.remote_address[0]
    await websocket.send(remote_ip)


async def main():
    for server_handler in [handler_with_path, handler]:
        async with websockets.serve(server_handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:
                remote_ip = await websocket.recv()
                local_port = websocket.local_address[1]
        assert remote_ip == "127.0.0.1", remote_ip
        print(f"{server_handler.__name__}: the client connected from {remote_ip} (port {local_port})")


asyncio.run(main())
