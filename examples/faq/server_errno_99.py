"""FAQ: What does OSError: [Errno 99] error while attempting to bind on address ('::1', 80, 0, 0): address not available mean?"""

import asyncio
import errno
import socket

import wsio as websockets


async def handler(websocket):
    await websocket.send("hello")


async def main():
    # The error: binding on an address that this machine doesn't have. Here
    # 192.0.2.1 (TEST-NET-1, reserved for documentation; nothing is sent to it)
    # stands in for ::1 on a machine without IPv6.
    try:
        await websockets.serve(handler, host="192.0.2.1", port=0)
    except OSError as exc:
        assert exc.errno == errno.EADDRNOTAVAIL, exc
        print(f"unavailable address: {exc}")
    else:
        raise AssertionError("192.0.2.1 shouldn't be an address of this machine")

    # The fix: listen on IPv4 only, with family=socket.AF_INET (or host="0.0.0.0").
    async with websockets.serve(handler, "localhost", 0, family=socket.AF_INET) as server:
        assert all(sock.family == socket.AF_INET for sock in server.sockets), server.sockets
        port = server.sockets[0].getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}") as websocket:
            assert await websocket.recv() == "hello"
    print("family=socket.AF_INET: listening on IPv4 only, connection works")


asyncio.run(main())
